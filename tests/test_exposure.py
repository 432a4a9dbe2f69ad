"""Exposure of an enterprise's network, and linear referencing, checked against numbers worked out by hand.

The fixture (built in EPSG:5897 metres, so distances are exact, then taken to lon/lat with the project's
pinned pipeline): a straight 2 km VTSH cable C-X from (E0, N0) eastwards, cut into 4 segments of 500 m; a
VTSH station S-X 300 m north of the cable's middle; an MKN cable C-Y and station S-Y 3 km away. The
period is the 365 days up to R = 2026-06-30 (one year, so "per year" divides by 1), buffer 100 m, weights
low 1 / medium 2 / high 3 / critical 5, half-life 180 days:

| incident | where (m from C-X's start, north) | date | severity, type | counted for | weight |
|---|---|---|---|---|---|
| I1 | 250, +50 | R | high, cable_theft | segment 1 | 3 |
| I2 | 300, -80 | R-180 | medium, sabotage | segment 1 | 2 x 0.5 = 1 |
| I3 | 750, +150 | R-5 | high, cable_theft | nothing (150 m > 100 m) | - |
| I4 | 1000, +20 | R-360 | critical, fire_explosion | segments 2 and 3 (on their joint) | 5 x 0.25 = 1.25 |
| I5 | 1600, +10 | R-60 | low, fee_fraud | segment 4 | 2^(-1/3) = 0.793701 |
| I6 | 1700, 0 | R-1 | high, rejected | nothing (rejected) | - |
| I7 | 300, 0 | R-400 | critical, sabotage | trend only (a year earlier) | - |
| I8 | 1000, +360 (60 m from S-X) | R-30 | medium, postal_smuggling | S-X | 2 x 2^(-1/6) = 1.781797 |
| I9 | 1050, +300 (50 m from S-X) | R-10 | high, cable_theft | S-X | 3 x 2^(-1/18) = 2.886671 |
| I10 | 1200, +30 | 2026-06-30T17:00Z = 1 July local | high | nothing (after the period) | - |
| I11 | 1200, -30 | 2026-06-30T23:30+07:00 = R local | low, other | segment 3 | 1 |

Segment 1: 2 incidents, weight 4, 8.0 per km per year (high), repeat damage (theft + sabotage), trend 1
(I1) vs 1 (I7): stable. Segments 2 and 3: I4, 1.25 -> 2.5 (medium); segment 3 also I11: 2.25 -> 4.5.
Segment 4: 0.793701 -> 1.587401 (low), rising. S-X: 4.668468 per station per year (high), rising.
"""

from __future__ import annotations

import json
import math
import subprocess
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, MultiLineString, Point, box

import fixtures
from browser_conftest import browser, server  # noqa: F401 - fixtures of the browser test, used by name
from conftest import app_in, clients_by_name
from webmap.analysis.chainage import chainage_of, place_at_chainage, route_length_m, to_lonlat
from webmap.analysis.exposure import SEGMENT_M, compute_exposure, split_routes
from webmap.crs import lonlat_to_metric
from webmap.errors import BadInput

R = date(2026, 6, 30)
E0, N0 = (float(v[0]) for v in lonlat_to_metric([105.76], [10.03]))


def lonlat(dx, dy) -> Point:
    """The lon/lat point ``dx`` m east and ``dy`` m north of C-X's start (in EPSG:5897)."""
    return to_lonlat(Point(E0 + dx, N0 + dy))


def line(*offsets) -> LineString:
    return LineString([lonlat(dx, dy) for dx, dy in offsets])


def day(days_before: int, hour="12:00:00+07:00") -> str:
    return f"{(R - timedelta(days=days_before)).isoformat()}T{hour}"


def cables() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"id": ["C-X", "C-Y"], "name": ["Tuyến thử Sông Hậu", "Tuyến bí mật của MKN"], "owner": ["VTSH", "MKN"],
         "medium": ["fibre", "fibre"], "placement": ["underground", "aerial"], "tier": ["trunk", "distribution"],
         "criticality": ["high", "medium"]},
        geometry=[line((0, 0), (2000, 0)), line((0, 3000), (1000, 3000))], crs="EPSG:4326")


def stations() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"id": ["S-X", "S-Y"], "name": ["Trạm thử Cái Khế", "Trạm bí mật MKN"], "owner": ["VTSH", "MKN"],
         "kind": ["bts", "exchange"], "criticality": ["medium", "high"], "address": ["", ""]},
        geometry=[lonlat(1000, 300), lonlat(500, 3050)], crs="EPSG:4326")


