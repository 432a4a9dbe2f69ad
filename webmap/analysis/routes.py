"""Patrol routes: which places to check in an area, and in what order to visit them.

Two pure steps (GeoDataFrames in, results out; no Flask, no store):

1. :func:`select_checkpoints` picks the checkpoints inside an area: key sites, critical stations and the
   centres of hot-spot clusters of the priority grid, each with what to inspect there.
2. :func:`plan_route` orders them into a closed route that starts and ends at a chosen station or police
   post: nearest neighbour, then 2-opt, both deterministic (ties go to the lower index). Distances are
   shortest paths on a ``roads`` layer when one is given (networkx's Dijkstra on the noded road lines),
   else straight lines; both in metres in VN-2000 / TM-3 (:data:`webmap.crs.METRIC_CRS`).

The route is never longer than the checkpoints visited in the order given: when the given order is
shorter (it cannot be after a full 2-opt from the nearest-neighbour tour, but heuristics promise nothing),
the given order is returned. A checkpoint farther than ``max_snap_m`` from every road is reached in a
straight line, as is a pair of checkpoints the road network does not connect.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, Point

from webmap.crs import METRIC_CRS, STORAGE_CRS, to_metric

__all__ = ["CHECKPOINT_COLUMNS", "PatrolRoute", "select_checkpoints", "make_start", "plan_route",
           "build_road_graph", "tour_length", "solve_tour"]

#: Columns of a checkpoint table (EPSG:4326 points): ``kind`` is start, key_site, station, hotspot or area.
CHECKPOINT_COLUMNS = ["id", "name", "kind", "inspect", "geometry"]

_PROTECTION_ORDER = {"special": 0, "level_1": 1, "level_2": 2}
_CRITICALITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}

# What an officer checks, by station kind (Vietnamese: the table is printed for Vietnamese officers).
_STATION_INSPECT = {
    "bts": "Hàng rào, cửa trạm, tủ nguồn, ắc quy, cáp lên cột",
    "exchange": "Cửa, camera, phòng máy, cáp vào tổng đài",
    "data_centre": "Kiểm soát ra vào, camera, nguồn dự phòng",
    "post_office": "Bưu gửi khả nghi, khu nhận gửi, camera",
    "gateway": "Kiểm soát ra vào, tuyến cáp cổng quốc tế",
}
_INCIDENT_INSPECT = {
    "cable_theft": "trộm cắp cáp",
    "sabotage": "phá hoại",
    "fire_explosion": "cháy, nổ",
    "fee_fraud": "gian lận cước",
    "postal_smuggling": "hàng cấm qua bưu chính",
    "cyber_attack": "tấn công mạng",
    "reactionary_material": "tài liệu phản động",
    "other": "vụ việc khác",
}
_TREND_TEXT = {"emerging": "mới nổi", "persistent": "kéo dài", "fading": "giảm dần"}


def _points(gdf: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """A point for every feature: the point itself, or a point surely inside a polygon or on a line."""
    geoms = gdf.geometry
    return gpd.GeoSeries(np.where(geoms.geom_type == "Point", geoms.values, geoms.representative_point().values),
                         index=gdf.index, crs=gdf.crs)


def _text(value) -> str:
    """A cell as text; "" for None and NaN (a name left empty in the layer)."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def _frame(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, columns=CHECKPOINT_COLUMNS, geometry="geometry", crs=STORAGE_CRS)


