"""Alerts: who is told when an incident is recorded or verified near what they protect.

For each incident passed to :func:`notify_incidents`:

- every **enterprise** organisation with a cable route or station (the layers' owner field) within its alert
  distance gets one alert naming its own nearest asset. The distance is ``ALERT_DISTANCE_M`` or the
  organisation's own (``webmap alerts configure ORG --distance-m``), never more than
  ``INCIDENT_NEAR_ASSETS_M``: an alert must not tell an enterprise of an incident its map would not show it;
- every **police** organisation gets one duty alert when the incident lies within ``KEY_SITE_ZONE_M`` of a
  key site (its protection zone), naming the nearest such site; otherwise, with ``ALERT_DUTY_ASSETS`` (the
  default), when it lies near any enterprise's asset, naming the nearest one: tampering with a work is told
  to its owner and to the duty officer. Key sites never reach an enterprise: the
  database itself refuses an enterprise alert that points at a key site (a CHECK constraint).

An alert for an enterprise names only its own asset and the incident's id, type, time and place: never a
key site, another enterprise, the incident's description or affected asset (which may be another
enterprise's) or who reported it. ``(incident, event, organisation)`` is unique, so calling again with the
same incidents (a retried import, a second verification) never makes a second alert.

Alerts and the delivery outbox (webmap/delivery.py) live in ``instance/alerts.sqlite``: an alert and one
outbox row per channel the organisation has (webhook, e-mail) are written in ONE transaction, so no alert
is ever left without its deliveries, nor a delivery without its alert.

Matching is vectorised: the cables, stations and key sites are put in EPSG:5897 (``webmap.crs.to_metric``)
in shapely STRtrees, built once per active version of those layers and kept in memory; a batch of
incidents is one ``STRtree.query(predicate="dwithin")`` per tree.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from webmap.errors import BadInput, NotFound
from webmap.sqlite_util import create_owner_only, create_schema, immediate_transaction, set_wal

FILENAME = "alerts.sqlite"
SCHEMA_VERSION = 1
EVENTS = ("recorded", "verified")
CHANNELS = ("webhook", "email")
# the layers whose features an enterprise owns and is alerted for, and the police-only layer of key sites
ASSET_KINDS = ("cable_routes", "stations")
SITE_KIND = "key_sites"
# public boundaries that name where an incident is (the finer first)
PLACE_KINDS = ("wards", "districts")
LIST_LIMIT = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_code TEXT NOT NULL,
    audience TEXT NOT NULL CHECK (audience IN ('enterprise', 'police')),
    incident_id TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('recorded', 'verified')),
    incident_type TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    place TEXT NOT NULL DEFAULT '',
    asset_kind TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    asset_name TEXT NOT NULL DEFAULT '',
    distance_m REAL NOT NULL,
    created_at TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at TEXT,
    UNIQUE (incident_id, event, org_code),
    CHECK (audience = 'police' OR asset_kind <> 'key_sites')
);
CREATE INDEX IF NOT EXISTS alerts_org_open ON alerts (org_code, acknowledged_at);
CREATE INDEX IF NOT EXISTS alerts_audience_open ON alerts (audience, acknowledged_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL UNIQUE,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    channel TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    claimed_by TEXT,
    claimed_until REAL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    delivered_at TEXT,
    UNIQUE (alert_id, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery INTEGER NOT NULL REFERENCES deliveries (id),
    attempt INTEGER NOT NULL,
    worker TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT CHECK (outcome IN ('delivered', 'failed', 'interrupted')),
    detail TEXT
);
CREATE INDEX IF NOT EXISTS delivery_attempts_of ON delivery_attempts (delivery, attempt);
"""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- the database ---------------------------------------------------------------------------------------------
class AlertStore:
    """``instance/alerts.sqlite``: alerts, the delivery outbox and its attempts; one connection per thread.

    WAL with ``synchronous=FULL``: a committed "delivered" survives a crash and a power cut, which is what
    keeps a restarted worker from sending it again. ``BEGIN IMMEDIATE`` takes the write lock at once, so a
    claim (read the due row, mark it ours) is atomic across threads and processes.
    """

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list = []
        create_owner_only(self.path)  # incident places and organisations' channels
        set_wal(self.connection())
        with self.transaction() as con:
            create_schema(con, _SCHEMA, SCHEMA_VERSION, self.path)

    def connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA synchronous = FULL")
            con.execute("PRAGMA foreign_keys = ON")
            self._local.con = con
            with self._lock:
                self._all.append(con)
        return con

    def transaction(self):
        """``with store.transaction() as con:`` this thread's connection inside BEGIN IMMEDIATE ... COMMIT."""
        return immediate_transaction(self.connection())

    def close(self):
        with self._lock:
            for con in self._all:
                con.close()
            self._all.clear()
        self._local = threading.local()


