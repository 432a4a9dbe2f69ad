"""Printed patrol maps from the browser: ``GET /print/patrol.pdf``.

The query string takes the options of ``webmap patrol-map``: one of ``area`` (priority area ids, comma
separated), ``district`` (name or GSO code), ``bbox`` (W,S,E,N) or ``top`` (N), and ``paper`` (A4, A3),
``orientation`` (portrait, landscape), ``scale`` (2000 to 50000; absent: fitted), ``grid`` (tm3, degrees),
``start`` (a station or key site id, or lon,lat), ``classification`` (the marking), ``cells`` (1/0: draw
the priority cells), ``recent_days``; and the priority analysis the areas come from, as the planners' page asks it: ``types``,
``status``, ``since``, ``until``, ``cell_m``, ``shape`` (read by :mod:`webmap.priority_query`, as the page's
data is; a cell id's grid is taken from the id when ``cell_m``/``shape`` are absent). A wrong parameter
answers 400 naming it.

For signed-in users (a visitor is sent to the login page). Everything printed is what the user may see
(:mod:`webmap.patrol` reads every layer through the access rules): an enterprise never gets key sites,
another enterprise's assets or priority cells, and priority areas (``area``, ``top``) answer the same 404
as an unknown area to anyone but staff. Every print is written to the audit log (``print``, and
``read_key_sites``, once, when key sites are on it or priority areas, whose stake counts key sites, are).

While the priority analysis warms up after a start (see webmap/views/priority.py), a print of priority
areas answers 503 with Retry-After; a district or rectangle is printed without the priority cells and says
so on the sheet, rather than make the user wait.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

from flask import Blueprint, Response, current_app, g, make_response, redirect, render_template, request, url_for

from webmap import audit
from webmap.app import get_store
from webmap.catalog import load_catalog
from webmap.i18n import current_language, strings
from webmap.views import guard

bp = Blueprint("prints", __name__, url_prefix="/print")

IGNORED = {"lang", "_"}
RETRY_AFTER_S = 5


def _warming() -> bool:
    """True while the priority analysis compiles in the background (no user request pays for it)."""
    try:
        from webmap.views.priority import WARMUP
    except ImportError:  # the priority page is not installed: the analysis compiles when first used
        return False
    return WARMUP.busy


def _not_ready():
    message = strings(current_language()).get("priority_warming", "priority analysis is starting, try again shortly")
    response = make_response(render_template("error.html", status=503, message=message), 503)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/patrol.pdf")
def patrol_pdf():
    from webmap.patrol import audit_detail, file_name, key_sites_read, make_patrol_pdf, parse_request

    user = g.get("user")
    if user is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    who = guard.principal()
    wanted = request.args.to_dict()
    for name in IGNORED:
        wanted.pop(name, None)
    patrol = parse_request(wanted)
    notes = ()
    if who.is_staff and _warming():
        if patrol.needs_priority:
            return _not_ready()
        if patrol.cells:
            patrol = dataclasses.replace(patrol, cells=False)
            notes = ("Lớp vùng ưu tiên đang được chuẩn bị nên không có trên bản in này "
                     "(priority areas were not ready: not shown).",)
    folder = tempfile.mkdtemp(prefix="webmap-print-")
    path = os.path.join(folder, "patrol.pdf")
    try:
        summary = make_patrol_pdf(get_store(), who, load_catalog(), guard.access_context(), patrol, path,
                                  printed_by=user.username, notes=notes)
        with open(path, "rb") as fh:
            body = fh.read()
    finally:
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)
    log = audit.for_app(current_app)
    log.record(user.username, "print", patrol.target, audit_detail(patrol, summary), audit.request_source())
    read = key_sites_read(summary)
    if read:
        log.record(user.username, "read_key_sites", patrol.target, read, audit.request_source())
    response = Response(body, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{file_name(patrol)}"'
    response.headers["Cache-Control"] = "no-store"
    return response
