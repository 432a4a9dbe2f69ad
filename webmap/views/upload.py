"""Upload a layer file from the browser: the same import path as the CLI, under the access rules.

- Enterprises upload their own network (cable routes, stations): the owner is forced to their
  organisation and only their rows are replaced; other owners' rows stay as they are.
- Police and admin upload any layer they can see (as a whole new version), naming the owner if needed.
- District users and visitors have no upload (404, like a page that does not exist; visitors are sent
  to the login page).

The file goes to a private folder under the instance (mode 0700), named by the app, never by the
client (the client's file name only gives the extension), and the folder is removed whatever happens.
Size is limited by MAX_CONTENT_LENGTH; archive limits and the GDAL path rules are the import's own.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from werkzeug.utils import secure_filename

from webmap import audit
from webmap.app import get_store
from webmap.errors import BadInput, WebmapError
from webmap.i18n import current_language, strings
from webmap.views import guard

bp = Blueprint("upload", __name__)

UPLOAD_EXTENSIONS = (".zip", ".geojson", ".json", ".gpkg", ".kml", ".kmz", ".csv")
ENCODINGS = ("", "utf-8", "cp1258", "tcvn3", "vni")


def _upload_kinds():
    """``{kind: (layer, rule)}`` the current user may upload to."""
    role = guard.principal().role
    kinds = {}
    for layer, rule in guard.visible_layers():
        if role in ("admin", "police"):
            kinds[layer.kind] = (layer, rule)
        elif role == "enterprise" and layer.sensitivity == "owner" and layer.owner_field:
            kinds[layer.kind] = (layer, rule)
    return kinds


def _render(kinds, status=200, **context):
    lang = current_language()
    return render_template("upload.html", lang=lang, text=strings(lang), encodings=ENCODINGS,
                           kinds=[(kind, layer.label_for(lang)) for kind, (layer, _) in kinds.items()],
                           staff=guard.principal().is_staff, **context), status


def _private_folder() -> str:
    base = os.path.join(current_app.instance_path, "uploads")
    os.makedirs(base, mode=0o700, exist_ok=True)
    return tempfile.mkdtemp(prefix="upload-", dir=base)


@bp.route("/upload", methods=["GET", "POST"])
def upload():
    if g.get("user") is None:
        return redirect(url_for("auth.login", next=request.path))
    kinds = _upload_kinds()
    if not kinds:
        abort(404)
    if request.method == "GET":
        return _render(kinds)
    who = guard.principal()
    kind = request.form.get("layer", "")
    if kind not in kinds:
        abort(404)  # a layer this user may not upload to does not exist for them
    layer, _ = kinds[kind]
    sent = request.files.get("file")
    try:
        if sent is None or not sent.filename:
            raise BadInput(strings(current_language())["upload_no_file"])
        ext = os.path.splitext(sent.filename)[1].lower()
        if ext not in UPLOAD_EXTENSIONS:
            raise BadInput(f"{ext or 'no extension'}: upload one of {', '.join(UPLOAD_EXTENSIONS)} "
                           "(a Shapefile goes zipped with its .shx, .dbf, .prj and .cpg)")
        encoding = request.form.get("encoding", "")
        if encoding not in ENCODINGS:
            raise BadInput(f"unknown encoding {encoding!r}")
        if who.is_staff:
            owner = (request.form.get("owner") or "").strip().upper() or None
            only_owner = False
        else:
            owner, only_owner = who.org_code, True
        folder = _private_folder()
        try:
            # the app names the file (the client's name only lends a safe, ASCII version of itself)
            stem = secure_filename(os.path.splitext(sent.filename)[0])[:80] or "upload"
            path = os.path.join(folder, f"{stem}{ext}")
            sent.save(path)
            from webmap.importer import import_layer  # the GIS stack: loaded on first use

            report = import_layer(get_store(), path, kind, owner=owner if layer.owner_field else None,
                                  crs=(request.form.get("crs") or "").strip() or None, encoding=encoding or None,
                                  only_owner=only_owner, notify_app=current_app._get_current_object())
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    except WebmapError as exc:
        if exc.http_status >= 500:
            raise
        lang = current_language()
        return _render(kinds, 400, error=strings(lang)["upload_failed"].format(reason=exc.localized(lang)))
    report.source = os.path.basename(sent.filename)
    audit.for_app(current_app).record(who.username, "import", kind, {
        "file": report.source, "sha256": report.sha256, "features": report.features_kept,
        "version": report.version, "owner": owner}, audit.request_source())
    return _render(kinds, report_lines=report.lines())
