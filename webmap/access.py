"""Who may see what: the one place where the rules of the directive become filters.

Every output (map page, API, search, counts and extents, popups; later exports and prints) asks
``rule_for(principal, layer)`` and applies the answer below itself: a layer a user may not see does not
exist for them (404, never listed), rows outside their reach are never read out, hidden fields are
dropped before anything is serialised.

| sensitivity | admin, police | district | enterprise | public (not logged in) |
|---|---|---|---|---|
| public (boundaries) | all | all | all | all |
| owner (cables, stations) | all | inside its district | its own (owner = its organisation) | none |
| police (key sites) | all | none | none | none |
| incident | all | inside its district | near its own assets (INCIDENT_NEAR_ASSETS_M) | none |

Fields may narrow this further with ``visible_to`` in the layer definition (reporter details, guard unit).

Incidents reported by enterprises (``reported_by_org``, see webmap/reports.py) follow one more rule for
enterprises: of the incidents near its own assets, an enterprise sees those reported by another enterprise
only if that enterprise shares its reports (``webmap orgs share CODE --on``, or its reports page), and then
only their location, time and type: every other field of those rows is emptied (id, asset, description,
damage, status, severity, source, reporter), they are left out of search, and filters on an emptied field
do not find them. Incidents reported by the police or a district, or with no reporting organisation, are
seen as before; a reporting organisation the accounts do not know counts as an enterprise that does not
share. The rule is a row filter (``LayerRule.rows_from``) and a row-dependent field emptying
(``LayerRule.redact``), applied by ``apply_rule`` for whole layers and by the API through ``redact_rows``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import shapely
from shapely.geometry.base import BaseGeometry

from webmap.errors import NotFound

EVERYONE = ("admin", "police", "district", "enterprise", "public")
NEAR_ASSETS_DEFAULT_M = 500
# the field naming the organisation that reported an incident, and what a shared report shows besides its place
REPORTER_FIELD = "reported_by_org"
SHARED_FIELDS = ("type",)  # and the layer's time field


@dataclass(frozen=True)
class Principal:
    """The user a request runs for, reduced to what the rules need."""

    username: str | None
    role: str
    org_code: str | None = None
    district_code: str | None = None

    @classmethod
    def from_user(cls, user) -> "Principal":
        if user is None:
            return ANONYMOUS
        return cls(user.username, user.role, user.org_code, user.district_code)

    @property
    def is_staff(self) -> bool:
        return self.role in ("admin", "police")


ANONYMOUS = Principal(None, "public")


@dataclass(frozen=True)
class LayerRule:
    """What one principal may see of one layer."""

    kind: str
    visible: bool
    owner_in: tuple | None = None  # rows whose owner is one of these
    mask: BaseGeometry | None = None  # rows whose geometry intersects this (lon/lat)
    hidden_fields: frozenset = field(default_factory=frozenset)
    rows_from: tuple | None = None  # (field, values): rows whose field is empty or one of values
    redact: tuple | None = None  # (field, values, kept fields): rows whose field is one of values show only those

    @property
    def filtered(self) -> bool:
        return self.owner_in is not None or self.mask is not None or self.rows_from is not None

    def key(self) -> tuple:
        """A hashable identity, for caches of counts and extents."""
        mask = shapely.to_wkb(self.mask) if self.mask is not None else None
        return (self.kind, self.visible, self.owner_in, mask, tuple(sorted(self.hidden_fields)), self.rows_from,
                self.redact)


_EMPTY = shapely.Polygon()


class AccessContext:
    """Looks up what the rules need from the store (district polygons, an enterprise's assets), cached
    per active version so the rules stay cheap on every request."""

    def __init__(self, store, catalog, near_assets_m: float = NEAR_ASSETS_DEFAULT_M, reporters=None):
        self.store = store
        self.catalog = catalog
        self.near_assets_m = near_assets_m
        # () -> [(organisation code, kind, shares incidents)]; None: no organisation known, so an enterprise
        # sees no other organisation's reports (the safe side, for callers without the accounts)
        self.reporters = reporters
        self._cache: dict = {}
        self._lock = threading.Lock()

    @classmethod
    def for_app(cls, app, store=None, catalog=None) -> "AccessContext":
        """The context of a Flask app: its store, settings and organisations (for commands as well as views)."""
        from webmap.accounts import get_accounts
        from webmap.catalog import load_catalog

        accounts = get_accounts(app)
        return cls(store if store is not None else app.extensions["webmap_store"],
                   catalog if catalog is not None else load_catalog(),
                   app.config.get("INCIDENT_NEAR_ASSETS_M", NEAR_ASSETS_DEFAULT_M), accounts.incident_reporters)

    def incident_reporters(self) -> list:
        """``(code, kind, shares incidents)`` of every organisation (read each time: sharing changes at once)."""
        return list(self.reporters()) if self.reporters is not None else []

    def _versions(self, *kinds) -> tuple:
        versions = {v.kind: v.version for v in self.store.list_versions()}
        return tuple(versions.get(k) for k in kinds)

    def _cached(self, key, make):
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = make()
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = value
        return value

    def district_area(self, code: str | None) -> BaseGeometry:
        """The polygon of a district by its code, from whatever districts layer is loaded (empty if none)."""
        if not code or "districts" not in self.catalog:
            return _EMPTY

        def make():
            try:
                gdf = self.store.read_layer("districts")
            except NotFound:
                return _EMPTY
            id_field = self.catalog["districts"].id_field
            rows = gdf[gdf[id_field].astype(str) == str(code)]
            return shapely.union_all(rows.geometry.values) if len(rows) else _EMPTY

        return self._cached(("district", code, self._versions("districts")), make)

    def near_own_assets(self, org_code: str | None) -> BaseGeometry:
        """Everything within ``near_assets_m`` of the enterprise's own cables and stations (lon/lat)."""
        owned_kinds = [k for k, layer in self.catalog.items() if layer.sensitivity == "owner" and layer.owner_field]
        if not org_code or not owned_kinds:
            return _EMPTY

        def make():
            from webmap.crs import METRIC_CRS, STORAGE_CRS, to_metric

            parts = []
            for kind in owned_kinds:
                try:
                    gdf = self.store.read_layer(kind)
                except NotFound:
                    continue
                own = gdf[gdf[self.catalog[kind].owner_field] == org_code]
                if len(own):
                    parts.append(to_metric(own.set_crs(STORAGE_CRS, allow_override=True)).geometry.values)
            if not parts:
                return _EMPTY
            import geopandas as gpd
            import numpy as np

            metric = shapely.union_all(shapely.buffer(np.concatenate(parts), self.near_assets_m, quad_segs=4))
            back = gpd.GeoSeries([metric], crs=METRIC_CRS).to_crs(STORAGE_CRS).iloc[0]
            return shapely.make_valid(back)

        return self._cached(("near", org_code, self.near_assets_m, self._versions(*owned_kinds)), make)


def _hidden_fields(principal: Principal, layer) -> frozenset:
    return frozenset(f.name for f in layer.fields if f.visible_to is not None and principal.role not in f.visible_to)


def reporters_seen_by(org_code: str | None, reporters) -> tuple[tuple, tuple]:
    """``(allowed, shared)`` for enterprise ``org_code``: the reporting organisations whose incidents it may
    see at all (itself, the police and districts, the enterprises that share), and those of them whose
    incidents it sees as location, time and type only (the other enterprises that share). ``reporters`` is
    ``AccessContext.incident_reporters()``. An incident with no reporting organisation is seen as before;
    one by an organisation in neither tuple is not seen. (Also for outputs outside this module, e.g. alerts.)"""
    own = org_code or ""
    shared = tuple(sorted(code for code, kind, shares in reporters if kind == "enterprise" and shares and code != own))
    not_enterprises = {code for code, kind, _ in reporters if kind != "enterprise"}
    return tuple(sorted(({own} | not_enterprises | set(shared)) - {""})), shared


def _reporter_rule(principal: Principal, layer, context: AccessContext) -> dict:
    """``rows_from`` and ``redact`` of an enterprise for a layer of incidents with a reporting organisation."""
    if REPORTER_FIELD not in layer.field_names:
        return {}
    allowed, shared = reporters_seen_by(principal.org_code, context.incident_reporters())
    rule = {"rows_from": (REPORTER_FIELD, allowed)}
    if shared:
        rule["redact"] = (REPORTER_FIELD, shared, tuple(f for f in (layer.time_field, *SHARED_FIELDS) if f))
    return rule


def rule_for(principal: Principal, layer, context: AccessContext) -> LayerRule:
    """The rule of the table above for one principal and one layer."""
    hidden = _hidden_fields(principal, layer)
    sensitivity = layer.sensitivity
    role = principal.role
    if sensitivity == "public" or principal.is_staff:
        return LayerRule(layer.kind, True, hidden_fields=hidden)
    if sensitivity == "police" or role == "public":
        return LayerRule(layer.kind, False)
    if role == "district":
        return LayerRule(layer.kind, True, mask=context.district_area(principal.district_code), hidden_fields=hidden)
    if role == "enterprise":
        if sensitivity == "owner":
            return LayerRule(layer.kind, True, owner_in=(principal.org_code or "",), hidden_fields=hidden)
        if sensitivity == "incident":
            return LayerRule(layer.kind, True, mask=context.near_own_assets(principal.org_code), hidden_fields=hidden,
                             **_reporter_rule(principal, layer, context))
    return LayerRule(layer.kind, False)  # anything not foreseen is refused


def visible_layer(principal: Principal, kind: str, catalog: dict, context: AccessContext):
    """``(layer, rule)`` if the principal may see the layer; the same 404 as an unknown layer otherwise."""
    layer = catalog.get(kind)
    rule = rule_for(principal, layer, context) if layer is not None else None
    if rule is None or not rule.visible:
        known = [k for k, candidate in catalog.items() if rule_for(principal, candidate, context).visible]
        raise NotFound(f"unknown layer {kind!r}; known layers: {', '.join(known) or 'none'}")
    return layer, rule


def apply_rule(gdf, layer, rule: LayerRule):
    """The rows and columns of a whole layer that ``rule`` lets through (for analyses, exports and prints,
    which read layers whole rather than by viewport); ``None`` if the layer is not visible at all."""
    if not rule.visible:
        return None
    if rule.owner_in is not None and layer.owner_field:
        gdf = gdf[gdf[layer.owner_field].isin(list(rule.owner_in))]
    if rule.mask is not None:
        gdf = gdf[gdf.intersects(rule.mask)]
    if rule.rows_from is not None and rule.rows_from[0] in gdf.columns:
        name, values = rule.rows_from
        column = gdf[name]
        gdf = gdf[column.isna() | (column == "") | column.isin(list(values))]
    gdf = redact_rows(gdf, layer, rule)
    hidden = [name for name in rule.hidden_fields if name in gdf.columns]
    return gdf.drop(columns=hidden)


def redact_rows(gdf, layer, rule: LayerRule):
    """Empty every field but the kept ones (and the geometry) in the rows ``rule.redact`` names: the reports of
    another enterprise that shares them. Every output of rows goes through here (``apply_rule``, the API)."""
    if rule.redact is None or len(gdf) == 0 or rule.redact[0] not in gdf.columns:
        return gdf
    name, values, kept = rule.redact
    rows = gdf[name].isin(list(values)).to_numpy()
    if not rows.any():
        return gdf
    gdf = gdf.copy()
    keep = set(kept) | {gdf.geometry.name, "fid"}
    for column in gdf.columns:
        if column not in keep:
            if gdf[column].dtype.kind in "biu":  # plain integers cannot be empty: to the nullable kind first
                gdf[column] = gdf[column].astype("Int64" if gdf[column].dtype.kind != "b" else "boolean")
            gdf.loc[rows, column] = None
    return gdf


def excludes_redacted(query, layer, rule: LayerRule, search: bool = False) -> bool:
    """Whether a query must leave out the emptied rows: a text search (it reads the emptied fields), or a
    filter on a field they do not show (it would tell their value)."""
    if rule.redact is None:
        return False
    kept = set(rule.redact[2])
    filtered = set(query.in_filters) | set(query.min_filters) | set(query.max_filters)
    return search or bool(filtered - kept - {layer.owner_field})


def read_visible(store, principal: Principal, kind: str, catalog: dict, context: AccessContext):
    """Layer ``kind`` as ``principal`` may see it, whole (GeoDataFrame, EPSG:4326); ``None`` when the layer
    is hidden from them, not loaded, or unknown: callers then leave it out without saying why."""
    layer = catalog.get(kind)
    if layer is None:
        return None
    rule = rule_for(principal, layer, context)
    if not rule.visible:
        return None
    try:
        gdf = store.read_layer(kind)
    except NotFound:
        return None
    return apply_rule(gdf, layer, rule)
