"""Exposure of an enterprise's network: which cable segments and stations have incidents nearby, how
many, how serious, how recent, how often damaged, and whether it is getting worse.

Pure: GeoDataFrames in (EPSG:4326, as stored), an :class:`ExposureResult` out; no Flask, no store. The
service that reads the layers under the access rules is :mod:`webmap.exposures`.

Method (the same text goes, with every parameter, into every output: see :func:`method_text`):

- **Segments.** Each cable route is cut into pieces of equal length of at most ``segment_m`` metres
  (default :data:`SEGMENT_M` = 500 m), measured in EPSG:5897 along each part of the route (a
  MultiLineString's parts are cut separately; chainage runs on across parts as in
  :mod:`webmap.analysis.chainage`). A 2 km route gives 4 pieces of 500 m, a 2.19 km one 5 of 438 m, a
  300 m one a single piece: short enough to point at a place on the ground, long enough that "two thefts
  on this segment" means the same stretch of cable.
- **Counted incidents.** Incidents within ``buffer_m`` metres (default 100 m; EPSG:5897) of a segment or a
  station: the same pairs as ``STRtree(assets).query(points, predicate="dwithin", distance=buffer_m)``,
  found with one vectorised :meth:`shapely.STRtree.query` of the incidents against the assets' grown
  envelopes and the exact distance of each candidate in numpy (no Python loop over incidents; see
  :func:`_join_incidents` for why, and the tests for the equivalence). Rejected incidents are left out;
  an incident near two adjacent segments counts for both (each is exposed), but once in an enterprise's
  totals.
- **Exposure index.** Sum of the counted incidents' weights in the period ``since``..``until`` (local
  calendar days, both included) per km of segment per year (segments), or per station per year
  (stations). Weight = severity weight (:data:`SEVERITY_WEIGHTS`: low 1, medium 2, high 3, critical 5) x
  recency ``0.5 ** (age_days / half_life_days)`` (:data:`HALF_LIFE_DAYS` = 180: an incident half a year
  before the reference date weighs half as much as one on it). Years = days of the period / 365.
- **Repeat damage.** A segment or station with at least :data:`REPEAT_DAMAGE_MIN` (2) damaging incidents
  (:data:`DAMAGING_TYPES`: cable theft, sabotage, fire or explosion) in the period.
- **Trend.** Incidents (unweighted, any date) in the last :data:`TREND_DAYS` (90) days up to the reference
  date against the same 90 days a year (365 days) earlier, as the priority analysis compares them:
  ``rising``, ``falling``, ``stable`` (equal, not zero) or ``none``.
- **Priority areas.** With ``priority_areas`` (the police's priority cells with their ``priority_class``),
  the length of each enterprise's cables and the number of its stations inside each class: numbers only.

>>> import geopandas as gpd
>>> from shapely.geometry import LineString
>>> cables = gpd.GeoDataFrame({"id": ["C"], "owner": ["X"]},
...                           geometry=[LineString([(105.76, 10.03), (105.78, 10.03)])], crs="EPSG:4326")
>>> result = compute_exposure(cables, None, None, until=date(2026, 6, 30))
>>> len(result.segments), round(float(result.segments["length_m"].iloc[0]), 1)
(5, 438.5)
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from webmap.crs import METRIC_CRS, STORAGE_CRS, lonlat_to_metric
from webmap.errors import BadInput

__all__ = [
    "SEGMENT_M", "BUFFER_M", "MAX_BUFFER_M", "SEVERITY_WEIGHTS", "HALF_LIFE_DAYS", "DAMAGING_TYPES",
    "REPEAT_DAMAGE_MIN", "TREND_DAYS", "CLASSES", "SEGMENT_BREAKS", "STATION_BREAKS", "PRIORITY_CLASSES",
    "ExposureParams", "ExposureResult", "compute_exposure", "split_routes", "method_text", "local_today",
]

SEGMENT_M = 500.0
BUFFER_M = 100.0
MAX_BUFFER_M = 2000.0
SEVERITY_WEIGHTS = {"low": 1.0, "medium": 2.0, "high": 3.0, "critical": 5.0}
HALF_LIFE_DAYS = 180.0
DAMAGING_TYPES = ("cable_theft", "sabotage", "fire_explosion")
REPEAT_DAMAGE_MIN = 2
TREND_DAYS = 90
YEAR_DAYS = 365
PERIOD_DAYS = 365  # default period: the 365 days up to ``until``

#: Exposure classes, lowest first, and their lower bounds (index >= bound). Fixed, so that two enterprises,
#: or two periods, can be compared class by class. Segments: weighted incidents per km per year (one
#: recent high-severity incident on a 500 m segment is 6); stations: weighted incidents per station per year.
CLASSES = ("none", "low", "medium", "high", "very_high")
SEGMENT_BREAKS = (0.0, 2.0, 6.0, 15.0)  # > 0 low, >= 2 medium, >= 6 high, >= 15 very high
STATION_BREAKS = (0.0, 1.0, 3.0, 8.0)
PRIORITY_CLASSES = ("very_high", "high", "medium", "low", "outside")

#: Cần Thơ's civil time: dates of incidents and periods are local calendar days (UTC+7, no DST).
LOCAL_OFFSET = timedelta(hours=7)
_DAY_NS = 86_400 * 10**9
_PACK = 4096.0  # > MAX_BUFFER_M: (owner, incident) groups packed with the distance in one float64 sort key
_OFFSET_NS = 7 * 3600 * 10**9

SEGMENT_COLUMNS = [
    "segment_id", "route_id", "route_name", "owner", "part", "seq", "chainage_from_m", "chainage_to_m",
    "length_m", "incidents", "damaging", "weighted", "rate", "exposure", "exposure_class", "repeat_damage",
    "recent", "previous", "trend", "rank",
]
STATION_COLUMNS = [
    "station_id", "station_name", "owner", "kind", "criticality", "incidents", "damaging", "weighted",
    "exposure", "exposure_class", "repeat_damage", "recent", "previous", "trend", "rank",
]
INCIDENT_COLUMNS = [
    "id", "owner", "occurred_at", "type", "severity", "status", "damaging", "weight", "asset_type",
    "asset_id", "distance_m", "chainage_m",
]
OWNER_COLUMNS = [
    "owner", "cable_km", "segments", "stations", "incidents", "damaging", "weighted", "cable_incidents",
    "cable_exposure", "station_exposure", "exposed_segments", "exposed_segment_share",
    "repeat_damage_segments", "repeat_damage_stations", "high_segments", "high_stations", "recent",
    "previous", "trend",
]


def local_today() -> date:
    """Today's date in Cần Thơ (UTC+7)."""
    return (datetime.now(timezone.utc) + LOCAL_OFFSET).date()


