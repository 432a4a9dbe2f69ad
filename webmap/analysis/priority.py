"""Priority areas for police planning: where to patrol, and in what order (directive 3a).

Pure: GeoDataFrames in, a :class:`PriorityResult` out; no Flask, no store, no files. The steps:

1. **Filter** incidents by type, status (every status but "rejected" by default) and period (local dates).
2. **Grid**: hexagons (or squares) of ``cell_m`` metres in EPSG:5897, cropped to the city; incidents are
   put in cells by arithmetic on their metric coordinates (``webmap.analysis.grid``), counted with
   ``np.bincount``; optionally also per administrative unit (wards or districts). The per-incident arrays
   (coordinates, days, type and status codes, cell per grid) can be parsed once with
   :func:`prepare_incidents` and reused while the layer is unchanged.
3. **Hot and cold spots**: Getis-Ord Gi* of incidents per km² (cropped cells differ in area) on the lattice
   contiguity (esda), conditional permutation inference, Benjamini-Hochberg FDR, classes 90/95/99 %
   (``webmap.analysis.hotspots``); cells less than a quarter inside the city are not tested.
4. **Exposure-normalised risk**: observed incidents against those expected from the infrastructure in the
   cell (half by cable length, half by station count), smoothed so that a cell without infrastructure
   never divides by zero (see :data:`RISK_PRIOR`).
5. **Trend**: last 90 days against the same 90 days a year earlier: emerging, persistent, fading.
6. **Stake**: key sites, critical stations (criticality high or critical), trunk cable km.
7. **Score** 0-100 = hot spot (40) + trend (20) + risk (20) + stake (20) points, each a column; rank; class.

Every number used is in :data:`SCORE_WEIGHTS` and the other constants below, and in ``result.method``.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import asdict, dataclass, field
from datetime import timedelta, timezone
from functools import lru_cache

import numpy as np
import pandas as pd
import shapely

from webmap.analysis.grid import MIN_TESTED_SHARE
from webmap.errors import BadInput

__all__ = [
    "PriorityParams", "PriorityResult", "PreparedIncidents", "prepare_incidents", "compute_priority",
    "classify_trend", "smoothed_risk", "score_parts",
    "SCORE_WEIGHTS", "TREND_DAYS", "TREND_RATIO", "TREND_MIN_COUNT", "RISK_PRIOR", "STAKE_UNITS", "STAKE_FULL",
    "PRIORITY_CLASSES", "DEFAULT_EXCLUDED_STATUSES",
]

LOCAL_TZ = timezone(timedelta(hours=7))  # Cần Thơ local time, as the importer stores it (no DST)

#: points of each component in the 0-100 score
SCORE_WEIGHTS = {"hotspot": 40.0, "trend": 20.0, "risk": 20.0, "stake": 20.0}
#: share of the hot-spot points per confidence class of a HOT spot (cold spots and "none" get 0)
HOTSPOT_SHARE = {99: 1.0, 95: 0.75, 90: 0.5, 0: 0.0}
#: share of the trend points per trend class
TREND_SHARE = {"emerging": 1.0, "persistent": 0.6, "fading": 0.2, "none": 0.0}
#: trend windows: the last TREND_DAYS days up to the reference date, and the same days a year earlier
TREND_DAYS = 90
#: emerging: recent >= TREND_RATIO x previous; fading: previous >= TREND_RATIO x recent ...
TREND_RATIO = 1.5
#: ... with at least this many incidents in the larger window (fewer is too few to call a trend)
TREND_MIN_COUNT = 2
#: pseudo-incidents of the smoothed risk: risk = (incidents + k) / (expected + k)
RISK_PRIOR = 1.0
#: stake units: per key site, per critical station, per km of trunk cable; STAKE_FULL units = all points
STAKE_UNITS = {"key_sites": 2.0, "critical_stations": 1.0, "trunk_km": 2.0}
STAKE_FULL = 4.0
CRITICAL_LEVELS = ("high", "critical")
#: priority classes by score (lowest score of each)
PRIORITY_CLASSES = (("very_high", 60.0), ("high", 40.0), ("medium", 20.0), ("low", 0.0))
DEFAULT_EXCLUDED_STATUSES = ("rejected",)
MAX_PERMUTATIONS = 99_999
MIN_PERMUTATIONS = 99


def _incident_field_values(name: str) -> tuple[str, ...]:
    from webmap.catalog import get_layer

    return tuple(get_layer("incidents").get_field(name).allowed or ())


def _as_date(value, name):
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise BadInput(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None
    raise BadInput(f"{name} must be a date YYYY-MM-DD, got {value!r}")


def _as_choice_tuple(values, name, allowed):
    if values is None:
        return None
    if isinstance(values, str):
        values = [v for v in values.split(",")]
    values = tuple(sorted({str(v).strip() for v in values if str(v).strip()}))
    if not values:
        return None
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise BadInput(f"unknown incident {name} {unknown[0]!r}; choose from {', '.join(allowed)}")
    return values


@dataclass(frozen=True)
class PriorityParams:
    """What to compute: filters, grid and inference settings. Checked on creation (BadInput, one line).

    Equal parameters compare and hash equal (lists are sorted into tuples, ISO strings become dates), so a
    ``PriorityParams`` is a cache key.
    """

    types: tuple[str, ...] | None = None      # incident types; None = all
    statuses: tuple[str, ...] | None = None   # None = every status except "rejected"
    since: dt.date | None = None
    until: dt.date | None = None              # inclusive
    cell_m: float = 500.0                     # hexagon width / square side, metres (EPSG:5897)
    shape: str = "hex"                        # "hex" | "square"
    permutations: int = 999
    fdr_alpha: float = 0.10                   # Benjamini-Hochberg; classes 90/95/99 % after correction
    seed: int = 12345
    reference: dt.date | None = None          # end of the "last 90 days" trend window

    def __post_init__(self):
        from webmap.analysis.grid import check_cell

        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen dataclass
        set_("types", _as_choice_tuple(self.types, "type", _incident_field_values("type")))
        set_("statuses", _as_choice_tuple(self.statuses, "status", _incident_field_values("status")))
        for name in ("since", "until", "reference"):
            set_(name, _as_date(getattr(self, name), name))
        if self.since and self.until and self.since > self.until:
            raise BadInput(f"since ({self.since}) is after until ({self.until})")
        try:
            set_("cell_m", float(self.cell_m))
        except (TypeError, ValueError):
            raise BadInput(f"cell size must be a number of metres, got {self.cell_m!r}") from None
        check_cell(self.cell_m, self.shape)
        if isinstance(self.permutations, bool) or not isinstance(self.permutations, (int, np.integer)) or not (
                MIN_PERMUTATIONS <= self.permutations <= MAX_PERMUTATIONS):
            raise BadInput(f"permutations must be a whole number from {MIN_PERMUTATIONS} to {MAX_PERMUTATIONS}, "
                           f"got {self.permutations!r}")
        set_("permutations", int(self.permutations))
        if not (isinstance(self.fdr_alpha, (int, float)) and 0 < self.fdr_alpha <= 0.10):
            raise BadInput(f"fdr_alpha must be above 0 and at most 0.10, got {self.fdr_alpha!r}")
        set_("fdr_alpha", float(self.fdr_alpha))
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or not 0 <= self.seed < 2**32:
            raise BadInput(f"seed must be a whole number from 0 to 2**32-1, got {self.seed!r}")
        set_("seed", int(self.seed))

    @property
    def effective_statuses(self) -> tuple[str, ...]:
        """The statuses counted: the chosen ones, or every one but "rejected"."""
        if self.statuses is not None:
            return self.statuses
        return tuple(s for s in _incident_field_values("status") if s not in DEFAULT_EXCLUDED_STATUSES)

    def to_dict(self) -> dict:
        """JSON-ready: dates as ISO strings, tuples as lists."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, dt.date):
                out[key] = value.isoformat()
            elif isinstance(value, tuple):
                out[key] = list(value)
        return out


