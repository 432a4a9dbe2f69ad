"""Incident reports in the browser and by API: the form, the list, verification, and sharing.

- ``/reports/new`` (GET, POST): the report form, for enterprises (their own network), districts (their own
  district) and the police; ``POST /api/reports`` takes the same values as JSON (X-CSRFToken header).
- ``/reports`` and ``GET /api/reports``: an enterprise or a district sees its own organisation's reports with
  their status and history; the police and admins see every report, those awaiting verification first, with
  Verify and Reject buttons (``POST /reports/<id>/verify`` and ``/reject``, police and admins only).
- ``POST /reports/sharing``: an enterprise opts in or out of sharing its reports with other enterprises.

Visitors are sent to the login page (a JSON 401 on the API); a signed-in user who may not use a page gets
the same 404 as an unknown URL. The rules themselves are in ``webmap/reports.py`` and ``webmap/access.py``.
"""

from __future__ import annotations

import json

from flask import (Blueprint, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for)

from webmap import reports as reports_mod
from webmap.app import get_store
from webmap.audit import request_source
from webmap.errors import BadInput, WebmapError
from webmap.i18n import LANGUAGES, current_language, strings
from webmap.views import guard

bp = Blueprint("reports", __name__)

COORDINATE_CRS = ("EPSG:5897", "EPSG:4326")  # offered by the form; the API takes any CRS webmap.crs reads
FORM_FIELDS = ("type", "severity", "occurred_at", "damage_vnd", "asset_id", "description", "method", "lon", "lat",
               "route_id", "chainage_km", "chainage_m", "x", "y", "crs")