INCIDENTS = [
    # id, dx, dy, occurred_at, type, severity, status
    ("I1", 250, 50, day(0), "cable_theft", "high", "verified"),
    ("I2", 300, -80, day(180), "sabotage", "medium", "resolved"),
    ("I3", 750, 150, day(5), "cable_theft", "high", "verified"),
    ("I4", 1000, 20, day(360), "fire_explosion", "critical", "resolved"),
    ("I5", 1600, 10, day(60), "fee_fraud", "low", "reported"),
    ("I6", 1700, 0, day(1), "sabotage", "high", "rejected"),
    ("I7", 300, 0, day(400), "sabotage", "critical", "resolved"),
    ("I8", 1000, 360, day(30), "postal_smuggling", "medium", "verified"),
    ("I9", 1050, 300, day(10), "cable_theft", "high", "in_progress"),
    ("I10", 1200, 30, "2026-06-30T17:00:00Z", "cable_theft", "high", "verified"),
    ("I11", 1200, -30, "2026-06-30T23:30:00+07:00", "other", "low", "reported"),
    ("I-MKN", 500, 3020, day(3), "cable_theft", "high", "verified"),
]


def incidents() -> gpd.GeoDataFrame:
    rows = pd.DataFrame(INCIDENTS, columns=["id", "dx", "dy", "occurred_at", "type", "severity", "status"])
    return gpd.GeoDataFrame(
        {"id": rows["id"], "occurred_at": rows["occurred_at"], "type": rows["type"], "severity": rows["severity"],
         "status": rows["status"], "damage_vnd": 1_000_000, "source": "hotline",
         # I1 names MKN's station as the affected asset: that id must never reach VTSH
         "asset_id": ["S-Y"] + [None] * (len(rows) - 1),
         "description": [f"Mô tả riêng {i}" for i in rows["id"]],
         "reporter_name": ["Người Báo Tin Kín"] * len(rows), "reporter_contact": ["0909123456"] * len(rows)},
        geometry=[lonlat(dx, dy) for dx, dy in zip(rows["dx"], rows["dy"])], crs="EPSG:4326")


@pytest.fixture(scope="module")
def result():
    return compute_exposure(cables(), stations(), incidents(), until=R)


# -- the hand-worked numbers -------------------------------------------------------------------------------

def test_segments_of_a_2_km_cable(result):
    seg = result.segments[result.segments["route_id"] == "C-X"].set_index("segment_id")
    assert list(seg.index) == ["C-X:1", "C-X:2", "C-X:3", "C-X:4"]
    assert seg["length_m"].tolist() == pytest.approx([500.0] * 4, abs=0.01)
    assert seg["chainage_from_m"].tolist() == pytest.approx([0, 500, 1000, 1500], abs=0.01)
    assert seg["chainage_to_m"].tolist() == pytest.approx([500, 1000, 1500, 2000], abs=0.01)
    assert seg["incidents"].tolist() == [2, 1, 2, 1]
    assert seg["weighted"].tolist() == pytest.approx([4.0, 1.25, 2.25, 2 ** (-1 / 3)], abs=1e-4)
    assert seg["exposure"].tolist() == pytest.approx([8.0, 2.5, 4.5, 2 * 2 ** (-1 / 3)], abs=1e-4)
    assert seg["rate"].tolist() == pytest.approx([4.0, 2.0, 4.0, 2.0], abs=1e-4)
    assert seg["exposure_class"].tolist() == ["high", "medium", "medium", "low"]
    assert seg["damaging"].tolist() == [2, 1, 1, 0]
    assert seg["repeat_damage"].tolist() == [True, False, False, False]
    assert seg["recent"].tolist() == [1, 0, 1, 1]  # I1; I11 (R local); I5
    assert seg["previous"].tolist() == [1, 0, 0, 0]  # I7, 400 days before R
    assert seg["trend"].tolist() == ["stable", "none", "rising", "rising"]
    assert seg["rank"].tolist() == [1, 3, 2, 4]


def test_station_numbers(result):
    st = result.stations.set_index("station_id")
    expected = 2 * 2 ** (-1 / 6) + 3 * 2 ** (-1 / 18)  # I8 + I9 = 4.668468
    assert st.loc["S-X", "incidents"] == 2
    assert st.loc["S-X", "exposure"] == pytest.approx(expected, abs=1e-4)
    assert st.loc["S-X", "exposure_class"] == "high"
    assert st.loc["S-X", "damaging"] == 1 and not st.loc["S-X", "repeat_damage"]
    assert (st.loc["S-X", "recent"], st.loc["S-X", "previous"], st.loc["S-X", "trend"]) == (2, 0, "rising")
    assert st.loc["S-Y", "incidents"] == 1  # I-MKN, 30 m away


