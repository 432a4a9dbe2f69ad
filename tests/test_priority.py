"""Priority areas (webmap.analysis.grid, .priority, webmap.priorities, webmap.priority_export, `webmap priority`).

The hand fixture ("tiny city"): four 500 m squares in a row in EPSG:5897, A B C D from west to east, with
x from 590 000 m and y from 1 110 000 m (near Ninh Kiều). Everything below is worked out by hand from it.

    cell   incidents (not rejected)   cable                       stations           key sites
    A      6 (+1 rejected)            400 m trunk                 1 critical         -
    B      3 (2 west of x=590 750)    200 m distribution          -                  -
    C      2                          -                           1 low              -
    D      0                          -                           -                  1

Trend (reference 2025-06-30: recent 2025-04-02..06-30, previous 2024-04-02..06-30):
A 3 recent / 1 previous (emerging), B 1 / 1 (persistent; both on a window's first or last day), C 0 / 2
(fading), D 0 / 0 (none).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from webmap.analysis import grid as gridmod
from webmap.analysis.priority import (PriorityParams, classify_trend, compute_priority, local_days,
                                      smoothed_risk)
from webmap.errors import BadInput

X0, Y0 = 590_000.0, 1_110_000.0
METRIC = "EPSG:5897"
YMID = Y0 + 250


def _frame(rows, geoms, crs=METRIC):
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=crs)


def _incident(i, x, when, type_="cable_theft", status="verified"):
    return {"id": f"I-{i:03d}", "occurred_at": when, "type": type_, "status": status, "geometry": Point(x, YMID)}


def tiny_city():
    """(inputs for compute_priority) of the hand fixture described in the module docstring."""
    a, b, c = X0 + 250, X0 + 600, X0 + 1250
    rows = [
        _incident(1, a, "2025-05-10T10:00:00+07:00"), _incident(2, a + 10, "2025-05-10T10:00:00+07:00"),
        _incident(3, a + 20, "2025-05-10T10:00:00+07:00"), _incident(4, a, "2024-05-10T10:00:00+07:00"),
        _incident(5, a, "2023-01-15T10:00:00+07:00"), _incident(6, a, "2023-01-15T10:00:00+07:00"),
        _incident(7, a, "2025-05-11T10:00:00+07:00", status="rejected"),
        _incident(8, b, "2025-04-02T00:00:00+07:00", "sabotage"),    # first day of the recent window
        _incident(9, b, "2024-06-30T23:59:00+07:00", "sabotage"),    # last day of the previous window
        _incident(10, X0 + 900, "2025-04-01T23:59:00+07:00", "sabotage"),  # a day before the recent window
        _incident(11, c, "2024-04-02T08:00:00+07:00"), _incident(12, c, "2024-06-01T08:00:00+07:00"),
    ]
    incidents = gpd.GeoDataFrame(rows, geometry="geometry", crs=METRIC)
    boundary = _frame({"code": ["900"], "name": ["Tiny"]}, [box(X0, Y0, X0 + 2000, Y0 + 500)])
    cables = _frame({"id": ["T1", "D1"], "tier": ["trunk", "distribution"]},
                    [LineString([(X0 + 50, YMID), (X0 + 450, YMID)]), LineString([(X0 + 600, Y0 + 100), (X0 + 800, Y0 + 100)])])
    stations = _frame({"id": ["S1", "S2"], "criticality": ["critical", "low"]}, [Point(X0 + 100, Y0 + 100), Point(c, Y0 + 400)])
    key_sites = _frame({"id": ["K1"]}, [box(X0 + 1600, Y0 + 100, X0 + 1700, Y0 + 200)])
    units = _frame({"code": ["W", "E"], "name": ["Tây", "Đông"]},
                   [box(X0, Y0, X0 + 750, Y0 + 500), box(X0 + 750, Y0, X0 + 2000, Y0 + 500)])
    return dict(incidents=incidents, boundary=boundary, cables=cables, stations=stations, key_sites=key_sites,
                units=units)


TINY = PriorityParams(shape="square", cell_m=500, permutations=99, reference=dt.date(2025, 6, 30))


@pytest.fixture(scope="module")
def tiny(warm_esda):
    inputs = tiny_city()
    return inputs, compute_priority(inputs.pop("incidents"), **inputs, params=TINY)


def _row(result, area_id):
    cells = result.cells.set_index("area_id")
    return cells.loc[area_id]


# -- the grid -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_city():
    from webmap.crs import to_metric

    districts = gpd.read_file(os.path.join(os.path.dirname(__file__), "..", "data", "demo", "districts.geojson"))
    return shapely.union_all(to_metric(districts).geometry.to_numpy())


@pytest.mark.parametrize("shape", ["hex", "square"])
def test_grid_cells_cover_the_city_and_are_cropped_to_it(demo_city, shape):
    grid = gridmod.make_grid(demo_city, cell_m=1000, shape=shape)
    areas = shapely.area(grid.polygons)
    # together the cells are the city: same area, nothing outside, nothing left uncovered
    assert areas.sum() == pytest.approx(demo_city.area, rel=1e-9)
    assert shapely.area(shapely.difference(grid.polygons, demo_city)).max() < 1e-3
    assert shapely.difference(demo_city, shapely.union_all(grid.polygons)).area < 1.0
    # whole cells have the cell's area (hexagon: sqrt(3)/2 x width², 866 025 m² for 1 km), cut ones less
    whole = 1000 ** 2 * (math.sqrt(3) / 2 if shape == "hex" else 1.0)
    assert grid.cell_area_m2 == pytest.approx(whole)
    np.testing.assert_allclose(areas[grid.full], whole, rtol=1e-9)
    assert (areas[~grid.full] < whole + 1e-6).all() and (~grid.full).sum() > 50
    # ids: unique, numbered from the north-west, the same when built again
    assert len(set(grid.area_id)) == len(grid)
    assert grid.area_id[0] == ("H" if shape == "hex" else "S") + "1000-0001"
    north = shapely.get_coordinates(shapely.centroid(grid.polygons))[:, 1]
    assert north[0] >= np.percentile(north, 99)
    again = gridmod.make_grid(demo_city, cell_m=1000, shape=shape)
    assert (again.area_id == grid.area_id).all() and shapely.equals(again.polygons, grid.polygons).all()


@pytest.mark.parametrize("shape", ["hex", "square"])
def test_locate_agrees_with_point_in_polygon(demo_city, shape):
    grid = gridmod.make_grid(demo_city, cell_m=1000, shape=shape)
    rng = np.random.default_rng(4)
    minx, miny, maxx, maxy = demo_city.bounds
    x, y = rng.uniform(minx, maxx, 20_000), rng.uniform(miny, maxy, 20_000)
    found = grid.locate(x, y)
    tree = shapely.STRtree(grid.polygons)
    pt, cell = tree.query(shapely.points(x, y), predicate="intersects")
    slow = np.full(len(x), -1)
    slow[pt] = cell
    assert (found == slow).all()
    assert (found == -1).sum() > 1000  # the bounding box holds plenty of points outside the city


def test_lattice_neighbours_are_the_touching_cells():
    from libpysal.weights import Queen

    for shape, count in (("hex", 6), ("square", 8)):
        grid = gridmod.make_grid(box(0, 0, 6000, 6000), cell_m=500, shape=shape)
        focal, neighbour = grid.neighbour_pairs()
        queen = Queen.from_dataframe(gpd.GeoDataFrame(geometry=grid.polygons), use_index=False,
                                     silence_warnings=True)
        ours = {i: set() for i in range(len(grid))}
        for f, n in zip(focal, neighbour):
            ours[int(f)].add(int(n))
        # lattice neighbours = libpysal's queen contiguity wherever cropping left the cells touching
        for i in range(len(grid)):
            if grid.full[i]:
                assert ours[i] >= set(queen.neighbors[i]), i
        assert max(len(v) for v in ours.values()) == count


def test_grid_refuses_bad_sizes_and_shapes():
    with pytest.raises(BadInput, match="shape"):
        gridmod.make_grid(box(0, 0, 1000, 1000), cell_m=500, shape="triangle")
    with pytest.raises(BadInput, match="between"):
        gridmod.make_grid(box(0, 0, 1000, 1000), cell_m=5, shape="hex")
    with pytest.raises(BadInput, match="larger cells"):
        gridmod.make_grid(box(0, 0, 400_000, 400_000), cell_m=50, shape="hex")


# -- the hand fixture -------------------------------------------------------------------------------------

def test_cells_of_the_tiny_city(tiny):
    _, result = tiny
    cells = result.cells
    assert cells.crs.to_epsg() == 4326
    assert list(cells.sort_values("centroid_lon")["area_id"]) == ["S500-0001", "S500-0002", "S500-0003", "S500-0004"]
    counts = dict(zip(cells["area_id"], cells["incidents"]))
    assert counts == {"S500-0001": 6, "S500-0002": 3, "S500-0003": 2, "S500-0004": 0}  # the rejected one is out
    assert result.method["counts"]["incidents_input"] == 12
    assert result.method["counts"]["incidents_used"] == 11
    for column in ("area_id", "incidents", "gi_z", "p_value", "q_value", "hotspot", "confidence", "cable_km",
                   "stations", "per_cable_km", "per_station", "risk", "recent", "previous", "trend", "key_sites",
                   "critical_stations", "trunk_km", "score_hotspot", "score_trend", "score_risk", "score_stake",
                   "score", "rank", "priority_class", "centroid_lon", "centroid_lat"):
        assert column in cells.columns, column


def test_exposure_normalisation_by_hand(tiny):
    _, result = tiny
    a, b, c, d = (_row(result, f"S500-000{i}") for i in (1, 2, 3, 4))
    assert (a.cable_km, b.cable_km, c.cable_km, d.cable_km) == pytest.approx((0.4, 0.2, 0, 0), abs=1e-9)
    assert (a.stations, b.stations, c.stations, d.stations) == (1, 0, 1, 0)
    # raw rates: per km of cable and per station, empty where there is none (never a division by zero)
    assert a.per_cable_km == pytest.approx(15.0) and b.per_cable_km == pytest.approx(15.0)
    assert math.isnan(c.per_cable_km) and math.isnan(d.per_cable_km)
    assert a.per_station == pytest.approx(6.0) and c.per_station == pytest.approx(2.0) and math.isnan(b.per_station)
    # expected = 11 x (1/2 cable share + 1/2 station share): A 11 x (1/3 + 1/4), B 11/6, C 11/4, D 0
    assert [a.expected, b.expected, c.expected, d.expected] == pytest.approx([77 / 12, 11 / 6, 2.75, 0], abs=1e-3)
    # risk = (incidents + 1) / (expected + 1): D, with nothing at all, is exactly the neutral 1
    assert a.risk == pytest.approx(7 / (77 / 12 + 1), abs=1e-3)
    assert b.risk == pytest.approx(4 / (11 / 6 + 1), abs=1e-3)
    assert c.risk == pytest.approx(3 / 3.75, abs=1e-3)
    assert d.risk == 1.0
    # B has as many incidents per km of cable as A but far less infrastructure: B is the riskier one
    assert b.risk > a.risk


def test_smoothed_risk_never_divides_by_zero():
    risk = smoothed_risk([0, 5, 0], [0.0, 0.0, 2.0])
    assert risk.tolist() == [1.0, 6.0, pytest.approx(1 / 3)]


def test_trend_classes_from_hand_made_dates(tiny):
    _, result = tiny
    got = {r.area_id: (r.recent, r.previous, r.trend) for r in result.cells.itertuples()}
    assert got == {"S500-0001": (3, 1, "emerging"), "S500-0002": (1, 1, "persistent"),
                   "S500-0003": (0, 2, "fading"), "S500-0004": (0, 0, "none")}
    assert result.method["trend"]["recent"] == ["2025-04-02", "2025-06-30"]
    assert result.method["trend"]["previous"] == ["2024-04-02", "2024-06-30"]


def test_trend_thresholds():
    recent = [0, 1, 2, 3, 3, 2, 1, 0, 0, 5]
    previous = [0, 0, 0, 2, 3, 2, 3, 2, 1, 4]
    assert classify_trend(recent, previous).tolist() == [
        "none", "none", "emerging", "emerging", "persistent", "persistent", "fading", "fading", "none", "persistent"]


def test_local_days_use_vietnam_time():
    days, known = local_days(["2025-06-30T23:59:00+07:00", "2025-06-30T17:30:00Z", "2025-06-30", None,
                              "2025-06-30T16:59:00+00:00"])
    base = (dt.date(2025, 6, 30) - dt.date(1970, 1, 1)).days
    assert known.tolist() == [True, True, True, False, True]
    assert days[known].tolist() == [base, base + 1, base, base]  # 17:30 UTC is 00:30 next day in Cần Thơ


def test_stake_and_score_components_combine_as_documented(tiny):
    _, result = tiny
    cells = result.cells
    parts = cells[["score_hotspot", "score_trend", "score_risk", "score_stake"]].sum(axis=1)
    np.testing.assert_allclose(cells["score"], parts.round(1), atol=1e-9)
    a, b, c, d = (_row(result, f"S500-000{i}") for i in (1, 2, 3, 4))
    # stake units: 2 per key site, 1 per critical station, 2 per km of trunk; 4 units = all 20 points
    assert (a.key_sites, a.critical_stations, a.trunk_km) == (0, 1, pytest.approx(0.4))
    assert a.score_stake == pytest.approx(20 * (1 + 0.8) / 4)  # 9.0
    assert d.key_sites == 1 and d.score_stake == pytest.approx(10.0)
    assert b.score_stake == 0 and c.score_stake == 0  # a low-criticality station is not at stake
    # trend: emerging 20, persistent 12, fading 4, none 0
    assert (a.score_trend, b.score_trend, c.score_trend, d.score_trend) == (20, 12, 4, 0)
    # risk: 20 x (1 - 1/risk) above 1, else 0
    assert b.score_risk == pytest.approx(round(20 * (1 - (11 / 6 + 1) / 4), 1))
    assert a.score_risk == 0 and d.score_risk == 0
    # hot spot: 40 x {99: 1, 95: 0.75, 90: 0.5} for hot cells only
    shares = {99: 1.0, 95: 0.75, 90: 0.5, 0: 0.0}
    for row in cells.itertuples():
        expected = 40 * shares[row.confidence] if row.hotspot == "hot" else 0.0
        assert row.score_hotspot == pytest.approx(expected)
    # rank 1 = best score; class thresholds 60/40/20
    top = cells.sort_values("rank").iloc[0]
    assert top.score == cells["score"].max()
    for row in cells.itertuples():
        want = ("very_high" if row.score >= 60 else "high" if row.score >= 40 else "medium" if row.score >= 20 else "low")
        assert row.priority_class == want


def test_units_by_hand(tiny):
    _, result = tiny
    units = result.units.set_index("area_id")
    # B's incidents split by the unit border at x = 590 750: two west, one east
    assert units.loc["U-W", "incidents"] == 8 and units.loc["U-E", "incidents"] == 3
    assert units.loc["U-W", "name"] == "Tây"
    assert units.loc["U-W", "cable_km"] == pytest.approx(0.55) and units.loc["U-E", "cable_km"] == pytest.approx(0.05)
    assert (units.loc["U-W", "recent"], units.loc["U-W", "previous"], units.loc["U-W", "trend"]) == (4, 2, "emerging")
    assert (units.loc["U-E", "recent"], units.loc["U-E", "previous"], units.loc["U-E", "trend"]) == (0, 2, "fading")
    assert units.loc["U-E", "key_sites"] == 1 and units.loc["U-W", "critical_stations"] == 1
    np.testing.assert_allclose(units["score"], units[["score_hotspot", "score_trend", "score_risk",
                                                      "score_stake"]].sum(axis=1).round(1), atol=1e-9)


def test_filters(warm_esda):
    inputs = tiny_city()
    incidents = inputs.pop("incidents")
    only = compute_priority(incidents, **inputs, params=PriorityParams(
        types=["sabotage"], shape="square", cell_m=500, permutations=99, reference=dt.date(2025, 6, 30)))
    assert dict(zip(only.cells["area_id"], only.cells["incidents"]))["S500-0002"] == 3
    assert only.cells["incidents"].sum() == 3
    rejected = compute_priority(incidents, **inputs, params=PriorityParams(
        statuses=("rejected",), shape="square", cell_m=500, permutations=99))
    assert rejected.cells["incidents"].sum() == 1
    period = compute_priority(incidents, **inputs, params=PriorityParams(
        since="2025-04-02", until="2025-06-30", shape="square", cell_m=500, permutations=99))
    # 3 in A and the one on B's first day; the trend window ends at `until`
    assert period.cells["incidents"].sum() == 4
    assert period.method["trend"]["reference"] == "2025-06-30"
    assert period.method["counts"]["incidents_outside_period"] == 7


def test_params_are_checked_and_normalised():
    assert PriorityParams(types=["sabotage", "cable_theft"]) == PriorityParams(types=("cable_theft", "sabotage"))
    assert hash(PriorityParams(since="2025-01-01")) == hash(PriorityParams(since=dt.date(2025, 1, 1)))
    for kwargs, words in (({"types": ["theft"]}, "unknown incident type 'theft'"),
                          ({"statuses": ["open"]}, "unknown incident status"),
                          ({"since": "2025-13-01"}, "since must be a date"),
                          ({"since": "2025-02-01", "until": "2025-01-01"}, "after until"),
                          ({"shape": "circle"}, "shape"), ({"cell_m": 10}, "cell size"),
                          ({"permutations": 5}, "permutations"), ({"fdr_alpha": 0.5}, "fdr_alpha")):
        with pytest.raises(BadInput, match=words):
            PriorityParams(**kwargs)
    assert PriorityParams().effective_statuses == ("reported", "verified", "in_progress", "resolved")


def test_method_is_complete_and_json(tiny):
    _, result = tiny
    method = json.loads(json.dumps(result.method))
    assert method["parameters"]["permutations"] == 99 and method["parameters"]["shape"] == "square"
    assert method["filters"]["statuses"] == ["reported", "verified", "in_progress", "resolved"]
    assert "Getis-Ord Gi*" in method["text"]["en"] and "Benjamini-Hochberg" in method["text"]["vi"]
    assert "điểm nóng" in method["text"]["vi"].lower()
    assert method["versions"]["esda"] and method["computed_at"]
    assert method["grid"]["crs"] == "EPSG:5897"


def test_no_incidents_gives_an_empty_but_complete_result(warm_esda):
    inputs = tiny_city()
    incidents = inputs.pop("incidents").iloc[0:0]
    result = compute_priority(incidents, **inputs, params=TINY)
    assert len(result.cells) == 4 and result.cells["incidents"].sum() == 0
    assert (result.cells["hotspot"] == "none").all()
    assert _row(result, "S500-0004").score_stake == 10.0


# -- incidents parsed once (PreparedIncidents) ----------------------------------------------------------

def _same_result(a, b):
    """Cells and units equal, value for value and geometry for geometry; the method but for its clock."""
    assert a.cells.drop(columns="geometry").equals(b.cells.drop(columns="geometry"))
    assert a.cells.geometry.geom_equals_exact(b.cells.geometry, 0).all()
    if a.units is None or b.units is None:
        assert a.units is None and b.units is None
    else:
        assert a.units.drop(columns="geometry").equals(b.units.drop(columns="geometry"))
    assert {**a.method, "computed_at": None} == {**b.method, "computed_at": None}


def test_prepared_incidents_give_the_same_result_as_a_fresh_computation(warm_esda):
    """One PreparedIncidents reused across grids, filters, unit layers and CRSs gives, every time, exactly what
    the frame itself gives (which is parsed afresh on every call)."""
    from webmap.analysis.priority import PreparedIncidents, prepare_incidents
    from webmap.crs import METRIC_CRS, resolve_crs

    inputs = tiny_city()
    metric = inputs.pop("incidents")
    lonlat = gpd.GeoDataFrame(metric.drop(columns="geometry"), crs="EPSG:4326",
                              geometry=resolve_crs(METRIC_CRS).transform_geometries(metric.geometry.to_numpy()))
    halves = inputs["units"].assign(code=["W2", "E2"]).set_geometry(
        [box(X0, Y0, X0 + 1000, Y0 + 500), box(X0 + 1000, Y0, X0 + 2000, Y0 + 500)], crs=METRIC)
    runs = [TINY, PriorityParams(**{**TINY.to_dict(), "types": ["sabotage"]}),
            PriorityParams(**{**TINY.to_dict(), "shape": "hex", "cell_m": 250}),  # another grid on the same arrays
            PriorityParams(**{**TINY.to_dict(), "since": "2025-04-02", "until": "2025-06-30"}),
            PriorityParams(**{**TINY.to_dict(), "statuses": ["rejected", "verified"]}), TINY]
    for frame in (metric, lonlat):
        prepared = prepare_incidents(frame)
        assert isinstance(prepared, PreparedIncidents) and prepare_incidents(prepared) is prepared
        for params in runs:
            for units in (inputs["units"], halves, None):
                kw = {**inputs, "units": units}
                _same_result(compute_priority(prepared, **kw, params=params),
                             compute_priority(frame, **kw, params=params))
        cells = compute_priority(prepared, **inputs, params=TINY).cells
        assert dict(zip(cells["area_id"], cells["incidents"])) == {
            "S500-0001": 6, "S500-0002": 3, "S500-0003": 2, "S500-0004": 0}
        assert len(prepared._grids) == 2  # the square and the hexagon grid, each located once


def test_prepared_incidents_count_missing_and_odd_geometries_like_the_frame(warm_esda):
    """No position, an empty point, a polygon (its point on surface) and a multipoint before an empty point
    (one coordinate per geometry in total, but not one each) are counted as the frame is."""
    from shapely.geometry import MultiPoint, Polygon

    from webmap.analysis.priority import point_xy, prepare_incidents

    inputs = tiny_city()
    incidents = inputs.pop("incidents")
    odd = incidents.copy()
    odd.loc[0, "geometry"] = None
    odd.loc[1, "geometry"] = Point()
    odd.loc[2, "geometry"] = box(X0 + 1050, Y0 + 100, X0 + 1150, Y0 + 200)  # in C
    x, y, positioned = point_xy(np.array([MultiPoint([(1, 2), (3, 4)]), Point(), Polygon()], dtype=object))
    assert positioned.tolist() == [True, False, False] and np.isnan(x[1]) and np.isnan(y[2])
    result = compute_priority(prepare_incidents(odd), **inputs, params=TINY)
    _same_result(result, compute_priority(odd, **inputs, params=TINY))
    assert result.method["counts"]["incidents_without_position"] == 2
    assert dict(zip(result.cells["area_id"], result.cells["incidents"]))["S500-0003"] == 3



def test_compiled_counting_equals_the_masks(warm_esda):
    """The compiled counting loops give exactly the numpy masks' counts, reference and left-out numbers, on
    random incidents with missing types, statuses, dates and positions."""
    from types import SimpleNamespace

    from webmap.analysis import priority

    assert priority._kernels() is not None  # numba, as installed: the loops are what is checked
    rng = np.random.default_rng(3)
    n, n_cells = 5000, 40
    types = np.array(["cable_theft", "sabotage", "fire_explosion", None], dtype=object)[rng.integers(0, 4, n)]
    statuses = np.array(["verified", "rejected", "reported", None], dtype=object)[rng.integers(0, 4, n)]
    type_codes, type_values = priority._codes(types)
    status_codes, status_values = priority._codes(statuses)
    days = rng.integers(19_700, 20_300, n).astype(np.int32)
    prepared = SimpleNamespace(days=days, dated=rng.random(n) > 0.1, positioned=rng.random(n) > 0.05,
                               type_codes=type_codes, type_values=type_values, status_codes=status_codes,
                               status_values=status_values)
    cell = np.where(prepared.positioned, rng.integers(-1, n_cells, n), -1).astype(np.int32)
    cell.setflags(write=False)
    for kwargs in ({}, {"types": ["sabotage"]}, {"since": "2024-01-01"}, {"until": "2025-03-01"},
                   {"since": "2024-02-01", "until": "2024-12-31", "types": ["cable_theft", "fire_explosion"]},
                   {"statuses": ["rejected"], "reference": "2024-06-30"}):
        params = PriorityParams(**kwargs)
        got = priority.count_incidents(prepared, cell, n_cells, params)
        want = priority._count_with_masks(prepared, cell, n_cells, params)
        for key in ("counts", "recent", "previous"):
            np.testing.assert_array_equal(got[key], want[key])
            assert got[key].dtype == want[key].dtype
        assert got["reference"] == want["reference"] and got["info"] == want["info"]
        assert got["counts"].sum() > 0 and got["recent"].sum() > 0
        for a, b in zip(got["masks"](), want["masks"]()):
            np.testing.assert_array_equal(a, b)


# -- the store service ------------------------------------------------------------------------------------

def _load_store(store, folder, inputs):
    """Import the tiny city into a store through the ordinary import path (lon/lat GeoJSON files)."""
    from webmap.crs import METRIC_CRS, resolve_crs
    from webmap.importer import import_layer

    to_lonlat = resolve_crs(METRIC_CRS).transform_geometries
    extra = {
        "districts": {"name": ["Tiny"], "code": ["900"]},
        "cable_routes": {"owner": ["VTSH", "MKN"], "medium": ["fibre", "fibre"],
                         "placement": ["aerial", "underground"], "criticality": ["high", "low"]},
        "stations": {"owner": ["VTSH", "VTSH"], "kind": ["bts", "exchange"]},
        "key_sites": {"name": ["Mục tiêu K1"], "category": ["government"], "protection_level": ["level_1"]},
        "incidents": {},
    }
    sources = {"districts": inputs["boundary"], "cable_routes": inputs["cables"], "stations": inputs["stations"],
               "key_sites": inputs["key_sites"], "incidents": inputs["incidents"]}
    for kind, frame in sources.items():
        frame = frame.copy()
        for column, values in extra[kind].items():
            frame[column] = values
        if kind == "incidents":
            frame["severity"] = "medium"
        lonlat = gpd.GeoDataFrame(frame.drop(columns="geometry"), geometry=to_lonlat(frame.geometry.to_numpy()),
                                  crs="EPSG:4326")
        path = os.path.join(folder, f"{kind}.geojson")
        lonlat.to_file(path, driver="GeoJSON")
        import_layer(store, path, kind)


def test_get_priority_caches_by_params_and_layer_versions(store, tmp_path, warm_esda):
    from webmap import priorities

    _load_store(store, str(tmp_path), tiny_city())
    first = priorities.get_priority(store, TINY)
    assert priorities.get_priority(store, TINY) is first
    assert priorities.get_priority(store, PriorityParams(**{**TINY.to_dict(), "types": ["sabotage"]})) is not first
    assert dict(zip(first.cells["area_id"], first.cells["incidents"])) == {
        "S500-0001": 6, "S500-0002": 3, "S500-0003": 2, "S500-0004": 0}
    assert first.method["units_layer"] == "districts" and len(first.units) == 1
    assert set(first.method["layers"]) == {"districts", "incidents", "cable_routes", "stations", "key_sites"}
    # a new version of a layer: computed again, with the new data
    from webmap.importer import import_layer

    frame = gpd.read_file(tmp_path / "incidents.geojson").iloc[:5]
    frame.to_file(tmp_path / "fewer.geojson", driver="GeoJSON")
    import_layer(store, str(tmp_path / "fewer.geojson"), "incidents")
    second = priorities.get_priority(store, TINY)
    assert second is not first and second.cells["incidents"].sum() == 5
    with pytest.raises(BadInput, match="wards layer is not loaded"):
        priorities.get_priority(store, TINY, units="wards")


def test_get_priority_parses_the_incidents_once_per_layer_version(store, tmp_path, warm_esda, monkeypatch):
    """A new filter reads nothing from the store (the parsed incidents are kept per layer version) and gives
    what a fresh computation on the layer gives; a new version of the incidents is read and parsed again."""
    from webmap import priorities
    from webmap.analysis.priority import PreparedIncidents
    from webmap.importer import import_layer

    _load_store(store, str(tmp_path), tiny_city())
    reads = []
    real_read = store.read_layer

    def counting(kind):
        reads.append(kind)
        return real_read(kind)

    monkeypatch.setattr(store, "read_layer", counting)
    first = priorities.get_priority(store, TINY)
    kept = priorities._INPUTS[store]["incidents"][1]
    assert isinstance(kept, PreparedIncidents) and reads.count("incidents") == 1
    sabotage = PriorityParams(**{**TINY.to_dict(), "types": ["sabotage"]})
    period = PriorityParams(**{**TINY.to_dict(), "since": "2025-04-02"})
    for params in (sabotage, period):
        cached = priorities.get_priority(store, params)
        assert reads.count("incidents") == 1 and reads.count("districts") == 1  # nothing read again
        # a fresh computation on the layers as stored (no cache anywhere): the same cells and units
        fresh = compute_priority(real_read("incidents"), boundary=real_read("districts"),
                                 cables=real_read("cable_routes"), stations=real_read("stations"),
                                 key_sites=real_read("key_sites"), units=real_read("districts"), params=params)
        _same_result_but_layers(cached, fresh)
    assert dict(zip(first.cells["area_id"], first.cells["incidents"]))["S500-0001"] == 6
    assert priorities.get_priority(store, sabotage).cells["incidents"].sum() == 3

    # a new version of the incidents: read and parsed again, the old arrays dropped
    frame = gpd.read_file(tmp_path / "incidents.geojson").iloc[:5]
    frame.to_file(tmp_path / "fewer.geojson", driver="GeoJSON")
    import_layer(store, str(tmp_path / "fewer.geojson"), "incidents")
    second = priorities.get_priority(store, sabotage)
    assert reads.count("incidents") == 2 and reads.count("districts") == 1
    assert priorities._INPUTS[store]["incidents"][1] is not kept
    assert second.cells["incidents"].sum() == 0  # the first five are all cable thefts
    assert priorities.get_priority(store, TINY).cells["incidents"].sum() == 5
    priorities.clear_cache(store)
    assert store not in priorities._INPUTS


def _same_result_but_layers(cached, fresh):
    """As _same_result, the store's result also naming its units and layer versions."""
    method = {k: v for k, v in cached.method.items() if k not in ("units_layer", "layers")}
    assert cached.cells.drop(columns="geometry").equals(fresh.cells.drop(columns="geometry"))
    assert cached.units.drop(columns="geometry").equals(fresh.units.drop(columns="geometry"))
    assert {**method, "computed_at": None} == {**fresh.method, "computed_at": None}