def get_alert_store(app) -> AlertStore:
    """The app's AlertStore (``<instance>/alerts.sqlite``), opened once and kept in ``app.extensions``."""
    from webmap.sqlite_util import per_app

    return per_app(app, "webmap_alerts", lambda: AlertStore(os.path.join(app.instance_path, FILENAME)))


# -- what an alert is -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    id: int
    delivery_id: str
    channel: str
    state: str
    attempts: int
    last_error: str | None
    delivered_at: str | None
    next_attempt_at: float


@dataclass(frozen=True)
class Alert:
    id: int
    org_code: str
    audience: str  # enterprise | police
    incident_id: str
    event: str
    incident_type: str
    occurred_at: str
    lon: float
    lat: float
    place: str
    asset_kind: str  # cable_routes | stations (enterprise), key_sites (police)
    asset_id: str
    asset_name: str
    distance_m: float
    created_at: str
    acknowledged_by: str | None
    acknowledged_at: str | None
    deliveries: tuple = field(default_factory=tuple)

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None


def _alert_from_row(row, deliveries=()) -> Alert:
    return Alert(**{name: row[name] for name in Alert.__dataclass_fields__ if name != "deliveries"},
                 deliveries=tuple(deliveries))


def _delivery_from_row(row) -> Delivery:
    return Delivery(row["id"], row["delivery_id"], row["channel"], row["state"], row["attempts"], row["last_error"],
                    row["delivered_at"], row["next_attempt_at"])


# -- words ----------------------------------------------------------------------------------------------------
def _label(catalog, kind, field_name, value, lang) -> str:
    try:
        labels = catalog[kind].get_field(field_name).value_labels.get(value) or {}
    except KeyError:
        labels = {}
    return labels.get(lang) or labels.get("vi") or str(value)


def when_text(iso: str) -> str:
    """``2026-11-29T08:15:00+07:00`` -> ``2026-11-29 08:15 (+07:00)``: as the incident's source gave it."""
    text = str(iso or "")
    if len(text) >= 16 and text[10] == "T":
        zone = text[19:] if len(text) > 19 and text[19] in "+-Z" else ""
        zone = "UTC" if zone == "Z" else zone
        return text[:16].replace("T", " ") + (f" ({zone})" if zone else "")
    return text


def alert_words(alert: Alert, lang: str, catalog=None) -> dict:
    """The pieces of an alert in ``lang``: type, event, asset, place, when, distance (for pages and messages)."""
    from webmap.catalog import load_catalog
    from webmap.i18n import strings

    catalog = catalog if catalog is not None else load_catalog()
    text = strings(lang)
    return {
        "type": _label(catalog, "incidents", "type", alert.incident_type, lang),
        "event": text.get(f"alert_event_{alert.event}", alert.event),
        "asset_kind": text.get(f"alert_asset_{alert.asset_kind}", alert.asset_kind),
        "asset": f"{alert.asset_id} – {alert.asset_name}" if alert.asset_name else alert.asset_id,
        "when": when_text(alert.occurred_at),
        "where": f"{alert.lat:.5f}, {alert.lon:.5f}" + (f" ({alert.place})" if alert.place else ""),
        "distance": f"{alert.distance_m:,.0f}".replace(",", "." if lang == "vi" else ","),
    }