@bp.after_request
def remember_language(response):
    """``?lang=`` chosen on these pages is remembered, as on the map page."""
    if request.args.get("lang") in LANGUAGES:
        response.set_cookie("lang", request.args["lang"], max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


def _user_or_login():
    if g.get("user") is None:
        return None, redirect(url_for("auth.login", next=request.path))
    return guard.principal(), None


def _labels(lang):
    """The incidents layer's field and value labels, for the form and the lists."""
    from webmap.catalog import load_catalog

    layer = load_catalog()["incidents"]
    fields = {f.name: f.label_for(lang) for f in layer.fields}
    values = {f.name: {code: (text.get(lang) or text.get("vi")) for code, text in f.value_labels.items()}
              for f in layer.fields if f.value_labels}
    allowed = {f.name: list(f.allowed or ()) for f in layer.fields}
    return fields, values, allowed


def _lang_link(endpoint, **values):
    other = [code for code in LANGUAGES if code != current_language()][0]
    return url_for(endpoint, **values, lang=other)


def _assets(who):
    """``(routes, assets)``: the cable routes and the routes and stations the user may name, for datalists
    (an enterprise's own network; for others nothing is listed: the city's network is too long a list)."""
    if who.role != "enterprise":
        return [], []
    from webmap.access import read_visible
    from webmap.catalog import load_catalog

    catalog = load_catalog()
    routes, assets = [], []
    for kind in reports_mod.ASSET_KINDS:
        gdf = read_visible(get_store(), who, kind, catalog, guard.access_context())
        if gdf is None:
            continue
        layer = catalog[kind]
        for ident, name in sorted(zip(gdf[layer.id_field].astype(str),
                                      gdf[layer.name_field].fillna("") if layer.name_field else [""] * len(gdf))):
            assets.append({"id": ident, "name": name, "kind": kind})
            if kind == reports_mod.ROUTE_KIND:
                routes.append({"id": ident, "name": name})
    return routes, assets


def _form_page(who, values=None, error=None, status=200):
    lang = current_language()
    text = strings(lang)
    fields, value_labels, allowed = _labels(lang)
    routes, assets = _assets(who)
    center = current_app.config["MAP_CENTER"]
    config = {
        "lang": lang,
        "center": [float(center[0]), float(center[1])],
        "zoom": int(current_app.config["MAP_ZOOM"]),
        "features": url_for("api.layer_features", kind="__KIND__"),
        "context_kinds": ["districts"],
        "asset_kinds": list(reports_mod.ASSET_KINDS) if who.role == "enterprise" else [],
        "basemap": _basemap(),
        "strings": {key: text[key] for key in ("report_nearest", "report_picked")},
    }
    html = render_template(
        "report_form.html", lang=lang, text=text, fields=fields, value_labels=value_labels, allowed=allowed,
        values=values or {"severity": reports_mod.DEFAULT_SEVERITY, "method": "map",
                          "crs": reports_mod.DEFAULT_COORDINATE_CRS},
        error=error, role=who.role, routes=routes, assets=assets, crs_options=COORDINATE_CRS,
        config=json.dumps(config, ensure_ascii=False), lang_link=_lang_link("reports.new_report"),
    )
    return html, status


def _basemap():
    from webmap.views.pages import _basemap as basemap

    return basemap()


@bp.route("/reports/new", methods=["GET", "POST"])
def new_report():
    who, login = _user_or_login()
    if login is not None:
        return login
    if who.role not in reports_mod.RECORDING_ROLES:
        abort(404)
    if request.method == "GET":
        return _form_page(who)
    values = {name: request.form.get(name, "") for name in FORM_FIELDS}
    try:
        incident_id = reports_mod.submit_report(current_app, who, values, source=request_source())
    except WebmapError as exc:
        if exc.http_status >= 500 or exc.http_status == 404:
            raise
        return _form_page(who, values, exc.localized(current_language()), 400)
    flash(strings(current_language())["report_sent"].format(id=incident_id))
    return redirect(url_for("reports.list_reports"), code=303)


def _api_principal():
    if g.get("user") is None:
        response = jsonify({"status": 401, "error": "log in first"})
        response.status_code = 401
        return None, response
    return guard.principal(), None


@bp.post("/api/reports")
def api_submit():
    who, refused = _api_principal()
    if refused is not None:
        return refused
    if who.role not in reports_mod.RECORDING_ROLES:
        abort(404)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadInput("send the report as a JSON object (Content-Type: application/json)")
    incident_id = reports_mod.submit_report(current_app, who, data, source=request_source())
    report = reports_mod.get_report(current_app, who, incident_id)
    response = jsonify({"id": incident_id, "status": report["status"],
                        "location": {"lon": report["data"]["lon"], "lat": report["data"]["lat"]}})
    response.status_code = 201
    response.headers["Location"] = url_for("reports.list_reports")
    return response


@bp.get("/api/reports")
def api_list():
    who, refused = _api_principal()
    if refused is not None:
        return refused
    status = request.args.get("status") or None
    if status is not None and status not in ("reported", "verified", "rejected"):
        raise BadInput("status must be reported, verified or rejected")
    response = jsonify({"reports": reports_mod.list_reports(current_app, who, status=status)})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/reports")
def list_reports():
    who, login = _user_or_login()
    if login is not None:
        return login
    lang = current_language()
    text = strings(lang)
    fields, value_labels, _ = _labels(lang)
    found = reports_mod.list_reports(current_app, who)
    awaiting = [r for r in found if r["status"] == "reported"]
    decided = [r for r in found if r["status"] != "reported"]
    shares = None
    if who.role == "enterprise":
        from webmap.accounts import get_accounts

        shares = get_accounts(current_app).shares_incidents(who.org_code)
    html = render_template(
        "reports.html", lang=lang, text=text, fields=fields, value_labels=value_labels, awaiting=awaiting,
        decided=decided, staff=who.is_staff, role=who.role, shares=shares,
        may_report=who.role in reports_mod.RECORDING_ROLES, lang_link=_lang_link("reports.list_reports"),
        local_time=_local_time,
    )
    response = current_app.make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response


def _local_time(iso: str) -> str:
    """A stored UTC time as Vietnam time, to the minute (what people read next to the incident's own time)."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso).astimezone(reports_mod.LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return iso or ""


def _decision(incident_id, decide, flash_key):
    who, login = _user_or_login()
    if login is not None:
        return login
    if not who.is_staff or not reports_mod.ID_PATTERN.fullmatch(incident_id):
        abort(404)
    text = strings(current_language())
    try:
        decide(who)
    except BadInput as exc:
        flash(exc.localized(current_language()))
        return redirect(url_for("reports.list_reports"), code=303)
    flash(text[flash_key].format(id=incident_id))
    return redirect(url_for("reports.list_reports"), code=303)


@bp.post("/reports/<incident_id>/verify")
def verify(incident_id):
    return _decision(incident_id, lambda who: reports_mod.verify(
        current_app, who, incident_id, request.form.get("note", ""), source=request_source()), "report_verified_flash")


@bp.post("/reports/<incident_id>/reject")
def reject(incident_id):
    return _decision(incident_id, lambda who: reports_mod.reject(
        current_app, who, incident_id, request.form.get("reason", ""), source=request_source()), "report_rejected_flash")


@bp.post("/reports/sharing")
def sharing():
    who, login = _user_or_login()
    if login is not None:
        return login
    if who.role != "enterprise":
        abort(404)
    wanted = request.form.get("share")
    if wanted not in ("0", "1"):
        raise BadInput("share must be 1 (share) or 0 (do not share)")
    shares = reports_mod.set_sharing(current_app, who, wanted == "1", source=request_source())
    text = strings(current_language())
    flash(text["sharing_now_on"] if shares else text["sharing_now_off"])
    return redirect(url_for("reports.list_reports"), code=303)