def test_owner_summary(result):
    vtsh = result.summary("VTSH")
    assert vtsh["cable_km"] == pytest.approx(2.0, abs=1e-3)
    assert (vtsh["segments"], vtsh["stations"]) == (4, 1)
    assert vtsh["incidents"] == 7  # I1 I2 I4 I5 I8 I9 I11
    assert vtsh["damaging"] == 4  # I1 I2 I4 I9
    assert vtsh["cable_incidents"] == 5
    cable_weight = 3 + 1 + 1.25 + 2 ** (-1 / 3) + 1  # I4 once, though near two segments
    assert vtsh["cable_exposure"] == pytest.approx(cable_weight / 2.0, abs=1e-4)
    assert vtsh["station_exposure"] == pytest.approx(2 * 2 ** (-1 / 6) + 3 * 2 ** (-1 / 18), abs=1e-4)
    assert (vtsh["exposed_segments"], vtsh["exposed_segment_share"]) == (4, 1.0)
    assert (vtsh["repeat_damage_segments"], vtsh["high_segments"], vtsh["high_stations"]) == (1, 1, 1)
    assert (vtsh["recent"], vtsh["previous"], vtsh["trend"]) == (5, 1, "rising")  # I1 I5 I8 I9 I11 / I7
    assert set(result.owners["owner"]) == {"VTSH", "MKN"}


def test_counted_incidents_carry_no_reporter_or_foreign_details(result):
    own = result.for_owner("VTSH").incidents.set_index("id")
    assert sorted(own.index) == ["I1", "I11", "I2", "I4", "I5", "I8", "I9"]
    assert own.loc["I1", "distance_m"] == pytest.approx(50, abs=0.1)
    assert own.loc["I1", "chainage_m"] == pytest.approx(250, abs=0.1)
    assert own.loc["I2", "chainage_m"] == pytest.approx(300, abs=0.1)
    assert own.loc["I4", "chainage_m"] == pytest.approx(1000, abs=0.1)
    assert own.loc["I5", "asset_id"] == "C-X:4" and own.loc["I5", "chainage_m"] == pytest.approx(1600, abs=0.1)
    assert own.loc["I8", "asset_type"] == "station" and own.loc["I8", "distance_m"] == pytest.approx(60, abs=0.1)
    assert own.loc["I1", "weight"] == pytest.approx(3.0)
    assert set(own.columns) >= {"occurred_at", "type", "severity", "status", "weight"}
    for column in ("reporter_name", "reporter_contact", "description", "damage_vnd", "source"):
        assert column not in own.columns
    assert "S-Y" not in set(own["asset_id"]) and "S-Y" not in own.to_json()


def test_for_owner_keeps_only_its_rows(result):
    mkn = result.for_owner("MKN")
    assert set(mkn.segments["owner"]) == {"MKN"} and set(mkn.stations["owner"]) == {"MKN"}
    assert list(mkn.incidents["id"]) == ["I-MKN"]
    assert "C-X" not in mkn.segments.to_json() and "S-X" not in mkn.stations.to_json()


def test_buffer_and_period_change_the_count():
    wider = compute_exposure(cables(), stations(), incidents(), until=R, buffer_m=200)
    seg = wider.segments.set_index("segment_id")
    assert seg.loc["C-X:2", "incidents"] == 2  # I3 (150 m) now counts
    short = compute_exposure(cables(), stations(), incidents(), since=R - timedelta(days=99), until=R)
    s = short.segments.set_index("segment_id")
    # 100 days = 100/365 of a year: segment 1 keeps I1 only: 3 / 0.5 km / (100/365)
    assert s.loc["C-X:1", "incidents"] == 1
    assert s.loc["C-X:1", "exposure"] == pytest.approx(3 / 0.5 / (100 / 365), abs=1e-3)


def test_priority_shares_are_numbers_per_class():
    # very_high over chainage 0-500 m, medium over 500-1500 m and the station: worked out by hand
    areas = gpd.GeoDataFrame({"priority_class": ["very_high", "medium"], "area_id": ["A1", "A2"]},
                             geometry=[to_lonlat(box(E0, N0 - 100, E0 + 500, N0 + 100)),
                                       to_lonlat(box(E0 + 500, N0 - 100, E0 + 1500, N0 + 400))],
                             crs="EPSG:4326")
    out = compute_exposure(cables(), stations(), incidents(), until=R, priority_areas=areas)
    rows = out.priority[out.priority["owner"] == "VTSH"].set_index("priority_class")
    assert list(rows.index) == ["very_high", "high", "medium", "low", "outside"]
    assert rows["cable_km"].tolist() == pytest.approx([0.5, 0.0, 1.0, 0.0, 0.5], abs=1e-3)
    assert rows["cable_share"].tolist() == pytest.approx([0.25, 0.0, 0.5, 0.0, 0.25], abs=1e-3)
    assert rows["stations"].tolist() == [0, 0, 1, 0, 0]
    assert set(out.priority.columns) == {"owner", "priority_class", "cable_km", "cable_share", "stations",
                                         "station_share"}  # numbers only: no cell id, no geometry