@dataclass(frozen=True)
class ExposureParams:
    """Every choice of the method, resolved (dates filled in); hashable, for caches."""

    buffer_m: float = BUFFER_M
    since: date | None = None
    until: date | None = None
    reference_date: date | None = None
    segment_m: float = SEGMENT_M
    half_life_days: float = HALF_LIFE_DAYS
    severity_weights: tuple = tuple(SEVERITY_WEIGHTS.items())
    types: tuple | None = None  # incident types counted; None = every type
    statuses: tuple | None = None  # None = every status except "rejected"

    def resolved(self) -> "ExposureParams":
        """Defaults filled in and every value checked: ``until`` = today (Cần Thơ), ``since`` = 364 days
        before ``until`` (a 365-day period), ``reference_date`` = ``until``."""
        until = self.until or local_today()
        since = self.since or (until - timedelta(days=PERIOD_DAYS - 1))
        reference = self.reference_date or until
        params = replace(self, since=since, until=until, reference_date=reference)
        params.check()
        return params

    def check(self) -> None:
        if not (isinstance(self.buffer_m, (int, float)) and math.isfinite(self.buffer_m)
                and 0 < self.buffer_m <= MAX_BUFFER_M):
            raise BadInput(f"buffer_m must be a distance in metres above 0 and at most {MAX_BUFFER_M:g}, "
                           f"got {self.buffer_m!r}")
        if not (math.isfinite(self.segment_m) and 50 <= self.segment_m <= 100_000):
            raise BadInput(f"segment_m must be between 50 and 100000 metres, got {self.segment_m!r}")
        if not (math.isfinite(self.half_life_days) and self.half_life_days > 0):
            raise BadInput(f"half_life_days must be above 0, got {self.half_life_days!r}")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise BadInput(f"since ({self.since}) must be on or before until ({self.until})")
        weights = dict(self.severity_weights)
        if set(weights) != set(SEVERITY_WEIGHTS) or any(not (w >= 0) for w in weights.values()):
            raise BadInput(f"severity_weights must give a weight >= 0 to each of {', '.join(SEVERITY_WEIGHTS)}")

    @property
    def period_days(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def period_years(self) -> float:
        return self.period_days / YEAR_DAYS

    def as_dict(self) -> dict:
        return {
            "buffer_m": float(self.buffer_m),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "reference_date": self.reference_date.isoformat() if self.reference_date else None,
            "period_days": self.period_days if self.since and self.until else None,
            "segment_m": float(self.segment_m),
            "half_life_days": float(self.half_life_days),
            "severity_weights": {k: float(v) for k, v in self.severity_weights},
            "damaging_types": list(DAMAGING_TYPES),
            "repeat_damage_min": REPEAT_DAMAGE_MIN,
            "trend_days": TREND_DAYS,
            "types": list(self.types) if self.types else "all",
            "statuses": list(self.statuses) if self.statuses else "all except rejected",
            "segment_class_breaks": list(SEGMENT_BREAKS),
            "station_class_breaks": list(STATION_BREAKS),
            "metric_crs": METRIC_CRS,
        }


@dataclass
class ExposureResult:
    """Tables of one computation; ``for_owner`` cuts them to one enterprise.

    Attributes
    ----------
    segments, stations : GeoDataFrame (EPSG:4326)
        One row per cable segment / station with the columns of :data:`SEGMENT_COLUMNS` /
        :data:`STATION_COLUMNS`; ``rank`` 1 = most exposed of its owner.
    incidents : GeoDataFrame (EPSG:4326)
        The counted incidents (in the period, within ``buffer_m`` of an asset), one row per incident and
        owner, with the nearest asset of that owner (:data:`INCIDENT_COLUMNS`). No reporter, description,
        damage or affected-asset fields: those are the police's, or another enterprise's.
    owners : DataFrame
        One row per enterprise (:data:`OWNER_COLUMNS`): the comparison table.
    priority : DataFrame or None
        Per owner and priority class: ``cable_km``, ``cable_share``, ``stations``, ``station_share``.
    method : dict
        JSON-serialisable: method name and text (vi, en), parameters, counts, computed_at, versions.
    """

    segments: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame
    incidents: gpd.GeoDataFrame
    owners: pd.DataFrame
    priority: pd.DataFrame | None
    params: ExposureParams
    method: dict = field(default_factory=dict)

    def for_owner(self, owner: str) -> "ExposureResult":
        """Only ``owner``'s rows (its segments, stations, the incidents near them, its numbers)."""
        def cut(frame):
            return None if frame is None else frame[frame["owner"] == owner].reset_index(drop=True)

        return ExposureResult(cut(self.segments), cut(self.stations), cut(self.incidents), cut(self.owners),
                              cut(self.priority), self.params, {**self.method, "owner": owner})

    def summary(self, owner: str) -> dict:
        """The owner's row of the comparison table as a dict (zeros when it has no assets)."""
        rows = self.owners[self.owners["owner"] == owner]
        if not len(rows):
            return {c: (owner if c == "owner" else ("none" if c == "trend" else 0)) for c in OWNER_COLUMNS}
        return {k: _plain(v) for k, v in rows.iloc[0].items()}


def _plain(value):
    """numpy scalars to Python ones, for JSON."""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# ---------------------------------------------------------------------------------------------------
# Geometry helpers
# ---------------------------------------------------------------------------------------------------


def _metric_geoms(geoms) -> np.ndarray:
    """Lon/lat geometries to EPSG:5897 with the project's pinned pipeline (as :func:`webmap.crs.to_metric`)."""
    array = np.asarray(geoms, dtype=object)
    if not len(array):
        return array
    return shapely.transform(array, lambda xy: np.column_stack(lonlat_to_metric(xy[:, 0], xy[:, 1])))


def _metric_points(geoms) -> np.ndarray:
    """Lon/lat points to EPSG:5897 points (x/y taken out, transformed in one call, points rebuilt)."""
    array = np.asarray(geoms, dtype=object)
    if not len(array):
        return np.empty(0, dtype=object)
    x, y = lonlat_to_metric(shapely.get_x(array), shapely.get_y(array))
    return shapely.points(x, y)


def _to_lonlat(geoms) -> np.ndarray:
    from webmap.analysis.chainage import to_lonlat

    array = np.asarray(geoms, dtype=object)
    return to_lonlat(array) if len(array) else array


def split_routes(lines_m, segment_m: float = SEGMENT_M):
    """Cut metric (Multi)LineStrings into equal pieces of at most ``segment_m`` metres, vectorised.

    Parameters
    ----------
    lines_m : array of LineString/MultiLineString in a metric CRS
    segment_m : float

    Returns
    -------
    pieces : ndarray of LineString
    info : DataFrame
        Per piece: ``route`` (index into ``lines_m``), ``part`` (0-based part of the route), ``seq``
        (1-based along the route), ``chainage_from_m``, ``chainage_to_m``, ``length_m``.

    Notes
    -----
    Each part of length L is cut into n = ceil(L / segment_m) pieces of L / n. The breakpoints are
    interpolated with :func:`shapely.line_interpolate_point` and merged with the part's own vertices by
    one sort, so a piece keeps the route's bends.
    """
    lines_m = np.asarray(lines_m, dtype=object)
    parts, route = shapely.get_parts(lines_m, return_index=True)
    keep = ~shapely.is_empty(parts) & (shapely.length(parts) > 0) if len(parts) else np.zeros(0, bool)
    parts, route = parts[keep], route[keep]
    empty_info = pd.DataFrame({"route": np.zeros(0, int), "part": np.zeros(0, int), "seq": np.zeros(0, int),
                               "chainage_from_m": np.zeros(0), "chainage_to_m": np.zeros(0), "length_m": np.zeros(0)})
    if not len(parts):
        return np.empty(0, dtype=object), empty_info
    part_len = shapely.length(parts)
    # part number within its route and the chainage at which the part starts
    first_of_route = np.r_[True, route[1:] != route[:-1]]
    group_start = np.maximum.accumulate(np.where(first_of_route, np.arange(len(parts)), 0))
    part_no = np.arange(len(parts)) - group_start
    cum = np.cumsum(part_len)
    part_offset = cum - part_len - (cum - part_len)[group_start]
    n_pieces = np.maximum(1, np.ceil(part_len / segment_m - 1e-9)).astype(np.int64)
    piece_len = part_len / n_pieces
    piece_base = np.r_[0, np.cumsum(n_pieces)[:-1]]  # first global piece of each part

    # the part's own vertices, with their distance along the part
    xy, vpart = shapely.get_coordinates(parts, return_index=True)
    step = np.r_[0.0, np.hypot(*(xy[1:] - xy[:-1]).T)]
    first_vertex = np.r_[True, vpart[1:] != vpart[:-1]]
    step[first_vertex] = 0.0
    vdist = np.cumsum(step)
    vdist -= vdist[np.maximum.accumulate(np.where(first_vertex, np.arange(len(vdist)), 0))]
    vpiece = np.minimum((vdist / piece_len[vpart]).astype(np.int64), n_pieces[vpart] - 1)

    # interior breakpoints k * piece_len, k = 1..n-1: the end of piece k-1 and the start of piece k
    bpart = np.repeat(np.arange(len(parts)), n_pieces - 1)
    k = np.arange(len(bpart)) - np.repeat(np.r_[0, np.cumsum(n_pieces - 1)[:-1]], n_pieces - 1) + 1
    bdist = k * piece_len[bpart]
    bxy = shapely.get_coordinates(shapely.line_interpolate_point(parts[bpart], bdist)) if len(bpart) else np.zeros((0, 2))

    # rows: (part, piece, distance, order) -> order 0 = a piece's start breakpoint, 1 = vertex, 2 = its end
    all_part = np.concatenate([vpart, bpart, bpart])
    all_piece = np.concatenate([vpiece, k, k - 1])
    all_dist = np.concatenate([vdist, bdist, bdist])
    all_order = np.concatenate([np.ones(len(vpart), np.int8), np.zeros(len(bpart), np.int8),
                                np.full(len(bpart), 2, np.int8)])
    all_xy = np.concatenate([xy, bxy, bxy])
    gpiece = piece_base[all_part] + all_piece
    order = np.lexsort((all_order, all_dist, gpiece))
    # a vertex that falls exactly on a breakpoint would repeat it: drop repeats (a micrometre apart or less)
    pieces = shapely.remove_repeated_points(shapely.linestrings(all_xy[order], indices=gpiece[order]), 1e-6)

    piece_part = np.repeat(np.arange(len(parts)), n_pieces)
    local = np.arange(len(piece_part)) - piece_base[piece_part]
    start = part_offset[piece_part] + local * piece_len[piece_part]
    seq_base = np.r_[0, np.cumsum(n_pieces)]  # pieces before each part, counted within the route
    route_first_piece = seq_base[:-1][group_start]
    info = pd.DataFrame({
        "route": route[piece_part],
        "part": part_no[piece_part],
        "seq": (piece_base[piece_part] - route_first_piece[piece_part]) + local + 1,
        "chainage_from_m": start,
        "chainage_to_m": start + piece_len[piece_part],
        "length_m": piece_len[piece_part],
    })
    return pieces, info


@dataclass
class _Join:
    """The (incident, asset) pairs within the buffer: incident index (into the selected incidents), asset
    index, distance in metres and, for segments, the chainage of the incident's foot along the segment."""

    n: int
    seg_inc: np.ndarray
    seg_idx: np.ndarray
    seg_dist: np.ndarray
    seg_along: np.ndarray
    st_inc: np.ndarray
    st_idx: np.ndarray
    st_dist: np.ndarray


@dataclass
class _Pieces:
    """The segments as straight 2-point pieces (metric), for exact point-to-piece distances in numpy."""

    ax: np.ndarray  # start of each piece (metres)
    ay: np.ndarray
    abx: np.ndarray  # its vector from start to end
    aby: np.ndarray
    length2: np.ndarray  # its squared length (never 0: a repeated point is no piece)
    segment: np.ndarray  # index of the segment each piece belongs to
    offset: np.ndarray  # metres from the segment's start to the piece's start
    first: np.ndarray  # per segment: index of its first piece (pieces of a segment are consecutive)
    count: np.ndarray  # per segment: how many pieces it has
    lonlat_box: np.ndarray  # (n_segments, 4) lon/lat envelope of each segment


def _straight_pieces(segments_m, segments_lonlat) -> _Pieces:
    """Each segment's straight pieces between consecutive vertices (metric), and its lon/lat envelope."""
    xy, owner = shapely.get_coordinates(segments_m, return_index=True)
    same = owner[1:] == owner[:-1]
    a, b, segment = xy[:-1][same], xy[1:][same], owner[:-1][same]
    ab = b - a
    length2 = (ab * ab).sum(axis=1)
    keep = length2 > 0
    a, ab, segment, length2 = a[keep], ab[keep], segment[keep], length2[keep]
    length = np.sqrt(length2)
    count = np.bincount(segment, minlength=len(segments_m)) if len(segment) else np.zeros(len(segments_m), np.int64)
    first = np.r_[0, np.cumsum(count)[:-1]].astype(np.int64) if len(count) else np.zeros(0, np.int64)
    cum = np.cumsum(length)
    offset = (cum - length) - (cum - length)[first[segment]] if len(segment) else np.zeros(0)
    return _Pieces(a[:, 0].copy(), a[:, 1].copy(), ab[:, 0].copy(), ab[:, 1].copy(), length2, segment, offset, first,
                   count, shapely.bounds(np.asarray(segments_lonlat, dtype=object)))


def _grown_tree(boxes: np.ndarray, buffer_m: float):
    """An STRtree of lon/lat envelopes grown by at least ``buffer_m`` metres on every side.

    Degrees per metre: 1/110,500 of latitude, 1/(111,320 cos(latitude)) of longitude at the data's highest
    latitude, both with 2 % to spare (the projection's scale and convergence differ from the ellipsoid's by
    far less), so every point within ``buffer_m`` of an asset falls in its grown envelope.
    """
    if not len(boxes):
        return None
    lat_max = min(float(np.abs(boxes[:, [1, 3]]).max()) + 0.1, 80.0)
    grow_lat = buffer_m / 110_500.0 * 1.02 + 1e-7
    grow_lon = buffer_m / (111_320.0 * math.cos(math.radians(lat_max))) * 1.02 + 1e-7
    return shapely.STRtree(shapely.box(boxes[:, 0] - grow_lon, boxes[:, 1] - grow_lat,
                                       boxes[:, 2] + grow_lon, boxes[:, 3] + grow_lat))


def _join_incidents(lon, lat, lonlat_points, pieces: _Pieces, station_xy, station_box,
                    buffer_m: float, workers: int) -> _Join:
    """Every (incident, asset) pair within ``buffer_m`` metres (EPSG:5897), with distance and chainage.

    Two steps, both vectorised (no Python loop over incidents, only over a few chunks):

    1. one :meth:`shapely.STRtree.query` of the incidents' own lon/lat points against the assets' lon/lat
       envelopes grown by (a little more than) ``buffer_m``: the candidates, without making a single new
       geometry;
    2. the exact distance in metres of each candidate: the candidate incidents (only they) go to EPSG:5897
       through the pinned pipeline, and the distance from a point to each straight piece of a segment
       (``t`` = the foot's place along the piece, clipped to [0, 1]) is computed with numpy. Pairs at
       ``buffer_m`` or less are kept, one per (incident, segment): its nearest piece.

    The pairs, distances and chainages are exactly those of ``STRtree(segments).query(points,
    predicate="dwithin", distance=buffer_m)``, :func:`shapely.distance` and :func:`shapely.line_locate_point`
    in metres (the tests check it). Why not those: on 1,000,000 incidents and 30,000 segments
    (``scripts/bench_exposure.py``) making a GEOS point per incident, the predicate query and a GEOS
    distance and line_locate_point per pair took about twice the time of this whole join, reprojection
    included, which costs about as much CPU as the bare ``dwithin`` query alone. Chunks run on ``workers``
    threads (numpy and GEOS release the GIL for most of the work).
    """
    seg_tree = _grown_tree(pieces.lonlat_box, buffer_m)
    st_tree = _grown_tree(station_box, buffer_m) if len(station_box) else None
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)

    def run(lo_hi):
        lo, hi = lo_hi
        chunk = lonlat_points[lo:hi]
        seg_c = seg_tree.query(chunk) if seg_tree is not None else np.zeros((2, 0), np.int64)
        st_c = st_tree.query(chunk) if st_tree is not None else np.zeros((2, 0), np.int64)
        wanted = np.zeros(hi - lo, bool)
        wanted[seg_c[0]] = True
        wanted[st_c[0]] = True
        idx = np.flatnonzero(wanted)
        x, y = np.full(hi - lo, np.nan), np.full(hi - lo, np.nan)
        if len(idx):
            x[idx], y[idx] = lonlat_to_metric(lon[lo + idx], lat[lo + idx])
        seg_c = seg_c[:, pieces.count[seg_c[1]] > 0]  # (every segment has a piece: kept safe)
        # segments: every straight piece of each candidate segment (a segment's pieces are consecutive, so
        # each (incident, segment) is a run of rows), the exact distance to each, the nearest per run
        counts = pieces.count[seg_c[1]]
        total = int(counts.sum())
        starts = np.cumsum(counts) - counts
        piece = np.repeat(pieces.first[seg_c[1]] - starts, counts)
        piece += np.arange(total)
        abx, aby, length2 = pieces.abx[piece], pieces.aby[piece], pieces.length2[piece]
        apx = np.repeat(x[seg_c[0]], counts)
        apx -= pieces.ax[piece]
        apy = np.repeat(y[seg_c[0]], counts)
        apy -= pieces.ay[piece]
        t = apx * abx
        t += apy * aby
        t /= length2
        np.clip(t, 0.0, 1.0, out=t)
        apx -= t * abx
        apy -= t * aby
        dist = np.hypot(apx, apy)
        if total:
            nearest = np.minimum.reduceat(dist, starts)
            # the first row of each run that reaches the run's minimum
            pos = np.where(dist == np.repeat(nearest, counts), np.arange(total), total)
            best = np.minimum.reduceat(pos, starts)
        else:
            nearest, best = np.zeros(0), np.zeros(0, np.int64)
        near = nearest <= buffer_m
        best = best[near]
        along = pieces.offset[piece[best]] + t[best] * np.sqrt(length2[best])  # metres along the segment
        seg_out = (seg_c[0][near] + lo, seg_c[1][near], nearest[near], along)
        # stations: point to point
        sd = np.hypot(x[st_c[0]] - station_xy[st_c[1], 0], y[st_c[0]] - station_xy[st_c[1], 1]) \
            if len(st_c[0]) else empty_f
        keep = sd <= buffer_m
        st_out = (st_c[0][keep] + lo, st_c[1][keep], sd[keep])
        return seg_out, st_out

    n = len(lon)
    chunks = 1 if workers <= 1 or n < 50_000 else workers * 4
    bounds = np.linspace(0, n, chunks + 1).astype(np.int64)
    spans = list(zip(bounds[:-1], bounds[1:]))
    if n == 0:
        results = []
    elif chunks == 1:
        results = [run(spans[0])]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(run, spans))

    def cat(family, item, empty):
        return np.concatenate([r[family][item] for r in results]) if results else empty

    return _Join(n, cat(0, 0, empty_i), cat(0, 1, empty_i), cat(0, 2, empty_f), cat(0, 3, empty_f),
                 cat(1, 0, empty_i), cat(1, 1, empty_i), cat(1, 2, empty_f))


