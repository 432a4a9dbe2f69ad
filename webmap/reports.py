"""Incident reports: an enterprise reports damage to its own network, the police verify or reject it.

A report becomes an incident of the incidents layer at once (status ``reported``, source ``enterprise``,
``reported_by_org`` its organisation), appended as a new version of the layer
(:meth:`Store.append_features`), so the police see it on the map awaiting verification; verifying or
rejecting sets its status the same way (:meth:`Store.update_features`). Each step is written to
``instance/reports.sqlite`` with who did it and when (``history``: incident_id, at, actor, action, details),
and the alerts of :mod:`webmap.alerts` are raised (events ``recorded`` and ``verified``).

Who reports:

- an **enterprise** user, about its **own** cable route or station (the affected asset is required; an
  asset of another enterprise is refused with the same message as an unknown one, so nothing tells that it
  exists); source ``enterprise``;
- a **district** user, about something inside its own district (the asset is optional; source ``district``);
- the **police** (source ``police_patrol``), anywhere in the city.

Admins (system operators) and visitors do not report. The police and admins verify and reject.

Where: on the map (``lon``/``lat``), by chainage along a cable route (``route_id`` with ``chainage_m`` or
``chainage_km``, placed by :func:`webmap.analysis.chainage.place_at_chainage`; the route is then the affected
asset), or by coordinates (``x``/``y`` in ``crs``, VN-2000 / TM-3 EPSG:5897 by default, converted with the
pinned EPSG:6960 shift of :mod:`webmap.crs`). A report with an asset must lie within
``INCIDENT_NEAR_ASSETS_M`` of it: farther is a mistyped coordinate, and the enterprise could not even see
its own report on the map.

Every value is checked before anything is written; a mistake is one BadInput line naming the field, and
nothing is stored. The report row and the new layer version are committed together: the history database
is held in a write transaction while the layer version is made, and rolled back if that fails.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from webmap.errors import BadInput, NotFound
from webmap.sqlite_util import immediate_transaction

REPORTS_FILE = "reports.sqlite"
KIND = "incidents"
LOCAL_TZ = timezone(timedelta(hours=7))
ID_PATTERN = re.compile(r"R-\d{4}-\d{6,}")
LOCATION_METHODS = ("map", "chainage", "coordinates")
DEFAULT_COORDINATE_CRS = "EPSG:5897"
RECORDING_ROLES = ("enterprise", "district", "police")
SOURCE_BY_ROLE = {"enterprise": "enterprise", "district": "district", "police": "police_patrol"}
DEFAULT_SEVERITY = "medium"
MAX_DESCRIPTION = 2000
MAX_REASON = 500
MAX_DAMAGE_VND = 10 ** 15
FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks of phones and PCs differ a little
EARLIEST = datetime(1990, 1, 1, tzinfo=LOCAL_TZ)
CITY_MARGIN_DEG = 0.05  # about 5 km around the districts layer's extent
ASSET_KINDS = ("cable_routes", "stations")
ROUTE_KIND = "cable_routes"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    incident_id TEXT PRIMARY KEY,
    year INTEGER NOT NULL,
    number INTEGER NOT NULL,
    org_code TEXT,
    reporter TEXT NOT NULL,
    role TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (year, number)
);
CREATE INDEX IF NOT EXISTS reports_org ON reports (org_code, created_at);
CREATE INDEX IF NOT EXISTS reports_status ON reports (status, created_at);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id TEXT NOT NULL REFERENCES reports (incident_id),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    actor_org TEXT,
    actor_role TEXT,
    action TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS history_incident ON history (incident_id, seq);
"""
_READY: set = set()
_READY_LOCK = threading.Lock()


# -- where things are ---------------------------------------------------------------------------------------
@dataclass
class _Target:
    app: object | None
    store: object
    path: str
    near_m: float