def test_get_priority_computes_once_for_concurrent_callers(store, tmp_path, warm_esda, monkeypatch):
    import threading

    from webmap import priorities

    _load_store(store, str(tmp_path), tiny_city())
    calls = []
    real = priorities.compute_from_store

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(priorities, "compute_from_store", counting)
    params = PriorityParams(**{**TINY.to_dict(), "seed": 99})
    results = []
    threads = [threading.Thread(target=lambda: results.append(priorities.get_priority(store, params))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 4 and all(r is results[0] for r in results)


def test_get_priority_needs_the_districts(store):
    from webmap import priorities

    with pytest.raises(BadInput, match="districts layer is not loaded"):
        priorities.get_priority(store, TINY)


# -- files ----------------------------------------------------------------------------------------------

def _check_files(folder, stem):
    """Every format holds the areas and the method with its parameters."""
    import openpyxl
    import pyogrio

    data = json.load(open(os.path.join(folder, f"{stem}.geojson"), encoding="utf-8"))
    assert data["type"] == "FeatureCollection" and len(data["features"]) == 4
    assert data["metadata"]["method"]["parameters"]["cell_m"] == 500
    assert data["features"][0]["properties"]["rank"] == 1
    assert {f["properties"]["area_id"] for f in data["features"]} == {f"S500-000{i}" for i in range(1, 5)}

    gpkg = os.path.join(folder, f"{stem}.gpkg")
    layers = {name for name, _ in pyogrio.list_layers(gpkg)}
    assert layers == {"priority_cells", "priority_units", "priority_method"}
    method = pyogrio.read_dataframe(gpkg, layer="priority_method")
    values = dict(zip(method["key"], method["value"]))
    assert values["parameters.shape"] == "square" and values["parameters.permutations"] == "99"
    assert "Getis-Ord" in values["text.en"]
    info = pyogrio.read_info(gpkg, layer="priority_cells")
    assert json.loads(info["layer_metadata"]["webmap_method"])["parameters"]["cell_m"] == 500
    assert len(pyogrio.read_dataframe(gpkg, layer="priority_cells")) == 4

    csv_path = os.path.join(folder, f"{stem}.csv")
    with open(csv_path, encoding="utf-8-sig") as fh:
        header = fh.readline().strip().split(",")
    assert header[:3] == ["area_id", "rank", "score"]
    sidecar = json.load(open(os.path.join(folder, f"{stem}.method.json"), encoding="utf-8"))
    assert sidecar["parameters"]["shape"] == "square" and sidecar["data_file"] == f"{stem}.csv"

    book = openpyxl.load_workbook(os.path.join(folder, f"{stem}.xlsx"))
    assert book.sheetnames == ["Khu vực - Areas", "Đơn vị - Units", "Phương pháp - Method"]
    sheet = book["Khu vực - Areas"]
    assert sheet["A1"].value == "Mã khu vực" and sheet.max_row == 5
    method_rows = {r[0]: r[1] for r in book["Phương pháp - Method"].iter_rows(values_only=True) if r and r[0]}
    assert method_rows["parameters.shape"] == "square"
    assert "Getis-Ord" in method_rows["English"] and "Getis-Ord" in method_rows["Tiếng Việt"]


def test_write_priority_defuses_formulas(tiny, tmp_path):
    import openpyxl

    from webmap.priority_export import write_priority

    _, result = tiny
    units = result.units.copy()
    units["name"] = ["=HYPERLINK(\"http://x\")", "@SUM(1)"]
    hostile = type(result)(cells=result.cells, units=units, method=result.method, params=result.params)
    write_priority(hostile, "csv", str(tmp_path / "u.csv"), level="units")
    text = (tmp_path / "u.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in text and "'@SUM" in text
    write_priority(hostile, "xlsx", str(tmp_path / "u.xlsx"))
    sheet = openpyxl.load_workbook(tmp_path / "u.xlsx")["Đơn vị - Units"]
    names = [c.value for c in sheet["C"]][1:]
    assert sorted(names) == ["'=HYPERLINK(\"http://x\")", "'@SUM(1)"]
    with pytest.raises(BadInput, match="use .geojson"):
        write_priority(result, None, str(tmp_path / "x.txt"))


def test_cli_writes_every_format_with_its_method(app, store, tmp_path, run_cli, warm_esda):
    """One real process (`webmap priority ... -o x.gpkg`), the other formats in this process."""
    from webmap import audit
    from webmap.cli import main

    _load_store(store, str(tmp_path), tiny_city())
    out = tmp_path / "out"
    out.mkdir()
    args = ["priority", "--shape", "square", "--cell-m", "500", "--permutations", "99", "--until", "2025-06-30"]
    code, stdout, stderr = run_cli(*args, "-o", out / "areas.gpkg")
    assert code == 0, stderr
    assert "written:" in stdout and "4 cells" in stdout
    for ext in ("geojson", "csv", "xlsx"):
        with pytest.raises(SystemExit) as exit_:
            main([*args, "-o", str(out / f"areas.{ext}")])
        assert exit_.value.code == 0
    _check_files(str(out), "areas")
    entries = audit.for_app(app).entries(action="export")
    assert {e.detail["format"] for e in entries if e.target == "priority"} == {"geojson", "gpkg", "csv", "xlsx"}
    assert audit.for_app(app).entries(action="read_key_sites")


@pytest.mark.parametrize("args,words", [
    (["--types", "theft"], "unknown incident type 'theft'"),
    (["--since", "2025-02-30"], "'--since'"),
    (["--shape", "circle"], "'--shape'"),
    (["-o", "areas.txt"], "use .geojson, .gpkg, .csv or .xlsx"),
])
def test_cli_bad_input_is_one_line_and_exit_2(instance, tmp_path, capsys, args, words):
    from webmap.cli import main

    argv = ["priority", *args]
    if "-o" not in args:
        argv += ["-o", str(tmp_path / "areas.geojson")]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert len(err.strip().splitlines()) == 1 and words in err, err
    assert not list(tmp_path.glob("areas.*"))
