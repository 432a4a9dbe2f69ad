"""A regular grid of hexagons or squares in VN-2000 / TM-3 zone 482 metres (EPSG:5897), cropped to the city.

The lattice is anchored at the CRS origin, so a cell's shape and place depend only on its size and shape
(not on the data). Points are put in cells by arithmetic on their metric coordinates (no spatial join, no
Python loop), then looked up in a dense table from lattice key to cell number; only points in the cells
that the city boundary cuts are tested against the cropped polygon. Neighbours come from the lattice
itself: the 6 hexagons around a hexagon, the 8 squares around a square (queen).

>>> import shapely
>>> grid = make_grid(shapely.box(0, 0, 1000, 1000), cell_m=500, shape="square")
>>> len(grid), grid.area_id[:2].tolist()
(4, ['S500-0001', 'S500-0002'])
>>> grid.locate([250.0, 750.0, 1500.0], [750.0, 250.0, 10.0]).tolist()
[0, 3, -1]
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import shapely

from webmap.errors import BadInput

__all__ = ["Grid", "LonLatToMetric", "make_grid", "grid_for", "SHAPES", "MIN_CELL_M", "MAX_CELLS"]

SHAPES = ("hex", "square")
MIN_CELL_M = 50.0
MAX_CELL_M = 20_000.0
#: more cells than this is refused (Gi* with 999 permutations keeps cells x permutations numbers in memory)
MAX_CELLS = 200_000
#: cells with less of their area inside the city are dropped: slivers left by rounding where the boundary
#: runs along a lattice line (a point there is counted as outside the city)
MIN_CELL_AREA_M2 = 1.0
#: cells with less than this share of their area inside the city are not tested for hot spots: a sliver on
#: the border holding one incident would otherwise look like a dense cluster (Gi* works on density)
MIN_TESTED_SHARE = 0.25
_SQRT3 = math.sqrt(3.0)
_HEX_NEIGHBOURS = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (1, -1), (-1, 1)])
_SQUARE_NEIGHBOURS = np.array([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dx or dy])


def check_cell(cell_m: float, shape: str) -> None:
    """Refuse a cell size or shape the grid cannot use (BadInput, with what is allowed)."""
    if shape not in SHAPES:
        raise BadInput(f"unknown cell shape {shape!r}; choose hex or square")
    if not (isinstance(cell_m, (int, float)) and math.isfinite(cell_m) and MIN_CELL_M <= cell_m <= MAX_CELL_M):
        raise BadInput(f"cell size must be between {MIN_CELL_M:g} and {MAX_CELL_M:g} metres, got {cell_m!r}")


def lattice_keys(x, y, cell_m: float, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer lattice keys of metric points: (q, r) axial hexagon coordinates, or (column, row) squares.

    Hexagons are pointy-topped, ``cell_m`` wide (flat side to flat side), centred at
    x = cell_m * (q + r / 2), y = cell_m * sqrt(3) / 2 * r; a point goes to the nearest centre (cube rounding).

    >>> lattice_keys([0.0, 260.0, 250.0], [0.0, 0.0, 433.0], 500, "hex")
    (array([0, 1, 0]), array([0, 0, 1]))
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if shape == "square":
        return np.floor(x / cell_m).astype(np.int64), np.floor(y / cell_m).astype(np.int64)
    rf = y / (cell_m * _SQRT3 / 2.0)
    qf = x / cell_m - rf / 2.0
    sf = -qf - rf
    q = np.rint(qf)
    r = np.rint(rf)
    s = np.rint(sf)
    dq = np.abs(q - qf)
    dr = np.abs(r - rf)
    ds = np.abs(s - sf)
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    q = np.where(fix_q, -r - s, q)
    r = np.where(fix_r, -q - s, r)
    return q.astype(np.int64), r.astype(np.int64)


def cell_centres(q, r, cell_m: float, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Metric centre of lattice cells."""
    q = np.asarray(q, dtype=float)
    r = np.asarray(r, dtype=float)
    if shape == "square":
        return (q + 0.5) * cell_m, (r + 0.5) * cell_m
    return cell_m * (q + r / 2.0), cell_m * _SQRT3 / 2.0 * r