def _target(app_or_store) -> _Target:
    """A Flask app (its store, instance folder and settings; alerts and audit on), or a bare store (its
    folder's parent holds reports.sqlite, as ``instance/store`` sits in ``instance/``; no alerts, no audit)."""
    from webmap.access import NEAR_ASSETS_DEFAULT_M

    if hasattr(app_or_store, "extensions") and hasattr(app_or_store, "instance_path"):
        app = app_or_store
        return _Target(app, app.extensions["webmap_store"], os.path.join(app.instance_path, REPORTS_FILE),
                       float(app.config.get("INCIDENT_NEAR_ASSETS_M", NEAR_ASSETS_DEFAULT_M)))
    store = app_or_store
    folder = os.path.dirname(os.path.abspath(getattr(store, "folder", ".")))
    return _Target(None, store, os.path.join(folder, REPORTS_FILE), float(NEAR_ASSETS_DEFAULT_M))


def _connect(path: str) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=60, isolation_level=None)
    con.row_factory = sqlite3.Row
    with _READY_LOCK:
        if path not in _READY or not os.path.exists(path):
            con.execute("PRAGMA journal_mode = WAL")
            con.executescript(_SCHEMA)
            _READY.add(path)
    return con


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _context(target: _Target):
    from webmap.access import AccessContext
    from webmap.catalog import load_catalog

    if target.app is not None:
        return AccessContext.for_app(target.app, target.store)
    return AccessContext(target.store, load_catalog(), target.near_m)


# -- checking what the user sent ----------------------------------------------------------------------------
# Vietnamese names of the form's own fields, for its messages (the incident fields' come from the layer definition)
_FORM_FIELDS_VI = {"lon": "Kinh độ", "lat": "Vĩ độ", "x": "Tọa độ X", "y": "Tọa độ Y", "crs": "Hệ tọa độ",
                   "route_id": "Tuyến cáp (mã)", "chainage_km": "Lý trình (km)", "method": "Cách xác định vị trí",
                   "note": "Ghi chú", "reason": "Lý do"}
_DAMAGE_VI = "Thiệt hại (đồng): nhập số đồng nguyên, ví dụ 15000000 hoặc 15.000.000"


def _incident_field(name):
    from webmap.catalog import load_catalog

    try:
        return load_catalog()[KIND].get_field(name)
    except KeyError:
        return None


def _vi(name) -> str:
    """The Vietnamese label of a report field, as the form shows it."""
    if name in _FORM_FIELDS_VI:
        return _FORM_FIELDS_VI[name]
    field = _incident_field(name)
    return field.label_for("vi") if field else name


def _value_vi(name, value) -> str:
    field = _incident_field(name)
    return ((field.value_labels.get(value) or {}).get("vi") if field else None) or str(value)


def _choices_vi(layer, name) -> str:
    return ", ".join(_value_vi(name, code) for code in (layer.get_field(name).allowed or ()))


def _text(data, name, limit=200) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise BadInput(f"{name}: expected text, got {type(value).__name__}", vi=f"{_vi(name)}: cần nhập chữ")
    value = value.strip()
    if len(value) > limit:
        raise BadInput(f"{name}: too long ({len(value)} characters, at most {limit})",
                       vi=f"{_vi(name)}: quá dài ({len(value)} ký tự, tối đa {limit})")
    return value