def alert_text(alert: Alert, lang: str, catalog=None) -> str:
    """One paragraph that says what happened, where and when, and which of the receiver's own assets it is
    near (or, for the police, which key site's zone it is in). Nothing else: see the module docstring."""
    from webmap.i18n import strings

    words = alert_words(alert, lang, catalog)
    key = "alert_text_enterprise" if alert.asset_kind != SITE_KIND else "alert_text_police"
    if alert.audience == "police" and alert.asset_kind != SITE_KIND:
        key = "alert_text_duty_asset"
    return strings(lang)[key].format(incident=alert.incident_id, **words)


def alert_subject(alert: Alert, lang: str, catalog=None) -> str:
    from webmap.i18n import strings

    words = alert_words(alert, lang, catalog)
    key = "alert_subject_enterprise" if alert.asset_kind != SITE_KIND else "alert_subject_police"
    if alert.audience == "police" and alert.asset_kind != SITE_KIND:
        key = "alert_subject_duty_asset"
    return strings(lang)[key].format(incident=alert.incident_id, **words)


# -- the spatial index ----------------------------------------------------------------------------------------
@dataclass
class AssetIndex:
    """Cables and stations (with owner), key sites and place names, ready for ``dwithin`` queries."""

    versions: tuple
    assets: object  # STRtree over metric geometries (EPSG:5897)
    asset_geoms: np.ndarray
    asset_owner: np.ndarray
    owner_codes: np.ndarray  # the distinct owners, and each asset's position among them
    owner_index: np.ndarray
    asset_kind: np.ndarray
    asset_id: np.ndarray
    asset_name: np.ndarray
    sites: object
    site_geoms: np.ndarray
    site_id: np.ndarray
    site_name: np.ndarray
    places: list  # [(STRtree over lon/lat polygons, names)], finer first


def _read(store, kind):
    try:
        return store.read_layer(kind)
    except NotFound:
        return None


def _metric_geoms(gdf) -> np.ndarray:
    from webmap.crs import STORAGE_CRS, to_metric

    if gdf.crs is None:
        gdf = gdf.set_crs(STORAGE_CRS)
    return np.asarray(to_metric(gdf).geometry.array, dtype=object)


def _text_column(gdf, name, n) -> np.ndarray:
    if name and name in gdf.columns:
        return gdf[name].astype(object).where(gdf[name].notna(), "").astype(str).to_numpy(dtype=object)
    return np.full(n, "", dtype=object)


def build_index(store, catalog, versions=()) -> AssetIndex:
    import shapely

    geoms, owner, kinds, ids, names = [], [], [], [], []
    for kind in ASSET_KINDS:
        layer = catalog.get(kind)
        gdf = _read(store, kind) if layer is not None and layer.owner_field else None
        if gdf is None or not len(gdf):
            continue
        gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
        n = len(gdf)
        geoms.append(_metric_geoms(gdf))
        owner.append(_text_column(gdf, layer.owner_field, n))
        kinds.append(np.full(n, kind, dtype=object))
        ids.append(_text_column(gdf, layer.id_field, n))
        names.append(_text_column(gdf, layer.name_field, n))

    def joined(parts):
        return np.concatenate(parts) if parts else np.empty(0, dtype=object)

    site_layer = catalog.get(SITE_KIND)
    sites = _read(store, SITE_KIND) if site_layer is not None else None
    if sites is not None:
        sites = sites[~(sites.geometry.isna() | sites.geometry.is_empty)]
    if sites is not None and len(sites):
        site_geoms = _metric_geoms(sites)
        site_id = _text_column(sites, site_layer.id_field, len(sites))
        site_name = _text_column(sites, site_layer.name_field, len(sites))
    else:
        site_geoms = site_id = site_name = np.empty(0, dtype=object)
    places = []
    for kind in PLACE_KINDS:
        layer = catalog.get(kind)
        gdf = _read(store, kind) if layer is not None else None
        if gdf is not None and len(gdf):
            polygons = np.asarray(gdf.geometry.array, dtype=object)
            places.append((shapely.STRtree(polygons), _text_column(gdf, layer.name_field, len(gdf))))
    asset_geoms, asset_owner = joined(geoms), joined(owner)
    owner_codes, owner_index = np.unique(asset_owner.astype(str), return_inverse=True)
    return AssetIndex(
        versions=versions, assets=shapely.STRtree(asset_geoms), asset_geoms=asset_geoms, asset_owner=asset_owner,
        owner_codes=owner_codes.astype(object), owner_index=owner_index.astype(np.intp),
        asset_kind=joined(kinds), asset_id=joined(ids), asset_name=joined(names),
        sites=shapely.STRtree(site_geoms), site_geoms=site_geoms, site_id=site_id, site_name=site_name, places=places,
    )


