"""Exposure of an enterprise's network, as a service: read the layers a principal may see, run
:func:`webmap.analysis.exposure.compute_exposure`, cut the answer to the organisations they may see, and
write it as GeoJSON, CSV or XLSX. Shared by the web views (``webmap/views/exposure.py``) and the command
(``webmap exposure``), so both answer the same numbers with the same rules.

Rules (on top of :mod:`webmap.access`, through which every layer is read):

- an enterprise user gets its own organisation only: asking for another is the same :class:`NotFound` as
  an unknown organisation; its incidents are those it may see (near its own assets), and ``buffer_m`` may
  not exceed that distance (``INCIDENT_NEAR_ASSETS_M``), or some incidents would silently be missing;
- police and admin (and the command line) get any enterprise, or all of them with a comparison table;
- district users and visitors get nothing (:class:`NotFound`);
- counted incidents never carry reporter details, description, damage or affected asset: only id, time,
  type, severity, status, the distance to the user's own nearest asset and its chainage;
- priority-area shares are numbers per class only: never a cell, a score or a key-site count.
"""

from __future__ import annotations

import json
import math
import os
import threading
import weakref
from collections import OrderedDict
from datetime import date

import numpy as np
import pandas as pd

from webmap.access import Principal, read_visible
from webmap.analysis.exposure import (BUFFER_M, CLASSES, MAX_BUFFER_M, PRIORITY_CLASSES, ExposureParams,
                                      ExposureResult, compute_exposure)
from webmap.errors import BadInput, NotFound
from webmap.export import defused

__all__ = ["ExposureRequest", "enterprise_codes", "run_exposure", "feature_collection", "write_output",
           "FORMATS", "priority_areas"]

FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".geojson": "geojson", ".json": "geojson"}
COORDINATE_DECIMALS = 7
PRIORITY_STATES = ("ready", "pending", "unavailable")
_CACHE_SIZE = 32


class ExposureRequest:
    """What was asked: the organisation (None = every enterprise) and the parameters, checked."""

    def __init__(self, org: str | None, params: ExposureParams):
        self.org = org
        self.params = params

    def key(self) -> tuple:
        return (self.org, self.params)


def parse_buffer(value, maximum: float = MAX_BUFFER_M) -> float:
    """``buffer_m`` from text or a number: metres, above 0, at most ``maximum``."""
    if value is None or value == "":
        return BUFFER_M
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"buffer_m must be a number of metres, got {str(value)[:40]!r}") from None
    if not math.isfinite(number) or number <= 0 or number > maximum:
        raise BadInput(f"buffer_m must be above 0 and at most {maximum:g} metres, got {str(value)[:40]}")
    return number


def enterprise_codes(store) -> list[str]:
    """Every owner code present in the cable routes and stations (staff view), sorted."""
    codes = set()
    for kind in ("cable_routes", "stations"):
        try:
            codes.update(str(v) for v in store.distinct_values(kind, "owner", limit=100_000) if v not in (None, ""))
        except NotFound:
            continue
    return sorted(codes)


def enterprise_names(app, codes) -> dict:
    """Names of enterprises from the organisations table (a code without an organisation keeps its code)."""
    names = {}
    try:
        from webmap.accounts import get_accounts

        for org in get_accounts(app).list_orgs():
            if org.code in codes:
                names[org.code] = org.name
    except Exception:  # noqa: BLE001 - names are a nicety: the numbers stand without them
        pass
    return {code: names.get(code, code) for code in codes}


def allowed_orgs(store, principal: Principal) -> list[str]:
    """The organisations whose exposure ``principal`` may see; raises NotFound for roles with none."""
    if principal.role == "enterprise" and principal.org_code:
        return [principal.org_code]
    if principal.is_staff:
        return enterprise_codes(store)
    raise NotFound("not found")


def resolve_org(store, principal: Principal, org: str | None) -> str | None:
    """The organisation to compute: an enterprise user's own, whatever it asked (another one is a
    NotFound, as an unknown one is); for staff the one asked (None = all), which must exist."""
    if principal.role == "enterprise":
        own = principal.org_code
        if not own or (org not in (None, "") and org != own):
            raise NotFound(f"unknown enterprise {str(org)[:40]!r}")
        return own
    if not principal.is_staff:
        raise NotFound("not found")
    if org in (None, ""):
        return None
    codes = enterprise_codes(store)
    if org not in codes:
        raise NotFound(f"unknown enterprise {str(org)[:40]!r}; known: {', '.join(codes) or 'none'}")
    return org