def _number(data, name, *, required=True):
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadInput(f"{name} is required", vi=f"{_vi(name)}: chưa nhập (bắt buộc)")
        return None
    if isinstance(value, bool):
        raise BadInput(f"{name}: expected a number, got {value!r}", vi=f"{_vi(name)}: phải là một số")
    try:
        number = float(str(value).strip().replace(",", ".")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{name}: expected a number, got {str(value)[:40]!r}",
                       vi=f"{_vi(name)}: phải là một số, không phải {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise BadInput(f"{name}: expected a finite number, got {value!r}", vi=f"{_vi(name)}: phải là một số hữu hạn")
    return number


def parse_time(value, now=None) -> str:
    """``occurred_at`` as ISO 8601 in Vietnam time (``2026-11-30T08:15:00+07:00``); a time without an offset
    is Vietnam time (what a ``datetime-local`` field sends); the future is refused."""
    if value is None or not str(value).strip():
        raise BadInput("occurred_at is required: the date and time of the incident, e.g. 2026-11-30T08:15",
                       vi="Chưa nhập thời điểm xảy ra sự cố (ngày và giờ, ví dụ 2026-11-30T08:15)")
    text = str(value).strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise BadInput(f"occurred_at: not a date and time, got {text[:40]!r}; use e.g. 2026-11-30T08:15",
                       vi=f"Thời điểm xảy ra: {text[:40]!r} không phải ngày giờ hợp lệ; nhập ví dụ 2026-11-30T08:15") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=LOCAL_TZ)
    when = when.astimezone(LOCAL_TZ).replace(microsecond=0)
    now = now or datetime.now(LOCAL_TZ)
    if when > now + FUTURE_TOLERANCE:
        raise BadInput(f"occurred_at {when:%Y-%m-%d %H:%M} is in the future (now {now.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}"
                       " Vietnam time)",
                       vi=f"Thời điểm xảy ra {when:%H:%M %d/%m/%Y} ở tương lai (bây giờ là "
                          f"{now.astimezone(LOCAL_TZ):%H:%M %d/%m/%Y}, giờ Việt Nam)")
    if when < EARLIEST:
        raise BadInput(f"occurred_at {when:%Y-%m-%d} is before {EARLIEST:%Y}: check the year",
                       vi=f"Thời điểm xảy ra {when:%d/%m/%Y} trước năm {EARLIEST:%Y}: kiểm tra lại năm")
    return when.strftime("%Y-%m-%dT%H:%M:%S+07:00")


_GROUPED = re.compile(r"\d{1,3}(?:([.,\s])\d{3})?(?:\1\d{3})*")