def select_checkpoints(area, *, key_sites=None, stations=None, cells=None, incidents=None,
                       station_levels=("critical",), area_centre=None, max_checkpoints: int = 18,
                       max_hotspots: int = 8) -> gpd.GeoDataFrame:
    """The places to check inside ``area``, most important first.

    Parameters
    ----------
    area : shapely geometry (lon/lat)
        The area patrolled (a priority cell, a district, a rectangle).
    key_sites, stations, cells, incidents : GeoDataFrame (EPSG:4326) or None
        What the user may see of each layer (``None``: not visible or not loaded). ``cells`` are the priority
        cells of :mod:`webmap.analysis.priority` (``hotspot``, ``rank``, ``score``, ``incidents``, ``trend``...).
        ``incidents`` only word the inspection of hot spots (their most frequent type).
    station_levels : tuple of str
        Criticality of the stations to visit.
    area_centre : (id, name) or None
        Add the centre of the area as a checkpoint (a printed priority area is always visited).
    max_checkpoints : int
        At most this many, keeping the most important: key sites (by protection level), then the area
        centre, then stations (by criticality), then hot spots (by rank). 18 fill the checkpoint table of a
        portrait sheet, so a patrol map stays one page.

    Returns
    -------
    GeoDataFrame
        ``id``, ``name``, ``kind`` (key_site, area, station, hotspot), ``inspect`` (Vietnamese), point
        geometry in EPSG:4326, in the order given to :func:`plan_route`.

    Notes
    -----
    Hot-spot cells that touch are one hot spot: its checkpoint is the centre of its best-ranked cell.
    """
    rows: list[dict] = []
    shapely.prepare(area)
    if key_sites is not None and len(key_sites):
        inside = key_sites[shapely.intersects(area, key_sites.geometry.values)]
        # a site that reaches into the area is visited where it does: a point of the site inside the area
        points = gpd.GeoSeries(shapely.point_on_surface(shapely.intersection(inside.geometry.values, area)),
                               index=inside.index, crs=inside.crs)
        inside = inside.assign(_order=inside.get("protection_level", pd.Series(dtype=str)).map(_PROTECTION_ORDER).fillna(9))
        for idx, row in inside.sort_values(["_order", "id"], kind="stable").iterrows():
            level = {"special": "đặc biệt", "level_1": "cấp 1", "level_2": "cấp 2"}.get(row.get("protection_level"), "")
            rows.append({"id": str(row["id"]), "name": _text(row.get("name")) or str(row["id"]), "kind": "key_site",
                         "inspect": f"Mục tiêu bảo vệ {level}: cáp, trạm phục vụ mục tiêu; phối hợp lực lượng bảo vệ".replace("  ", " "),
                         "geometry": points.loc[idx]})
    if area_centre is not None:
        centre_id, centre_name = area_centre
        rows.append({"id": str(centre_id), "name": str(centre_name), "kind": "area",
                     "inspect": "Tuần tra khu vực ưu tiên: tuyến cáp, hộp cáp, trạm",
                     "geometry": area.representative_point() if not isinstance(area, Point) else area})
    if stations is not None and len(stations) and "criticality" in stations.columns:
        chosen = stations[stations["criticality"].isin(list(station_levels))]
        chosen = chosen[shapely.intersects(area, chosen.geometry.values)]
        chosen = chosen.assign(_order=chosen["criticality"].map(_CRITICALITY_ORDER).fillna(9))
        for _, row in chosen.sort_values(["_order", "id"], kind="stable").iterrows():
            rows.append({"id": str(row["id"]), "name": _text(row.get("name")) or str(row["id"]), "kind": "station",
                         "inspect": _STATION_INSPECT.get(row.get("kind"), "Cửa, hàng rào, nguồn điện, cáp vào trạm"),
                         "geometry": row.geometry})
    if cells is not None and len(cells) and "hotspot" in cells.columns:
        rows.extend(_hotspot_rows(area, cells, incidents, max_hotspots))
    seen, unique = set(), []
    for row in rows:  # one checkpoint per id (a station may also be the centre of a hot spot's cell...)
        if row["id"] not in seen:
            seen.add(row["id"])
            unique.append(row)
    return _frame(unique[:max_checkpoints])