_PRIORITY_RUNNER = None
_PRIORITY_LOCK = threading.Lock()
PRIORITY_WAIT_S = 0.5  # how long a page waits for priority areas being computed before saying "pending"


def _priority_runner():
    """One background thread that computes priority areas for pages that must not wait for them."""
    global _PRIORITY_RUNNER
    with _PRIORITY_LOCK:
        if _PRIORITY_RUNNER is None:
            from concurrent.futures import ThreadPoolExecutor

            _PRIORITY_RUNNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webmap-exposure-priority")
        return _PRIORITY_RUNNER


def priority_areas(store, *, compute: bool = True):
    """``(cells, state)``: the police priority cells (EPSG:4326, with ``priority_class``) and ``"ready"``;
    ``(None, "pending")`` while they are not ready and the caller does not wait (``compute`` False: a web
    page; esda not compiled yet in this process, or the analysis still running in the background);
    ``(None, "unavailable")`` when the analysis or its inputs (the districts layer) are missing.

    With ``compute`` (the command line) the analysis runs here and now, however long it takes. Without it,
    once esda is compiled, the analysis is started in a background thread and waited for
    :data:`PRIORITY_WAIT_S` at most: :func:`webmap.priorities.get_priority` caches it, so later pages get it
    at once. A page therefore never waits for Gi*.
    """
    try:
        from webmap.analysis.hotspots import is_warm
        from webmap.analysis.priority import PriorityParams
        from webmap.priorities import get_priority
    except ImportError:
        return None, "unavailable"
    try:
        if compute:
            result = get_priority(store, PriorityParams())
        else:
            if not is_warm():
                return None, "pending"
            from concurrent.futures import TimeoutError as FutureTimeout

            future = _priority_runner().submit(get_priority, store, PriorityParams())
            try:
                result = future.result(timeout=PRIORITY_WAIT_S)
            except FutureTimeout:
                return None, "pending"
    except (NotFound, BadInput):
        return None, "unavailable"
    cells = getattr(result, "cells", None)
    if cells is None or "priority_class" not in cells.columns:
        return None, "unavailable"
    return cells[["priority_class", cells.geometry.name]], "ready"


class _Cache:
    """A few recent results per app, keyed by who asked, what and the layer versions (thread-safe)."""

    def __init__(self):
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value):
        with self._lock:
            self._items[key] = value
            while len(self._items) > _CACHE_SIZE:
                self._items.popitem(last=False)


_CACHES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # one cache per store object
_CACHES_LOCK = threading.Lock()


def _cache_for(store) -> _Cache:
    with _CACHES_LOCK:
        cache = _CACHES.get(store)
        if cache is None:
            cache = _CACHES[store] = _Cache()
        return cache


def run_exposure(store, principal: Principal, catalog: dict, context, request: ExposureRequest, *,
                 compute_priority: bool = True) -> tuple[ExposureResult, str]:
    """Compute the exposure ``principal`` may see for ``request``: ``(result, priority_state)``.

    The layers are read with :func:`webmap.access.read_visible` under ``principal``: an enterprise's
    incidents are only those near its own assets, and the hidden fields are already gone. The result is
    cut to the organisation asked (or every enterprise for staff) and cached per layer versions.
    """
    org = resolve_org(store, principal, request.org)
    if principal.role == "enterprise" and request.params.buffer_m > context.near_assets_m:
        raise BadInput(f"buffer_m must be at most {context.near_assets_m:g} metres: you see the incidents within "
                       f"that distance of your network")
    versions = tuple(sorted((v.kind, v.version) for v in store.list_versions()))
    scope = principal.org_code if principal.role == "enterprise" else "staff"
    # the priority cells first (cached by webmap.priorities): a result made while they were pending is not
    # the answer once they are ready
    areas, state = priority_areas(store, compute=compute_priority)
    key = (scope, org, request.params, versions, state)
    cache = _cache_for(store)
    found = cache.get(key)
    if found is not None:
        return found
    cables = read_visible(store, principal, "cable_routes", catalog, context)
    stations = read_visible(store, principal, "stations", catalog, context)
    incidents = read_visible(store, principal, "incidents", catalog, context)
    if org is not None:
        cables = None if cables is None else cables[cables["owner"] == org]
        stations = None if stations is None else stations[stations["owner"] == org]
    if incidents is not None:
        incidents = incidents[[c for c in ("id", "occurred_at", "type", "severity", "status") if c in incidents.columns]
                              + [incidents.geometry.name]]
    result = compute_exposure(cables, stations, incidents, params=request.params, priority_areas=areas)
    if org is not None:
        result = result.for_owner(org)
    result.method["priority_areas"] = state
    cache.put(key, (result, state))
    return result, state