def parse_damage(value) -> int | None:
    """Estimated damage in whole đồng, ≥ 0; empty is unknown. ``15.000.000``, ``15,000,000`` and ``15 000 000``
    are read as fifteen million (đồng have no fractions, so a separator groups thousands)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise BadInput(f"damage_vnd: expected a whole number of đồng, got {value!r}", vi=_DAMAGE_VI)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
            raise BadInput(f"damage_vnd: expected a whole number of đồng, got {value!r}", vi=_DAMAGE_VI)
        number = int(value)
    else:
        text = str(value).strip().replace("\u00a0", " ")
        for suffix in ("đồng", "VND", "vnd", "đ", "d"):
            if text.endswith(suffix):
                text = text[: -len(suffix)].strip()
                break
        if text.isdigit():
            number = int(text)
        elif _GROUPED.fullmatch(text):
            number = int(re.sub(r"[.,\s]", "", text))
        elif text.startswith("-"):
            raise BadInput(f"damage_vnd must not be negative, got {str(value)[:40]!r}",
                           vi="Thiệt hại (đồng) không được là số âm")
        else:
            raise BadInput(f"damage_vnd: expected a whole number of đồng such as 15000000, got {str(value)[:40]!r}",
                           vi=_DAMAGE_VI)
    if number < 0:
        raise BadInput(f"damage_vnd must not be negative, got {number}", vi="Thiệt hại (đồng) không được là số âm")
    if number > MAX_DAMAGE_VND:
        raise BadInput(f"damage_vnd {number:,} is beyond belief: check the number of zeros",
                       vi=f"Thiệt hại {number:,} đồng lớn bất thường: kiểm tra lại số chữ số 0".replace(",", "."))
    return number


def _coded(data, name, layer, default=None) -> str:
    allowed = layer.get_field(name).allowed or ()
    value = _text(data, name, 64) or default
    if not value:
        raise BadInput(f"{name} is required: one of {', '.join(allowed)}",
                       vi=f"{_vi(name)}: chưa chọn (bắt buộc); chọn một trong: {_choices_vi(layer, name)}")
    if value not in allowed:
        raise BadInput(f"{name} {value!r} is not one of {', '.join(allowed)}",
                       vi=f"{_vi(name)}: giá trị {value!r} không hợp lệ; chọn một trong: {_choices_vi(layer, name)}")
    return value


def _method(data) -> str:
    method = _text(data, "method", 20)
    if method:
        if method not in LOCATION_METHODS:
            raise BadInput(f"method {method!r} is not one of {', '.join(LOCATION_METHODS)}",
                           vi=f"Cách xác định vị trí {method!r} không hợp lệ")
        return method
    given = lambda *names: any(str(data.get(n) or "").strip() for n in names)  # noqa: E731
    if given("lon", "lat"):
        return "map"
    if given("route_id", "chainage_m", "chainage_km"):
        return "chainage"
    if given("x", "y"):
        return "coordinates"
    raise BadInput("the location is required: lon/lat (on the map), route_id with chainage_m (along a route), "
                   "or x/y with crs (coordinates)",
                   vi="Chưa có vị trí: chọn trên bản đồ, nhập tuyến cáp và lý trình, hoặc nhập tọa độ X/Y và hệ tọa độ")


def _lonlat_point(lon, lat):
    from shapely.geometry import Point

    from webmap.crs import check_lonlat_bounds

    check_lonlat_bounds((lon, lat, lon, lat))
    return Point(lon, lat)


def _point_from_coordinates(data):
    """x/y in the named CRS (VN-2000 / TM-3 zone 482, EPSG:5897, by default) to lon/lat, EPSG:6960 pinned."""
    import numpy as np
    from shapely.geometry import Point

    from webmap.crs import check_lonlat_bounds, resolve_crs

    x, y = _number(data, "x"), _number(data, "y")
    crs = _text(data, "crs", 2000) or DEFAULT_COORDINATE_CRS
    resolution = resolve_crs(None, user_crs=crs, bounds=(x, y, x, y))
    point = resolution.transform_geometries(np.array([Point(x, y)], dtype=object))[0]
    check_lonlat_bounds(point.bounds, source_bounds=(x, y, x, y))
    return point, crs


def _visible_assets(target, principal, kind, asset_id, context):
    """Rows of ``kind`` with this id that the principal may name: its own (enterprise), inside its district
    (district), any (police). Read through the access rules, so nothing else is even looked at."""
    from webmap.access import rule_for
    from webmap.catalog import load_catalog
    from webmap.store import FeatureQuery

    layer = load_catalog().get(kind)
    if layer is None:
        return None
    rule = rule_for(principal, layer, context)
    if not rule.visible:
        return None
    query = FeatureQuery(limit=10, in_filters={layer.id_field: [asset_id]}, mask=rule.mask)
    if rule.owner_in is not None:
        query.in_filters[layer.owner_field] = list(rule.owner_in)
    try:
        rows, _ = target.store.query_features(kind, query)
    except NotFound:
        return None
    return rows if len(rows) else None


def _find_asset(target, principal, asset_id, context, kinds=ASSET_KINDS):
    for kind in kinds:
        rows = _visible_assets(target, principal, kind, asset_id, context)
        if rows is not None:
            return kind, rows
    what = "cable route" if kinds == (ROUTE_KIND,) else "asset"
    whose = " of your enterprise" if principal.role == "enterprise" else (
        " in your district" if principal.role == "district" else "")
    what_vi = "tuyến cáp" if kinds == (ROUTE_KIND,) else "công trình"
    whose_vi = " của doanh nghiệp bạn" if principal.role == "enterprise" else (
        " trên địa bàn quận/huyện của bạn" if principal.role == "district" else "")
    raise BadInput(f"unknown {what} {asset_id!r}: give the id of a {what}{whose}",
                   vi=f"Không tìm thấy {what_vi} {asset_id!r}: nhập mã {what_vi}{whose_vi}")


def _distance_m(point, geometry) -> float:
    import geopandas as gpd

    from webmap.crs import to_metric

    metric = to_metric(gpd.GeoDataFrame(geometry=[point, geometry], crs="EPSG:4326")).geometry
    return float(metric.iloc[0].distance(metric.iloc[1]))


def _check_in_city(target, point):
    versions = {v.kind: v for v in target.store.list_versions("districts")}
    version = versions.get("districts")
    if version is None or not version.bbox:
        return
    west, south, east, north = version.bbox
    m = CITY_MARGIN_DEG
    if not (west - m <= point.x <= east + m and south - m <= point.y <= north + m):
        raise BadInput(f"the location ({point.x:.6f}, {point.y:.6f}) lies outside the city's districts: check the "
                       "coordinates (and their CRS)",
                       vi=f"Vị trí ({point.x:.6f}, {point.y:.6f}) nằm ngoài địa giới thành phố: kiểm tra lại tọa độ "
                          "(và hệ tọa độ)")


def check_report(target, principal, data: dict, now=None) -> tuple[dict, object, dict]:
    """Check a report; return ``(properties, point, details)`` ready to store, or raise BadInput (one line)."""
    from webmap.catalog import load_catalog

    if principal.role not in RECORDING_ROLES:
        raise NotFound("reports are made by enterprises, districts and the police",
                       vi="Chỉ doanh nghiệp, UBND quận/huyện và Công an gửi báo cáo sự cố")
    if not isinstance(data, dict):
        raise BadInput("a report is a JSON object (or a form) of named values",
                       vi="Báo cáo phải gồm các trường có tên (biểu mẫu hoặc đối tượng JSON)")
    if principal.role in ("enterprise", "district") and not principal.org_code:
        raise BadInput("your account belongs to no organisation: ask the administrator",
                       vi="Tài khoản của bạn chưa thuộc đơn vị nào: đề nghị quản trị viên bổ sung")
    layer = load_catalog()[KIND]
    context = _context(target)
    props = {
        "type": _coded(data, "type", layer),
        "severity": _coded(data, "severity", layer, DEFAULT_SEVERITY),
        "occurred_at": parse_time(data.get("occurred_at"), now),
        "damage_vnd": parse_damage(data.get("damage_vnd")),
        "description": _text(data, "description", MAX_DESCRIPTION) or None,
    }
    asset_id = _text(data, "asset_id", 100)
    method = _method(data)
    details = {"method": method}
    asset = None
    if method == "map":
        point = _lonlat_point(_number(data, "lon"), _number(data, "lat"))
    elif method == "coordinates":
        point, crs = _point_from_coordinates(data)
        details.update(x=_number(data, "x"), y=_number(data, "y"), crs=crs)
    else:
        from webmap.analysis.chainage import place_at_chainage

        route_id = _text(data, "route_id", 100)
        if not route_id:
            raise BadInput("route_id is required to place a report by chainage",
                           vi="Chưa nhập mã tuyến cáp để xác định vị trí theo lý trình")
        if asset_id and asset_id != route_id:
            raise BadInput(f"a report placed by chainage concerns its route: asset_id {asset_id!r} differs from "
                           f"route_id {route_id!r}",
                           vi=f"Báo cáo theo lý trình thuộc tuyến {route_id!r}: công trình bị ảnh hưởng {asset_id!r} "
                              "không khớp với tuyến")
        chainage_m = _number(data, "chainage_m", required=False)
        if chainage_m is None:
            km = _number(data, "chainage_km", required=False)
            if km is None:
                raise BadInput("chainage_m (or chainage_km) is required to place a report along a route",
                               vi="Chưa nhập lý trình (m hoặc km) để xác định vị trí dọc tuyến cáp")
            chainage_m = km * 1000
        _, rows = _find_asset(target, principal, route_id, context, kinds=(ROUTE_KIND,))
        point = place_at_chainage(rows.geometry.iloc[0], chainage_m)
        asset_id, asset = route_id, (ROUTE_KIND, rows.geometry.iloc[0])
        props["chainage_m"] = round(float(chainage_m), 2)
        details.update(route_id=route_id, chainage_m=props["chainage_m"])
    if principal.role == "enterprise" and not asset_id:
        raise BadInput("asset_id is required: the id of your cable route or station that was damaged",
                       vi="Chưa nhập công trình bị ảnh hưởng: mã tuyến cáp hoặc trạm của doanh nghiệp bị hư hỏng")
    if asset_id and asset is None:
        kind, rows = _find_asset(target, principal, asset_id, context)
        asset = (kind, rows.geometry.iloc[0])
    if asset is not None and method != "chainage":
        distance = _distance_m(point, asset[1])
        if distance > target.near_m:
            raise BadInput(f"the location lies {distance:,.0f} m from {asset_id}: a report must lie within "
                           f"{target.near_m:,.0f} m of the asset it concerns (check the location or the asset)",
                           vi=(f"Vị trí cách {asset_id} {distance:,.0f} m: báo cáo phải nằm trong phạm vi "
                               f"{target.near_m:,.0f} m quanh công trình liên quan (kiểm tra lại vị trí hoặc công trình)"
                               ).replace(",", "."))
    if principal.role == "district":
        area = context.district_area(principal.district_code)
        if area.is_empty or not area.intersects(point):
            raise BadInput("the location lies outside your district: a district reports incidents in its own district",
                           vi="Vị trí nằm ngoài địa bàn quận/huyện của bạn: quận/huyện chỉ báo cáo vụ việc trên địa bàn mình")
    _check_in_city(target, point)
    props.update(asset_id=asset_id or None, status="reported", source=SOURCE_BY_ROLE[principal.role],
                 reported_by_org=principal.org_code, reporter_name=principal.username)
    details["asset_kind"] = asset[0] if asset else None
    return props, point, details


# -- the store and the history ------------------------------------------------------------------------------
def _incident_frame(props: dict, point):
    """One incident row conformed to the layer definition (types, ``extra``, ``_search``) as an import makes it."""
    import geopandas as gpd
    import pandas as pd

    from webmap.catalog import load_catalog
    from webmap.io.conform import conform_attributes

    layer = load_catalog()[KIND]
    attributes = conform_attributes(layer, pd.DataFrame([{k: v for k, v in props.items() if v is not None}]))
    return gpd.GeoDataFrame(attributes.reset_index(drop=True), geometry=[point], crs="EPSG:4326")


def _id_taken(store, incident_id) -> bool:
    from webmap.store import FeatureQuery

    try:
        rows, _ = store.query_features(KIND, FeatureQuery(limit=1, in_filters={"id": [incident_id]}))
    except NotFound:
        return False
    return len(rows) > 0


def _history(con, incident_id, actor, principal, action, details):
    con.execute("INSERT INTO history (incident_id, at, actor, actor_org, actor_role, action, details)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (incident_id, _now(), actor, principal.org_code, principal.role, action,
                 json.dumps(details, ensure_ascii=False, default=str)))


def submit_report(app_or_store, principal, data: dict, *, source: str = "", now=None) -> str:
    """Check and store a report as an incident awaiting verification; return its id (``R-2026-000123``).

    Raises BadInput (nothing stored) for any wrong value, NotFound for a role that does not report.
    """
    target = _target(app_or_store)
    props, point, details = check_report(target, principal, data, now)
    created = datetime.now(LOCAL_TZ)
    con = _connect(target.path)
    try:
        with immediate_transaction(con):  # one report at a time: numbers are allocated and used in order
            year = created.year
            number = con.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM reports WHERE year = ?", (year,)).fetchone()[0]
            incident_id = f"R-{year}-{number:06d}"
            while _id_taken(target.store, incident_id):  # an import brought this id in: take the next one
                number += 1
                incident_id = f"R-{year}-{number:06d}"
            props = {"id": incident_id, **props}
            frame = _incident_frame(props, point)
            record = {**props, "lon": round(point.x, 7), "lat": round(point.y, 7), **details}
            con.execute("INSERT INTO reports (incident_id, year, number, org_code, reporter, role, status, created_at,"
                        " updated_at, data) VALUES (?, ?, ?, ?, ?, ?, 'reported', ?, ?, ?)",
                        (incident_id, year, number, principal.org_code, principal.username, principal.role, _now(),
                         _now(), json.dumps(record, ensure_ascii=False, default=str)))
            _history(con, incident_id, principal.username, principal, "submitted", details)
            provenance = {"source_name": f"report {incident_id} ({principal.username})", "crs": "EPSG:4326",
                          "report": {"report": incident_id, "by": principal.username, "org": principal.org_code}}
            try:
                target.store.append_features(KIND, frame, provenance)
            except NotFound:  # no incidents layer yet: the first report starts it
                target.store.replace_layer(KIND, frame, provenance)
    finally:
        con.close()
    _after(target, principal, "report_submitted", incident_id, details, source)
    _notify(target, incident_id, frame, "recorded")
    return incident_id


def _decide(app_or_store, principal, incident_id, status, action, details, source):
    if not principal.is_staff:
        raise NotFound(f"no report {incident_id}", vi=f"Không có báo cáo {incident_id}")
    target = _target(app_or_store)
    con = _connect(target.path)
    try:
        with immediate_transaction(con):
            row = con.execute("SELECT status FROM reports WHERE incident_id = ?", (str(incident_id),)).fetchone()
            if row is None:
                raise NotFound(f"no report {incident_id}", vi=f"Không có báo cáo {incident_id}")
            if row["status"] != "reported":
                raise BadInput(f"report {incident_id} is already {row['status']}: only a report awaiting "
                               "verification can be verified or rejected",
                               vi=f"Báo cáo {incident_id} đã ở trạng thái {_value_vi('status', row['status'])}: chỉ báo "
                                  "cáo đang chờ xác minh mới được xác minh hoặc ghi nhận không xác thực")
            _history(con, incident_id, principal.username or "unknown", principal, action, details)
            con.execute("UPDATE reports SET status = ?, updated_at = ? WHERE incident_id = ?",
                        (status, _now(), incident_id))
            provenance = {"source_name": f"{action} {incident_id} ({principal.username})",
                          "report": {"report": incident_id, "by": principal.username, "action": action}}
            try:
                target.store.update_features(KIND, [incident_id], {"status": status}, provenance)
            except NotFound:
                raise BadInput(f"{incident_id} is no longer in the incidents layer (an import replaced the layer "
                               "without it): import it again before deciding on it",
                               vi=f"Vụ việc {incident_id} không còn trong lớp Sự cố, vụ việc (một lần nạp dữ liệu đã thay "
                                  "lớp này): nạp lại vụ việc trước khi xử lý") from None
    finally:
        con.close()
    _after(target, principal, f"report_{action}", incident_id, details, source)
    return target


def verify(app_or_store, principal, incident_id, note: str = "", *, source: str = "") -> None:
    """The police confirm a report: its incident's status becomes ``verified`` (alerts follow)."""
    note = _text({"note": note}, "note", MAX_REASON)
    target = _decide(app_or_store, principal, incident_id, "verified", "verified", {"note": note} if note else {},
                     source)
    _notify(target, incident_id, None, "verified")