# ---------------------------------------------------------------------------------------------------
# Incidents: dates and weights
# ---------------------------------------------------------------------------------------------------


def _day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def _local_days(series: pd.Series) -> np.ndarray:
    """Local (UTC+7) calendar day numbers (days since 1970-01-01) of ``occurred_at``; -1 if unreadable.

    Stored times are ISO 8601 text with their offset. When every one is written in Cần Thơ time
    (``...+07:00``), its local day is its first ten characters, read by Arrow in a fraction of the time a
    full parse takes; anything else goes through :func:`pandas.to_datetime` and is shifted to UTC+7.
    """
    if not len(series):
        return np.zeros(0, np.int64)
    if pd.api.types.is_string_dtype(series) and not series.isna().any():
        try:
            import pyarrow as pa
            import pyarrow.compute as pc

            text = pa.array(series.to_numpy(dtype=object)) if not hasattr(series.array, "_pa_array") \
                else series.array._pa_array
            if pc.all(pc.ends_with(text, "+07:00")).as_py() and pc.all(
                    pc.greater_equal(pc.utf8_length(text), 16)).as_py():
                days = pc.cast(pc.cast(pc.utf8_slice_codeunits(text, 0, 10), pa.date32()), pa.int32())
                return np.asarray(days.to_numpy(zero_copy_only=False), dtype=np.int64)
        except Exception:  # noqa: BLE001 - not that shape after all: the general parse below decides
            pass
    parsed = series
    if not pd.api.types.is_datetime64_any_dtype(parsed):
        parsed = pd.to_datetime(parsed, utc=True, format="ISO8601", errors="coerce")
    elif parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize(timezone(LOCAL_OFFSET))
    utc = parsed.dt.tz_convert("UTC")
    ns = utc.astype("datetime64[ns, UTC]").array.asi8
    days = (ns + _OFFSET_NS) // _DAY_NS
    return np.where(utc.isna().to_numpy(), -1, days).astype(np.int64)