_INDEX_LOCK = threading.Lock()


def asset_index(app) -> AssetIndex:
    """The app's index for the active versions of the layers it reads, rebuilt when one of them changes."""
    from webmap.catalog import load_catalog

    store = app.extensions["webmap_store"]
    active = {v.kind: v.version for v in store.list_versions()}
    versions = tuple(active.get(kind) for kind in (*ASSET_KINDS, SITE_KIND, *PLACE_KINDS))
    with _INDEX_LOCK:
        index = app.extensions.get("webmap_alert_index")
        if index is None or index.versions != versions:
            index = app.extensions["webmap_alert_index"] = build_index(store, load_catalog(), versions)
    return index


# -- matching (pure: arrays in, arrays out) -------------------------------------------------------------------
@dataclass(frozen=True)
class Matches:
    """Parallel arrays, one entry per match: ``incident`` (position in the points), ``target`` (position
    in the index), ``org`` (owner code; '' for key sites), ``distance_m``."""

    incident: np.ndarray
    target: np.ndarray
    org: np.ndarray
    distance_m: np.ndarray

    def __len__(self):
        return len(self.incident)


def _nearest_per_group(incident, target, group, distance) -> np.ndarray:
    """Positions of the nearest match of each (incident, group), ties to the lowest target (numpy only: a
    pandas sort costs more than the whole spatial query for one incident)."""
    order = np.lexsort((target, distance, group, incident))
    incident, group = incident[order], group[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (incident[1:] != incident[:-1]) | (group[1:] != group[:-1])
    return order[first]


def match_assets(index: AssetIndex, points_m: np.ndarray, distance_by_org: dict) -> Matches:
    """Nearest own asset per (incident, enterprise) within that enterprise's distance.

    Parameters
    ----------
    index : AssetIndex
    points_m : array of shapely Points in EPSG:5897 metres.
    distance_by_org : {owner code: metres}; owners not in it are never alerted.

    Returns
    -------
    Matches, one per (incident, org), sorted by incident then org: the nearest asset and its distance.

    Notes
    -----
    One ``STRtree.query(predicate="dwithin")`` at the largest distance asked, then each candidate is kept
    if within its own owner's distance: a per-organisation distance costs no second query.
    """
    import shapely

    none = np.empty(0, dtype=np.intp)
    if not len(points_m) or not len(index.asset_geoms) or not distance_by_org:
        return Matches(none, none, np.empty(0, dtype=object), np.empty(0))
    incident, asset = index.assets.query(points_m, predicate="dwithin", distance=max(distance_by_org.values()))
    limits = np.array([distance_by_org.get(code, np.nan) for code in index.owner_codes], dtype=float)
    limit = limits[index.owner_index[asset]]  # NaN: an owner that is not an enterprise to alert
    distance = shapely.distance(points_m[incident], index.asset_geoms[asset])
    keep = distance <= limit  # NaN compares False
    incident, asset, distance = incident[keep], asset[keep], distance[keep]
    best = _nearest_per_group(incident, asset, index.owner_index[asset], distance)
    return Matches(incident[best], asset[best], index.asset_owner[asset[best]], distance[best])


def match_sites(index: AssetIndex, points_m: np.ndarray, zone_m: float) -> Matches:
    """Nearest key site per incident among those whose protection zone (site buffered by ``zone_m``) holds it
    (``dwithin`` the site: exact, no buffer polygon is built)."""
    import shapely

    none = np.empty(0, dtype=np.intp)
    if not len(points_m) or not len(index.site_geoms):
        return Matches(none, none, np.empty(0, dtype=object), np.empty(0))
    incident, site = index.sites.query(points_m, predicate="dwithin", distance=zone_m)
    distance = shapely.distance(points_m[incident], index.site_geoms[site])
    best = _nearest_per_group(incident, site, np.zeros(len(site), dtype=np.intp), distance)
    return Matches(incident[best], site[best], np.full(len(best), "", dtype=object), distance[best])


def place_names(index: AssetIndex, lon: np.ndarray, lat: np.ndarray) -> list[str]:
    """"Ward, District" of each point, from the public boundary layers loaded ('' where none)."""
    import shapely

    points = shapely.points(lon, lat)
    parts = [[] for _ in range(len(points))]
    for tree, names in index.places:
        point_idx, polygon_idx = tree.query(points, predicate="intersects")
        seen = set()
        for p, g in zip(point_idx.tolist(), polygon_idx.tolist()):
            if p not in seen and names[g]:
                seen.add(p)
                parts[p].append(names[g])
    return [", ".join(p) for p in parts]


# -- creating alerts ------------------------------------------------------------------------------------------
def _orgs(app):
    """(enterprise codes, police codes, {code: AlertSettings})."""
    from webmap.accounts import get_accounts

    accounts = get_accounts(app)
    enterprises, police = [], []
    for org in accounts.list_orgs():
        if org.kind == "enterprise":
            enterprises.append(org.code)
        elif org.kind == "police":
            police.append(org.code)
    return enterprises, police, accounts.list_alert_settings()


def org_distance_m(config, settings) -> float:
    """An enterprise's alert distance: its own, else ALERT_DISTANCE_M; never beyond INCIDENT_NEAR_ASSETS_M."""
    own = settings.distance_m if settings is not None else None
    wanted = float(own) if own is not None else float(config["ALERT_DISTANCE_M"])
    return min(wanted, float(config["INCIDENT_NEAR_ASSETS_M"]))


def _strings(gdf, column, positions, missing="") -> list[str]:
    """The column's values at ``positions`` as str, ``missing`` for nulls (pandas' NA has no truth value).

    Only the rows asked for are touched: pandas' whole-column conversions cost milliseconds, which is most
    of the time budget of one incident."""
    import pandas as pd

    if column not in gdf.columns:
        return [missing] * len(positions)
    values = gdf[column].to_numpy(dtype=object)[positions]
    return [missing if pd.isna(v) else str(v) for v in values]


_WGS84 = []


def _is_wgs84(crs) -> bool:
    if not _WGS84:
        from pyproj import CRS

        _WGS84.append(CRS.from_epsg(4326))
    return crs is None or crs == _WGS84[0]


def notify_incidents(app, incidents_gdf, event: str) -> list[int]:
    """Create the alerts for these incidents (a GeoDataFrame of the incidents layer, EPSG:4326).

    ``event`` is ``recorded`` (new incidents) or ``verified``. Rejected incidents alert nobody; with event
    ``recorded``, an enterprise is not alerted to an incident it reported itself (``reported_by_org``).
    Returns the ids of the alerts this call created: an (incident, event, organisation) that already has
    an alert gets no second one. The delivery worker is woken for the new deliveries.
    """
    import shapely

    from webmap.crs import lonlat_to_metric

    if event not in EVENTS:
        raise BadInput(f"alert event must be one of {', '.join(EVENTS)}, got {event!r}")
    if incidents_gdf is None or not len(incidents_gdf):
        return []
    gdf = incidents_gdf if _is_wgs84(incidents_gdf.crs) else incidents_gdf.to_crs("EPSG:4326")
    geoms = np.asarray(gdf.geometry.array, dtype=object)
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if "status" in gdf.columns:
        usable &= np.array(_strings(gdf, "status", np.arange(len(gdf)))) != "rejected"
    rows_of = np.flatnonzero(usable)  # positions in gdf of the points below
    if not len(rows_of):
        return []
    points = shapely.point_on_surface(geoms[rows_of])
    lon, lat = shapely.get_x(points), shapely.get_y(points)
    points_m = shapely.points(*lonlat_to_metric(lon, lat))

    index = asset_index(app)
    enterprises, police, settings = _orgs(app)
    distance_by_org = {code: org_distance_m(app.config, settings.get(code)) for code in enterprises}
    near = match_assets(index, points_m, distance_by_org)
    duty = _duty_matches(near) if police and app.config.get("ALERT_DUTY_ASSETS", True) else None  # the police see every asset: before any per-org filter
    if event == "recorded" and "reported_by_org" in gdf.columns and len(near):
        reporter = np.array(_strings(gdf, "reported_by_org", rows_of[near.incident]), dtype=object)
        keep = near.org != reporter
        near = Matches(near.incident[keep], near.target[keep], near.org[keep], near.distance_m[keep])
    near, aliases = _as_enterprises_see_them(app, gdf, rows_of, near)
    zones = match_sites(index, points_m, float(app.config["KEY_SITE_ZONE_M"])) if police else None

    if zones is not None and duty is not None:  # an incident in a key site's zone is told as that
        keep = ~np.isin(duty.incident, zones.incident)
        duty = Matches(duty.incident[keep], duty.target[keep], duty.org[keep], duty.distance_m[keep])
    none = np.empty(0, dtype=np.intp)
    wanted = np.union1d(np.union1d(near.incident, zones.incident if zones is not None else none),
                        duty.incident if duty is not None else none)
    if not len(wanted):
        return []
    at = {int(i): k for k, i in enumerate(wanted)}
    places = place_names(index, lon[wanted], lat[wanted])
    ids = _strings(gdf, "id", rows_of[wanted])
    types = _strings(gdf, "type", rows_of[wanted], "other")
    times = _strings(gdf, "occurred_at", rows_of[wanted])

    def row(i, org, audience, kind, asset_id, asset_name, distance):
        k = at[int(i)]
        return (org, audience, ids[k], event, types[k], times[k], round(float(lon[i]), 7), round(float(lat[i]), 7),
                places[k], kind, asset_id, asset_name, round(float(distance), 1))

    rows = [row(i, org, "enterprise", index.asset_kind[a], index.asset_id[a], index.asset_name[a], d)
            for i, a, org, d in zip(near.incident, near.target, near.org, near.distance_m)]
    for n, (i, org) in enumerate(zip(near.incident, near.org)):
        alias = aliases.get((int(i), org))
        if alias:
            rows[n] = (rows[n][0], rows[n][1], alias, *rows[n][3:])
    if zones is not None:
        for i, site, d in zip(zones.incident, zones.target, zones.distance_m):
            rows += [row(i, code, "police", SITE_KIND, index.site_id[site], index.site_name[site], d) for code in police]
    if duty is not None:
        for i, a, d in zip(duty.incident, duty.target, duty.distance_m):
            rows += [row(i, code, "police", index.asset_kind[a], index.asset_id[a], index.asset_name[a], d)
                     for code in police]
    created = _insert(get_alert_store(app), rows, settings)
    if created:
        from webmap.delivery import wake_worker

        wake_worker(app)
    return created


def _duty_matches(near: Matches) -> Matches:
    """For the police duty officer: each incident near some enterprise's asset once, with the nearest asset
    (whoever owns it), so tampering with any work is told to the owner and to the duty officer."""
    if not len(near):
        return near
    order = np.lexsort((near.distance_m, near.incident))
    first = order[np.r_[True, near.incident[order][1:] != near.incident[order][:-1]]]
    return Matches(near.incident[first], near.target[first], near.org[first], near.distance_m[first])


def _as_enterprises_see_them(app, gdf, rows_of, near):
    """Apply the sharing rule of ``webmap.access`` to enterprise matches: an incident reported by another
    enterprise that does not share makes no alert; one that does share makes an alert whose incident id is
    an opaque alias (the same for the same incident, so an alert is still made once), since a shared
    incident is seen as location, time and type only. Returns ``(matches, {(incident, org): alias})``."""
    if not len(near) or "reported_by_org" not in gdf.columns:
        return near, {}
    import hashlib
    import hmac

    from webmap.access import AccessContext, reporters_seen_by

    reporters = AccessContext.for_app(app).incident_reporters()
    reporter = np.array(_strings(gdf, "reported_by_org", rows_of[near.incident]), dtype=object)
    ids = _strings(gdf, "id", rows_of[near.incident])
    keep = np.ones(len(near), dtype=bool)
    aliases = {}
    seen = {}
    for n, (org, by) in enumerate(zip(near.org, reporter)):
        if not by:
            continue
        if org not in seen:
            seen[org] = reporters_seen_by(org, reporters)
        allowed, shared = seen[org]
        if by not in allowed:
            keep[n] = False
        elif by in shared:
            # keyed with the app's secret: report ids are guessable, a plain hash of one would not hide it
            digest = hmac.new(str(app.config["SECRET_KEY"]).encode(), f"{org}|{ids[n]}".encode(), hashlib.sha256)
            aliases[(int(near.incident[n]), org)] = "SHARED-" + digest.hexdigest()[:12].upper()
    near = Matches(near.incident[keep], near.target[keep], near.org[keep], near.distance_m[keep])
    return near, aliases


def _insert(store: AlertStore, rows, settings) -> list[int]:
    """The alerts and their outbox rows, in one transaction; an existing (incident, event, org) is skipped."""
    import time

    created, at, now = [], now_iso(), time.time()
    with store.transaction() as con:
        for values in rows:
            cursor = con.execute(
                "INSERT INTO alerts (org_code, audience, incident_id, event, incident_type, occurred_at, lon, lat,"
                " place, asset_kind, asset_id, asset_name, distance_m, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (incident_id, event, org_code) DO NOTHING", (*values, at))
            if cursor.rowcount != 1:
                continue
            alert_id = cursor.lastrowid
            created.append(alert_id)
            for channel in channels_of(settings.get(values[0])):
                con.execute("INSERT INTO deliveries (delivery_id, alert_id, channel, next_attempt_at, created_at,"
                            " updated_at) VALUES (?, ?, ?, ?, ?, ?)", (uuid.uuid4().hex, alert_id, channel, now, at, at))
    return created


def channels_of(settings) -> list[str]:
    """The channels an organisation's settings name: webhook (a URL) and e-mail (addresses)."""
    if settings is None:
        return []
    return [c for c, on in (("webhook", bool(settings.webhook_url)), ("email", bool(settings.emails))) if on]


# -- after an import ------------------------------------------------------------------------------------------
def incident_ids(store) -> set | None:
    """Ids of the active incidents version (read before an import replaces it); None if there is none."""
    gdf = _read(store, "incidents")
    return None if gdf is None else set(gdf["id"].astype(str))


def recent_new_incidents(gdf, previous_ids, max_age_days: float, now=None):
    """The rows of a freshly imported incidents layer that were not in the previous version and happened
    within the last ``max_age_days`` (a bulk import of history must not flood anyone with alerts)."""
    import pandas as pd

    if gdf is None or not len(gdf):
        return gdf
    new = ~gdf["id"].astype(str).isin(previous_ids or set())
    now = now or datetime.now(timezone.utc)
    when = pd.to_datetime(gdf["occurred_at"].astype(str), utc=True, errors="coerce", format="ISO8601")
    recent = (when >= now - timedelta(days=float(max_age_days))).fillna(False).to_numpy(dtype=bool)
    return gdf[new.to_numpy() & recent]


def notify_imported(app, gdf, previous_ids) -> list[int] | None:
    """The import hook: alerts for the new, recent incidents of an import (``recorded``).

    The import is already stored when this runs, so a failure here is logged and answered with None rather
    than raised (an import is not undone because an alert could not be written).
    """
    try:
        fresh = recent_new_incidents(gdf, previous_ids, app.config["ALERT_MAX_AGE_DAYS"])
        return notify_incidents(app, fresh, "recorded")
    except Exception:  # noqa: BLE001 - logged; the import stands
        app.logger.exception("alerts for the imported incidents could not be created")
        return None


# -- reading, for the page, the API and the CLI ----------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """Which alerts a reader sees: those of one organisation, or every alert of one audience (admin)."""

    org_code: str | None = None
    audience: str | None = None

    def where(self) -> tuple[str, list]:
        clauses, params = [], []
        if self.org_code is not None:
            clauses.append("a.org_code = ?")
            params.append(self.org_code)
        if self.audience is not None:
            clauses.append("a.audience = ?")
            params.append(self.audience)
        return (" AND ".join(clauses) or "1 = 1"), params


def scope_for(principal) -> Scope | None:
    """Enterprises and the police: their organisation's alerts; an admin: every police alert; else None."""
    if principal.role == "admin":
        return Scope(audience="police")
    if principal.role in ("enterprise", "police") and principal.org_code:
        return Scope(org_code=principal.org_code)
    return None


def list_alerts(store: AlertStore, scope: Scope = Scope(), unacknowledged=False, limit=LIST_LIMIT) -> list[Alert]:
    where, params = scope.where()
    if unacknowledged:
        where += " AND a.acknowledged_at IS NULL"
    con = store.connection()
    rows = con.execute(f"SELECT a.* FROM alerts a WHERE {where} ORDER BY a.id DESC LIMIT ?", (*params, int(limit)))
    rows = rows.fetchall()
    by_alert: dict = {}
    if rows:
        marks = ",".join("?" * len(rows))
        for d in con.execute(f"SELECT * FROM deliveries WHERE alert_id IN ({marks}) ORDER BY channel",
                             [r["id"] for r in rows]):
            by_alert.setdefault(d["alert_id"], []).append(_delivery_from_row(d))
    return [_alert_from_row(r, by_alert.get(r["id"], ())) for r in rows]


def count_open(store: AlertStore, scope: Scope) -> int:
    """Unacknowledged alerts in scope: one indexed COUNT (the badge asks every 30 s)."""
    where, params = scope.where()
    return store.connection().execute(
        f"SELECT COUNT(*) FROM alerts a WHERE {where} AND a.acknowledged_at IS NULL", params).fetchone()[0]


def get_alert(store: AlertStore, alert_id: int, scope: Scope = Scope()) -> Alert:
    """One alert, if it is in ``scope``; NotFound (the same for "not yours" as for "no such alert")."""
    where, params = scope.where()
    con = store.connection()
    row = con.execute(f"SELECT a.* FROM alerts a WHERE a.id = ? AND {where}", (int(alert_id), *params)).fetchone()
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist")
    deliveries = [_delivery_from_row(d) for d in
                  con.execute("SELECT * FROM deliveries WHERE alert_id = ? ORDER BY channel", (row["id"],))]
    return _alert_from_row(row, deliveries)


def acknowledge(store: AlertStore, alert_id: int, username: str, scope: Scope = Scope()) -> tuple[Alert, bool]:
    """Mark an alert in ``scope`` acknowledged by ``username``; ``(alert, changed)`` (False if it already was)."""
    get_alert(store, alert_id, scope)
    with store.transaction() as con:
        changed = con.execute("UPDATE alerts SET acknowledged_by = ?, acknowledged_at = ? WHERE id = ?"
                              " AND acknowledged_at IS NULL", (username, now_iso(), int(alert_id))).rowcount
    return get_alert(store, alert_id, scope), bool(changed)