def test_bad_parameters_are_refused():
    with pytest.raises(BadInput, match="buffer_m"):
        compute_exposure(cables(), stations(), incidents(), until=R, buffer_m=0)
    with pytest.raises(BadInput, match="since"):
        compute_exposure(cables(), stations(), incidents(), since=R, until=R - timedelta(days=1))


def test_inputs_must_be_lonlat():
    with pytest.raises(BadInput, match="EPSG:4326"):
        compute_exposure(cables().to_crs("EPSG:32648"), stations(), incidents(), until=R)


def test_empty_inputs_give_empty_tables():
    out = compute_exposure(None, None, None, until=R)
    assert len(out.segments) == len(out.stations) == len(out.incidents) == len(out.owners) == 0
    out = compute_exposure(cables(), None, None, until=R)
    assert out.segments["incidents"].sum() == 0 and set(out.segments["exposure_class"]) == {"none"}


# -- splitting and chainage ---------------------------------------------------------------------------------

def test_split_routes_equal_pieces_and_parts():
    lines = np.array([LineString([(0, 0), (2190, 0)]), LineString([(0, 0), (300, 0)]),
                      MultiLineString([[(0, 0), (0, 700)], [(100, 700), (100, 1000), (400, 1000)]])], dtype=object)
    pieces, info = split_routes(lines, SEGMENT_M)
    first = info[info["route"] == 0]
    assert len(first) == 5 and first["length_m"].tolist() == pytest.approx([438.0] * 5)
    assert info[info["route"] == 1]["length_m"].tolist() == pytest.approx([300.0])
    multi = info[info["route"] == 2]
    # part 1: 700 m -> 2 x 350; part 2: 600 m (with a bend) -> 2 x 300; chainage runs on across the gap
    assert multi["part"].tolist() == [0, 0, 1, 1] and multi["seq"].tolist() == [1, 2, 3, 4]
    assert multi["chainage_from_m"].tolist() == pytest.approx([0, 350, 700, 1000])
    assert shapely.length(pieces[info.index[info["route"] == 2]]).tolist() == pytest.approx([350, 350, 300, 300])
    bend = pieces[info.index[(info["route"] == 2) & (info["seq"] == 3)][0]]
    assert list(bend.coords) == [(100, 700), (100, 1000)]
    assert list(pieces[info.index[(info["route"] == 2) & (info["seq"] == 4)][0]].coords) == [(100, 1000), (400, 1000)]


def test_place_at_chainage_exact_to_1_m():
    route = cables().geometry.iloc[0]  # 2 km east from (E0, N0), built in EPSG:5897
    assert route_length_m(route) == pytest.approx(2000.0, abs=0.01)
    for chainage in (0, 1, 750, 1234.5, 2000):
        point = place_at_chainage(route, chainage)
        x, y = lonlat_to_metric([point.x], [point.y])
        assert math.hypot(x[0] - (E0 + chainage), y[0] - N0) < 1.0
        assert chainage_of(route, point) == pytest.approx(chainage, abs=1.0)


def test_chainage_on_the_ground_and_beside_the_route():
    from pyproj import Geod

    route = fixtures.cable_routes().geometry.iloc[0]  # 105.76 -> 105.78 E along 10.03 N
    point = place_at_chainage(route, 1000)
    ground = Geod(ellps="WGS84").inv(105.76, 10.03, point.x, point.y)[2]
    assert ground == pytest.approx(1000, abs=1.0)  # grid vs ground: about 2 cm per km here
    beside = to_lonlat(Point(E0 + 250, N0 + 50))
    assert chainage_of(cables().geometry.iloc[0], beside) == pytest.approx(250, abs=0.01)


def test_chainage_on_a_multilinestring_and_errors():
    first, second = line((0, 0), (1000, 0)), line((0, 500), (800, 500))
    route = MultiLineString([first, second])
    point = place_at_chainage(route, 1300)  # 300 m into the second part
    x, y = lonlat_to_metric([point.x], [point.y])
    assert math.hypot(x[0] - (E0 + 300), y[0] - (N0 + 500)) < 1.0
    assert chainage_of(route, point) == pytest.approx(1300, abs=1.0)
    with pytest.raises(BadInput, match="1.800 km"):
        place_at_chainage(route, 2000)
    with pytest.raises(BadInput, match="between 0"):
        place_at_chainage(route, -1)
    with pytest.raises(BadInput):
        place_at_chainage(Point(105.7, 10.0), 10)


# -- the command line ----------------------------------------------------------------------------------------