def _class_of(values: np.ndarray, breaks) -> np.ndarray:
    """Class names by the fixed breaks: 0 -> none, (0, b1) low, [b1, b2) medium, [b2, b3) high, >= b3."""
    idx = np.where(values > breaks[0], 1, 0)
    for bound in breaks[1:]:
        idx = idx + (values >= bound)
    return np.asarray(CLASSES, dtype=object)[idx]


def _trend(recent: np.ndarray, previous: np.ndarray) -> np.ndarray:
    out = np.full(len(recent), "stable", dtype=object)
    out[recent > previous] = "rising"
    out[recent < previous] = "falling"
    out[(recent == 0) & (previous == 0)] = "none"
    return out


def _rank_within(frame: pd.DataFrame, id_column: str) -> np.ndarray:
    """1 = most exposed within each owner; ties broken by incidents, then id."""
    if not len(frame):
        return np.zeros(0, np.int64)
    order = frame.sort_values(["owner", "exposure", "incidents", id_column],
                              ascending=[True, False, False, True], kind="mergesort")
    ranks = order.groupby("owner", sort=False).cumcount() + 1
    return ranks.reindex(frame.index).to_numpy(np.int64)


# ---------------------------------------------------------------------------------------------------
# The computation
# ---------------------------------------------------------------------------------------------------