# ---------------------------------------------------------------------------------------------------
# Serialisation
# ---------------------------------------------------------------------------------------------------


def _jsonable(value):
    if value is None:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (date,)):
        return value.isoformat()
    if value is pd.NaT:
        return None
    return value


def _records(frame) -> list[dict]:
    if frame is None:
        return []
    columns = [c for c in frame.columns if c != getattr(frame, "_geometry_column_name", None) and c != "geometry"]
    return [{c: _jsonable(v) for c, v in zip(columns, row)} for row in frame[columns].itertuples(index=False)]


def _features(frame, layer: str, id_column: str) -> list[dict]:
    import shapely

    if frame is None or not len(frame):
        return []
    geoms = frame.geometry.array
    coords = shapely.to_geojson(shapely.set_precision(np.asarray(geoms, dtype=object), 10 ** -COORDINATE_DECIMALS))
    out = []
    for props, geometry in zip(_records(frame), coords):
        out.append({"type": "Feature", "id": str(props.get(id_column)),
                    "geometry": json.loads(geometry) if geometry else None,
                    "properties": {"layer": layer, **props}})
    return out


def metadata(result: ExposureResult, org: str | None, names: dict, priority_state: str) -> dict:
    """Everything but the features: the organisation, its key numbers, priority shares, comparison, method."""
    meta = {
        "org": org,
        "org_name": names.get(org, org) if org else None,
        "summary": result.summary(org) if org else None,
        "priority_state": priority_state,
        "priority": _records(result.priority),
        "comparison": [{**row, "name": names.get(row["owner"], row["owner"])} for row in _records(result.owners)],
        "classes": list(CLASSES),
        "priority_classes": list(PRIORITY_CLASSES),
        "method": result.method,
    }
    return meta


def feature_collection(result: ExposureResult, org: str | None, names: dict, priority_state: str) -> dict:
    """RFC 7946 FeatureCollection: segments, stations and counted incidents, with a ``metadata`` member."""
    features = (_features(result.segments, "segment", "segment_id")
                + _features(result.stations, "station", "station_id")
                + _features(result.incidents, "incident", "id"))
    return {"type": "FeatureCollection", "features": features,
            "metadata": metadata(result, org, names, priority_state)}


def _parameter_columns(result: ExposureResult) -> dict:
    p = result.method.get("parameters", {})
    return {
        "method": result.method.get("name"),
        "buffer_m": p.get("buffer_m"), "since": p.get("since"), "until": p.get("until"),
        "reference_date": p.get("reference_date"), "segment_m": p.get("segment_m"),
        "half_life_days": p.get("half_life_days"),
        "severity_weights": ", ".join(f"{k}={v:g}" for k, v in p.get("severity_weights", {}).items()),
        "computed_at": result.method.get("computed_at"),
    }


def asset_table(result: ExposureResult) -> pd.DataFrame:
    """Segments and stations in one ranked table (the CSV of one enterprise)."""
    seg = pd.DataFrame(result.segments.drop(columns=result.segments.geometry.name))
    st = pd.DataFrame(result.stations.drop(columns=result.stations.geometry.name))
    seg.insert(0, "asset_type", "segment")
    seg = seg.rename(columns={"segment_id": "asset_id", "route_name": "name"})
    st.insert(0, "asset_type", "station")
    st = st.rename(columns={"station_id": "asset_id", "station_name": "name"})
    table = pd.concat([seg, st], ignore_index=True, sort=False)
    for column in ("part", "seq"):
        table[column] = table[column].astype("Int64")  # blank for stations, whole numbers for segments
    return table.sort_values(["owner", "asset_type", "rank"], kind="mergesort").reset_index(drop=True)


def comparison_table(result: ExposureResult, names: dict) -> pd.DataFrame:
    table = result.owners.copy()
    table.insert(1, "name", [names.get(o, o) for o in table["owner"]])
    return table