@pytest.fixture
def loaded(app, store, tmp_path):
    from webmap.importer import import_layer

    for kind, frame in (("cable_routes", cables()), ("stations", stations()), ("incidents", incidents())):
        import_layer(store, fixtures.write_geojson(frame, str(tmp_path / f"{kind}.geojson")), kind)
    return app


def test_cli_writes_csv_xlsx_geojson(loaded, run_cli, tmp_path, monkeypatch, capsys):
    import openpyxl

    from webmap import audit
    from webmap.cli import main

    xlsx = tmp_path / "vtsh.xlsx"
    code, out, err = run_cli("exposure", "--org", "VTSH", "--until", R.isoformat(), "--no-priority", "-o", xlsx)
    assert code == 0, err
    assert "4 cable segments, 1 stations, 7 incidents counted" in out
    book = openpyxl.load_workbook(xlsx)
    assert book.sheetnames == ["summary", "segments", "stations", "incidents", "priority_areas", "comparison", "method"]
    seg = book["segments"]
    header = [c.value for c in seg[1]]
    first = dict(zip(header, [c.value for c in seg[2]]))
    assert first["segment_id"] == "C-X:1" and first["exposure"] == pytest.approx(8.0)
    method = {row[0].value: row[1].value for row in book["method"].iter_rows(min_row=2)}
    assert method["parameter.buffer_m"] == 100 and method["parameter.half_life_days"] == 180
    assert [row[0].value for row in book["comparison"].iter_rows(min_row=2)] == ["VTSH"]
    everything = " ".join(str(c.value) for ws in book for row in ws.iter_rows() for c in row)
    for word in ("C-Y", "S-Y", "MKN", "Người Báo Tin Kín", "0909123456", "Mô tả riêng"):
        assert word not in everything, word

    # the other two formats in this process (the command's code path, without another interpreter start)
    csv_path, geojson_path, all_path = tmp_path / "vtsh.csv", tmp_path / "vtsh.geojson", tmp_path / "all.csv"
    for target, org in ((csv_path, ["--org", "VTSH"]), (geojson_path, ["--org", "VTSH"]), (all_path, [])):
        with pytest.raises(SystemExit) as stop:
            main(["exposure", *org, "--until", R.isoformat(), "--no-priority", "-o", str(target)])
        assert stop.value.code == 0
    table = pd.read_csv(csv_path)
    assert table.loc[0, "asset_id"] == "C-X:1" and table.loc[0, "exposure"] == pytest.approx(8.0)
    assert set(table["buffer_m"]) == {100.0} and set(table["since"]) == {"2025-07-01"}
    assert set(table["owner"]) == {"VTSH"}
    data = json.loads(geojson_path.read_text(encoding="utf-8"))
    assert data["type"] == "FeatureCollection" and data["metadata"]["org"] == "VTSH"
    assert data["metadata"]["method"]["parameters"]["severity_weights"]["critical"] == 5
    layers = {f["properties"]["layer"] for f in data["features"]}
    assert layers == {"segment", "station", "incident"}
    comparison = pd.read_csv(all_path).set_index("owner")
    assert set(comparison.index) == {"VTSH", "MKN"} and comparison.loc["VTSH", "incidents"] == 7
    entries = audit.for_app(loaded).entries(action="export", limit=10)
    targets = [e.target for e in entries]
    assert targets.count("exposure:VTSH") == 3 and "exposure:all" in targets
    assert {e.detail["format"] for e in entries} == {"csv", "xlsx", "geojson"}


def test_cli_bad_input_exits_2(loaded, run_cli, tmp_path):
    code, out, err = run_cli("exposure", "--org", "NOPE", "-o", tmp_path / "x.txt")
    assert code == 2
    assert err.count("\n") == 1 and "name the file .csv, .xlsx or .geojson" in err
    from webmap.cli import main

    for args, message in ((["--org", "NOPE"], "unknown enterprise 'NOPE'; known: MKN, VTSH"),
                          (["--buffer-m", "abc"], "buffer_m must be a number"),
                          (["--since", "2026-07-01", "--until", "2026-06-30"], "since (2026-07-01) must be on or before")):
        with pytest.raises(SystemExit) as stop:
            main(["exposure", *args, "--no-priority", "-o", str(tmp_path / "x.csv")])
        assert stop.value.code == 2, args
    assert not (tmp_path / "x.csv").exists()


# -- the web: page, API, exports, PDF for each role -----------------------------------------------------------

ROLES = {"public": ("public", None), "admin": ("admin", None), "police": ("police", "CA-CT"),
         "district": ("district", "916"), "vtsh": ("enterprise", "VTSH"), "mkn": ("enterprise", "MKN")}