def _check_lonlat(gdf, name: str) -> None:
    """Inputs are lon/lat as stored: anything else is refused, never reprojected silently."""
    if gdf is None or gdf.crs is None:
        return
    from pyproj import CRS

    if not CRS.from_user_input(gdf.crs).equals(CRS.from_user_input(STORAGE_CRS)):
        raise BadInput(f"{name} must be in {STORAGE_CRS} (lon/lat, as stored), got {gdf.crs.to_string()}: "
                       f"reproject with webmap.crs before computing exposure")


def _column(gdf, name, default=None):
    if gdf is not None and name in gdf.columns:
        return gdf[name].to_numpy(dtype=object)
    return np.full(0 if gdf is None else len(gdf), default, dtype=object)


def _series(gdf, name, default=""):
    """A column as a Series on a plain 0..n-1 index (a constant one when the column is missing)."""
    if name in gdf.columns:
        return gdf[name].reset_index(drop=True)
    return pd.Series([default] * len(gdf), dtype=object)


def compute_exposure(cables, stations, incidents, *, buffer_m: float = BUFFER_M, since: date | None = None,
                     until: date | None = None, reference_date: date | None = None, segment_m: float = SEGMENT_M,
                     half_life_days: float = HALF_LIFE_DAYS, severity_weights: dict | None = None,
                     types=None, statuses=None, priority_areas=None, workers: int | None = None,
                     params: ExposureParams | None = None) -> ExposureResult:
    """Exposure of every owner's cable segments and stations to the incidents near them.

    Parameters
    ----------
    cables, stations : GeoDataFrame or None
        EPSG:4326, with ``id``, ``owner`` (and ``name``; stations ``kind``, ``criticality``). Every owner
        present is computed; cut the result with :meth:`ExposureResult.for_owner`.
    incidents : GeoDataFrame or None
        EPSG:4326 points with ``id``, ``occurred_at``, ``type``, ``severity``, ``status``. Only these
        columns are read: nothing else of an incident reaches the result.
    buffer_m : float
        Distance (metres, EPSG:5897) within which an incident counts for an asset.
    since, until : datetime.date
        The period, local calendar days, both included (default: the 365 days up to today).
    reference_date : datetime.date
        The "now" of recency weights and of the trend (default ``until``).
    segment_m, half_life_days, severity_weights, types, statuses
        See :class:`ExposureParams` and the module's docstring.
    priority_areas : GeoDataFrame or None
        Police priority cells (EPSG:4326) with ``priority_class``; gives :attr:`ExposureResult.priority`.
    workers : int
        Threads for the per-incident work (default: the machine's cores, at most 4).
    params : ExposureParams
        All of the above at once (then the keyword arguments are ignored).

    Returns
    -------
    ExposureResult

    Notes
    -----
    Distances are measured in EPSG:5897 metres after the project's pinned datum transformation, never in
    degrees. Incidents with an unreadable ``occurred_at`` are left out (counted in ``method``).
    """
    if params is None:
        params = ExposureParams(
            buffer_m=float(buffer_m), since=since, until=until, reference_date=reference_date,
            segment_m=float(segment_m), half_life_days=float(half_life_days),
            severity_weights=tuple((severity_weights or SEVERITY_WEIGHTS).items()),
            types=tuple(types) if types else None, statuses=tuple(statuses) if statuses else None)
    params = params.resolved()
    for name, frame in (("cables", cables), ("stations", stations), ("incidents", incidents),
                        ("priority_areas", priority_areas)):
        _check_lonlat(frame, name)
    workers = workers or min(4, os.cpu_count() or 1)
    weights_by_severity = dict(params.severity_weights)

    # --- assets ----------------------------------------------------------------------------------
    cable_count = 0 if cables is None else len(cables)
    station_count = 0 if stations is None else len(stations)
    if cable_count:
        pieces, info = split_routes(_metric_geoms(cables.geometry.array), params.segment_m)
    else:
        pieces, info = split_routes(np.empty(0, dtype=object), params.segment_m)
    route_ids = _column(cables, "id").astype(str) if cable_count else np.zeros(0, dtype=object)
    seg_route = info["route"].to_numpy()
    seg_owner = _column(cables, "owner")[seg_route].astype(str) if cable_count else np.zeros(0, dtype=object)
    seg_ids = np.array([f"{r}:{s}" for r, s in zip(route_ids[seg_route], info["seq"])], dtype=object)
    station_points = _metric_points(stations.geometry.array) if station_count else np.empty(0, dtype=object)
    station_xy = shapely.get_coordinates(station_points) if station_count else np.zeros((0, 2))
    station_lonlat = shapely.get_coordinates(np.asarray(stations.geometry.array, dtype=object)) if station_count \
        else np.zeros((0, 2))
    pieces_lonlat = _to_lonlat(pieces)
    station_owner = _column(stations, "owner").astype(str) if station_count else np.zeros(0, dtype=object)
    owner_codes, owner_names = pd.factorize(np.concatenate([seg_owner, station_owner]).astype(object), sort=True)
    seg_owner_code, station_owner_code = owner_codes[:len(seg_owner)], owner_codes[len(seg_owner):]

    # --- incidents: filter, dates, weights (vectorised over the columns) ---------------------------
    inc = incidents if incidents is not None else gpd.GeoDataFrame({"id": []}, geometry=[], crs=STORAGE_CRS)
    inc = inc.reset_index(drop=True)
    status, kind = _series(inc, "status"), _series(inc, "type")
    keep = np.array(~status.isin(["rejected"]) if params.statuses is None else status.isin(list(params.statuses)),
                    dtype=bool)  # a writable copy
    if params.types is not None:
        keep &= kind.isin(list(params.types)).to_numpy()
    days = _local_days(_series(inc, "occurred_at", None)) if len(inc) else np.zeros(0, np.int64)
    unreadable = int(((days < 0) & keep).sum())
    keep &= days >= 0
    ref = _day_number(params.reference_date)
    lo, hi = _day_number(params.since), _day_number(params.until)
    in_period = (days >= lo) & (days <= hi)
    recent = (days > ref - TREND_DAYS) & (days <= ref)
    previous = (days > ref - YEAR_DAYS - TREND_DAYS) & (days <= ref - YEAR_DAYS)
    keep &= in_period | recent | previous
    sel = np.flatnonzero(keep)
    inc_period, inc_recent, inc_previous = in_period[sel], recent[sel], previous[sel]
    sev_codes, sev_uniques = pd.factorize(_series(inc, "severity").iloc[sel])
    sev_weight = np.array([weights_by_severity.get(str(v), 0.0) for v in sev_uniques] + [0.0], dtype=float)
    age = np.maximum(ref - days[sel], 0)
    weight = sev_weight[sev_codes] * 0.5 ** (age / params.half_life_days)  # code -1 (no severity): weight 0
    weight = np.where(inc_period, weight, 0.0)  # outside the period: only the trend counts it
    damaging = kind.iloc[sel].isin(DAMAGING_TYPES).to_numpy() & inc_period
    geoms = np.asarray(inc.geometry.array, dtype=object)[sel]
    lon, lat = (shapely.get_x(geoms), shapely.get_y(geoms)) if len(sel) else (np.zeros(0), np.zeros(0))

    # --- the spatial join: STRtree envelope query + exact distances, chunks of incidents on threads --
    join = _join_incidents(lon, lat, geoms, _straight_pieces(pieces, pieces_lonlat), station_xy,
                           np.column_stack([station_lonlat, station_lonlat]), params.buffer_m, workers)
    si, sp, ti, ts = join.seg_inc, join.seg_idx, join.st_inc, join.st_idx

    segments = _asset_table(len(pieces), sp, si, weight, damaging, inc_period, inc_recent, inc_previous)
    seg_km = info["length_m"].to_numpy() / 1000.0
    with np.errstate(divide="ignore", invalid="ignore"):
        seg_exposure = np.where(seg_km > 0, segments["weighted"] / seg_km / params.period_years, 0.0)
        seg_rate = np.where(seg_km > 0, segments["incidents"] / seg_km / params.period_years, 0.0)
    seg_frame = pd.DataFrame({
        "segment_id": seg_ids,
        "route_id": route_ids[seg_route],
        "route_name": _column(cables, "name")[seg_route] if cable_count else np.zeros(0, dtype=object),
        "owner": seg_owner,
        "part": info["part"].to_numpy() + 1,
        "seq": info["seq"].to_numpy(),
        "chainage_from_m": info["chainage_from_m"].to_numpy().round(2),
        "chainage_to_m": info["chainage_to_m"].to_numpy().round(2),
        "length_m": info["length_m"].to_numpy().round(2),
        **segments,
        "rate": seg_rate.round(4),
        "exposure": seg_exposure.round(4),
    })
    seg_frame["weighted"] = seg_frame["weighted"].round(4)
    seg_frame["exposure_class"] = _class_of(seg_frame["exposure"].to_numpy(), SEGMENT_BREAKS)
    seg_frame["repeat_damage"] = seg_frame["damaging"] >= REPEAT_DAMAGE_MIN
    seg_frame["trend"] = _trend(seg_frame["recent"].to_numpy(), seg_frame["previous"].to_numpy())
    seg_frame["rank"] = _rank_within(seg_frame, "segment_id")
    seg_gdf = gpd.GeoDataFrame(seg_frame[SEGMENT_COLUMNS], geometry=pieces_lonlat, crs=STORAGE_CRS)

    st = _asset_table(station_count, ts, ti, weight, damaging, inc_period, inc_recent, inc_previous)
    st_frame = pd.DataFrame({
        "station_id": _column(stations, "id").astype(str) if station_count else np.zeros(0, dtype=object),
        "station_name": _column(stations, "name"),
        "owner": station_owner,
        "kind": _column(stations, "kind"),
        "criticality": _column(stations, "criticality"),
        **st,
    })
    st_frame["weighted"] = st_frame["weighted"].round(4)
    st_frame["exposure"] = (st_frame["weighted"] / params.period_years).round(4)
    st_frame["exposure_class"] = _class_of(st_frame["exposure"].to_numpy(), STATION_BREAKS)
    st_frame["repeat_damage"] = st_frame["damaging"] >= REPEAT_DAMAGE_MIN
    st_frame["trend"] = _trend(st_frame["recent"].to_numpy(), st_frame["previous"].to_numpy())
    st_frame["rank"] = _rank_within(st_frame, "station_id")
    st_gdf = gpd.GeoDataFrame(st_frame[STATION_COLUMNS],
                              geometry=stations.geometry.array if station_count else [], crs=STORAGE_CRS)

    # --- counted incidents: one row per (owner, incident), with the nearest asset of that owner -----
    counted = _counted_incidents(inc, sel, join, pieces, seg_owner_code, station_owner_code, np.asarray(owner_names),
                                 seg_ids, st_frame["station_id"].to_numpy(dtype=object),
                                 info["chainage_from_m"].to_numpy(), inc_period, weight, damaging)

    owners = _owner_table(seg_gdf, st_gdf, join, seg_owner_code, station_owner_code, list(owner_names), weight,
                          damaging, inc_recent, inc_previous, inc_period, params)
    priority = None
    if priority_areas is not None:
        priority = _priority_shares(pieces, seg_owner, station_points, station_owner, priority_areas)
    method = method_text(params)
    method["counts"] = {
        "cables": cable_count, "segments": int(len(pieces)), "stations": station_count,
        "incidents_read": int(len(inc)), "incidents_considered": int(len(sel)),
        "incidents_unreadable_date": unreadable,
        "incidents_counted": int(np.bincount(counted["_row"].to_numpy(), minlength=1).astype(bool).sum())
        if len(counted) else 0,
        "owners": int(len(owners)),
    }
    counted = counted.drop(columns="_row")
    return ExposureResult(seg_gdf, st_gdf, counted, owners, priority, params, method)