def reject(app_or_store, principal, incident_id, reason: str, *, source: str = "") -> None:
    """The police reject a report (a reason is required): its incident's status becomes ``rejected``."""
    reason = _text({"reason": reason}, "reason", MAX_REASON)
    if not reason:
        raise BadInput("reason is required to reject a report",
                       vi="Cần nhập lý do khi ghi nhận báo cáo là không xác thực")
    _decide(app_or_store, principal, incident_id, "rejected", "rejected", {"reason": reason}, source)


def _after(target, principal, action, incident_id, details, source):
    if target.app is None:
        return
    from webmap import audit

    audit.for_app(target.app).record(principal.username or "anonymous", action, incident_id, details,
                                     source or "cli")


def _notify(target, incident_id, frame, event):
    """Raise the alerts of :mod:`webmap.alerts`; a failure there is logged and never undoes the report."""
    if target.app is None:
        return
    try:
        from webmap.alerts import notify_incidents
        from webmap.store import FeatureQuery

        if frame is None:
            frame, _ = target.store.query_features(KIND, FeatureQuery(limit=1, in_filters={"id": [incident_id]}))
        notify_incidents(target.app, frame, event)
    except Exception:  # noqa: BLE001 - the report stands whatever the alerts do
        target.app.logger.exception("alerts for %s (%s) failed", incident_id, event)