QUERY = f"until={R.isoformat()}"


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    from webmap.importer import import_layer

    folder = tmp_path_factory.mktemp("exposure-web")
    app = app_in(folder)
    store = app.extensions["webmap_store"]
    for kind, frame in (("cable_routes", cables()), ("stations", stations()), ("incidents", incidents())):
        import_layer(store, fixtures.write_geojson(frame, str(folder / f"{kind}.geojson")), kind)
    clients = clients_by_name(app, ROLES, "exp")
    yield app, clients
    store.close()


@pytest.mark.parametrize("name", ["public", "district"])
def test_no_exposure_for_visitors_and_districts(web, name):
    _, clients = web
    client = clients[name]
    unknown = client.get("/exposure/nothing-here")
    for url in ("/exposure", "/exposure?org=VTSH", "/exposure/export.csv", "/exposure/summary.pdf?org=VTSH"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.data == unknown.data
    response = client.get("/api/exposure?org=VTSH")
    assert response.status_code == 404 and b"VTSH" not in response.data and b"C-X" not in response.data


def test_enterprise_page_shows_its_own_network(web):
    _, clients = web
    response = clients["vtsh"].get(f"/exposure?{QUERY}")
    assert response.status_code == 200
    html = response.data.decode()
    assert "Mức độ phơi nhiễm của mạng lưới" in html and "2025-07-01 – 2026-06-30" in html
    assert 'id="wm-exp-incidents">7<' in html
    assert "C-X:1" in html and "S-X" in html and "8,0" in html  # Vietnamese decimal comma
    assert 'name="org"' not in html  # no organisation selector for an enterprise
    for word in ("C-Y", "S-Y", "Tuyến bí mật", "Trạm bí mật", "Người Báo Tin Kín", "0909123456", "Mô tả riêng"):
        assert word not in html, word
    english = clients["vtsh"].get(f"/exposure?{QUERY}&lang=en").data.decode()
    assert "Exposure of the network to incidents" in english and "8.0" in english


def test_enterprise_api_numbers_and_forced_org(web):
    _, clients = web
    client = clients["vtsh"]
    data = client.get(f"/api/exposure?{QUERY}").get_json()
    assert data["metadata"]["org"] == "VTSH" and data["metadata"]["summary"]["incidents"] == 7
    segments = {f["id"]: f["properties"] for f in data["features"] if f["properties"]["layer"] == "segment"}
    assert segments["C-X:1"]["exposure"] == pytest.approx(8.0) and segments["C-X:1"]["repeat_damage"] is True
    incidents = [f for f in data["features"] if f["properties"]["layer"] == "incident"]
    assert sorted(f["id"] for f in incidents) == ["I1", "I11", "I2", "I4", "I5", "I8", "I9"]
    assert all(set(f["properties"]) >= {"occurred_at", "type", "severity"} for f in incidents)
    assert data["metadata"]["comparison"] == [] or {r["owner"] for r in data["metadata"]["comparison"]} == {"VTSH"}
    assert client.get(f"/api/exposure?org=VTSH&{QUERY}").get_json()["metadata"]["summary"]["incidents"] == 7
    other, unknown = client.get("/api/exposure?org=MKN"), client.get("/api/exposure?org=NOPE")
    assert other.status_code == unknown.status_code == 404 and other.data == unknown.data
    assert client.get("/exposure?org=MKN").data == client.get("/exposure?org=NOPE").data
    # an enterprise sees incidents within 500 m of its network: a wider buffer would silently miss some
    assert client.get("/api/exposure?buffer_m=600").status_code == 400
    assert client.get("/api/exposure?buffer_m=200").status_code == 200
    for bad in ("buffer_m=abc", "since=2026-13-01", "colour=red", "since=2026-07-01&until=2026-06-30"):
        response = client.get(f"/api/exposure?{bad}")
        assert response.status_code == 400 and response.get_json()["error"], bad


def test_police_see_any_enterprise_and_the_comparison(web):
    _, clients = web
    for name in ("police", "admin"):
        client = clients[name]
        page = client.get(f"/exposure?{QUERY}").data.decode()
        assert 'name="org"' in page and 'id="wm-exposure-comparison"' in page
        assert 'data-org="VTSH"' in page and 'data-org="MKN"' in page
        data = client.get(f"/api/exposure?org=MKN&{QUERY}").get_json()
        assert data["metadata"]["summary"]["incidents"] == 1
        assert {f["properties"]["owner"] for f in data["features"] if f["properties"]["layer"] != "incident"} == {"MKN"}
        assert {r["owner"] for r in data["metadata"]["comparison"]} == {"VTSH", "MKN"}
        everyone = client.get(f"/api/exposure?{QUERY}").get_json()
        assert everyone["metadata"]["org"] is None
        assert {f["properties"]["owner"] for f in everyone["features"]} == {"VTSH", "MKN"}
        assert client.get("/api/exposure?org=NOPE").status_code == 404
        assert client.get(f"/api/exposure?buffer_m=1500&{QUERY}").status_code == 200


def test_exports_and_pdf_for_each_allowed_role(web, tmp_path):
    import openpyxl

    from webmap import audit

    app, clients = web
    for name, org in (("vtsh", "VTSH"), ("mkn", "MKN"), ("police", "VTSH"), ("admin", "MKN")):
        client = clients[name]
        query = f"org={org}&{QUERY}"
        csv = client.get(f"/exposure/export.csv?{query}")
        assert csv.status_code == 200 and csv.mimetype == "text/csv"
        assert f"exposure_{org}_2025-07-01_2026-06-30.csv" in csv.headers["Content-Disposition"]
        table = pd.read_csv(__import__("io").BytesIO(csv.data))
        assert set(table["owner"]) == {org}
        xlsx = client.get(f"/exposure/export.xlsx?{query}")
        path = tmp_path / f"{name}.xlsx"
        path.write_bytes(xlsx.data)
        assert openpyxl.load_workbook(path).sheetnames[0] == "summary"
        geo = client.get(f"/exposure/export.geojson?{query}")
        assert geo.mimetype == "application/geo+json" and json.loads(geo.data)["metadata"]["org"] == org
        pdf = client.get(f"/exposure/summary.pdf?{query}")
        assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
        assert client.get(f"/exposure/export.shp?{query}").status_code == 404
    entries = audit.for_app(app).entries(limit=100)
    exports = [e for e in entries if e.action == "export" and e.target.startswith("exposure:")]
    prints = [e for e in entries if e.action == "print" and e.target.startswith("exposure:")]
    assert len(exports) == 12 and len(prints) == 4
    assert {e.actor for e in prints} == {"vtsh.exp", "mkn.exp", "police.exp", "admin.exp"}
    # staff without an enterprise: the comparison as CSV; the PDF needs an enterprise
    comparison = pd.read_csv(__import__("io").BytesIO(clients["police"].get(f"/exposure/export.csv?{QUERY}").data))
    assert set(comparison["owner"]) == {"VTSH", "MKN"}
    assert clients["police"].get(f"/exposure/summary.pdf?{QUERY}").status_code == 400


def test_pdf_holds_the_key_numbers(web, tmp_path):
    _, clients = web
    pdf = clients["vtsh"].get(f"/exposure/summary.pdf?{QUERY}").data
    path = tmp_path / "summary.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "Mức độ phơi nhiễm của mạng lưới trước sự cố" in text
    assert "Viễn thông Sông Hậu" in text and "2025-07-01 – 2026-06-30" in text
    assert "C-X:1" in text and "S-X" in text and "In bởi vtsh.exp" in text
    assert "Phương pháp" in text and "0,5^" in text
    for word in ("C-Y", "S-Y", "MKN", "Người Báo Tin Kín", "Mô tả riêng"):
        assert word not in text, word


def test_map_header_links_to_exposure(web):
    _, clients = web
    assert 'id="wm-exposure-link"' in clients["vtsh"].get("/").data.decode()
    assert 'id="wm-exposure-link"' in clients["police"].get("/").data.decode()
    assert 'id="wm-exposure-link"' not in clients["district"].get("/").data.decode()
    assert 'id="wm-exposure-link"' not in clients["public"].get("/").data.decode()


# -- priority areas from the real analysis (needs esda's compiled code) ---------------------------------------

@pytest.fixture(scope="module")
def warm():
    from webmap.analysis.hotspots import warm_up

    warm_up()


def test_priority_shares_from_the_police_analysis(warm, app, store, tmp_path):
    from webmap.access import AccessContext, Principal
    from webmap.analysis.exposure import ExposureParams
    from webmap.catalog import load_catalog
    from webmap.exposures import ExposureRequest, run_exposure
    from webmap.importer import import_layer

    frames = {"districts": fixtures.districts(), "cable_routes": cables(), "stations": stations(),
              "incidents": incidents(), "key_sites": fixtures.key_sites()}
    for kind, frame in frames.items():
        import_layer(store, fixtures.write_geojson(frame, str(tmp_path / f"{kind}.geojson")), kind)
    who = Principal("vtsh.x", "enterprise", "VTSH")
    result, state = run_exposure(store, who, load_catalog(), AccessContext(store, load_catalog()),
                                 ExposureRequest(None, ExposureParams(until=R).resolved()))
    assert state == "ready"
    rows = result.priority
    assert set(rows["owner"]) == {"VTSH"}
    assert rows["cable_km"].sum() == pytest.approx(2.0, abs=0.01)
    assert rows["cable_share"].sum() == pytest.approx(1.0, abs=0.01)
    assert rows["stations"].sum() == 1


# -- in a real browser, as the demo enterprise --------------------------------------------------------------

@pytest.mark.browser
def test_exposure_page_in_the_browser(browser, server):
    from browser_conftest import _close_session, _open_session, save_screenshot

    session = _open_session(browser, server)
    try:
        session.log_in("vtsh.demo")
        page = session.page
        page.locator("#wm-exposure-link").click()
        page.wait_for_url("**/exposure")
        page.wait_for_function(
            "() => document.getElementById('wm-exposure-map').getAttribute('data-state') === 'ready'")
        counts = page.evaluate("() => window.exposureApp.counts")
        api = session.get_json("/api/exposure")
        kinds = [f["properties"]["layer"] for f in api["features"]]
        assert counts == {"segments": kinds.count("segment"), "stations": kinds.count("station"),
                          "incidents": kinds.count("incident")}
        assert counts["segments"] > 0 and counts["stations"] > 0
        assert {f["properties"]["owner"] for f in api["features"]} == {"VTSH"}
        # drawn: segments coloured by class, the legend, the ranked tables, downloads and the PDF link
        assert page.locator("path.wm-exp-segment").count() == counts["segments"]
        colours = set(page.eval_on_selector_all("path.wm-exp-segment", "els => els.map(e => e.getAttribute('stroke'))"))
        assert len(colours) >= 3
        assert "Mức phơi nhiễm" in page.locator(".wm-exp-legend").inner_text()
        assert page.locator("#wm-exposure-top-segments tbody tr").count() > 0
        for link in ("#wm-exposure-csv", "#wm-exposure-xlsx", "#wm-exposure-geojson", "#wm-exposure-pdf"):
            assert page.locator(link).is_visible()
        # a row of the ranked table zooms to its segment and opens its popup
        first = page.locator("#wm-exposure-top-segments tbody tr").first
        segment_id = first.get_attribute("data-id")
        first.click()
        page.wait_for_selector(".leaflet-popup-content .wm-exp-popup")
        assert segment_id in page.locator(".leaflet-popup-content").inner_text()
        page.evaluate("() => window.exposureApp.map.closePopup()")
        page.evaluate("() => window.exposureApp.fit()")
        page.wait_for_timeout(400)
        save_screenshot(page, "exposure.png")
        body = page.content()
        for word in ("MKN-", "TCT-", "reporter", "description"):
            assert word not in body, word
    finally:
        _close_session(session)  # no console error, no request to another host


def test_join_finds_the_same_pairs_as_the_dwithin_predicate():
    """The envelope query + exact numpy distances of ``_join_incidents`` give exactly the pairs, distances and
    chainages of shapely's STRtree ``dwithin`` predicate, ``distance`` and ``line_locate_point``."""
    from webmap.analysis.exposure import _join_incidents, _metric_geoms, _straight_pieces

    rng = np.random.default_rng(5)
    lon, lat = rng.uniform(105.755, 105.785, 60_000), rng.uniform(10.02, 10.04, 60_000)
    wiggly = gpd.GeoSeries([line((0, 0), (400, 90), (700, -60), (2000, 0)), line((0, 500), (900, 450))],
                           crs="EPSG:4326")
    segments, _ = split_routes(_metric_geoms(wiggly.array), SEGMENT_M)
    segments_lonlat = to_lonlat(segments)
    stations_m = shapely.points([E0 + 100, E0 + 1500], [N0 + 200, N0 - 50])
    stations_ll = to_lonlat(stations_m)
    x, y = lonlat_to_metric(lon, lat)
    points = shapely.points(x, y)
    for buffer_m in (50.0, 100.0, 333.0):
        join = _join_incidents(lon, lat, shapely.points(lon, lat), _straight_pieces(segments, segments_lonlat),
                               shapely.get_coordinates(stations_m),
                               np.column_stack([shapely.get_coordinates(stations_ll)] * 2), buffer_m, workers=2)
        expected = shapely.STRtree(segments).query(points, predicate="dwithin", distance=buffer_m)
        assert sorted(zip(join.seg_inc, join.seg_idx)) == sorted(zip(*expected))
        assert len(join.seg_inc) > 100
        order = np.lexsort((join.seg_idx, join.seg_inc))
        exact = shapely.distance(points[join.seg_inc], segments[join.seg_idx])
        assert np.allclose(join.seg_dist, exact, atol=1e-6)
        along = shapely.line_locate_point(segments[join.seg_idx], points[join.seg_inc])
        assert np.allclose(join.seg_along[order], along[order], atol=1e-6)
        st_expected = shapely.STRtree(stations_m).query(points, predicate="dwithin", distance=buffer_m)
        assert sorted(zip(join.st_inc, join.st_idx)) == sorted(zip(*st_expected)) and len(join.st_inc) > 10