def _asset_table(n_assets, asset_idx, inc_idx, weight, damaging, in_period, recent, previous) -> dict:
    """Per-asset sums over the (incident, asset) pairs, with :func:`numpy.bincount` (no loop)."""
    def total(values):
        return np.bincount(asset_idx, weights=values[inc_idx].astype(float), minlength=n_assets)[:n_assets] \
            if len(asset_idx) else np.zeros(n_assets)

    return {
        "incidents": total(in_period).astype(np.int64),
        "damaging": total(damaging).astype(np.int64),
        "weighted": total(weight),
        "recent": total(recent).astype(np.int64),
        "previous": total(previous).astype(np.int64),
    }


def _counted_incidents(inc, sel, join: _Join, pieces, seg_owner_code, station_owner_code, owner_names, seg_ids,
                       station_ids, seg_start, in_period, weight, damaging) -> gpd.GeoDataFrame:
    """The counted incidents, one row per (owner, incident), with the owner's nearest asset; all arrays."""
    n_seg = len(pieces)
    pair_inc = np.concatenate([join.seg_inc, join.st_inc])
    pair_asset = np.concatenate([join.seg_idx, join.st_idx + n_seg])  # stations numbered after the segments
    distance = np.concatenate([join.seg_dist, join.st_dist])
    along = np.concatenate([join.seg_along, np.full(len(join.st_inc), np.nan)])
    keep = in_period[pair_inc] if len(pair_inc) else np.zeros(0, bool)
    pair_inc, pair_asset, distance, along = pair_inc[keep], pair_asset[keep], distance[keep], along[keep]
    if not len(pair_inc):
        return gpd.GeoDataFrame({c: [] for c in INCIDENT_COLUMNS + ["_row"]}, geometry=[], crs=STORAGE_CRS)
    owner_of_asset = np.concatenate([seg_owner_code, station_owner_code]).astype(np.int64)
    pair_owner = owner_of_asset[pair_asset]
    # nearest asset per (owner, incident): one sort on (owner, incident, distance) packed in a float64 (the
    # distance, at most MAX_BUFFER_M, to well under a millimetre), keeping the first of each group. The rows
    # come out by owner, then in the incidents' own order (newest first, as stored).
    group = pair_owner * (join.n + 1) + pair_inc
    order = np.argsort(group.astype(np.float64) * _PACK + np.minimum(distance, MAX_BUFFER_M), kind="stable")
    sorted_group = group[order]
    first = order[np.r_[True, sorted_group[1:] != sorted_group[:-1]]]
    row_inc, row_asset, row_owner = pair_inc[first], pair_asset[first], pair_owner[first]
    is_seg = row_asset < n_seg
    chainage = np.where(is_seg, seg_start[np.minimum(row_asset, max(n_seg - 1, 0))] + along[first], np.nan) \
        if n_seg else np.full(len(first), np.nan)
    source = sel[row_inc]
    ids_all = np.concatenate([seg_ids, station_ids])
    occurred = _series(inc, "occurred_at", None).iloc[source].reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(occurred):
        occurred = occurred.map(lambda v: v.isoformat() if v is not pd.NaT else None)
    # owner, asset type and asset id as categoricals of the few (or the assets') values: no 100,000s of strings
    frame = pd.DataFrame({
        "id": _series(inc, "id").iloc[source].reset_index(drop=True),
        "owner": pd.Categorical.from_codes(row_owner, categories=owner_names),
        "occurred_at": occurred,
        "type": _series(inc, "type").iloc[source].reset_index(drop=True),
        "severity": _series(inc, "severity").iloc[source].reset_index(drop=True),
        "status": _series(inc, "status").iloc[source].reset_index(drop=True),
        "damaging": damaging[row_inc],
        "weight": weight[row_inc].round(4),
        "asset_type": pd.Categorical.from_codes(np.where(is_seg, 0, 1), categories=["segment", "station"]),
        "asset_id": pd.Categorical.from_codes(row_asset, categories=pd.Index(ids_all, dtype=object))
        if len(ids_all) == len(set(ids_all)) else ids_all[row_asset],
        "distance_m": distance[first].round(1),
        "chainage_m": chainage.round(1),
        "_row": source,
    })
    geometry = np.asarray(inc.geometry.array, dtype=object)[source]
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=STORAGE_CRS)