@dataclass
class PriorityResult:
    """Cells (and units) with every component of the score, and the method that produced them."""

    cells: object             # GeoDataFrame, EPSG:4326
    units: object | None      # GeoDataFrame, EPSG:4326, or None
    method: dict
    params: PriorityParams = field(default_factory=PriorityParams)

    def top(self, n: int = 10):
        """The ``n`` highest-ranked cells."""
        return self.cells.nsmallest(n, "rank")


# ----------------------------------------------------------------------------------------------------
# small pure rules (hand-checkable, used for cells and units alike)
# ----------------------------------------------------------------------------------------------------


def classify_trend(recent, previous) -> np.ndarray:
    """Trend class from counts in the last 90 days (``recent``) and the same 90 days a year earlier.

    - emerging: recent >= 2 and recent >= 1.5 x previous (2 against 0 is emerging);
    - fading: previous >= 2 and previous >= 1.5 x recent (0 against 2 is fading);
    - persistent: incidents in both windows, neither of the above;
    - none: otherwise (nothing, or a single incident in one window only).

    >>> classify_trend([0, 1, 2, 3, 2, 1, 0, 4], [0, 0, 0, 2, 2, 3, 2, 3]).tolist()
    ['none', 'none', 'emerging', 'emerging', 'persistent', 'fading', 'fading', 'persistent']
    """
    recent = np.asarray(recent, dtype=float)
    previous = np.asarray(previous, dtype=float)
    out = np.full(recent.shape, "none", dtype=object)
    both = (recent > 0) & (previous > 0)
    out[both] = "persistent"
    emerging = (recent >= TREND_MIN_COUNT) & (recent >= TREND_RATIO * previous)
    fading = (previous >= TREND_MIN_COUNT) & (previous >= TREND_RATIO * recent)
    out[emerging] = "emerging"
    out[fading & ~emerging] = "fading"
    return out


def expected_incidents(total: float, cable_km, stations, area_km2) -> np.ndarray:
    """Incidents each area would have if the ``total`` followed the infrastructure.

    Half in proportion to cable length, half to station count (a missing or empty layer gives its half to
    the other); with no infrastructure at all, in proportion to area.

    >>> expected_incidents(100, [1.0, 3.0, 0.0], [1, 0, 1], [1, 1, 1]).tolist()
    [37.5, 37.5, 25.0]
    """
    cable_km = np.asarray(cable_km, dtype=float)
    stations = np.asarray(stations, dtype=float)
    shares = [a / a.sum() for a in (cable_km, stations) if a.sum() > 0]
    if not shares:
        area = np.asarray(area_km2, dtype=float)
        shares = [area / area.sum()] if area.sum() > 0 else [np.zeros_like(area)]
    return total * sum(shares) / len(shares)


def smoothed_risk(incidents, expected, prior: float = RISK_PRIOR) -> np.ndarray:
    """Exposure-normalised risk: (incidents + k) / (expected + k), 1 = as the infrastructure predicts.

    The posterior mean of a Poisson rate ratio with a gamma(k, k) prior (mean 1): a cell with little
    infrastructure and few incidents is pulled towards 1 instead of dividing by (almost) zero; a cell with
    no infrastructure and no incident is exactly 1 (no evidence either way).

    >>> smoothed_risk([0, 3, 3, 20], [0.0, 0.0, 1.0, 4.0]).tolist()
    [1.0, 4.0, 2.0, 4.2]
    """
    return (np.asarray(incidents, dtype=float) + prior) / (np.asarray(expected, dtype=float) + prior)


def stake_units(key_sites, critical_stations, trunk_km) -> np.ndarray:
    """What is at stake, in units: 2 per key site, 1 per critical station, 2 per km of trunk cable."""
    return (STAKE_UNITS["key_sites"] * np.asarray(key_sites, dtype=float)
            + STAKE_UNITS["critical_stations"] * np.asarray(critical_stations, dtype=float)
            + STAKE_UNITS["trunk_km"] * np.asarray(trunk_km, dtype=float))


def score_parts(hot_share, trend, risk, stake) -> dict:
    """The four score components in points (rounded to 0.1) and their sum, the score.

    ``hot_share`` is the hot-spot share (0..1, see :data:`HOTSPOT_SHARE`), ``trend`` the trend class,
    ``risk`` the smoothed risk, ``stake`` the stake units.

    - score_hotspot = 40 x hot_share
    - score_trend = 20 x {emerging 1, persistent 0.6, fading 0.2, none 0}
    - score_risk = 20 x max(0, 1 - 1 / risk): the share of incidents beyond what the infrastructure explains
    - score_stake = 20 x min(1, stake units / 4)

    >>> parts = score_parts([1.0], ["emerging"], [2.0], [2.0])
    >>> [float(parts[k][0]) for k in ("score_hotspot", "score_trend", "score_risk", "score_stake", "score")]
    [40.0, 20.0, 10.0, 10.0, 80.0]
    """
    hot_share = np.asarray(hot_share, dtype=float)
    trend_share = np.array([TREND_SHARE[t] for t in np.asarray(trend, dtype=object)], dtype=float)
    risk = np.asarray(risk, dtype=float)
    risk_share = np.where(risk > 1.0, 1.0 - 1.0 / np.where(risk > 1.0, risk, 1.0), 0.0)
    stake_share = np.minimum(1.0, np.asarray(stake, dtype=float) / STAKE_FULL)
    parts = {
        "score_hotspot": np.round(SCORE_WEIGHTS["hotspot"] * hot_share, 1),
        "score_trend": np.round(SCORE_WEIGHTS["trend"] * trend_share, 1),
        "score_risk": np.round(SCORE_WEIGHTS["risk"] * risk_share, 1),
        "score_stake": np.round(SCORE_WEIGHTS["stake"] * stake_share, 1),
    }
    parts["score"] = np.round(sum(parts.values()), 1)
    return parts


def priority_class(score) -> np.ndarray:
    """very_high (>= 60), high (>= 40), medium (>= 20), low."""
    score = np.asarray(score, dtype=float)
    out = np.full(score.shape, "low", dtype=object)
    for name, lowest in reversed(PRIORITY_CLASSES):
        out[score >= lowest] = name
    return out


def rank_rows(score, incidents, area_id, area_order=None) -> np.ndarray:
    """1 = highest score; ties by more incidents, then by area id (deterministic).

    ``area_order``, when given, is each area id's place in sorted order (``Grid.area_order``, kept per
    grid): the same ranks without sorting the ids as text on every call.
    """
    key = np.asarray(area_order) if area_order is not None else np.asarray(area_id, dtype=str)
    order = np.lexsort((key, -np.asarray(incidents, dtype=float), -np.asarray(score, dtype=float)))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    return rank


# ----------------------------------------------------------------------------------------------------
# reading the inputs (vectorised)
# ----------------------------------------------------------------------------------------------------

_EPOCH = dt.date(1970, 1, 1)


def _day_number(day: dt.date | None):
    return None if day is None else (day - _EPOCH).days