# -- reading ------------------------------------------------------------------------------------------------
def history(app_or_store, incident_id) -> list[dict]:
    """Every step of a report, oldest first: at, actor, actor_org, actor_role, action, details."""
    con = _connect(_target(app_or_store).path)
    try:
        rows = con.execute("SELECT * FROM history WHERE incident_id = ? ORDER BY seq", (str(incident_id),)).fetchall()
    finally:
        con.close()
    return [{"at": r["at"], "actor": r["actor"], "actor_org": r["actor_org"], "actor_role": r["actor_role"],
             "action": r["action"], "details": json.loads(r["details"] or "{}")} for r in rows]


def _shown_history(steps, principal):
    """Outside the police, a step by another organisation shows its role, not the officer's name."""
    if principal.is_staff:
        return steps
    return [{**s, "actor": s["actor"] if s["actor_org"] == principal.org_code else None} for s in steps]


def list_reports(app_or_store, principal, *, status: str | None = None, incident_id: str | None = None,
                 limit: int = 200) -> list[dict]:
    """The reports ``principal`` may see, newest first, with their history: all of them for the police and
    admins; its own organisation's for an enterprise or a district; none for anyone else."""
    if principal.is_staff:
        where, params = "1 = 1", []
    elif principal.role in ("enterprise", "district") and principal.org_code:
        where, params = "org_code = ?", [principal.org_code]
    else:
        return []
    if status:
        where += " AND status = ?"
        params.append(status)
    if incident_id:
        where += " AND incident_id = ?"
        params.append(incident_id)
    con = _connect(_target(app_or_store).path)
    try:
        rows = con.execute(f"SELECT * FROM reports WHERE {where} ORDER BY created_at DESC, number DESC LIMIT ?",
                           [*params, int(limit)]).fetchall()
        steps = {}
        ids = [r["incident_id"] for r in rows]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for h in con.execute(f"SELECT * FROM history WHERE incident_id IN ({', '.join('?' * len(chunk))})"
                                 " ORDER BY seq", chunk):
                steps.setdefault(h["incident_id"], []).append(
                    {"at": h["at"], "actor": h["actor"], "actor_org": h["actor_org"], "actor_role": h["actor_role"],
                     "action": h["action"], "details": json.loads(h["details"] or "{}")})
    finally:
        con.close()
    out = []
    for r in rows:
        data = json.loads(r["data"])
        if not principal.is_staff:
            data.pop("reporter_name", None)
        out.append({"id": r["incident_id"], "status": r["status"], "org_code": r["org_code"],
                    "reporter": r["reporter"] if principal.is_staff or r["org_code"] == principal.org_code else None,
                    "created_at": r["created_at"], "updated_at": r["updated_at"], "data": data,
                    "history": _shown_history(steps.get(r["incident_id"], []), principal)})
    return out


def get_report(app_or_store, principal, incident_id) -> dict:
    """One report as :func:`list_reports` gives it, if ``principal`` may see it; NotFound otherwise."""
    for report in list_reports(app_or_store, principal, incident_id=str(incident_id)):
        return report
    raise NotFound(f"no report {incident_id}", vi=f"Không có báo cáo {incident_id}")


def set_sharing(app, principal, on: bool, *, source: str = "") -> bool:
    """An enterprise opts in or out of sharing its reports with the other enterprises (see webmap/access.py)."""
    from webmap.accounts import get_accounts

    if principal.role != "enterprise" or not principal.org_code:
        raise NotFound("only an enterprise shares its reports", vi="Chỉ doanh nghiệp mới chia sẻ báo cáo của mình")
    shares = get_accounts(app).set_share_incidents(principal.org_code, bool(on), changed_by=principal.username)
    from webmap import audit

    audit.for_app(app).record(principal.username or "anonymous", "sharing_changed", principal.org_code,
                              {"share_incidents": shares}, source or "cli")
    return shares
