"""The planners' page: priority areas and hot spots (``/priority``), their data and their exports.

Staff only (admin, police): for everyone else, visitors included, every URL here answers the same 404 as
a URL that does not exist, before anything is read. The analysis itself is not here: the views check
the query string, ask :func:`webmap.priorities.get_priority` (cached per parameters and layer versions)
and serialise what it returns.

- ``GET /priority``: the page (map, ranked table, filters, exports); its data comes from the API below.
- ``GET /api/priority``: a GeoJSON FeatureCollection of grid cells (``level=cells``) or administrative
  units (``level=units``), each feature's ``id`` its ``area_id``, with the method, its parameters and the
  counts in a top-level ``metadata`` member, and the hot and cold spots merged per confidence class in
  ``spots`` (a foreign member, for the outlines). Cells where nothing happens (no incident, no hot or cold
  spot, a score of 0) are left out unless ``all=1``: a 500 m grid of the city holds about 6,900 cells,
  three quarters of them empty (the demo answer is 1.1 MB with, 4.9 MB without).
- ``GET /priority/export.<fmt>``: the same answer as a file (``geojson``, ``gpkg``, ``csv``, ``xlsx``) written
  by :func:`webmap.priority_export.write_priority`, every cell included, with the method inside (a CSV's
  method is a sidecar ``.method.json``: the two come zipped), written to the audit log (action
  ``export``) like ``webmap export``.

Query parameters (each checked; a mistake is a 400 naming it): ``types`` and ``status`` (comma lists of
the incident layer's codes), ``since`` and ``until`` (``YYYY-MM-DD``, both days included), ``cell_m``
(grid cell size in metres, :data:`CELL_M_MIN` to :data:`CELL_M_MAX`), ``shape`` (``hex`` or ``square``),
``level`` (``cells`` or ``units``).

Warm-up: esda's permutation inference compiles with numba the first time it runs in a process (about
21 s). That is paid once per process in a background thread (:class:`WarmUp`), started as the
server starts (``webmap serve``) or at the first request of an app served otherwise, never by a user's
request; until it is done ``/api/priority`` and the exports answer 503 with ``Retry-After`` and the page
says "Đang chuẩn bị phân tích…" and asks again. Not in tests (``TESTING``) nor with ``PRIORITY_WARMUP``
off: then the first analysis of the process pays the compile itself. Analyses run one at a time (see
``_ANALYSIS_LOCK``); an answer already made for the same parameters and layer versions is served at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import zipfile
from datetime import date

import numpy as np
from flask import (Blueprint, Response, abort, current_app, jsonify, make_response, render_template, request,
                   url_for)

from webmap import audit
from webmap.catalog import load_catalog
from webmap.errors import BadInput
from webmap.i18n import LANGUAGES, current_language, strings
from webmap.priority_query import CELL_M_MAX, CELL_M_MIN, SHAPES, choice, parse_filters, query_echo  # noqa: F401
from webmap.views import guard

bp = Blueprint("priority", __name__)

STAFF = ("admin", "police")
LEVELS = ("cells", "units")
CELL_SIZES_M = (250, 500, 1000, 2000)  # offered on the page; the API takes any size in the range
PARAMS = {"types", "status", "since", "until", "cell_m", "shape", "level", "all", "lang", "_"}
EXPORT_FORMATS = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
RETRY_AFTER_S = 5
PRINT_URL = "/print/patrol.pdf"  # the patrol maps (webmap/views/prints.py): linked to, never called here
COORDINATE_DECIMALS = 6  # about 0.1 m: more than a 200 m cell needs
VALUE_DIGITS = 6  # significant digits of numbers in the API's answer


# -- warm-up ------------------------------------------------------------------------------------------

class WarmUp:
    """Where this process stands with the numba compile: one per process, like numba's own cache.

    ``state``: ``idle`` (not started), ``running``, ``done`` or ``failed``. While ``running`` the analysis
    answers 503; after ``failed`` (logged) a request pays the compile, as with the warm-up off.
    """

    def __init__(self):
        self.state = "idle"
        self.seconds = None
        self.error = None
        self._lock = threading.Lock()

    def start(self, logger=None) -> bool:
        """Start the background compile unless it has started already; True if this call started it."""
        with self._lock:
            if self.state != "idle":
                return False
            self.state = "running"
        thread = threading.Thread(target=self._run, args=(logger,), name="webmap-priority-warmup", daemon=True)
        thread.start()
        return True

    def _run(self, logger):
        started = time.monotonic()
        try:
            from webmap.analysis.hotspots import warm_up

            warm_up()
        except Exception as exc:  # logged; requests then compile on their own rather than wait forever
            self.error = f"{type(exc).__name__}: {exc}"
            self.state = "failed"
            if logger is not None:
                logger.exception("priority analysis warm-up failed")
            return
        self.seconds = round(time.monotonic() - started, 1)
        self.state = "done"
        if logger is not None:
            logger.info("priority analysis ready: numba compiled in %.1f s", self.seconds)

    @property
    def busy(self) -> bool:
        return self.state == "running"


WARMUP = WarmUp()


def _warm_up_wanted(config) -> bool:
    return not config.get("TESTING") and bool(config.get("PRIORITY_WARMUP", True))


def _serving() -> bool:
    """True inside ``webmap serve`` (the click command building the app)."""
    import click

    context = click.get_current_context(silent=True)
    return context is not None and context.info_name == "serve"


@bp.record_once
def _on_register(state):
    # Under `webmap serve` the compile starts with the server; any other host starts it at the first
    # request (below). Other commands (import, export...) build the app too and must not pay it.
    if _warm_up_wanted(state.app.config) and _serving():
        WARMUP.start(state.app.logger)


@bp.before_app_request
def _start_warm_up_once():
    if WARMUP.state == "idle" and _warm_up_wanted(current_app.config):
        WARMUP.start(current_app.logger)


def _not_ready():
    """The 503 answered while the background compile runs (JSON for the API, a page otherwise)."""
    lang = current_language()
    messages = {code: strings(code)["priority_warming"] for code in LANGUAGES}
    if request.path.startswith("/api/"):
        response = jsonify({"status": 503, "error": messages[lang], "messages": messages, "retry_after": RETRY_AFTER_S})
    else:
        response = make_response(render_template("error.html", status=503, message=messages[lang]))
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- access and parameters ----------------------------------------------------------------------------

def _require_staff():
    """The same 404 as an unknown URL for everyone but admin and police (nothing is read before this)."""
    who = guard.principal()
    if who.role not in STAFF:
        abort(404)
    return who


def parse_query(args) -> tuple:
    """``(PriorityParams, level, include_empty)`` from a query string; BadInput names what is wrong.
    The filters and grid are read by :func:`webmap.priority_query.parse_filters`, as prints read them."""
    unknown = sorted(set(args) - PARAMS)
    if unknown:
        raise BadInput(f"unknown parameter(s): {', '.join(unknown)[:200]}; accepted: {', '.join(sorted(PARAMS - {'_'}))}")
    params = parse_filters(args)
    include_empty = (args.get("all") or "0") not in ("", "0")
    return params, choice(args, "level", LEVELS), include_empty


def _query_echo(params, level) -> dict:
    """The filters as the page and the file names write them."""
    return {**query_echo(params), "level": level}


def _record_key_sites(who, result_layers: dict, key_sites: int, what: str, query: dict):
    """The key-site counts (stake) of an answer are a read of key sites: one audit entry per request."""
    if result_layers.get("key_sites"):
        audit.for_app(current_app).record(
            who.username or "anonymous", "read_key_sites", what,
            {"features": key_sites, "priority": {k: v for k, v in query.items() if v is not None}},
            audit.request_source())


# -- the answer -----------------------------------------------------------------------------------------

# One analysis at a time in this process. They are CPU-bound (numba, GEOS), so two at once finish no
# sooner; and the analysis shares GEOS objects between calls (its cached grids) that shapely prepares
# lazily, which is not safe from two threads at once: concurrent requests with different filters
# crashed the server (segfault in GEOS) before this lock. Cached answers do not wait (see api_priority).
_ANALYSIS_LOCK = threading.Lock()


def _compute(params):
    from webmap.app import get_store
    from webmap.priorities import get_priority

    with _ANALYSIS_LOCK:
        return get_priority(get_store(), params)


def _areas(result, level):
    if level == "cells":
        return result.cells
    if result.units is None:
        raise BadInput("level=units: no administrative units (wards or districts) are loaded")
    return result.units


def _is_empty(gdf):
    """Rows with nothing to show: no incident, no significant spot, a score of 0."""
    empty = np.ones(len(gdf), dtype=bool)
    if "incidents" in gdf:
        empty &= gdf["incidents"].fillna(0).to_numpy() == 0
    if "hotspot" in gdf:
        empty &= (gdf["hotspot"].fillna("none") == "none").to_numpy()
    if "score" in gdf:
        empty &= gdf["score"].fillna(0).to_numpy() == 0
    return empty


def _clean(value):
    """A property value for the API: dates as ISO text, numbers as
    :func:`webmap.priority_export.plain_value` makes them, to significant digits rather than decimals
    (p-values can be 1e-30 and must not read as 0)."""
    from webmap.priority_export import plain_value

    if hasattr(value, "isoformat"):
        return value.isoformat()
    return plain_value(value, VALUE_DIGITS)


def _geojson_geometries(geoms) -> list:
    import shapely

    rounded = shapely.transform(np.asarray(geoms, dtype=object), lambda xy: np.round(xy, COORDINATE_DECIMALS))
    return [json.loads(shapely.to_geojson(g)) if g is not None else None for g in rounded]


def spot_outlines(areas) -> list:
    """Hot and cold spots merged per kind and confidence class, so the map outlines each cluster once
    (drawing: the cells' own Gi* classes, nothing recomputed). Features with ``hotspot``, ``confidence``
    and the number of ``areas`` merged."""
    import shapely

    if "hotspot" not in areas or not len(areas):
        return []
    marked = areas[areas["hotspot"].isin(("hot", "cold"))]
    groups, shapes = [], []
    for (kind, confidence), group in marked.groupby(["hotspot", "confidence"], sort=True):
        # grid_size: neighbouring cells share their vertices up to float noise; snapping merges them cleanly
        shapes.append(shapely.union_all(group.geometry.values, grid_size=1e-7))
        groups.append({"hotspot": str(kind), "confidence": int(confidence), "areas": int(len(group))})
    return [{"type": "Feature", "properties": props, "geometry": geometry}
            for props, geometry in zip(groups, _geojson_geometries(shapes))]


def feature_collection(gdf, method: dict, extra_metadata: dict) -> dict:
    """GeoJSON (RFC 7946) of the areas, lon/lat rounded to 6 decimals; ``metadata`` holds the method and
    ``spots`` (a foreign member) the merged hot and cold spots of :func:`spot_outlines`."""
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    features = []
    for record, geometry in zip(gdf[columns].to_dict("records"), _geojson_geometries(gdf.geometry.values)):
        props = {k: _clean(v) for k, v in record.items()}
        features.append({"type": "Feature", "id": props.get("area_id"), "properties": props, "geometry": geometry})
    return {"type": "FeatureCollection", "metadata": {"method": method, **extra_metadata},
            "spots": {"type": "FeatureCollection", "features": spot_outlines(gdf)}, "features": features}


_ANSWERS: dict = {}
_ANSWERS_LOCK = threading.Lock()
_ANSWERS_MAX = 16


def _cached_body(key) -> tuple | None:
    with _ANSWERS_LOCK:
        return _ANSWERS.get(key)


def _stake(result) -> tuple:
    """(the analysis read key sites, how many it counted): what the audit entry of an answer says."""
    layers = result.method.get("layers", {}) or {}
    counted = int(result.cells["key_sites"].sum()) if "key_sites" in result.cells else 0
    return {"key_sites": layers.get("key_sites")}, counted


def _answer_body(key, result, level: str, include_empty: bool, query: dict) -> tuple:
    """Serialise an answer and keep it under ``key`` (parameters and the active layer versions):
    ``(body, stake)`` with the stake of :func:`_stake`, so a cached answer is audited like a fresh one."""
    areas = _areas(result, level)
    shown = areas if include_empty else areas[~_is_empty(areas)]
    if "rank" in shown:
        shown = shown.sort_values("rank", kind="stable")
    metadata = {
        "level": level,
        "query": query,
        "areas_total": int(len(areas)),
        "areas_returned": int(len(shown)),
        "empty_left_out": int(len(areas) - len(shown)),
        "incidents_total": int(areas["incidents"].sum()) if "incidents" in areas else None,
    }
    body = json.dumps(feature_collection(shown, result.method, metadata), ensure_ascii=False, separators=(",", ":"))
    answer = (body, _stake(result))
    with _ANSWERS_LOCK:
        if len(_ANSWERS) >= _ANSWERS_MAX:
            _ANSWERS.clear()
        _ANSWERS[key] = answer
    return answer


@bp.get("/api/priority")
def api_priority():
    who = _require_staff()
    params, level, include_empty = parse_query(request.args)
    if WARMUP.busy:
        return _not_ready()  # nothing read: not audited (the page asks again every few seconds)
    from webmap.app import get_store
    from webmap.priorities import layer_stamp

    # the same question on the same layer versions (number and SHA-256 of each): the same bytes, at once,
    # without queueing behind another analysis
    key = (params, level, include_empty, layer_stamp(get_store()))
    query = _query_echo(params, level)
    answer = _cached_body(key)
    if answer is None:
        answer = _answer_body(key, _compute(params), level, include_empty, query)
    body, (layers, key_sites) = answer
    _record_key_sites(who, layers, key_sites, f"priority_{level}", query)
    response = Response(body, mimetype="application/geo+json")
    response.headers["Cache-Control"] = "private, no-store"  # key-site counts: not for shared caches
    return response


# -- exports --------------------------------------------------------------------------------------------

def _file_name(query: dict, fmt: str) -> str:
    parts = ["uu-tien", query["level"], f"{query['shape']}{int(query['cell_m'])}m"]
    if query["since"]:
        parts.append(f"tu-{query['since']}")
    if query["until"]:
        parts.append(f"den-{query['until']}")
    return "-".join(parts) + f".{fmt}"


@bp.get("/priority/export.<fmt>")
def export(fmt):
    who = _require_staff()
    if fmt not in EXPORT_FORMATS:
        abort(404)
    params, level, _ = parse_query(request.args)
    if WARMUP.busy:
        return _not_ready()
    from webmap.priority_export import write_priority

    result = _compute(params)
    areas = _areas(result, level)
    query = _query_echo(params, level)
    name = _file_name(query, fmt)
    folder = tempfile.mkdtemp(prefix="webmap-priority-")
    try:
        path = os.path.join(folder, name)
        written = write_priority(result, fmt, path, level=level, lang=current_language())
        if len(written) > 1:
            # a CSV's method is a sidecar file (a comment line would break spreadsheets): both go, zipped
            name = name + ".zip"
            with zipfile.ZipFile(os.path.join(folder, name), "w", zipfile.ZIP_DEFLATED) as archive:
                for member in written:
                    archive.write(member, os.path.basename(member))
            path = os.path.join(folder, name)
        with open(path, "rb") as fh:
            data = fh.read()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    audit.for_app(current_app).record(who.username, "export", f"priority_{level}", {
        "format": fmt, "file": name, "areas": int(len(areas)), "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data), **{k: v for k, v in query.items() if v is not None}}, audit.request_source())
    layers, key_sites = _stake(result)
    _record_key_sites(who, layers, key_sites, f"priority_{level}", query)
    response = Response(data, mimetype="application/zip" if name.endswith(".zip") else EXPORT_FORMATS[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


# -- the page -------------------------------------------------------------------------------------------

def _labels(field, lang) -> dict:
    return {code: (field.value_labels.get(code, {}).get(lang) or field.value_labels.get(code, {}).get("vi") or code)
            for code in field.allowed}


def _form_state(args) -> dict:
    """What the form shows: the query string's values as given (the API checks them and says what is wrong)."""
    def listed(name):
        return [v for v in (args.get(name) or "").split(",") if v]

    return {"types": listed("types"), "status": listed("status"), "since": args.get("since") or "",
            "until": args.get("until") or "", "cell_m": args.get("cell_m") or "500",
            "shape": args.get("shape") or "hex", "level": args.get("level") or "cells"}


@bp.get("/priority")
def page():
    _require_staff()
    from webmap.views.pages import _basemap

    lang = current_language()
    text = strings(lang)
    incidents = load_catalog()["incidents"]
    types, statuses = _labels(incidents.get_field("type"), lang), _labels(incidents.get_field("status"), lang)
    other = [code for code in LANGUAGES if code != lang][0]
    client = {
        "lang": lang,
        "strings": {k: v for k, v in text.items() if k.startswith("priority_")},
        "labels": {"types": types, "status": statuses},
        "api": {
            "priority": url_for("priority.api_priority"),
            "features": url_for("api.layer_features", kind="__KIND__"),
            "export": url_for("priority.export", fmt="__FMT__"),
            "print": PRINT_URL,
        },
        "center": list(current_app.config["MAP_CENTER"]),
        "zoom": current_app.config["MAP_ZOOM"],
        "basemap": _basemap(),
        "page_features": current_app.config["PAGE_FEATURES"],
        "retry_after_s": RETRY_AFTER_S,
    }
    html = render_template(
        "priority.html", lang=lang, text=text, other_lang=other, types=types, statuses=statuses,
        form=_form_state(request.args), cell_sizes=CELL_SIZES_M, warming=WARMUP.busy,
        client_json=json.dumps(client, ensure_ascii=False).replace("</", "<\\/"),
        lang_link=url_for("priority.page", **{**request.args.to_dict(), "lang": other}),
        today=date.today().isoformat(),
    )
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    if request.args.get("lang") in LANGUAGES:
        response.set_cookie("lang", lang, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response