def local_days(values) -> tuple[np.ndarray, np.ndarray]:
    """Local (UTC+7) calendar day of each timestamp as days since 1970-01-01, and a mask of known ones.

    Stored incidents hold ISO text "2025-03-14T02:35:00+07:00": the day is its first 10 characters (read
    with pyarrow, no per-row Python). Other offsets, datetimes and dates go through pandas.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    series = pd.Series(values)
    n = len(series)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = series
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            stamps = series.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
        known = stamps.notna().to_numpy()
        days = stamps.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
        return np.where(known, days, 0), known
    try:
        text = pa.array(series, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = pa.array(series.map(lambda v: None if v is None or v != v else str(v)), type=pa.string())
    # the stored form: every value ends in +07:00 (nulls aside), so its first 10 characters are the local day
    # (or all are plain dates); anything else (other offsets, spaces, other formats) takes pandas' path
    if (pc.all(pc.ends_with(text, "+07:00")).as_py() is not False
            or pc.all(pc.equal(pc.utf8_length(text), 10)).as_py() is not False):
        try:
            days = pc.cast(pc.utf8_slice_codeunits(text, 0, 10), pa.date32())
            known = days.is_valid().to_numpy(zero_copy_only=False)
            out = days.fill_null(0).cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
            return np.where(known, out, 0), known
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # not all ISO dates: the slow, forgiving path
    stamps = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    stamps = stamps.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    known = stamps.notna().to_numpy()
    days = stamps.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype(np.int64)
    return np.where(known, days, 0), known


def _in_values(values, allowed) -> np.ndarray:
    return pd.Series(values).isin(list(allowed)).to_numpy(dtype=bool)


def _metric_geoms(gdf):
    """Geometries of ``gdf`` in EPSG:5897 metres as a numpy array (empty when ``gdf`` is None/empty)."""
    if gdf is None or len(gdf) == 0:
        return np.array([], dtype=object), np.zeros(0, dtype=bool)
    from webmap.crs import to_metric

    geoms = to_metric(gdf[[gdf.geometry.name]]).geometry.to_numpy()
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    return geoms[ok], ok


def metric_points(geoms, crs, grid=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y in EPSG:5897 of point geometries, and a mask of those that have a position, vectorised.

    Lon/lat points go through ``grid.metric_from_lonlat`` when a grid is given (a fitted polynomial,
    exact to under 1 mm over the city; NaN outside the city's box), else the exact pinned pipeline.
    Missing or empty geometries give NaN; a line or polygon where a point is expected, a point on it.
    """
    from webmap.crs import lonlat_to_metric, to_metric

    geoms = np.asarray(geoms, dtype=object)
    lon, lat, positioned = point_xy(geoms)
    if _is_lonlat(crs):
        x, y = grid.metric_from_lonlat(lon, lat) if grid is not None else lonlat_to_metric(lon, lat)
    else:
        import geopandas as gpd

        moved = to_metric(gpd.GeoDataFrame(geometry=gpd.GeoSeries(shapely.points(lon, lat), crs=crs)))
        x, y = shapely.get_x(moved.geometry.to_numpy()), shapely.get_y(moved.geometry.to_numpy())
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float), positioned