def _owner_table(seg, st, join: _Join, seg_owner_code, station_owner_code, owners, weight, damaging, recent,
                 previous, in_period, params) -> pd.DataFrame:
    """One row per enterprise: its totals over unique incidents (marked in boolean arrays, no sets)."""
    rows = []
    n = join.n
    pair_seg_owner = seg_owner_code[join.seg_idx] if len(join.seg_idx) else np.zeros(0, np.int64)
    pair_st_owner = station_owner_code[join.st_idx] if len(join.st_idx) else np.zeros(0, np.int64)
    for code, owner in enumerate(owners):  # a handful of enterprises, not a loop over incidents
        near_cable = np.zeros(n, bool)
        near_cable[join.seg_inc[pair_seg_owner == code]] = True
        near_any = near_cable.copy()
        near_any[join.st_inc[pair_st_owner == code]] = True
        cable_p, any_p = near_cable & in_period, near_any & in_period
        seg_rows = seg[seg_owner_code == code]
        st_rows = st[station_owner_code == code]
        cable_km = float(seg_rows["length_m"].sum()) / 1000.0
        rec, prev = int((near_any & recent).sum()), int((near_any & previous).sum())
        exposed = int((seg_rows["incidents"] > 0).sum())
        rows.append({
            "owner": owner,
            "cable_km": round(cable_km, 3),
            "segments": int(len(seg_rows)),
            "stations": int(len(st_rows)),
            "incidents": int(any_p.sum()),
            "damaging": int((any_p & damaging).sum()),
            "weighted": round(float(weight[any_p].sum()), 4),
            "cable_incidents": int(cable_p.sum()),
            "cable_exposure": round(float(weight[cable_p].sum()) / cable_km / params.period_years, 4) if cable_km else 0.0,
            "station_exposure": round(float(st_rows["weighted"].sum()) / len(st_rows) / params.period_years, 4)
            if len(st_rows) else 0.0,
            "exposed_segments": exposed,
            "exposed_segment_share": round(exposed / len(seg_rows), 4) if len(seg_rows) else 0.0,
            "repeat_damage_segments": int(seg_rows["repeat_damage"].sum()),
            "repeat_damage_stations": int(st_rows["repeat_damage"].sum()),
            "high_segments": int(seg_rows["exposure_class"].isin(["high", "very_high"]).sum()),
            "high_stations": int(st_rows["exposure_class"].isin(["high", "very_high"]).sum()),
            "recent": rec,
            "previous": prev,
            "trend": str(_trend(np.array([rec]), np.array([prev]))[0]),
        })
    return pd.DataFrame(rows, columns=OWNER_COLUMNS)