def cell_polygons(q, r, cell_m: float, shape: str) -> np.ndarray:
    """Uncropped cell polygons (counter-clockwise rings), vectorised with ``shapely.polygons``."""
    cx, cy = cell_centres(q, r, cell_m, shape)
    if shape == "square":
        dx = np.array([-0.5, 0.5, 0.5, -0.5, -0.5]) * cell_m
        dy = np.array([-0.5, -0.5, 0.5, 0.5, -0.5]) * cell_m
    else:
        radius = cell_m / _SQRT3  # circumradius: corners at -90, -30, 30, 90, 150, 210 degrees
        angles = np.radians([-90, -30, 30, 90, 150, 210, -90])
        dx = radius * np.cos(angles)
        dy = radius * np.sin(angles)
    coords = np.stack([cx[:, None] + dx[None, :], cy[:, None] + dy[None, :]], axis=-1)
    return shapely.polygons(coords)


class LonLatToMetric:
    """WGS 84 lon/lat -> EPSG:5897 metres over one box, by a cubic polynomial fitted to the exact transform.

    Why: the project's pinned pipeline (``webmap.crs.lonlat_to_metric``, EPSG:6960) costs about 0.4 s per
    million points, more than the rest of the gridding; over a city-sized box the transformation is so
    smooth that a polynomial of degree 3 reproduces it to a fraction of a millimetre. The fit is checked
    against the exact transform on a denser set of points when it is made; if it is off by more than
    :data:`MAX_ERROR_M` anywhere (a box far too large), the exact transform is used instead.

    >>> fit = LonLatToMetric((105.2, 9.9, 105.9, 10.35))
    >>> fit.exact is False and fit.max_error_m < 0.001
    True
    """

    DEGREE = 3
    MAX_ERROR_M = 0.001

    def __init__(self, box):
        from webmap.crs import lonlat_to_metric

        self.box = tuple(float(v) for v in box)
        self._exact = lonlat_to_metric
        self.terms = [(i, j) for i in range(self.DEGREE + 1) for j in range(self.DEGREE + 1 - i)]
        nodes = np.cos(np.linspace(0, np.pi, 24))  # Chebyshev points: the error is spread evenly
        u, v = (a.ravel() for a in np.meshgrid(nodes, nodes))
        x, y = lonlat_to_metric(*self._lonlat(u, v))
        design = np.stack([u ** i * v ** j for i, j in self.terms], axis=1)
        self.cx = np.linalg.lstsq(design, x, rcond=None)[0]
        self.cy = np.linalg.lstsq(design, y, rcond=None)[0]
        check = np.linspace(-1, 1, 61)
        u, v = (a.ravel() for a in np.meshgrid(check, check))
        x, y = lonlat_to_metric(*self._lonlat(u, v))
        px, py = self._poly(u, v)
        self.max_error_m = float(max(np.abs(px - x).max(), np.abs(py - y).max()))
        self.exact = not self.max_error_m < self.MAX_ERROR_M

    def _lonlat(self, u, v):
        w, s, e, n = self.box
        return w + (u + 1) / 2 * (e - w), s + (v + 1) / 2 * (n - s)

    def _poly(self, u, v):
        x = np.zeros_like(u)
        y = np.zeros_like(u)
        for j in range(self.DEGREE, -1, -1):  # Horner in v of Horner in u
            px = np.zeros_like(u)
            py = np.zeros_like(u)
            for i in range(self.DEGREE - j, -1, -1):
                k = self.terms.index((i, j))
                px *= u
                px += self.cx[k]
                py *= u
                py += self.cy[k]
            x *= v
            x += px
            y *= v
            y += py
        return x, y

    def __call__(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """Metres of each point; NaN for points outside the box (or not finite)."""
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        w, s, e, n = self.box
        inside = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
        x = np.full(lon.shape, np.nan)
        y = np.full(lon.shape, np.nan)
        if self.exact:
            x[inside], y[inside] = self._exact(lon[inside], lat[inside])
            return x, y
        if inside.all():
            return self._poly((lon - w) * (2 / (e - w)) - 1, (lat - s) * (2 / (n - s)) - 1)
        u = (lon[inside] - w) * (2 / (e - w)) - 1
        v = (lat[inside] - s) * (2 / (n - s)) - 1
        x[inside], y[inside] = self._poly(u, v)
        return x, y


@dataclass
class Grid:
    """Cells of one size and shape inside the city (EPSG:5897), numbered from north-west to south-east."""

    cell_m: float
    shape: str
    q: np.ndarray                 # lattice keys of every cell
    r: np.ndarray
    polygons: np.ndarray          # cropped cell polygons, metres
    full: np.ndarray              # True where the cell lies wholly inside the city
    area_id: np.ndarray           # "H500-0001", "S250-0042"...
    tested: np.ndarray = None     # True where at least MIN_TESTED_SHARE of the cell is in the city
    _lut: np.ndarray = field(repr=False, default=None)
    _lut_origin: tuple = (0, 0)
    _graph: object = field(repr=False, default=None)
    _tree: object = field(repr=False, default=None)
    _lonlat: dict = field(repr=False, default_factory=dict)

    def __len__(self) -> int:
        return len(self.q)

    @property
    def cell_area_m2(self) -> float:
        """Area of a whole (uncropped) cell."""
        return self.cell_m ** 2 * (1.0 if self.shape == "square" else _SQRT3 / 2.0)

    def _build_lut(self):
        q0, r0 = int(self.q.min()), int(self.r.min())
        lut = np.full((int(self.q.max()) - q0 + 1, int(self.r.max()) - r0 + 1), -1, dtype=np.int64)
        lut[self.q - q0, self.r - r0] = np.arange(len(self))
        self._lut, self._lut_origin = lut, (q0, r0)

    def lookup(self, q, r) -> np.ndarray:
        """Cell number of lattice keys, -1 for keys outside the city."""
        q0, r0 = self._lut_origin
        qi = np.asarray(q) - q0
        ri = np.asarray(r) - r0
        ok = (qi >= 0) & (ri >= 0) & (qi < self._lut.shape[0]) & (ri < self._lut.shape[1])
        out = np.full(qi.shape, -1, dtype=np.int64)
        out[ok] = self._lut[qi[ok], ri[ok]]
        return out

    def locate(self, x, y) -> np.ndarray:
        """Cell number of each metric point, -1 outside the city (vectorised; exact on cut cells)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if len(self) == 0:
            return np.full(x.shape, -1, dtype=np.int64)
        cell = self.lookup(*lattice_keys(x, y, self.cell_m, self.shape))
        cut = np.flatnonzero(cell >= 0)
        cut = cut[~self.full[cell[cut]]]
        if len(cut):  # only points in cells the boundary cuts need the (prepared) polygon
            cell[cut[~shapely.intersects_xy(self.polygons[cell[cut]], x[cut], y[cut])]] = -1
        return cell

    def neighbour_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(focal, neighbour) cell numbers of lattice neighbours, both directions, sorted by focal."""
        offsets = _HEX_NEIGHBOURS if self.shape == "hex" else _SQUARE_NEIGHBOURS
        focal = np.repeat(np.arange(len(self)), len(offsets))
        nq = (self.q[:, None] + offsets[None, :, 0]).ravel()
        nr = (self.r[:, None] + offsets[None, :, 1]).ravel()
        neighbour = self.lookup(nq, nr)
        keep = neighbour >= 0
        return focal[keep], neighbour[keep]

    def weights(self):
        """libpysal ``Graph`` of lattice contiguity among the :attr:`tested` cells (numbered 0..k-1 in their
        order), binary, with self-weight 1 for Gi*; built once per grid."""
        if self._graph is None:
            from libpysal.graph import Graph

            focal, neighbour = self.neighbour_pairs()
            index = np.full(len(self), -1, dtype=np.int64)
            index[self.tested] = np.arange(int(self.tested.sum()))
            both = (index[focal] >= 0) & (index[neighbour] >= 0)
            focal, neighbour = index[focal[both]], index[neighbour[both]]
            isolates = np.setdiff1d(np.arange(int(self.tested.sum())), focal)
            # libpysal's convention for a cell without neighbours: a self-loop of weight 0
            focal = np.concatenate([focal, isolates])
            neighbour = np.concatenate([neighbour, isolates])
            weight = np.concatenate([np.ones(len(focal) - len(isolates)), np.zeros(len(isolates))])
            order = np.lexsort((neighbour, focal))
            graph = Graph.from_arrays(focal[order], neighbour[order], weight[order])
            self._graph = graph.assign_self_weight(1.0)
        return self._graph

    def tree(self) -> shapely.STRtree:
        """An STR-tree over the cropped cells (for lines and polygons that may cross several cells)."""
        if self._tree is None:
            self._tree = shapely.STRtree(self.polygons)
        return self._tree

    def lonlat_box(self) -> tuple:
        """(west, south, east, north) of the cells in WGS 84, padded by about 100 m."""
        if "box" not in self._lonlat:
            self._lonlat_geometry()
        return self._lonlat["box"]

    def _lonlat_geometry(self):
        from webmap.crs import METRIC_CRS, resolve_crs

        to_lonlat = resolve_crs(METRIC_CRS).transform_geometries
        polygons = to_lonlat(self.polygons) if len(self) else np.array([], dtype=object)
        centres = to_lonlat(shapely.points(self.centroids())) if len(self) else np.array([], dtype=object)
        w, s, e, n = shapely.total_bounds(polygons) if len(self) else (0.0, 0.0, 0.0, 0.0)
        self._lonlat.update(polygons=polygons, centroids=np.column_stack([shapely.get_x(centres), shapely.get_y(centres)])
                            if len(self) else np.zeros((0, 2)), box=(w - 0.001, s - 0.001, e + 0.001, n + 0.001))

    def lonlat_polygons(self) -> np.ndarray:
        """The cropped cells in WGS 84 lon/lat (the pinned datum shift), made once per grid."""
        if "polygons" not in self._lonlat:
            self._lonlat_geometry()
        return self._lonlat["polygons"]

    def lonlat_centroids(self) -> np.ndarray:
        """(n, 2) lon/lat of the cropped cells' centroids."""
        if "centroids" not in self._lonlat:
            self._lonlat_geometry()
        return self._lonlat["centroids"]

    def metric_from_lonlat(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """EPSG:5897 metres of lon/lat points (NaN outside the grid's box, which is outside the city)."""
        if "fit" not in self._lonlat:
            self._lonlat["fit"] = LonLatToMetric(self.lonlat_box())
        return self._lonlat["fit"](lon, lat)

    def area_order(self) -> np.ndarray:
        """Place of each cell's ``area_id`` in text order (ties in a ranking are broken by it), made once."""
        if "area_order" not in self._lonlat:
            order = np.empty(len(self), dtype=np.int64)
            order[np.argsort(self.area_id.astype(str), kind="stable")] = np.arange(len(self))
            self._lonlat["area_order"] = order
        return self._lonlat["area_order"]

    def centroids(self) -> np.ndarray:
        """Metric centroids of the cropped cells, (n, 2)."""
        return shapely.get_coordinates(shapely.centroid(self.polygons))


def make_grid(city, cell_m: float = 500.0, shape: str = "hex") -> Grid:
    """Cells of ``cell_m`` metres and ``shape`` covering the metric polygon ``city``, cropped to it.

    Parameters
    ----------
    city : shapely geometry
        The city in EPSG:5897 metres (the union of its districts).
    cell_m : float
        Hexagon width (flat side to flat side) or square side, metres.
    shape : {"hex", "square"}

    Returns
    -------
    Grid
        Every cell with at least 1 m² inside the city (:data:`MIN_CELL_AREA_M2`), cropped to it; numbered row by row from the
        north-west (``area_id`` "H500-0001"...), the same numbers for the same city, size and shape.
    """
    check_cell(cell_m, shape)
    if city is None or shapely.is_empty(city):
        raise BadInput("the city boundary is empty: load the districts layer first")
    minx, miny, maxx, maxy = city.bounds
    pad = cell_m
    estimate = (maxx - minx + 2 * pad) * (maxy - miny + 2 * pad) / (cell_m ** 2 * (1 if shape == "square" else 0.86))
    if estimate > 4 * MAX_CELLS:
        raise BadInput(f"cells of {cell_m:g} m would make about {estimate:,.0f} cells over the city; use larger cells")
    # candidate keys: every lattice cell whose centre falls in the padded bounding box
    if shape == "square":
        cols = np.arange(math.floor((minx - pad) / cell_m), math.floor((maxx + pad) / cell_m) + 1)
        rows = np.arange(math.floor((miny - pad) / cell_m), math.floor((maxy + pad) / cell_m) + 1)
        q, r = (a.ravel() for a in np.meshgrid(cols, rows))
    else:
        height = cell_m * _SQRT3 / 2.0
        rows = np.arange(math.floor((miny - pad) / height), math.ceil((maxy + pad) / height) + 1)
        q_lo = math.floor((minx - pad) / cell_m - rows.max() / 2.0) - 1
        q_hi = math.ceil((maxx + pad) / cell_m - rows.min() / 2.0) + 1
        q, r = (a.ravel() for a in np.meshgrid(np.arange(q_lo, q_hi + 1), rows))
        cx, _ = cell_centres(q, r, cell_m, shape)
        near = (cx >= minx - pad) & (cx <= maxx + pad)
        q, r = q[near], r[near]
    polygons = cell_polygons(q, r, cell_m, shape)
    shapely.prepare(city)
    touching = shapely.intersects(city, polygons)
    q, r, polygons = q[touching], r[touching], polygons[touching]
    full = shapely.contains_properly(city, polygons)
    cropped = polygons.copy()
    if (~full).any():
        cropped[~full] = shapely.intersection(polygons[~full], city)
        cropped[~full] = _polygonal(cropped[~full])
    keep = shapely.area(cropped) >= MIN_CELL_AREA_M2
    q, r, cropped, full = q[keep], r[keep], cropped[keep], full[keep]
    if len(q) > MAX_CELLS:
        raise BadInput(f"cells of {cell_m:g} m make {len(q):,} cells over the city (most {MAX_CELLS:,}); use larger cells")
    cx, cy = cell_centres(q, r, cell_m, shape)
    order = np.lexsort((cx, -np.round(cy, 3)))  # north to south, then west to east
    q, r, cropped, full = q[order], r[order], cropped[order], full[order]
    prefix = "H" if shape == "hex" else "S"
    width = max(4, len(str(len(q))))
    area_id = np.array([f"{prefix}{cell_m:g}-{i + 1:0{width}d}" for i in range(len(q))], dtype=object)
    cell_area = cell_m ** 2 * (1.0 if shape == "square" else _SQRT3 / 2.0)
    tested = full | (shapely.area(cropped) >= MIN_TESTED_SHARE * cell_area)
    grid = Grid(cell_m=float(cell_m), shape=shape, q=q, r=r, polygons=cropped, full=full, area_id=area_id,
                tested=tested)
    if len(grid):
        grid._build_lut()
    shapely.prepare(grid.polygons)
    return grid


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygon parts of intersections (drop lines and points where a cell only touches)."""
    out = geoms.copy()
    for i, geom in enumerate(geoms):
        kind = shapely.get_type_id(geom)
        if kind == 7:  # GeometryCollection
            parts = [g for g in shapely.get_parts(geom) if shapely.get_type_id(g) in (3, 6)]
            out[i] = shapely.union_all(parts) if parts else shapely.Polygon()
        elif kind not in (3, 6):
            out[i] = shapely.Polygon()
    return out


_CACHE: OrderedDict = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


def grid_for(city, cell_m: float = 500.0, shape: str = "hex") -> Grid:
    """:func:`make_grid`, remembered for the last few (city, size, shape): the grid and its weights are
    the same for every filter, so a server builds them once."""
    key = (hashlib.sha256(shapely.to_wkb(city)).hexdigest(), float(cell_m), shape)
    with _CACHE_LOCK:
        grid = _CACHE.get(key)
        if grid is not None:
            _CACHE.move_to_end(key)
            return grid
    grid = make_grid(city, cell_m, shape)
    grid.weights()
    grid.tree()
    grid.lonlat_polygons()
    with _CACHE_LOCK:
        _CACHE[key] = grid
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return grid