def _hotspot_rows(area, cells, incidents, max_hotspots: int) -> list[dict]:
    hot = cells[cells["hotspot"] == "hot"]
    if {"centroid_lon", "centroid_lat"} <= set(hot.columns):
        centres = gpd.points_from_xy(hot["centroid_lon"], hot["centroid_lat"])
    else:
        centres = shapely.centroid(hot.geometry.values)  # a cell is small: its lon/lat centroid is its centre
    hot = hot.assign(_centre=centres)
    hot = hot[shapely.intersects(area, hot["_centre"].values)]
    if not len(hot):
        return []
    hot = hot.sort_values(["rank", "area_id"] if "rank" in hot.columns else ["area_id"], kind="stable")
    hot = hot.reset_index(drop=True)
    # cells that touch belong to one hot spot (connected components of the touching graph)
    graph = nx.Graph()
    graph.add_nodes_from(range(len(hot)))
    geoms = hot.geometry.values
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    graph.add_edges_from((int(a), int(b)) for a, b in zip(left, right) if a < b)
    clusters = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
    rows = []
    for members in clusters[:max_hotspots]:
        best = hot.iloc[members[0]]  # sorted by rank: a cluster's first member is its best-ranked cell
        part = hot.iloc[members]
        total = int(part["incidents"].fillna(0).sum()) if "incidents" in part.columns else 0
        recent = int(part["recent"].fillna(0).sum()) if "recent" in part.columns else 0
        what = _main_incident_type(incidents, part.geometry.values)
        trend = _TREND_TEXT.get(best.get("trend"), "")
        text = f"Điểm nóng: {total} vụ ({recent} vụ/90 ngày)"
        if trend:
            text += f", {trend}"
        if what:
            text += f"; chủ yếu {what}"
        name = f"Điểm nóng {best['area_id']}" + (f" (+{len(members) - 1} ô)" if len(members) > 1 else "")
        rows.append({"id": str(best["area_id"]), "name": name, "kind": "hotspot", "inspect": text,
                     "geometry": best["_centre"]})
    return rows


def _main_incident_type(incidents, polygons) -> str:
    if incidents is None or not len(incidents) or "type" not in incidents.columns:
        return ""
    union = shapely.union_all(polygons)
    inside = incidents[incidents.intersects(union)]
    if not len(inside):
        return ""
    counts = inside["type"].value_counts()
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    return _INCIDENT_INSPECT.get(top, str(top))


def make_start(ident: str, name: str, point: Point, kind_text: str = "Điểm xuất phát") -> gpd.GeoDataFrame:
    """A one-row checkpoint table for the start (a station, a key site used as a police post, a point)."""
    return _frame([{"id": str(ident), "name": str(name), "kind": "start",
                    "inspect": f"{kind_text}: nhận nhiệm vụ, kết thúc tuần tra", "geometry": point}])


# -- the road network --------------------------------------------------------------------------------------
def _key(x: float, y: float) -> tuple:
    return (round(float(x), 3), round(float(y), 3))


@dataclass
class RoadGraph:
    """The road lines noded at every crossing, one edge per straight segment (length in metres)."""

    graph: nx.Graph
    segments: np.ndarray  # LineStrings, one per edge, in the order edges were added
    ends: list            # (u, v) node keys of each segment


def build_road_graph(roads: gpd.GeoDataFrame) -> RoadGraph | None:
    """A graph of ``roads`` (any CRS; measured in EPSG:5897), noded where lines cross (shapely.node).

    Returns None when there are no road lines.
    """
    if roads is None or not len(roads):
        return None
    metric = to_metric(roads) if str(roads.crs) != METRIC_CRS else roads
    lines = shapely.get_parts(metric.geometry.values)
    lines = lines[shapely.get_type_id(lines) == 1]  # LineString
    if not len(lines):
        return None
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(lines)))
    graph = nx.Graph()
    segments, ends = [], []
    for line in noded:
        coords = shapely.get_coordinates(line)
        for (x1, y1), (x2, y2) in zip(coords[:-1], coords[1:]):
            u, v = _key(x1, y1), _key(x2, y2)
            if u == v or graph.has_edge(u, v):
                continue
            length = float(np.hypot(x2 - x1, y2 - y1))
            graph.add_edge(u, v, length=length)
            segments.append(LineString([u, v]))
            ends.append((u, v))
    if not segments:
        return None
    return RoadGraph(graph, np.array(segments, dtype=object), ends)