def point_xy(geoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y of point geometries in their own CRS (NaN where missing or empty; a point on a line or
    polygon), and a mask of those that have a position."""
    geoms = np.asarray(geoms, dtype=object)
    coords, owner = (shapely.get_coordinates(geoms, return_index=True) if len(geoms)
                     else (np.zeros((0, 2)), np.zeros(0, dtype=np.int64)))
    # exactly one coordinate per geometry, in order: all points, none missing or empty (the count alone is not
    # enough: a multipoint of two and an empty point also make two coordinates for two geometries)
    if len(coords) == len(geoms) and (owner == np.arange(len(geoms))).all():
        return coords[:, 0], coords[:, 1], np.ones(len(geoms), dtype=bool)
    positioned = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    have = geoms[positioned]
    if not (shapely.get_type_id(have) == 0).all():
        have = shapely.point_on_surface(have)  # a polygon or line where points are expected
    x = np.full(len(geoms), np.nan)
    y = np.full(len(geoms), np.nan)
    x[positioned], y[positioned] = shapely.get_x(have), shapely.get_y(have)  # (GEOS refuses x of an empty point)
    return x, y, positioned


def _is_lonlat(crs) -> bool:
    from pyproj import CRS

    return crs is not None and CRS.from_user_input(crs).equals(CRS.from_epsg(4326))


def _to_lonlat(geoms: np.ndarray) -> np.ndarray:
    """Metric (EPSG:5897) geometries back to WGS 84 lon/lat with the project's pinned datum shift."""
    from webmap.crs import METRIC_CRS, resolve_crs

    return resolve_crs(METRIC_CRS).transform_geometries(geoms)


def _lines_per_area(lines: np.ndarray, tree: shapely.STRtree, areas: np.ndarray, n: int) -> np.ndarray:
    """km of ``lines`` inside each area (areas indexed by the tree)."""
    if len(lines) == 0 or n == 0:
        return np.zeros(n)
    line_idx, area_idx = tree.query(lines, predicate="intersects")
    if len(line_idx) == 0:
        return np.zeros(n)
    km = shapely.length(shapely.intersection(lines[line_idx], areas[area_idx])) / 1000.0
    return np.bincount(area_idx, weights=km, minlength=n)


def _features_per_area(geoms: np.ndarray, tree: shapely.STRtree, n: int) -> np.ndarray:
    """How many features touch each area (a feature over two areas counts in both)."""
    if len(geoms) == 0 or n == 0:
        return np.zeros(n, dtype=np.int64)
    _, area_idx = tree.query(geoms, predicate="intersects")
    return np.bincount(area_idx, minlength=n)


def _points_to_units(x, y, unit_polys, unit_tree):
    """Unit index of each metric point (first match on a shared border), -1 outside every unit."""
    out = np.full(len(x), -1, dtype=np.int64)
    if len(x) == 0 or len(unit_polys) == 0:
        return out
    pt_idx, unit_idx = unit_tree.query(shapely.points(x, y), predicate="intersects")
    first = np.unique(pt_idx, return_index=True)[1]
    out[pt_idx[first]] = unit_idx[first]
    return out


# ----------------------------------------------------------------------------------------------------
# incidents, parsed once per layer version
# ----------------------------------------------------------------------------------------------------


def _codes(values) -> tuple[np.ndarray, tuple]:
    """Small integer codes of a text column (-1 for missing) and the distinct values they stand for."""
    codes, uniques = pd.factorize(pd.Series(values), use_na_sentinel=True)
    dtype = np.int8 if len(uniques) < 127 else np.int32
    return codes.astype(dtype), tuple(uniques.tolist() if hasattr(uniques, "tolist") else list(uniques))


class PreparedIncidents:
    """The per-incident arrays the analysis needs, parsed once from an incidents layer.

    Why: at a million incidents, reading the coordinates, parsing the dates and projecting cost about a
    second, far more than counting. Everything here depends only on the layer's content, so a caller that
    knows the layer did not change (``webmap.priorities``: per layer version, versions are immutable) keeps
    one ``PreparedIncidents`` and a new filter or period costs masks and ``np.bincount``.

    Holds (n = incidents): ``px``, ``py`` (float64, the layer's CRS), ``positioned`` (bool), ``days`` (int32 local
    day numbers), ``dated`` (bool), type and status codes (int8) with their values; and, per grid (the last
    :attr:`GRIDS_KEPT`), the cell of every incident (int32), and per grid and unit layer the unit of every
    incident. About 30 bytes per incident, plus 4 per grid and 8 per unit layer.
    """

    GRIDS_KEPT = 3

    def __init__(self, incidents):
        n = 0 if incidents is None else len(incidents)
        self.n = n
        self.crs = None if incidents is None else incidents.crs
        self.lonlat = bool(n) and _is_lonlat(self.crs)
        if n:
            self.px, self.py, self.positioned = point_xy(incidents.geometry.to_numpy())
            days, self.dated = local_days(incidents["occurred_at"])
            self.days = days.astype(np.int32)
            self.type_codes, self.type_values = _codes(incidents["type"])
            self.status_codes, self.status_values = _codes(incidents["status"])
            self._metric = None if self.lonlat else self._exact_metric()
        else:
            self.px = self.py = np.zeros(0)
            self.positioned = self.dated = np.zeros(0, dtype=bool)
            self.days = np.zeros(0, dtype=np.int32)
            self.type_codes = self.status_codes = np.zeros(0, dtype=np.int8)
            self.type_values = self.status_values = ()
            self._metric = (np.zeros(0), np.zeros(0))
        self._lock = threading.Lock()
        self._grids: list = []   # [(grid, cell)], most recent last
        self._units: dict = {}   # (id(grid), units fingerprint) -> (grid, unit of each incident)

    def __len__(self) -> int:
        return self.n

    def _exact_metric(self):
        import geopandas as gpd

        from webmap.crs import to_metric

        moved = to_metric(gpd.GeoDataFrame(geometry=gpd.GeoSeries(shapely.points(self.px, self.py), crs=self.crs)))
        geoms = moved.geometry.to_numpy()
        return np.asarray(shapely.get_x(geoms), dtype=float), np.asarray(shapely.get_y(geoms), dtype=float)

    def metric(self, grid, index=None) -> tuple[np.ndarray, np.ndarray]:
        """EPSG:5897 x, y of the incidents (or of those at ``index``), as :func:`metric_points` gives them:
        lon/lat through the grid's fitted polynomial (elementwise, so a subset gives the same numbers)."""
        if self._metric is not None:
            x, y = self._metric
            return (x, y) if index is None else (x[index], y[index])
        if index is None:
            return grid.metric_from_lonlat(self.px, self.py)
        return grid.metric_from_lonlat(self.px[index], self.py[index])

    def cells(self, grid) -> np.ndarray:
        """Cell number of every incident on ``grid`` (-1: no position, or outside the city), kept per grid."""
        with self._lock:
            for kept, cell in self._grids:
                if kept is grid:
                    return cell
        x, y = self.metric(grid)
        located = np.isfinite(x) & np.isfinite(y)
        cell = np.full(self.n, -1, dtype=np.int32)
        cell[located] = grid.locate(x[located], y[located])
        cell.setflags(write=False)
        with self._lock:
            self._grids = [g for g in self._grids if g[0] is not grid][-(self.GRIDS_KEPT - 1):] + [(grid, cell)]
        return cell

    def units_of(self, grid, cell, key, compute) -> np.ndarray:
        """The unit of every incident for ``grid`` and the unit layer ``key`` (kept; ``compute()`` makes it)."""
        with self._lock:
            hit = self._units.get((id(grid), key))
            if hit is not None and hit[0] is grid:
                return hit[1]
        unit_of = compute()
        unit_of.setflags(write=False)
        with self._lock:
            live = {id(g) for g, _ in self._grids} | {id(grid)}
            self._units = {k: v for k, v in self._units.items() if k[0] in live}
            self._units[(id(grid), key)] = (grid, unit_of)
        return unit_of


def prepare_incidents(incidents) -> PreparedIncidents:
    """Parse an incidents GeoDataFrame once (see :class:`PreparedIncidents`); give the result to
    :func:`compute_priority` instead of the frame to skip the parsing on every call."""
    return incidents if isinstance(incidents, PreparedIncidents) else PreparedIncidents(incidents)


def _selection_tables(prepared, params):
    """Lookup tables (one slot per code, the last for a missing value) of the statuses and types counted."""
    status_ok = np.array([v in set(params.effective_statuses) for v in prepared.status_values] + [False])
    if params.types is None:
        type_ok = np.ones(len(prepared.type_values) + 1, dtype=bool)  # no type filter: missing types too
    else:
        type_ok = np.array([v in set(params.types) for v in prepared.type_values] + [False])
    return status_ok, type_ok


def _incident_pass(cell, days, dated, positioned, status_codes, status_ok, type_codes, type_ok,
                   has_since, since, has_until, until, n_cells):  # pragma: no cover - compiled (numba)
    """One pass: incidents per cell in the period; (filtered, without position, outside the city, outside the
    period); and the newest day of the filtered incidents (-1, False when none is dated)."""
    counts = np.zeros(n_cells, dtype=np.int64)
    info = np.zeros(4, dtype=np.int64)
    newest = -1
    have_newest = False
    no_status = status_ok.shape[0] - 1
    no_type = type_ok.shape[0] - 1
    for i in range(cell.shape[0]):
        s = status_codes[i]
        t = type_codes[i]
        if not status_ok[s if s >= 0 else no_status] or not type_ok[t if t >= 0 else no_type]:
            continue
        info[0] += 1
        d = days[i]
        known = dated[i]
        if known and (not have_newest or d > newest):
            newest = d
            have_newest = True
        if not positioned[i]:
            info[1] += 1
            continue
        c = cell[i]
        if c < 0:
            info[2] += 1
            continue
        if (has_since and not (known and d >= since)) or (has_until and not (known and d <= until)):
            info[3] += 1
            continue
        counts[c] += 1
    return counts, info, newest, have_newest


def _window_pass(cell, days, dated, status_codes, status_ok, type_codes, type_ok, r0, r1, p0, p1,
                 n_cells):  # pragma: no cover - compiled (numba)
    """Incidents per cell in the recent and the previous trend window (filters by type and status only)."""
    recent = np.zeros(n_cells, dtype=np.int64)
    previous = np.zeros(n_cells, dtype=np.int64)
    no_status = status_ok.shape[0] - 1
    no_type = type_ok.shape[0] - 1
    for i in range(cell.shape[0]):
        s = status_codes[i]
        t = type_codes[i]
        c = cell[i]
        if c < 0 or not dated[i] or not status_ok[s if s >= 0 else no_status] or not type_ok[t if t >= 0 else no_type]:
            continue
        d = days[i]
        if r0 <= d <= r1:
            recent[c] += 1
        if p0 <= d <= p1:
            previous[c] += 1
    return recent, previous


_KERNELS = None


def _kernels():
    """The two counting loops compiled by numba (cached on disk, see ``hotspots.compiled``), or None."""
    global _KERNELS
    if _KERNELS is None:
        from webmap.analysis.hotspots import compiled

        passes = compiled(_incident_pass), compiled(_window_pass)
        _KERNELS = passes if None not in passes else ()
    return _KERNELS or None


def warm_kernels() -> None:
    """Compile (or load from numba's cache) the counting loops, with the argument types a real call has
    (int32 days, int8 codes, a read-only int32 cell array): part of ``hotspots.warm_up``."""
    from types import SimpleNamespace

    codes, values = _codes(pd.Series(["verified", None]))
    prepared = SimpleNamespace(days=np.array([20000, 0], dtype=np.int32), dated=np.array([True, False]),
                               positioned=np.array([True, False]), status_codes=codes, status_values=values,
                               type_codes=codes, type_values=values)
    cell = np.array([0, -1], dtype=np.int32)
    cell.setflags(write=False)
    for params in (PriorityParams(), PriorityParams(since="2025-01-01", until="2025-02-01")):
        count_incidents(prepared, cell, 1, params)


def count_incidents(prepared, cell, n_cells, params) -> dict:
    """Counts per cell of the incidents kept by ``params``: in the period, in the two trend windows; the trend
    reference date; the ``method["counts"]`` numbers about what was left out; and ``masks()``, the
    per-incident masks (in period, recent, previous) for the unit table.

    The counting rule is :func:`_count_with_masks` (numpy masks and ``np.bincount``); at a million incidents
    the masks cost more than the rest of the table, so the counts come from two compiled loops that read
    each incident once (:func:`_incident_pass`, :func:`_window_pass`; integers, so exactly the same counts:
    ``tests/test_priority.py`` checks them against the masks). Without numba, the masks.
    """
    kernels = _kernels()
    if kernels is None:
        return _count_with_masks(prepared, cell, n_cells, params)
    incident_pass, window_pass = kernels
    status_ok, type_ok = _selection_tables(prepared, params)
    since_day, until_day = _day_number(params.since), _day_number(params.until)
    codes = (prepared.status_codes, status_ok, prepared.type_codes, type_ok)
    counts, info, newest, have_newest = incident_pass(
        cell, prepared.days, prepared.dated, prepared.positioned, *codes,
        since_day is not None, since_day or 0, until_day is not None, until_day or 0, n_cells)
    reference = params.reference or params.until
    if reference is None and have_newest:
        reference = _EPOCH + timedelta(days=int(newest))
    if reference is None:
        reference = dt.date.today()
    r0, r1, p0, p1 = _windows(reference)
    recent, previous = window_pass(cell, prepared.days, prepared.dated, *codes, r0, r1, p0, p1, n_cells)
    return {"counts": counts, "recent": recent, "previous": previous, "reference": reference,
            "info": dict(zip(("incidents_filtered", "incidents_without_position", "incidents_outside_city",
                              "incidents_outside_period"), (int(v) for v in info))),
            "masks": lambda: _count_with_masks(prepared, cell, n_cells, params)["masks"]()}


def _count_with_masks(prepared, cell, n_cells, params) -> dict:
    """:func:`count_incidents` with numpy masks: the reference rule (and the fallback without numba)."""
    days, dated, finite = prepared.days, prepared.dated, prepared.positioned
    status_ok, type_ok = _selection_tables(prepared, params)
    selected = status_ok[prepared.status_codes] & type_ok[prepared.type_codes]  # code -1: the last slot
    in_city = selected & (cell >= 0)
    in_period = in_city.copy()
    since_day, until_day = _day_number(params.since), _day_number(params.until)
    if since_day is not None:
        in_period &= dated & (days >= since_day)
    if until_day is not None:
        in_period &= dated & (days <= until_day)
    counts = np.bincount(cell[in_period], minlength=n_cells)
    reference = params.reference or params.until
    if reference is None:
        newest = days[selected & dated]
        if len(newest):
            reference = _EPOCH + timedelta(days=int(newest.max()))
    if reference is None:
        reference = dt.date.today()
    r0, r1, p0, p1 = _windows(reference)
    in_dated_city = in_city & dated
    in_recent = in_dated_city & (days >= r0) & (days <= r1)
    in_previous = in_dated_city & (days >= p0) & (days <= p1)
    return {"counts": counts, "reference": reference,
            "recent": np.bincount(cell[in_recent], minlength=n_cells),
            "previous": np.bincount(cell[in_previous], minlength=n_cells),
            "info": {"incidents_filtered": int(selected.sum()),
                     "incidents_without_position": int((selected & ~finite).sum()),
                     "incidents_outside_city": int((selected & finite & ~in_city).sum()),
                     "incidents_outside_period": int((in_city & ~in_period).sum())},
            "masks": lambda: (in_period, in_recent, in_previous)}


# ----------------------------------------------------------------------------------------------------
# the computation
# ----------------------------------------------------------------------------------------------------


def _windows(reference: dt.date):
    """(recent_start, recent_end, previous_start, previous_end) day numbers, inclusive."""
    try:
        year_before = reference.replace(year=reference.year - 1)
    except ValueError:  # 29 February
        year_before = reference.replace(year=reference.year - 1, day=28)
    recent_end = _day_number(reference)
    previous_end = _day_number(year_before)
    return recent_end - TREND_DAYS + 1, recent_end, previous_end - TREND_DAYS + 1, previous_end


def compute_priority(incidents, *, boundary, cables=None, stations=None, key_sites=None, units=None,
                     params: PriorityParams = PriorityParams()) -> PriorityResult:
    """Priority areas: grid cells (and optionally units) ranked by a score of four explained components.

    Parameters
    ----------
    incidents : GeoDataFrame or PreparedIncidents
        Points with ``occurred_at``, ``type``, ``status`` (as stored: EPSG:4326), or the same parsed once by
        :func:`prepare_incidents` (the same result, without the parsing).
    boundary : GeoDataFrame
        The city's polygons (districts); their union is the city, and every cell is cropped to it.
    cables, stations, key_sites : GeoDataFrame, optional
        Infrastructure for exposure (cable km, stations) and stake (``tier == "trunk"`` cables, stations of
        criticality high or critical, key sites).
    units : GeoDataFrame, optional
        Administrative units (``code``, ``name``) for the per-unit table.
    params : PriorityParams

    Returns
    -------
    PriorityResult
        ``cells`` and ``units`` GeoDataFrames in EPSG:4326 with the columns listed in the module's
        contract, and ``method``: what was done, with which parameters, on how many incidents.

    Notes
    -----
    Incidents outside the city (or without a position) are counted in ``method["counts"]`` and left
    out. The trend windows use the type and status filters but their own dates (ending at
    ``params.reference``, else ``params.until``, else the newest incident), not ``since``/``until``.
    """
    import geopandas as gpd

    from webmap.analysis.grid import grid_for

    if boundary is None or len(boundary) == 0:
        raise BadInput("no city boundary: load the districts layer first")
    started = dt.datetime.now(dt.timezone.utc)
    grid = grid_for(city_of(boundary), params.cell_m, params.shape)
    n_cells = len(grid)

    # -- incidents: filter, locate, count (on every incident, with masks: the arrays are parsed and the
    # cells located once per layer and grid, see PreparedIncidents) ---------------------------------------
    prepared = prepare_incidents(incidents)
    n_input = len(prepared)
    cell = prepared.cells(grid)
    counted = count_incidents(prepared, cell, n_cells, params)
    counts, recent, previous, reference = (counted[k] for k in ("counts", "recent", "previous", "reference"))

    # -- Gi* on density (cells differ in area once cropped), on the cells at least a quarter inside the city
    area_km2 = shapely.area(grid.polygons) / 1e6
    gi = hot_and_cold_spots(counts, area_km2, grid, params)

    # -- infrastructure: exposure and stake (the same for every filter: kept per grid and layer content)
    infra = infrastructure(grid, cables, stations, key_sites)
    cable_km, trunk_km = infra["cable_km"], infra["trunk_km"]
    station_count, critical_count, site_count = infra["stations"], infra["critical_stations"], infra["key_sites"]

    total = float(counts.sum())
    expected = expected_incidents(total, cable_km, station_count, area_km2)
    risk = smoothed_risk(counts, expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_cable_km = np.where(cable_km > 0, counts / np.where(cable_km > 0, cable_km, 1), np.nan)
        per_station = np.where(station_count > 0, counts / np.where(station_count > 0, station_count, 1), np.nan)
    trend = classify_trend(recent, previous)
    hot_share = np.where(gi.hotspot == "hot", np.vectorize(HOTSPOT_SHARE.get)(gi.confidence), 0.0) if n_cells else np.zeros(0)
    stake = stake_units(site_count, critical_count, trunk_km)
    parts = score_parts(hot_share, trend, risk, stake)

    centre_ll = grid.lonlat_centroids()
    # the columns in their final order (reordering a finished frame copies every column)
    cells = gpd.GeoDataFrame(
        {
            "area_id": grid.area_id.astype(str),
            "incidents": counts.astype(np.int64),
            "gi_z": np.round(gi.z, 4),
            "p_value": gi.p,
            "q_value": gi.q,
            "hotspot": gi.hotspot.astype(str),
            "confidence": gi.confidence.astype(np.int64),
            **_component_columns(cable_km, station_count, per_cable_km, per_station, expected, risk, recent,
                                 previous, trend, site_count, critical_count, trunk_km),
            **parts,
            "rank": rank_rows(parts["score"], counts, grid.area_id, area_order=grid.area_order()),
            "priority_class": priority_class(parts["score"]).astype(str),
            "centroid_lon": np.round(centre_ll[:, 0], 7),
            "centroid_lat": np.round(centre_ll[:, 1], 7),
        },
        geometry=grid.lonlat_polygons(),
        crs="EPSG:4326",
    )

    # -- units -------------------------------------------------------------------------------------------
    unit_frame = None
    if units is not None and len(units):
        unit_frame = _unit_table(
            units, grid=grid, gi=gi, prepared=prepared, cell=cell, masks=counted["masks"](),
            hot_share_cells=hot_share, total=total, cable_km_total=cable_km.sum(),
            stations_total=station_count.sum(), cable_geoms=infra["cable_geoms"], trunk_mask=infra["trunk_mask"],
            st_x=infra["station_x"], st_y=infra["station_y"], critical_mask=infra["critical_mask"],
            site_geoms=infra["site_geoms"])

    counts_info = {
        "incidents_input": int(n_input),
        **counted["info"],
        "incidents_used": int(counts.sum()),
        "incidents_recent": int(recent.sum()),
        "incidents_previous": int(previous.sum()),
        "cells": int(n_cells),
        "cells_with_incidents": int((counts > 0).sum()),
        "hot_cells": int((gi.hotspot == "hot").sum()),
        "cold_cells": int((gi.hotspot == "cold").sum()),
        "hot_cells_by_confidence": {str(c): int(((gi.hotspot == "hot") & (gi.confidence == c)).sum())
                                    for c in (99, 95, 90)},
        "units": 0 if unit_frame is None else int(len(unit_frame)),
    }
    method = build_method(params, grid, reference=reference, counts=counts_info, computed_at=started)
    return PriorityResult(cells=cells, units=unit_frame, method=method, params=params)


_CITIES: dict = {}


def city_of(boundary):
    """The city in EPSG:5897: the union of the boundary polygons (made valid), kept per boundary content."""
    from webmap.crs import to_metric

    key = _fingerprint(boundary, [])
    with _INFRA_LOCK:
        city = _CITIES.get(key)
    if city is None:
        city = shapely.union_all(to_metric(boundary[[boundary.geometry.name]]).geometry.to_numpy())
        city = shapely.make_valid(city) if not shapely.is_valid(city) else city
        with _INFRA_LOCK:
            if len(_CITIES) >= 4:
                _CITIES.clear()
            _CITIES[key] = city
    return city


_INFRA_CACHE: "OrderedDict" = None
_INFRA_LOCK = threading.Lock()
_INFRA_CACHE_SIZE = 8


def _fingerprint(gdf, columns) -> str:
    """SHA-256 of a layer's geometries and the named columns: equal content, equal fingerprint."""
    import hashlib

    digest = hashlib.sha256()
    if gdf is None or len(gdf) == 0:
        return "none"
    digest.update(str(gdf.crs).encode())
    digest.update(b"".join(shapely.to_wkb(gdf.geometry.to_numpy())))
    for column in columns:
        if column in gdf:
            digest.update(column.encode())
            digest.update("\x1f".join(map(str, gdf[column].tolist())).encode())
    return digest.hexdigest()


def infrastructure(grid, cables, stations, key_sites) -> dict:
    """Per cell: cable km, trunk km, stations, critical stations, key sites; and the metric geometries.

    Depends only on the grid and the three layers, not on the incident filters, so it is kept for the last
    few (grid, layer contents) and shared by every result computed on them.
    """
    global _INFRA_CACHE
    from collections import OrderedDict

    key = (id(grid), grid.cell_m, grid.shape, len(grid), _fingerprint(cables, ["tier"]),
           _fingerprint(stations, ["criticality"]), _fingerprint(key_sites, []))
    with _INFRA_LOCK:
        if _INFRA_CACHE is None:
            _INFRA_CACHE = OrderedDict()
        hit = _INFRA_CACHE.get(key)
        if hit is not None and hit[0] is grid:
            return hit[1]
    n = len(grid)
    tree = grid.tree()
    out = {"cable_km": np.zeros(n), "trunk_km": np.zeros(n), "stations": np.zeros(n, dtype=np.int64),
           "critical_stations": np.zeros(n, dtype=np.int64), "cable_geoms": np.array([], dtype=object),
           "trunk_mask": np.zeros(0, dtype=bool), "station_x": np.zeros(0), "station_y": np.zeros(0),
           "critical_mask": np.zeros(0, dtype=bool), "site_geoms": np.array([], dtype=object)}
    if cables is not None and len(cables):
        geoms, ok = _metric_geoms(cables)
        tiers = cables["tier"].to_numpy(dtype=object)[ok] if "tier" in cables else np.full(len(geoms), None)
        out.update(cable_geoms=geoms, trunk_mask=tiers == "trunk",
                   cable_km=_lines_per_area(geoms, tree, grid.polygons, n),
                   trunk_km=_lines_per_area(geoms[tiers == "trunk"], tree, grid.polygons, n))
    if stations is not None and len(stations):
        st_x, st_y, _ = metric_points(stations.geometry.to_numpy(), stations.crs)
        ok = np.isfinite(st_x) & np.isfinite(st_y)
        st_cell = np.full(len(st_x), -1, dtype=np.int64)
        st_cell[ok] = grid.locate(st_x[ok], st_y[ok])
        critical = (_in_values(stations["criticality"], CRITICAL_LEVELS) if "criticality" in stations
                    else np.zeros(len(st_x), dtype=bool))
        out.update(station_x=st_x, station_y=st_y, critical_mask=critical,
                   stations=np.bincount(st_cell[st_cell >= 0], minlength=n),
                   critical_stations=np.bincount(st_cell[(st_cell >= 0) & critical], minlength=n))
    if key_sites is not None and len(key_sites):
        out["site_geoms"], _ = _metric_geoms(key_sites)
    out["key_sites"] = _features_per_area(out["site_geoms"], tree, n)
    with _INFRA_LOCK:
        _INFRA_CACHE[key] = (grid, out)
        while len(_INFRA_CACHE) > _INFRA_CACHE_SIZE:
            _INFRA_CACHE.popitem(last=False)
    return out


def hot_and_cold_spots(counts, area_km2, grid, params: PriorityParams):
    """Gi* of incidents per km² over the grid's tested cells, spread back to every cell (untested: none)."""
    from webmap.analysis import hotspots

    n = len(grid)
    tested = grid.tested
    density = counts[tested] / area_km2[tested]
    gi = hotspots.local_gi_star(density, grid.weights(), permutations=params.permutations, seed=params.seed,
                                fdr_alpha=params.fdr_alpha)

    def spread(values, fill, dtype=float):
        out = np.full(n, fill, dtype=dtype)
        out[tested] = values
        return out

    return hotspots.GiResult(
        gi=spread(gi.gi, np.nan), z=spread(gi.z, np.nan), p=spread(gi.p, np.nan), q=spread(gi.q, np.nan),
        p_sim=spread(gi.p_sim, np.nan), hotspot=spread(gi.hotspot, "none", object),
        confidence=spread(gi.confidence, 0, np.int64), permutations=gi.permutations, seed=gi.seed)


def _unit_table(units, *, grid, gi, prepared, cell, masks, hot_share_cells, total,
                cable_km_total, stations_total, cable_geoms, trunk_mask, st_x, st_y, critical_mask, site_geoms):
    """Per administrative unit: the same components, the hot-spot part from the unit's incidents in hot cells."""
    import geopandas as gpd

    from webmap.crs import to_metric

    polys = to_metric(units[[units.geometry.name]]).geometry.to_numpy()
    n = len(polys)
    utree = shapely.STRtree(polys)
    # incidents: a cell wholly inside one unit gives its unit to all its incidents; only incidents in cells
    # cut by a unit border are tested point by point
    def locate_units():
        cell_unit = np.full(len(grid), -1, dtype=np.int64)
        c_idx, u_idx = utree.query(grid.polygons, predicate="within")
        cell_unit[c_idx] = u_idx
        unit_of = np.full(len(cell), -1, dtype=np.int64)
        located = cell >= 0
        unit_of[located] = cell_unit[cell[located]]
        loose = np.flatnonzero(located & (unit_of < 0))
        unit_of[loose] = _points_to_units(*prepared.metric(grid, loose), polys, utree)
        return unit_of

    # every located incident (the filters are masks below), kept with the prepared incidents per unit layer
    unit_of = prepared.units_of(grid, cell, _fingerprint(units, []), locate_units)
    in_period, in_recent, in_previous = masks
    ok = unit_of >= 0  # (in_period, in_recent, in_previous imply a cell, so unit_of is known for them)
    sel = ok & in_period
    sel_unit, sel_cell = unit_of[sel], cell[sel]
    counts = np.bincount(sel_unit, minlength=n)
    recent = np.bincount(unit_of[ok & in_recent], minlength=n)
    previous = np.bincount(unit_of[ok & in_previous], minlength=n)
    hot_weight = np.bincount(sel_unit, weights=hot_share_cells[sel_cell], minlength=n)
    in_hot = np.bincount(sel_unit, weights=(gi.hotspot == "hot").astype(float)[sel_cell], minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        hot_share = np.where(counts > 0, hot_weight / np.maximum(counts, 1), 0.0)
        hot_incident_share = np.where(counts > 0, in_hot / np.maximum(counts, 1), 0.0)
    # cells by the unit of their centroid: how many hot/cold cells, the best confidence
    cent = grid.centroids()
    cent_unit = _points_to_units(cent[:, 0], cent[:, 1], polys, utree) if len(cent) else np.zeros(0, dtype=np.int64)
    has = cent_unit >= 0
    hot_cells = np.bincount(cent_unit[has & (gi.hotspot == "hot")], minlength=n)
    cold_cells = np.bincount(cent_unit[has & (gi.hotspot == "cold")], minlength=n)
    confidence = np.zeros(n, dtype=np.int64)
    hot_idx = np.flatnonzero(has & (gi.hotspot == "hot"))
    np.maximum.at(confidence, cent_unit[hot_idx], gi.confidence[hot_idx])
    hotspot = np.where(hot_cells > 0, "hot", np.where(cold_cells > 0, "cold", "none")).astype(object)

    cable_km = _lines_per_area(cable_geoms, utree, polys, n)
    trunk_km = _lines_per_area(cable_geoms[trunk_mask] if len(cable_geoms) else cable_geoms, utree, polys, n)
    st_ok = np.isfinite(st_x) & np.isfinite(st_y)
    st_unit = np.full(len(st_x), -1, dtype=np.int64)
    st_unit[st_ok] = _points_to_units(st_x[st_ok], st_y[st_ok], polys, utree)
    station_count = np.bincount(st_unit[st_unit >= 0], minlength=n)
    critical_count = np.bincount(st_unit[(st_unit >= 0) & critical_mask], minlength=n)
    site_count = _features_per_area(site_geoms, utree, n)

    # expected incidents with the city's totals (so a unit's risk compares with the same city rate as cells)
    shares = []
    if cable_km_total > 0:
        shares.append(cable_km / cable_km_total)
    if stations_total > 0:
        shares.append(station_count / stations_total)
    if not shares:
        area = shapely.area(polys)
        shares.append(area / area.sum())
    expected = total * sum(shares) / len(shares)
    risk = smoothed_risk(counts, expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_cable_km = np.where(cable_km > 0, counts / np.where(cable_km > 0, cable_km, 1), np.nan)
        per_station = np.where(station_count > 0, counts / np.where(station_count > 0, station_count, 1), np.nan)
    trend = classify_trend(recent, previous)
    parts = score_parts(hot_share, trend, risk, stake_units(site_count, critical_count, trunk_km))
    codes = units["code"].astype(str).to_numpy() if "code" in units else np.arange(1, n + 1).astype(str)
    names = units["name"].astype(str).to_numpy() if "name" in units else codes
    centre_ll = _to_lonlat(shapely.points(shapely.get_coordinates(shapely.point_on_surface(polys))))
    frame = gpd.GeoDataFrame(
        {
            "area_id": np.char.add("U-", codes.astype(str)),
            "code": codes,
            "name": names,
            "incidents": counts.astype(np.int64),
            "hotspot": hotspot.astype(str),
            "confidence": confidence,
            "hot_cells": hot_cells.astype(np.int64),
            "cold_cells": cold_cells.astype(np.int64),
            "hot_share": np.round(hot_incident_share, 3),
            **_component_columns(cable_km, station_count, per_cable_km, per_station, expected, risk, recent,
                                 previous, trend, site_count, critical_count, trunk_km),
            **parts,
        },
        geometry=units.geometry.to_numpy() if _is_lonlat(units.crs) else _to_lonlat(polys),
        crs="EPSG:4326",
    )
    frame["rank"] = rank_rows(frame["score"].to_numpy(), counts, frame["area_id"].to_numpy())
    frame["priority_class"] = priority_class(frame["score"].to_numpy()).astype(str)
    frame["centroid_lon"] = np.round(shapely.get_x(centre_ll), 7)
    frame["centroid_lat"] = np.round(shapely.get_y(centre_ll), 7)
    return frame[[c for c in frame.columns if c != "geometry"] + ["geometry"]]


# ----------------------------------------------------------------------------------------------------
# the method, written into every output
# ----------------------------------------------------------------------------------------------------

METHOD_TEXT = {
    "vi": (
        "Khu vực ưu tiên được xác định trên lưới ô {shape_vi} trong hệ tọa độ VN-2000 / TM-3 "
        "múi 482 (EPSG:5897), cắt theo ranh giới thành phố. Vụ việc được lọc theo loại, trạng thái và thời gian, "
        "rồi đếm theo ô. Điểm nóng, điểm lạnh: thống kê Getis-Ord Gi* (thư viện esda) trên mật độ vụ việc (vụ/km²), "
        "trọng số kề cận của lưới "
        "(có tính chính ô đó), kiểm định hoán vị có điều kiện {permutations} lần (seed {seed}), hiệu chỉnh "
        "tỷ lệ phát hiện sai Benjamini-Hochberg; độ tin cậy 99 %, 95 %, 90 % khi giá trị q không quá 0,01; 0,05; "
        "0,10. Rủi ro theo mức phơi nhiễm: số vụ việc so với số vụ dự kiến theo hạ tầng trong ô (một nửa theo "
        "chiều dài cáp, một nửa theo số trạm), làm trơn (số vụ + 1) / (số dự kiến + 1), nên ô không có hạ tầng "
        "không bị chia cho 0. Xu hướng: 90 ngày gần nhất đến {reference} so với cùng 90 ngày năm trước: gia tăng "
        "(ít nhất 2 vụ và gấp 1,5 lần), giảm dần (ngược lại), duy trì (có vụ ở cả hai kỳ). Điểm ưu tiên 0-100 = "
        "điểm nóng (tối đa 40) + xu hướng (20) + rủi ro (20) + giá trị cần bảo vệ (20: mục tiêu trọng điểm, trạm "
        "quan trọng, cáp trục); mỗi thành phần được ghi riêng."
    ),
    "en": (
        "Priority areas are computed on a grid of {shape_en} in VN-2000 / TM-3 zone 482 "
        "(EPSG:5897), cropped to the city boundary. Incidents are filtered by type, status and period and counted "
        "per cell. Hot and cold spots: Getis-Ord Gi* (esda) of incidents per km² on the grid's contiguity weights (the cell itself "
        "included), conditional permutation inference with {permutations} permutations (seed {seed}), "
        "Benjamini-Hochberg false-discovery-rate correction; 99 %, 95 %, 90 % confidence when the adjusted p "
        "(q) is at most 0.01, 0.05, 0.10. Exposure-normalised risk: incidents against those expected from the "
        "infrastructure in the cell (half by cable length, half by station count), smoothed as (incidents + 1) / "
        "(expected + 1), so a cell without infrastructure is never divided by zero. Trend: the 90 days up to "
        "{reference} against the same 90 days a year earlier: emerging (at least 2 and 1.5 times as many), fading "
        "(the reverse), persistent (incidents in both). Priority score 0-100 = hot spot (up to 40) + trend (20) + "
        "risk (20) + stake (20: key sites, critical stations, trunk cables); each component is a column."
    ),
}


@lru_cache(maxsize=1)
def _library_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("webmap", "esda", "libpysal", "numba", "numpy", "scipy", "pandas", "geopandas", "shapely", "pyproj"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def build_method(params: PriorityParams, grid, *, reference: dt.date, counts: dict, computed_at) -> dict:
    """The JSON-ready description of how a result was made (written into every export)."""
    r0, r1, p0, p1 = _windows(reference)
    day = lambda n: (_EPOCH + timedelta(days=int(n))).isoformat()  # noqa: E731
    fmt = {"shape_vi": (f"lục giác đều rộng {params.cell_m:g} m (giữa hai cạnh đối)" if params.shape == "hex"
                        else f"vuông cạnh {params.cell_m:g} m"),
           "shape_en": (f"hexagons {params.cell_m:g} m wide (flat side to flat side)" if params.shape == "hex"
                        else f"squares with {params.cell_m:g} m sides"),
           "cell_m": params.cell_m, "permutations": params.permutations, "seed": params.seed,
           "reference": reference.isoformat()}
    return {
        "name": "webmap priority areas (Getis-Ord Gi*, exposure-normalised risk, trend, stake)",
        "method_version": 1,
        "text": {lang: text.format(**fmt) for lang, text in METHOD_TEXT.items()},
        "parameters": params.to_dict(),
        "filters": {
            "types": list(params.types) if params.types else "all",
            "statuses": list(params.effective_statuses),
            "since": params.since.isoformat() if params.since else None,
            "until": params.until.isoformat() if params.until else None,
        },
        "grid": {"crs": "EPSG:5897", "shape": params.shape, "cell_m": params.cell_m, "cells": len(grid),
                 "cell_area_km2": round(grid.cell_area_m2 / 1e6, 6), "cropped_to": "union of the boundary polygons",
                 "area_id": "H<size>-NNNN (hexagons) / S<size>-NNNN (squares), numbered from the north-west"},
        "hotspots": {
            "statistic": "Getis-Ord Gi* (esda.G_Local, star=True, binary weights)",
            "values": "incidents per km² of the cell's area inside the city",
            "tested_cells": (f"cells with at least {MIN_TESTED_SHARE:.0%} of their area inside the city "
                             f"({int(grid.tested.sum())} of {len(grid)}); the others get no class"),
            "weights": ("lattice contiguity: the 6 neighbouring hexagons" if params.shape == "hex"
                        else "lattice contiguity: the 8 neighbouring squares (queen)") + ", plus the cell itself",
            "permutations": params.permutations, "seed": params.seed,
            "p_value": ("two-sided: 2 x the smaller tail, each tail the larger of the share of permutations "
                        "at least as extreme (ties included) and the tail of a Pearson type III (gamma) "
                        "distribution with the permutations' mean, standard deviation and skewness"),
            "z": "(G* - mean of permutations) / standard deviation of permutations",
            "fdr": "Benjamini-Hochberg (scipy.stats.false_discovery_control)", "fdr_alpha": params.fdr_alpha,
            "confidence_classes": {"99": 0.01, "95": 0.05, "90": 0.10},
            "note": ("the fitted tail says how far beyond all permutations an observation lies; the "
                     "permutations alone cannot go below 1/(1 + permutations), which no cell could pass "
                     "after the correction over thousands of cells"),
        },
        "risk": {
            "expected": "total incidents x (1/2 cable km share + 1/2 station share) of the area; area share "
                        "when no infrastructure is loaded",
            "formula": "risk = (incidents + k) / (expected + k)", "k": RISK_PRIOR,
            "per_cable_km": "incidents / cable km in the area (empty when none)",
            "per_station": "incidents / stations in the area (empty when none)",
        },
        "trend": {
            "reference": reference.isoformat(), "days": TREND_DAYS,
            "recent": [day(r0), day(r1)], "previous": [day(p0), day(p1)],
            "emerging": f"recent >= {TREND_MIN_COUNT} and recent >= {TREND_RATIO} x previous",
            "fading": f"previous >= {TREND_MIN_COUNT} and previous >= {TREND_RATIO} x recent",
            "persistent": "incidents in both windows, neither emerging nor fading",
            "none": "otherwise",
            "filters": "the type and status filters apply; the period filter does not",
        },
        "stake": {"units": dict(STAKE_UNITS), "full_at_units": STAKE_FULL,
                  "critical_stations": list(CRITICAL_LEVELS), "trunk": "cable_routes.tier == 'trunk'"},
        "score": {
            "weights": dict(SCORE_WEIGHTS),
            "hotspot_share": {str(k): v for k, v in HOTSPOT_SHARE.items() if k},
            "trend_share": dict(TREND_SHARE),
            "risk_share": "max(0, 1 - 1 / risk)",
            "stake_share": f"min(1, stake units / {STAKE_FULL:g})",
            "score": "score_hotspot + score_trend + score_risk + score_stake (each rounded to 0.1)",
            "classes": {name: lowest for name, lowest in PRIORITY_CLASSES},
            "rank": "1 = highest score; ties by more incidents, then area id",
            "units": "a unit's hot-spot share is the mean hot-spot share of the cells its incidents fall in",
        },
        "counts": counts,
        "computed_at": computed_at.replace(microsecond=0).isoformat(),
        "versions": dict(_library_versions()),
    }


def _component_columns(cable_km, station_count, per_cable_km, per_station, expected, risk, recent, previous,
                       trend, site_count, critical_count, trunk_km) -> dict:
    """The exposure, trend and stake columns, rounded and typed the same for cells and for units, so the
    two tables of one result read alike in every output."""
    return {
        "cable_km": np.round(cable_km, 3),
        "stations": station_count.astype(np.int64),
        "per_cable_km": np.round(per_cable_km, 3),
        "per_station": np.round(per_station, 3),
        "expected": np.round(expected, 3),
        "risk": np.round(risk, 3),
        "recent": recent.astype(np.int64),
        "previous": previous.astype(np.int64),
        "trend": trend.astype(str),
        "key_sites": site_count.astype(np.int64),
        "critical_stations": critical_count.astype(np.int64),
        "trunk_km": np.round(trunk_km, 3),
    }
