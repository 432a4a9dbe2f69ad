"""The exposure of an enterprise's network (``/exposure``): page, GeoJSON API, exports and a printable PDF.

Who: an enterprise user sees its own organisation only (the ``org`` parameter is forced to it; asking for
another answers the same 404 as an unknown organisation); police and admin choose any enterprise, or all
of them with a comparison table. District users and visitors get the 404 of a URL that does not exist,
before anything is read.

Every layer is read with :func:`webmap.access.read_visible` under the current principal, then computed
(:mod:`webmap.exposures`): counted incidents carry no reporter details, description, damage or affected
asset. Exports and the PDF are written to the audit log (``export``, ``print``).

- ``GET /exposure``: the page (Leaflet map from the API below, key numbers, ranked tables, downloads);
- ``GET /api/exposure``: GeoJSON FeatureCollection of segments, stations and counted incidents
  (``properties.layer``), with the key numbers, priority shares, comparison and method in ``metadata``;
- ``GET /exposure/export.<csv|xlsx|geojson>``: the same as a file;
- ``GET /exposure/summary.pdf``: one A4 page for one enterprise.

Query parameters (checked; a mistake is a 400 naming it): ``org``, ``buffer_m`` (metres, default 100, at
most ``INCIDENT_NEAR_ASSETS_M`` for an enterprise), ``since`` and ``until`` (``YYYY-MM-DD``, both days
included; default the 365 days up to today).
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for

from webmap import audit
from webmap.analysis.exposure import LOCAL_OFFSET, MAX_BUFFER_M, ExposureParams
from webmap.catalog import load_catalog
from webmap.errors import BadInput
from webmap.i18n import LANGUAGES, current_language, strings
from webmap.views import guard
from webmap.views.params import parse_day

bp = Blueprint("exposure", __name__)

ROLES = ("admin", "police", "enterprise")
PARAMS = {"org", "buffer_m", "since", "until", "lang", "_"}
EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
}
TOP_ROWS = 15


def _principal():
    """The current principal, or the 404 of an unknown URL for roles without this page (nothing read)."""
    who = guard.principal()
    if who.role not in ROLES or (who.role == "enterprise" and not who.org_code):
        abort(404)
    return who


def _request(who):
    """Checked parameters: ``(ExposureRequest, raw values to repeat in links)``."""
    from webmap.exposures import ExposureRequest, parse_buffer

    unknown = sorted(set(request.args) - PARAMS)
    if unknown:
        raise BadInput(f"unknown parameter(s): {', '.join(unknown)}; accepted: {', '.join(sorted(PARAMS - {'_'}))}")
    near = float(guard.access_context().near_assets_m)
    buffer_m = parse_buffer(request.args.get("buffer_m"), near if who.role == "enterprise" else MAX_BUFFER_M)
    since = parse_day(request.args["since"], "since") if request.args.get("since") else None
    until = parse_day(request.args["until"], "until") if request.args.get("until") else None
    params = ExposureParams(buffer_m=buffer_m, since=since, until=until).resolved()
    org = (request.args.get("org") or "").strip() or None
    if who.role == "enterprise":
        if org is not None and org != who.org_code:
            from webmap.errors import NotFound

            raise NotFound("unknown enterprise")
        org = who.org_code
    raw = {k: request.args[k] for k in ("buffer_m", "since", "until") if request.args.get(k)}
    if org and who.is_staff:
        raw["org"] = org
    return ExposureRequest(org, params), raw


def _compute(who, ask):
    """``(result, priority_state, names)``: staff compute every enterprise once (the comparison) and cut."""
    from webmap.exposures import ExposureRequest, enterprise_names, resolve_org, run_exposure

    store = current_app.extensions["webmap_store"]
    org = resolve_org(store, who, ask.org)
    whole = ExposureRequest(None if who.is_staff else org, ask.params)
    result, state = run_exposure(store, who, load_catalog(), guard.access_context(), whole, compute_priority=False)
    codes = sorted(set(result.owners["owner"]) | ({org} if org else set()))
    if who.role == "enterprise":
        names = enterprise_names(current_app, [org])
    else:
        names = enterprise_names(current_app, codes)
    if who.is_staff and org:
        comparison = result.owners
        result = result.for_owner(org)
        result.owners = comparison  # staff keep the comparison across enterprises
    return result, state, names, org


def _lang_args():
    return {"lang": request.args["lang"]} if request.args.get("lang") in LANGUAGES else {}


@bp.get("/exposure")
def page():
    who = _principal()
    lang = current_language()
    text = strings(lang)
    ask, raw = _request(who)
    result, state, names, org = _compute(who, ask)
    from webmap.exposures import enterprise_codes

    orgs = []
    if who.is_staff:
        codes = enterprise_codes(current_app.extensions["webmap_store"])
        from webmap.exposures import enterprise_names

        all_names = enterprise_names(current_app, codes)
        orgs = [(code, all_names[code]) for code in codes]
    keep = {**raw, **_lang_args()}
    links = {
        "api": url_for("exposure.api", **raw),
        "csv": url_for("exposure.export", fmt="csv", **raw),
        "xlsx": url_for("exposure.export", fmt="xlsx", **raw),
        "geojson": url_for("exposure.export", fmt="geojson", **raw),
        "pdf": url_for("exposure.summary_pdf", **keep) if org else None,
        "lang": url_for("exposure.page", **{**raw, "lang": [c for c in LANGUAGES if c != lang][0]}),
        "map": url_for("pages.index"),
    }
    segments = result.segments.sort_values(["exposure", "incidents"], ascending=False, kind="mergesort")
    stations = result.stations.sort_values(["exposure", "incidents"], ascending=False, kind="mergesort")
    summary = result.summary(org) if org else None
    config = {
        "api": links["api"], "lang": lang, "strings": {k: v for k, v in text.items() if k.startswith("exposure_")},
        "districts": url_for("api.layer_features", kind="districts"),
    }
    p = ask.params
    from webmap.maps.exposure_pdf import format_number

    html = render_template(
        "exposure.html", lang=lang, text=text, num=lambda value, decimals=0: format_number(value, decimals, lang), org=org, org_name=names.get(org, org) if org else None,
        staff=who.is_staff, orgs=orgs, params=p, raw=raw, links=links, summary=summary,
        top_segments=segments[segments["incidents"] > 0].head(TOP_ROWS).to_dict("records"),
        top_stations=stations[stations["incidents"] > 0].head(TOP_ROWS).to_dict("records"),
        priority=_priority_rows(result, org) if org else [], priority_state=state,
        comparison=[{**row, "name": names.get(row["owner"], row["owner"])} for row in result.owners.to_dict("records")]
        if who.is_staff else [],
        method=result.method, config=config, buffer_max=int(guard.access_context().near_assets_m)
        if who.role == "enterprise" else int(MAX_BUFFER_M),
    )
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _priority_rows(result, org):
    if result.priority is None:
        return []
    rows = result.priority[result.priority["owner"] == org]
    return rows.to_dict("records")


@bp.get("/api/exposure")
def api():
    import json

    from webmap.exposures import feature_collection

    who = _principal()
    ask, _ = _request(who)
    result, state, names, org = _compute(who, ask)
    body = json.dumps(feature_collection(result, org, names, state), ensure_ascii=False, allow_nan=False)
    response = Response(body, mimetype="application/geo+json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _file_response(path, mimetype, filename):
    with open(path, "rb") as fh:
        data = fh.read()
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _file_name(org, params, ext):
    return f"exposure_{org or 'all'}_{params.since}_{params.until}.{ext}"


@bp.get("/exposure/export.<fmt>")
def export(fmt):
    from webmap.exposures import write_output
    from webmap.importer import file_sha256

    who = _principal()
    if fmt not in EXPORT_TYPES:
        abort(404)
    ask, _ = _request(who)
    result, state, names, org = _compute(who, ask)
    folder = tempfile.mkdtemp(prefix="exposure-")
    path = os.path.join(folder, _file_name(org, ask.params, fmt))
    try:
        rows = write_output(result, path, fmt, org=org, names=names, priority_state=state)
        response = _file_response(path, EXPORT_TYPES[fmt], os.path.basename(path))
        audit.for_app(current_app).record(who.username or "anonymous", "export", f"exposure:{org or 'all'}", {
            "format": fmt, "rows": rows, "sha256": file_sha256(path), "org": org,
            **{k: v for k, v in ask.params.as_dict().items() if k in ("buffer_m", "since", "until")}},
            audit.request_source())
    finally:
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)
    return response


@bp.get("/exposure/summary.pdf")
def summary_pdf():
    from webmap.maps.exposure_pdf import render_exposure_pdf

    who = _principal()
    lang = current_language()
    text = strings(lang)
    ask, _ = _request(who)
    if ask.org is None:
        raise BadInput(text["exposure_choose_org"])
    result, state, names, org = _compute(who, ask)
    from webmap.access import read_visible

    districts = read_visible(current_app.extensions["webmap_store"], who, "districts", load_catalog(),
                             guard.access_context())
    printed_at = (datetime.now(timezone.utc) + LOCAL_OFFSET).strftime("%Y-%m-%d %H:%M")
    data = render_exposure_pdf(result, org=org, org_name=names.get(org, org), text=text, lang=lang,
                               printed_by=who.username or "", printed_at=printed_at, districts=districts,
                               priority_state=state)
    audit.for_app(current_app).record(who.username or "anonymous", "print", f"exposure:{org}", {
        "format": "pdf", "bytes": len(data), **{k: v for k, v in ask.params.as_dict().items()
                                               if k in ("buffer_m", "since", "until")}}, audit.request_source())
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{_file_name(org, ask.params, "pdf")}"'
    response.headers["Cache-Control"] = "no-store"
    return response