def write_output(result: ExposureResult, path: str, fmt: str, *, org: str | None, names: dict,
                 priority_state: str) -> int:
    """Write ``result`` to ``path`` (csv, xlsx or geojson), whole or not at all; returns the rows written.

    - CSV: one table, with the method and every parameter as columns of each row: the ranked segments and
      stations of one enterprise, or with no organisation the comparison across enterprises;
    - XLSX: sheets summary, segments, stations, incidents, priority_areas, comparison, method;
    - GeoJSON: :func:`feature_collection` (RFC 7946, with a ``metadata`` member).
    """
    root, ext = os.path.splitext(path)
    tmp = f"{root}.part{ext}"  # beside the target (same file system), with its extension (openpyxl wants it)
    try:
        if fmt == "csv":
            table = asset_table(result) if org else comparison_table(result, names)
            for name, value in _parameter_columns(result).items():
                table[name] = value
            defused(table).to_csv(tmp, index=False, encoding="utf-8-sig")
            rows = len(table)
        elif fmt == "xlsx":
            rows = _write_xlsx(result, tmp, org=org, names=names, priority_state=priority_state)
        elif fmt == "geojson":
            collection = feature_collection(result, org, names, priority_state)
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(collection, fh, ensure_ascii=False, allow_nan=False)
            rows = len(collection["features"])
        else:
            raise BadInput(f"unknown format {fmt!r}; choose csv, xlsx or geojson")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return rows


def _write_xlsx(result: ExposureResult, path: str, *, org, names, priority_state) -> int:
    summary_rows = []
    if org:
        summary_rows.append(("org", org))
        summary_rows.append(("org_name", names.get(org, org)))
        summary_rows.extend(result.summary(org).items())
    summary_rows.append(("priority_areas", priority_state))
    summary_rows.extend(_parameter_columns(result).items())
    method = result.method
    method_rows = [("name", method.get("name")), ("text_vi", method.get("text", {}).get("vi")),
                   ("text_en", method.get("text", {}).get("en")), ("computed_at", method.get("computed_at"))]
    method_rows += [(f"parameter.{k}", json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v)
                    for k, v in method.get("parameters", {}).items()]
    method_rows += [(f"count.{k}", v) for k, v in method.get("counts", {}).items()]
    method_rows += [(f"version.{k}", v) for k, v in method.get("versions", {}).items()]
    sheets = {
        "summary": pd.DataFrame(summary_rows, columns=["key", "value"]),
        "segments": pd.DataFrame(result.segments.drop(columns=result.segments.geometry.name)),
        "stations": pd.DataFrame(result.stations.drop(columns=result.stations.geometry.name)),
        "incidents": _incident_rows(result.incidents),
        "priority_areas": result.priority if result.priority is not None else pd.DataFrame(
            columns=["owner", "priority_class", "cable_km", "cable_share", "stations", "station_share"]),
        "comparison": comparison_table(result, names),
        "method": pd.DataFrame(method_rows, columns=["key", "value"]),
    }
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame = defused(frame)
            if "value" in frame.columns:  # key/value sheets: lists and dicts as text
                frame["value"] = frame["value"].map(_cell)
            frame.to_excel(writer, sheet_name=name, index=False)
            sheet = writer.sheets[name]
            sheet.freeze_panes = "A2"
            for column in sheet.columns:
                width = max((len(str(c.value)) for c in column[:200] if c.value is not None), default=8)
                sheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 8), 60)
    return int(sum(len(f) for f in sheets.values()))


def _cell(value):
    if value is None or isinstance(value, (int, float, str)):
        return value
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


def _incident_rows(incidents) -> pd.DataFrame:
    frame = pd.DataFrame(incidents.drop(columns=incidents.geometry.name))
    frame["lon"] = incidents.geometry.x.round(COORDINATE_DECIMALS).to_numpy() if len(incidents) else []
    frame["lat"] = incidents.geometry.y.round(COORDINATE_DECIMALS).to_numpy() if len(incidents) else []
    return frame


def format_of(path: str) -> str:
    """The output format from a file name's extension (``.csv``, ``.xlsx``, ``.geojson`` or ``.json``)."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise BadInput(f"cannot tell the format of {os.path.basename(path)!r}: name the file .csv, .xlsx or .geojson")
    return FORMATS[ext]