def _snap(roads: RoadGraph, xy: np.ndarray, max_snap_m: float):
    """Join each point to the road graph (splitting the segment it projects onto). Returns a copy of the
    graph and, per point, ``(node, snapped_xy, distance_m)`` or None when farther than ``max_snap_m``."""
    graph = roads.graph.copy()
    tree = shapely.STRtree(roads.segments)
    points = shapely.points(xy)
    inputs, found = tree.query_nearest(points, all_matches=True)
    nearest = {}
    for i, s in zip(inputs.tolist(), found.tolist()):
        nearest[i] = min(nearest.get(i, s), s)  # lowest segment index on ties: deterministic
    snapped: list = [None] * len(xy)
    splits: dict[int, list] = {}
    for i in range(len(xy)):
        s = nearest.get(i)
        if s is None:
            continue
        segment = roads.segments[s]
        along = segment.project(points[i])
        spot = segment.interpolate(along)
        distance = float(points[i].distance(spot))
        if distance > max_snap_m:
            continue
        u, v = roads.ends[s]
        node = _key(spot.x, spot.y)
        if node == u or node == v or along <= 1e-3 or along >= segment.length - 1e-3:
            node = u if along <= segment.length / 2 else v
            spot = Point(node)
            distance = float(points[i].distance(spot))
        else:
            splits.setdefault(s, []).append((along, node))
        snapped[i] = (node, (spot.x, spot.y), distance)
    for s, cuts in splits.items():
        u, v = roads.ends[s]
        if graph.has_edge(u, v):
            graph.remove_edge(u, v)
        chain = [(0.0, u)] + sorted(set(cuts)) + [(roads.segments[s].length, v)]
        for (a_along, a), (b_along, b) in zip(chain[:-1], chain[1:]):
            if a != b:
                graph.add_edge(a, b, length=float(b_along - a_along))
    return graph, snapped


def _distances(xy: np.ndarray, roads: RoadGraph | None, max_snap_m: float):
    """The symmetric matrix of travel distances (metres) and a function giving each leg's geometry."""
    n = len(xy)
    straight = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    matrix = straight.copy()
    paths: dict = {}
    if roads is not None and n > 1:
        graph, snapped = _snap(roads, xy, max_snap_m)
        for i in range(n):
            if snapped[i] is None:
                continue
            lengths, routes = nx.single_source_dijkstra(graph, snapped[i][0], weight="length")
            for j in range(n):
                if j == i or snapped[j] is None or snapped[j][0] not in lengths:
                    continue
                if j < i and (j, i) in paths:
                    continue
                total = snapped[i][2] + lengths[snapped[j][0]] + snapped[j][2]
                matrix[i, j] = matrix[j, i] = total
                coords = [tuple(xy[i]), snapped[i][1], *routes[snapped[j][0]], snapped[j][1], tuple(xy[j])]
                paths[(i, j)] = coords

    def leg(i: int, j: int) -> tuple[LineString, bool]:
        if (i, j) in paths:
            coords = paths[(i, j)]
        elif (j, i) in paths:
            coords = paths[(j, i)][::-1]
        else:
            return LineString([xy[i], xy[j]]), False
        tidy = [coords[0]]
        for c in coords[1:]:
            if np.hypot(c[0] - tidy[-1][0], c[1] - tidy[-1][1]) > 1e-6:
                tidy.append(c)
        if len(tidy) == 1:
            tidy.append(tidy[0])
        return LineString(tidy), True

    return matrix, leg


# -- ordering ----------------------------------------------------------------------------------------------
def tour_length(order, matrix) -> float:
    """Length of the closed tour visiting ``order`` and coming back to ``order[0]``."""
    order = list(order)
    if len(order) < 2:
        return 0.0
    return float(sum(matrix[a, b] for a, b in zip(order, order[1:] + order[:1])))


def solve_tour(matrix: np.ndarray, start: int = 0) -> list[int]:
    """A short closed tour from ``start`` over every index of the symmetric ``matrix``: nearest neighbour
    (ties: lower index), then 2-opt (first improvement, fixed scan order) until no move shortens it.

    >>> m = np.array([[0, 1, 2, 1], [1, 0, 1, 2], [2, 1, 0, 1], [1, 2, 1, 0]], dtype=float)
    >>> solve_tour(m)
    [0, 1, 2, 3]
    """
    n = len(matrix)
    if n == 0:
        return []
    tour, left = [start], [i for i in range(n) if i != start]
    while left:
        here = tour[-1]
        nxt = min(left, key=lambda j: (matrix[here, j], j))
        tour.append(nxt)
        left.remove(nxt)
    if n < 4:
        return tour
    improved = True
    while improved:
        improved = False
        for i in range(1, n - 1):
            for k in range(i + 1, n):
                a, b, c, d = tour[i - 1], tour[i], tour[k], tour[(k + 1) % n]
                if matrix[a, c] + matrix[b, d] < matrix[a, b] + matrix[c, d] - 1e-9:
                    tour[i:k + 1] = reversed(tour[i:k + 1])
                    improved = True
    return tour