def _priority_shares(pieces, seg_owner, station_points, station_owner, areas) -> pd.DataFrame:
    """Per owner and priority class: cable length and stations inside (numbers only, never the cells)."""
    columns = ["owner", "priority_class", "cable_km", "cable_share", "stations", "station_share"]
    owners = sorted({str(o) for o in np.concatenate([seg_owner, station_owner]) if o is not None})
    if "priority_class" not in areas.columns or not len(areas):
        cells, classes = np.empty(0, dtype=object), np.empty(0, dtype=object)
    else:
        cells = _metric_geoms(areas.geometry.array)
        classes = areas["priority_class"].to_numpy(dtype=object)
    rank = {c: i for i, c in enumerate(PRIORITY_CLASSES)}
    seg_len = shapely.length(pieces) if len(pieces) else np.zeros(0)
    inside_len = {c: np.zeros(len(pieces)) for c in PRIORITY_CLASSES[:-1]}
    station_class = np.full(len(station_points), "outside", dtype=object)
    if len(cells):
        tree = shapely.STRtree(cells)
        if len(pieces):
            pi, ci = tree.query(pieces, predicate="intersects")
            lengths = shapely.length(shapely.intersection(pieces[pi], cells[ci]))
            for cls in inside_len:
                mask = classes[ci] == cls
                inside_len[cls] = np.bincount(pi[mask], weights=lengths[mask], minlength=len(pieces))
        if len(station_points):
            qi, ci = tree.query(station_points, predicate="intersects")
            # a station on the edge of two cells takes the higher class
            order = np.lexsort((np.array([rank.get(c, 99) for c in classes[ci]]), qi))
            qi, ci = qi[order], ci[order]
            first = np.r_[True, qi[1:] != qi[:-1]] if len(qi) else np.zeros(0, bool)
            station_class[qi[first]] = classes[ci[first]]
    rows = []
    for owner in owners:
        seg_mask = seg_owner == owner
        st_mask = station_owner == owner
        total_m = float(seg_len[seg_mask].sum())
        total_st = int(st_mask.sum())
        inside_total = 0.0
        for cls in PRIORITY_CLASSES:
            if cls == "outside":
                metres = max(total_m - inside_total, 0.0)
            else:
                metres = float(inside_len[cls][seg_mask].sum())
                inside_total += metres
            count = int((station_class[st_mask] == cls).sum())
            rows.append({"owner": owner, "priority_class": cls, "cable_km": round(metres / 1000.0, 3),
                         "cable_share": round(metres / total_m, 4) if total_m else 0.0,
                         "stations": count, "station_share": round(count / total_st, 4) if total_st else 0.0})
    return pd.DataFrame(rows, columns=columns)


def method_text(params: ExposureParams) -> dict:
    """The method in words (vi, en) with every parameter: written into every output."""
    p = params.as_dict()
    weights = ", ".join(f"{k} {v:g}" for k, v in p["severity_weights"].items())
    return {
        "name": "webmap exposure index",
        "text": {
            "vi": (f"Mỗi tuyến cáp được chia thành các đoạn dài bằng nhau, tối đa {p['segment_m']:g} m. Sự cố được tính "
                   f"cho một đoạn cáp hoặc một trạm khi nằm trong phạm vi {p['buffer_m']:g} m (đo trong VN-2000 / TM-3 "
                   f"múi 482, EPSG:5897); không tính sự cố không xác thực. Chỉ số phơi nhiễm = tổng trọng số sự cố trong "
                   f"kỳ {p['since']} – {p['until']} trên mỗi km cáp mỗi năm (đoạn cáp) hoặc trên mỗi trạm mỗi năm (trạm); "
                   f"trọng số = mức độ nghiêm trọng (nhẹ 1, trung bình 2, nghiêm trọng 3, đặc biệt nghiêm trọng 5) × "
                   f"0,5^(số ngày trước ngày tham chiếu {p['reference_date']} / {p['half_life_days']:g}). Đoạn bị hư hại "
                   f"lặp lại: từ {REPEAT_DAMAGE_MIN} vụ trộm cắp cáp, phá hoại hoặc cháy nổ trong kỳ. Xu hướng: số vụ "
                   f"{TREND_DAYS} ngày gần nhất so với cùng {TREND_DAYS} ngày năm trước."),
            "en": (f"Each cable route is cut into equal pieces of at most {p['segment_m']:g} m. An incident counts for a "
                   f"segment or a station when it lies within {p['buffer_m']:g} m (measured in VN-2000 / TM-3 zone 482, "
                   f"EPSG:5897); rejected incidents are left out. Exposure index = sum of incident weights in the period "
                   f"{p['since']} to {p['until']} per km of cable per year (segments) or per station per year "
                   f"(stations); weight = severity ({weights}) x 0.5^(days before the reference date "
                   f"{p['reference_date']} / {p['half_life_days']:g}). Repeat damage: at least {REPEAT_DAMAGE_MIN} cable "
                   f"thefts, sabotage or fires/explosions in the period. Trend: incidents in the last {TREND_DAYS} days "
                   f"against the same {TREND_DAYS} days a year earlier."),
        },
        "parameters": p,
        "computed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"shapely": shapely.__version__, "geos": ".".join(map(str, shapely.geos_version)),
                     "geopandas": gpd.__version__, "pandas": pd.__version__, "numpy": np.__version__},
    }