@dataclass(frozen=True)
class PatrolRoute:
    """A closed patrol route.

    ``stops``: the start (``order`` 0) then the checkpoints in visiting order (EPSG:4326, with ``order``,
    ``x``/``y`` in EPSG:5897 and ``lon``/``lat``); ``legs``: one line per leg, EPSG:5897, the last one back
    to the start; ``length_m`` the route's length; ``given_length_m`` the length in the order given;
    ``straight_length_m`` the route's order in straight lines; ``on_roads``: how many legs follow roads;
    ``method``: "nearest_neighbour+2opt" or "given_order".
    """

    stops: gpd.GeoDataFrame
    legs: tuple
    length_m: float
    given_length_m: float
    straight_length_m: float
    on_roads: int
    method: str

    @property
    def path(self):
        """The whole route as one line (EPSG:5897)."""
        coords = []
        for leg in self.legs:
            part = list(leg.coords)
            coords.extend(part if not coords else part[1:])
        return LineString(coords) if len(coords) > 1 else None


def plan_route(start: gpd.GeoDataFrame, checkpoints: gpd.GeoDataFrame, roads=None, *,
               max_snap_m: float = 300.0) -> PatrolRoute:
    """Order ``checkpoints`` into a closed route from and back to ``start``.

    Parameters
    ----------
    start : GeoDataFrame
        One row (see :func:`make_start`), EPSG:4326.
    checkpoints : GeoDataFrame
        As :func:`select_checkpoints` gives them, in the "given" order.
    roads : GeoDataFrame, RoadGraph or None
        The ``roads`` layer (or its graph from :func:`build_road_graph`): legs follow it where both ends
        lie within ``max_snap_m`` of a road and the network joins them; otherwise they are straight.

    Returns
    -------
    PatrolRoute
        Never longer than visiting the checkpoints in the order given.

    Examples
    --------
    Three corners of a 1 km square from the fourth: the route goes round the square (4 km), whatever the
    order given.

    >>> from webmap.crs import METRIC_CRS, resolve_crs
    >>> def table(ids, xys):  # points given in EPSG:5897, stored in lon/lat as an import would
    ...     pts = resolve_crs(METRIC_CRS).transform_geometries(gpd.points_from_xy(*zip(*xys)))
    ...     return gpd.GeoDataFrame({"id": ids, "name": "", "kind": "station", "inspect": ""}, geometry=pts,
    ...                             crs="EPSG:4326")
    >>> route = plan_route(table(["S"], [(587000, 1109000)]),
    ...                    table(["A", "B", "C"], [(588000, 1110000), (588000, 1109000), (587000, 1110000)]))
    >>> round(route.length_m), round(route.given_length_m), list(route.stops["id"])
    (4000, 4828, ['S', 'B', 'A', 'C'])
    """
    table = pd.concat([start[CHECKPOINT_COLUMNS], checkpoints[CHECKPOINT_COLUMNS]], ignore_index=True)
    table = gpd.GeoDataFrame(table, geometry="geometry", crs=STORAGE_CRS)
    metric = to_metric(table)
    xy = shapely.get_coordinates(metric.geometry.values)
    graph = roads if isinstance(roads, RoadGraph) or roads is None else build_road_graph(roads)
    matrix, leg = _distances(xy, graph, max_snap_m)
    given = list(range(len(table)))
    tour = solve_tour(matrix, 0)
    method = "nearest_neighbour+2opt"
    if tour_length(given, matrix) < tour_length(tour, matrix) - 1e-6:
        tour, method = given, "given_order"
    closing = tour + tour[:1] if len(tour) > 1 else []
    legs, on_roads = [], 0
    for a, b in zip(closing[:-1], closing[1:]):
        line, follows = leg(a, b)
        legs.append(line)
        on_roads += int(follows)
    straight = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    stops = table.iloc[tour].reset_index(drop=True)
    lonlat = shapely.get_coordinates(stops.geometry.values)
    stops = stops.assign(order=range(len(stops)), x=xy[tour, 0], y=xy[tour, 1], lon=lonlat[:, 0], lat=lonlat[:, 1])
    return PatrolRoute(stops=stops, legs=tuple(legs), length_m=tour_length(tour, matrix),
                       given_length_m=tour_length(given, matrix), straight_length_m=tour_length(tour, straight),
                       on_roads=on_roads, method=method)
