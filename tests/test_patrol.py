"""Patrol maps: a true printed scale (measured on the PDF itself), what the sheet says, routes, atlas, CLI, view.

Geometry is given in VN-2000 / TM-3 metres (EPSG:5897) and stored in lon/lat through the pinned EPSG:6960
shift, as an import would, so distances worked out by hand on the metres are the distances the print uses.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import datetime, timezone
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import LineString, Point, box

import fixtures
from webmap.analysis import routes as routes_mod
from webmap.analysis.routes import make_start, plan_route, select_checkpoints, solve_tour, tour_length
from webmap.crs import METRIC_CRS, resolve_crs, to_metric
from webmap.errors import BadInput
from webmap.maps.patrol_pdf import (INTERNAL, SECRET, OverviewSheet, PatrolSheet, PrintOptions, fit_scale,
                                    page_layout, render_atlas, render_patrol_pdf)

OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")
X0, Y0 = 588_000.0, 1_109_000.0  # near Ninh Kiều, in EPSG:5897 metres
WHEN = datetime(2026, 3, 20, 8, 0, tzinfo=timezone.utc)

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")


def lonlat_geoms(geoms):
    """EPSG:5897 shapely geometries to stored lon/lat (the pinned shift, as the importer does)."""
    return gpd.GeoSeries(resolve_crs(METRIC_CRS).transform_geometries(np.asarray(geoms, dtype=object)), crs="EPSG:4326")


def station_frame(rows):
    """rows: (id, name, owner, kind, criticality, x, y) with x, y in metres."""
    return gpd.GeoDataFrame(
        {"id": [r[0] for r in rows], "name": [r[1] for r in rows], "owner": [r[2] for r in rows],
         "kind": [r[3] for r in rows], "criticality": [r[4] for r in rows]},
        geometry=lonlat_geoms([Point(r[5], r[6]) for r in rows]), crs="EPSG:4326")


def checkpoint_table(ids, xys):
    return gpd.GeoDataFrame({"id": ids, "name": [f"Điểm {i}" for i in ids], "kind": "station", "inspect": "Cửa trạm"},
                            geometry=lonlat_geoms([Point(x, y) for x, y in xys]), crs="EPSG:4326")


def pdf_words(path):
    """(page width, page height, [(word, xMin, yMin)]) of page 1, from pdftotext -bbox (points, y down)."""
    html = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", path, "-"], capture_output=True, text=True,
                          check=True).stdout
    page = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', html)
    words = [(m.group(5), float(m.group(1)), float(m.group(2)))
             for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', html)]
    return float(page.group(1)), float(page.group(2)), words


def pdf_text(path):
    return subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True, check=True).stdout


def pdf_pages(path):
    info = subprocess.run(["pdfinfo", path], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1))


# -- the printed scale ---------------------------------------------------------------------------------------
SCALE_STATIONS = [
    ("ST-A", "Trạm gốc A", "VTSH", "bts", "critical", X0, Y0),
    ("ST-B", "Trạm B cách 1 km về phía đông", "VTSH", "bts", "critical", X0 + 1000, Y0),
    ("ST-C", "Trạm C cách 1 km về phía bắc", "VTSH", "exchange", "critical", X0, Y0 + 1000),
    ("ST-D", "Trạm xuất phát", "VTSH", "post_office", "low", X0 + 600, Y0 + 450),
]


def scale_sheet():
    stations = station_frame(SCALE_STATIONS)
    area = lonlat_geoms([box(X0 - 300, Y0 - 300, X0 + 1300, Y0 + 1300)]).iloc[0]
    checkpoints = select_checkpoints(area, stations=stations)
    start_row = stations[stations["id"] == "ST-D"].iloc[0]
    route = plan_route(make_start("ST-D", start_row["name"], start_row.geometry), checkpoints)
    return PatrolSheet("Bản đồ kiểm tra tỷ lệ", area, "Khu vực thử tỷ lệ", {"stations": stations}, route)


@pytest.mark.parametrize("paper, orientation, scale", [("A4", "portrait", 10_000), ("A3", "landscape", 7_500),
                                                       ("A4", "landscape", 25_000)])
def test_printed_scale_is_true(tmp_path, paper, orientation, scale):
    """Distance between two stations' labels on the PDF page x scale = their ground distance, within 1 %."""
    path = str(tmp_path / "scale.pdf")
    result = render_patrol_pdf(scale_sheet(), PrintOptions(paper=paper, orientation=orientation, scale=scale,
                                                           printed_by="tester", printed_at=WHEN), path)
    assert result.scales == (scale,) and result.pages == 1
    width_pt, height_pt, words = pdf_words(path)
    mm = {"A4": (210, 297), "A3": (297, 420)}[paper]
    expected = mm if orientation == "portrait" else mm[::-1]
    assert (width_pt, height_pt) == pytest.approx((expected[0] / 25.4 * 72, expected[1] / 25.4 * 72), abs=0.01)

    frame = page_layout(paper, orientation).map  # millimetres from the bottom-left corner
    left, right = frame.x / 25.4 * 72, (frame.x + frame.w) / 25.4 * 72
    top, bottom = height_pt - (frame.y + frame.h) / 25.4 * 72, height_pt - frame.y / 25.4 * 72

    def on_map(word):  # the label on the map (the checkpoint table repeats the ids outside the frame)
        hits = [(x, y) for w, x, y in words if w == word and left < x < right and top < y < bottom]
        assert len(hits) == 1, (word, hits)
        return hits[0]

    (ax, ay), (bx, by), (cx, cy) = on_map("ST-A"), on_map("ST-B"), on_map("ST-C")
    geod = Geod(ellps="WGS84")
    lons, lats = zip(*[(g.x, g.y) for g in station_frame(SCALE_STATIONS).geometry[:3]])
    ground_ab = geod.inv(lons[0], lats[0], lons[1], lats[1])[2]
    ground_ac = geod.inv(lons[0], lats[0], lons[2], lats[2])[2]
    assert ground_ab == pytest.approx(1000, rel=2e-4) and ground_ac == pytest.approx(1000, rel=2e-4)
    # same label offset from each mark: label to label is mark to mark; points -> mm -> ground metres
    east_m = (bx - ax) * 25.4 / 72 / 1000 * scale
    north_m = (ay - cy) * 25.4 / 72 / 1000 * scale  # pdftotext's y grows downwards
    assert east_m == pytest.approx(ground_ab, rel=0.01)
    assert north_m == pytest.approx(ground_ac, rel=0.01)
    assert abs(by - ay) < 0.5 and abs(cx - ax) < 0.5  # B due east of A, C due north (to half a point)


def test_fit_scale_picks_the_next_round_scale():
    layout = page_layout("A4", "portrait")
    assert layout.map.w == pytest.approx(210 - 2 * 10 - 2 * 6) and layout.map.h > 100  # margins, label bands
    # 1 km with a 6 % margin each side on 176 mm: 1:6,364 -> 1:7,500
    assert fit_scale(1000, 100, 176, 120) == 7_500
    assert fit_scale(100, 100, 176, 120) == 2_000  # never larger than 1:2,000
    assert fit_scale(40_000, 40_000, 176, 120) == 400_000  # beyond 1:50,000 only when fitting


def test_options_are_checked():
    with pytest.raises(BadInput, match="scale"):
        PrintOptions(scale=1_000).checked()
    with pytest.raises(BadInput, match="scale"):
        PrintOptions(scale=60_000).checked()
    with pytest.raises(BadInput, match="paper"):
        PrintOptions(paper="A5").checked()
    with pytest.raises(BadInput, match="grid"):
        PrintOptions(grid="utm").checked()
    assert PrintOptions(scale="1:10,000").checked().scale == 10_000


# -- what the sheet says -------------------------------------------------------------------------------------
def fixture_layers():
    layers = {kind: make() for kind, make in fixtures.FRAMES.items()}
    layers["incidents"]["occurred_at"] = ["2026-03-10T02:30:00+07:00", "2026-02-11T23:00:00+07:00",
                                          "2025-03-01T12:00:00+07:00"]
    return layers


def fixture_sheet(layers, **route_kw):
    area = box(105.755, 10.02, 105.785, 10.04)
    checkpoints = select_checkpoints(area, key_sites=layers.get("key_sites"), stations=layers["stations"])
    start = layers["stations"].iloc[2]
    route = plan_route(make_start(start["id"], start["name"], start.geometry), checkpoints, **route_kw)
    return PatrolSheet("Bản đồ tuần tra – khu vực thử nghiệm", area, "Khu vực: Cái Khế (thử)", layers, route)


def test_pdf_holds_title_legend_marking_and_checkpoints(tmp_path):
    layers = fixture_layers()
    path = str(tmp_path / "sheet.pdf")
    result = render_patrol_pdf(fixture_sheet(layers), PrintOptions(printed_by="lan.nguyen", printed_at=WHEN,
                                                                   attribution="Ranh giới hành chính: thử"), path)
    text = pdf_text(path)
    assert result.classification == SECRET and text.count(SECRET) >= 2  # top and bottom, key sites on the map
    for expected in ("Bản đồ tuần tra – khu vực thử nghiệm", "CHÚ GIẢI (LEGEND)", "Mục tiêu trọng điểm (Key sites)",
                     "Trạm BTS (BTS)", "Tổng đài (Exchange)", "Trộm cắp cáp (Cable theft)", "Lộ trình tuần tra",
                     "Điểm kiểm tra", "BẢNG ĐIỂM KIỂM TRA", "K-001", "S-002", "S-003", "Tỷ lệ (Scale) 1:",
                     "In bởi / Printed by: lan.nguyen", "20/03/2026 15:00", "Ranh giới hành chính: thử",
                     "Chiều dài lộ trình (Route length)", "VN-2000 / TM-3"):
        assert expected in text, expected
    # the incident of a year ago is not "recent": not drawn, so not in the legend either
    assert "Gian lận cước" not in text
    fonts = subprocess.run(["pdffonts", path], capture_output=True, text=True, check=True).stdout
    assert "DejaVuSans" in fonts and all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:])  # embedded


def test_marking_without_key_sites_and_given_marking(tmp_path):
    layers = fixture_layers()
    del layers["key_sites"]
    path = str(tmp_path / "internal.pdf")
    result = render_patrol_pdf(fixture_sheet(layers), PrintOptions(printed_by="x", printed_at=WHEN), path)
    assert result.classification == INTERNAL and INTERNAL in pdf_text(path)
    result = render_patrol_pdf(fixture_sheet(layers), PrintOptions(printed_by="x", printed_at=WHEN,
                                                                   classification="TUYỆT MẬT"), path)
    assert result.classification == "TUYỆT MẬT" and "TUYỆT MẬT" in pdf_text(path)


def test_degree_grid_is_labelled(tmp_path):
    path = str(tmp_path / "degrees.pdf")
    render_patrol_pdf(fixture_sheet(fixture_layers()), PrintOptions(grid="degrees", scale=10_000, printed_at=WHEN), path)
    text = pdf_text(path)
    assert re.search(r"105°4\d'\d\d\"E", text) and re.search(r"10°0\d'\d\d\"N", text)
    assert "Lưới kinh độ, vĩ độ WGS 84" in text


def test_a_page_to_look_at(tmp_path):
    """Renders the fixture sheet (A4 portrait) and a demo-like atlas page to PNG for a person to look at."""
    os.makedirs(OUTPUT, exist_ok=True)
    path = str(tmp_path / "look.pdf")
    render_patrol_pdf(fixture_sheet(fixture_layers()), PrintOptions(printed_by="police.demo", printed_at=WHEN,
                                                                    attribution="Dữ liệu thử nghiệm"), path)
    target = os.path.join(OUTPUT, "patrol_map")
    subprocess.run(["pdftoppm", "-r", "110", "-png", "-singlefile", path, target], check=True)
    assert os.path.getsize(target + ".png") > 50_000


@pytest.mark.parametrize("paper, orientation, count, pages", [
    # the most checkpoints select_checkpoints gives (18) and the start fit one page, whatever the paper
    ("A4", "portrait", 18, 1), ("A3", "portrait", 18, 1), ("A4", "landscape", 18, 1), ("A3", "landscape", 18, 1),
    ("A4", "portrait", 45, 2), ("A4", "landscape", 45, 2), ("A4", "landscape", 90, 3)])
def test_a_long_checkpoint_table_goes_on_to_pages_of_its_own(tmp_path, paper, orientation, count, pages):
    xys = [(X0 + 150 * (i % 8), Y0 + 150 * (i // 8)) for i in range(count)]
    cps = checkpoint_table([f"CP-{i:02d}" for i in range(count)], xys)
    route = plan_route(make_start("XP", "Xuất phát", lonlat_geoms([Point(X0 - 100, Y0 - 100)]).iloc[0]), cps)
    area = lonlat_geoms([box(X0 - 200, Y0 - 200, X0 + 1300, Y0 + 1000)]).iloc[0]
    path = str(tmp_path / "long.pdf")
    result = render_patrol_pdf(PatrolSheet("Nhiều điểm", area, "", {}, route), PrintOptions(
        paper=paper, orientation=orientation, printed_at=WHEN), path)
    assert result.pages == pages == pdf_pages(path)
    text = pdf_text(path)
    assert all(f"CP-{i:02d}" in text for i in range(count))  # every checkpoint is in the table somewhere
    assert ("BẢNG ĐIỂM KIỂM TRA (TIẾP)" in text) == (pages > 1)


# -- checkpoints and routes ----------------------------------------------------------------------------------
def test_checkpoints_key_sites_hot_spots_and_critical_stations():
    layers = fixture_layers()
    area = box(105.755, 10.02, 105.785, 10.04)
    # three hot cells: two that touch (one hot spot) and one apart; a cold one; one outside the area
    cells_m = [box(X0 + dx, Y0 + dy, X0 + dx + 100, Y0 + dy + 100) for dx, dy in ((0, 0), (100, 0), (400, 0), (600, 0))]
    cells = gpd.GeoDataFrame({"area_id": ["S100-0001", "S100-0002", "S100-0003", "S100-0004"],
                              "hotspot": ["hot", "hot", "hot", "cold"], "rank": [2, 1, 3, 4],
                              "incidents": [4, 6, 3, 0], "recent": [1, 2, 0, 0], "trend": ["none", "emerging", "none", "none"],
                              "score": [50, 60, 40, 0]}, geometry=lonlat_geoms(cells_m), crs="EPSG:4326")
    cell_area = lonlat_geoms([box(X0 - 10, Y0 - 10, X0 + 800, Y0 + 110)]).iloc[0]
    found = select_checkpoints(cell_area, cells=cells)
    assert list(found["kind"]) == ["hotspot", "hotspot"]
    assert list(found["id"]) == ["S100-0002", "S100-0003"]  # the cluster's best-ranked cell, then the other
    assert "+1 ô" in found.iloc[0]["name"]
    assert "10 vụ (3 vụ/90 ngày), mới nổi" in found.iloc[0]["inspect"]
    found = select_checkpoints(area, key_sites=layers["key_sites"], stations=layers["stations"])
    assert list(found["id"]) == ["K-001", "S-002"]  # key sites first, then critical stations (S-001 is medium)
    assert list(found["kind"]) == ["key_site", "station"]
    # a key site reaching into the area is visited inside it
    half = box(105.78, 10.0, 105.80, 10.06)
    point = select_checkpoints(half, key_sites=layers["key_sites"]).geometry.iloc[0]
    assert half.contains(point) and layers["key_sites"].geometry.iloc[0].contains(point)
    assert len(select_checkpoints(area, stations=layers["stations"], max_checkpoints=0)) == 0
    import inspect

    assert inspect.signature(select_checkpoints).parameters["max_checkpoints"].default == 18  # one page


def test_route_round_a_square_is_hand_checkable():
    start = checkpoint_table(["XP"], [(X0, Y0)])
    given = checkpoint_table(["A", "B", "C"], [(X0 + 1000, Y0 + 1000), (X0 + 1000, Y0), (X0, Y0 + 1000)])
    route = plan_route(make_start("XP", "Xuất phát", start.geometry.iloc[0]), given)
    assert route.length_m == pytest.approx(4000, abs=0.01)
    assert route.given_length_m == pytest.approx(2000 + 2 * 1000 * 2 ** 0.5, abs=0.01)
    assert list(route.stops["id"]) == ["XP", "B", "A", "C"] and route.method == "nearest_neighbour+2opt"
    assert route.path.length == pytest.approx(4000, abs=0.01) and len(route.legs) == 4
    assert route.stops.iloc[0]["x"] == pytest.approx(X0, abs=1e-3)


def test_route_is_never_worse_than_the_order_given_and_is_deterministic():
    rng = np.random.default_rng(2026)
    for case in range(25):
        n = int(rng.integers(1, 14))
        xys = [(X0 + float(x), Y0 + float(y)) for x, y in rng.uniform(0, 3000, size=(n, 2))]
        cps = checkpoint_table([f"P{i}" for i in range(n)], xys)
        start = make_start("XP", "Xuất phát", lonlat_geoms([Point(X0 + 1500, Y0 + 1500)]).iloc[0])
        first = plan_route(start, cps)
        again = plan_route(start, cps)
        assert first.length_m <= first.given_length_m + 1e-6, case
        assert list(first.stops["id"]) == list(again.stops["id"]) and first.length_m == again.length_m
        assert sorted(first.stops["id"][1:]) == sorted(cps["id"]) and first.stops["id"].iloc[0] == "XP"


def test_the_given_order_is_kept_when_the_heuristic_does_worse(monkeypatch):
    """Whatever the heuristic returns, a longer tour than the given order is never handed out."""
    start = make_start("XP", "Xuất phát", lonlat_geoms([Point(X0, Y0)]).iloc[0])
    cps = checkpoint_table(["A", "B", "C"], [(X0 + 1000, Y0), (X0 + 1000, Y0 + 1000), (X0, Y0 + 1000)])
    monkeypatch.setattr(routes_mod, "solve_tour", lambda matrix, start=0: [0, 2, 1, 3])  # a crossing tour
    route = routes_mod.plan_route(start, cps)
    assert route.method == "given_order" and list(route.stops["id"]) == ["XP", "A", "B", "C"]
    assert route.length_m == pytest.approx(4000, abs=0.01) == route.given_length_m


def test_two_opt_undoes_a_crossing():
    square = np.array([[0, 1, 2 ** 0.5, 1], [1, 0, 1, 2 ** 0.5], [2 ** 0.5, 1, 0, 1], [1, 2 ** 0.5, 1, 0]])
    assert tour_length(solve_tour(square), square) == pytest.approx(4)
    assert tour_length([0, 2, 1, 3], square) > 4


def road_grid(x0=X0, y0=Y0, width=1000, height=1000, step=500):
    """Straight roads every ``step`` metres over a ``width`` x ``height`` rectangle, in lon/lat."""
    lines = [LineString([(x0, y0 + d), (x0 + width, y0 + d)]) for d in range(0, height + 1, step)]
    lines += [LineString([(x0 + d, y0), (x0 + d, y0 + height)]) for d in range(0, width + 1, step)]
    return gpd.GeoDataFrame({"id": [f"R{i}" for i in range(len(lines))], "name": "Đường thử", "class": "urban"},
                            geometry=lonlat_geoms(lines), crs="EPSG:4326")


def test_route_follows_the_roads():
    roads = road_grid()
    start = make_start("XP", "Xuất phát", lonlat_geoms([Point(X0, Y0)]).iloc[0])
    cps = checkpoint_table(["A", "B"], [(X0 + 500, Y0 + 500), (X0 + 1000, Y0)])
    straight = plan_route(start, cps)
    on_roads = plan_route(start, cps, roads)
    # straight: 707 + 707 + 1000; on the grid every leg is 1000 m
    assert straight.length_m == pytest.approx(1000 + 2 * 500 * 2 ** 0.5, abs=0.5)
    assert on_roads.length_m == pytest.approx(3000, abs=0.5) and on_roads.length_m > straight.length_m
    assert on_roads.on_roads == len(on_roads.legs) == 3 and straight.on_roads == 0
    network = shapely.union_all(to_metric(roads).geometry.values)
    for leg in on_roads.legs:
        for x, y in leg.coords:
            assert network.distance(Point(x, y)) < 0.01, (x, y)
    # an off-road checkpoint is reached by its shortest way to the road, then along it
    off = checkpoint_table(["E"], [(X0 + 250, Y0 + 40)])
    route = plan_route(start, off, roads)
    assert route.length_m == pytest.approx(2 * (250 + 40), abs=0.5) and route.on_roads == 2
    # too far from any road: straight
    far = checkpoint_table(["F"], [(X0 + 250, Y0 + 2000)])
    assert plan_route(start, far, roads).on_roads == 0


# -- the atlas -----------------------------------------------------------------------------------------------
def fake_priority(layers):
    """A priority result over the fixture: three hot cells round the cable (no Gi* needed here)."""
    cells_m = [box(X0 + dx, Y0 + dy, X0 + dx + 500, Y0 + dy + 500) for dx, dy in ((0, 0), (500, 0), (1500, 500))]
    geoms = lonlat_geoms(cells_m)
    centres = gpd.GeoSeries([g.centroid for g in geoms], crs="EPSG:4326")
    cells = gpd.GeoDataFrame({
        "area_id": ["S500-0001", "S500-0002", "S500-0003"], "incidents": [5, 3, 1], "hotspot": ["hot", "hot", "none"],
        "confidence": [99, 95, 0], "score": [80.0, 62.5, 21.0], "rank": [1, 2, 3],
        "priority_class": ["very_high", "very_high", "medium"], "trend": ["emerging", "persistent", "none"],
        "recent": [3, 1, 0], "centroid_lon": centres.x, "centroid_lat": centres.y}, geometry=geoms, crs="EPSG:4326")
    method = {"name": "test", "parameters": {"cell_m": 500, "shape": "square", "permutations": 999, "fdr_alpha": 0.1},
              "computed_at": "2026-03-20T08:00:00+00:00"}
    return SimpleNamespace(cells=cells, units=None, method=method)


def test_atlas_has_an_overview_and_one_page_per_area(tmp_path):
    layers = fixture_layers()
    result = fake_priority(layers)
    sheets = []
    for _, row in result.cells.iterrows():
        cps = select_checkpoints(row.geometry, key_sites=layers["key_sites"], stations=layers["stations"],
                                 cells=result.cells, area_centre=(row["area_id"], "Tâm vùng"))
        start = layers["stations"].iloc[1]
        route = plan_route(make_start(start["id"], start["name"], start.geometry), cps)
        sheets.append(PatrolSheet(f"Vùng {row['area_id']}", row.geometry, "", {**layers, "cells": result.cells}, route))
    areas = result.cells  # render_atlas numbers the pages itself
    path = str(tmp_path / "atlas.pdf")
    rendered = render_atlas(OverviewSheet("Tập bản đồ tuần tra — 3 vùng", areas, {**layers, "cells": result.cells}),
                            sheets, PrintOptions(printed_by="x", printed_at=WHEN), path)
    assert rendered.pages == 4 == pdf_pages(path)
    text = pdf_text(path)
    assert "DANH SÁCH VÙNG" in text and re.findall(r"Trang (\d)/4", text) == ["1", "2", "3", "4"]
    for ident in ("S500-0001", "S500-0002", "S500-0003"):
        assert ident in text


# -- through the store: CLI and view -------------------------------------------------------------------------
@pytest.fixture
def loaded(store, tmp_path):
    from webmap.importer import import_layer

    layers = fixture_layers()
    for kind, frame in layers.items():
        import_layer(store, fixtures.write_geojson(frame, str(tmp_path / f"{kind}.geojson")), kind)
    # streets every 250 m round the fixture's stations and key site (Ninh Kiều, about 105.75-105.79 E)
    streets = road_grid(582_500, 1_108_000, 3000, 2500, 250)
    import_layer(store, fixtures.write_geojson(streets, str(tmp_path / "roads.geojson")), "roads")
    return store


def test_make_patrol_pdf_for_the_top_areas(app, loaded, tmp_path):
    from webmap.access import AccessContext, Principal
    from webmap.catalog import load_catalog
    from webmap.patrol import make_patrol_pdf, parse_request

    catalog = load_catalog()
    context = AccessContext(loaded, catalog)
    police = Principal("lan.nguyen", "police", "CA-CT")
    path = str(tmp_path / "top.pdf")
    summary = make_patrol_pdf(loaded, police, catalog, context, parse_request({"top": "2"}), path,
                              printed_by="lan.nguyen", priority=lambda params: fake_priority(None))
    assert summary.pages == 3 == pdf_pages(path) and [a["area"] for a in summary.areas] == ["S500-0001", "S500-0002"]
    text = pdf_text(path)
    assert "Tập bản đồ tuần tra — 2 vùng ưu tiên cao nhất" in text and "Vùng ưu tiên: Getis-Ord Gi*" in text
    # one area by id; a priority area is visited at its centre
    summary = make_patrol_pdf(loaded, police, catalog, context, parse_request({"area": "S500-0003"}), path,
                              printed_by="lan.nguyen", priority=lambda params: fake_priority(None))
    assert summary.pages == 1 and summary.areas[0]["checkpoints"] >= 1
    # priority areas do not exist for an enterprise (the analysis is not even asked)
    from webmap.errors import NotFound

    def refuse(params):
        raise AssertionError("the analysis must not run for an enterprise")

    vtsh = Principal("vtsh.user", "enterprise", "VTSH")
    with pytest.raises(NotFound, match="unknown priority area"):
        make_patrol_pdf(loaded, vtsh, catalog, context, parse_request({"area": "S500-0001"}), path,
                        printed_by="vtsh.user", priority=refuse)
    summary = make_patrol_pdf(loaded, vtsh, catalog, context, parse_request({"bbox": "105.74,10.0,105.80,10.06"}), path,
                              printed_by="vtsh.user", priority=refuse)
    text = pdf_text(path)
    assert summary.classification == INTERNAL and "K-001" not in text and "S-003" not in text
    assert "S500-0001" not in text and "Vùng ưu tiên" not in text


@pytest.mark.parametrize("values, fragment", [
    ({}, "exactly one of"),
    ({"area": "S500-0001", "district": "Ninh Kiều"}, "exactly one of"),
    ({"bbox": "105.7,10.0,105.8"}, "bbox"),
    ({"bbox": "104,9,106,11"}, "km across"),
    ({"top": "0"}, "top"),
    ({"top": "99"}, "top"),
    ({"area": "../../etc"}, "not a priority area id"),
    ({"district": "916", "scale": "500"}, "scale"),
    ({"district": "916", "paper": "A0"}, "paper"),
    ({"district": "916", "orientation": "sideways"}, "orientation"),
    ({"district": "916", "grid": "utm"}, "grid"),
    ({"district": "916", "cells": "maybe"}, "cells"),
    ({"district": "916", "classification": "x" * 41}, "classification"),
    ({"district": "916", "colour": "red"}, "unknown parameter"),
])
def test_bad_requests_name_the_parameter(values, fragment):
    from webmap.patrol import parse_request

    with pytest.raises(BadInput, match=fragment):
        parse_request(values)


def test_cli_prints_and_audits(loaded, run_cli, tmp_path):
    out = str(tmp_path / "nk.pdf")
    code, stdout, stderr = run_cli("patrol-map", "--district", "ninh kieu", "--no-cells", "--paper", "A3",
                                   "--orientation", "landscape", "--scale", "10000", "--grid", "degrees",
                                   "--start", "S-003", "-o", out)
    assert code == 0, stderr
    assert "1 page(s), scale 1:10,000, marked MẬT" in stdout and "checkpoint(s), route" in stdout
    text = pdf_text(out)
    assert "Quận Ninh Kiều" in text and "S-003" in text and "K-001" in text
    code, stdout, _ = run_cli("audit", "--action", "print", "--json")
    assert code == 0 and '"target": "district:ninh kieu"' in stdout and '"sha256"' in stdout
    code, stdout, _ = run_cli("audit", "--action", "read_key_sites", "--json")
    assert '"print": true' in stdout
    code, _, stderr = run_cli("patrol-map", "--district", "916", "--scale", "100", "-o", out)
    assert code == 2 and stderr.count("\n") == 1 and "scale" in stderr
    code, _, stderr = run_cli("patrol-map", "--bbox", "105.76,10.02,105.78,10.04", "-o", str(tmp_path / "no" / "x.pdf"))
    assert code == 2 and "does not exist" in stderr
    code, _, stderr = run_cli("patrol-map", "--district", "Atlantis", "--no-cells", "-o", out)
    assert code == 2 and "unknown district" in stderr


def test_cli_route_follows_the_loaded_roads(loaded, run_cli, tmp_path):
    out = str(tmp_path / "roads.pdf")
    code, stdout, stderr = run_cli("patrol-map", "--bbox", "105.755,10.02,105.785,10.04", "--no-cells",
                                   "--start", "S-003", "-o", out)
    assert code == 0, stderr
    assert "K-001: " not in stdout and "bbox: 2 checkpoint(s)" in stdout and "(3/3 legs along roads)" in stdout
    assert "theo đường giao thông (along roads)" in pdf_text(out)


def test_view_prints_for_signed_in_users(app, loaded, client_as):
    from webmap import audit

    police = client_as("police", "CA-CT")
    response = police.get("/print/patrol.pdf?bbox=105.74,10.0,105.80,10.06&cells=0&scale=25000&paper=A4")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF") and "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    entry = audit.for_app(app).entries(action="print", limit=1)[0]
    assert entry.actor.startswith("police.") and entry.target.startswith("bbox:") and entry.detail["pages"] == 1
    assert police.get("/print/patrol.pdf?bbox=1,2,3").status_code == 400
    assert police.get("/print/patrol.pdf?district=916&scale=1").status_code == 400
    anonymous = client_as("public")
    response = anonymous.get("/print/patrol.pdf?district=916")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    enterprise = client_as("enterprise", "VTSH")
    assert enterprise.get("/print/patrol.pdf?top=3").status_code == 404
    assert enterprise.get("/print/patrol.pdf?area=S500-0001").status_code == 404


def test_priority_areas_from_the_real_analysis(app, loaded, warm_esda, tmp_path):
    """--top and --area through webmap.priorities (Gi* on the fixture), cells and units alike."""
    from webmap.access import AccessContext, Principal
    from webmap.catalog import load_catalog
    from webmap.patrol import make_patrol_pdf, parse_request
    from webmap.priorities import get_priority

    catalog = load_catalog()
    context = AccessContext(loaded, catalog)
    police = Principal("lan.nguyen", "police", "CA-CT")
    result = get_priority(loaded)
    best = result.cells.sort_values("rank").iloc[0]["area_id"]
    path = str(tmp_path / "real.pdf")
    summary = make_patrol_pdf(loaded, police, catalog, context, parse_request({"top": "2"}), path, printed_by="x")
    assert summary.pages == 3 and summary.areas[0]["area"] == best
    unit = result.units.iloc[0]["area_id"]
    summary = make_patrol_pdf(loaded, police, catalog, context, parse_request({"area": unit}), path, printed_by="x")
    assert summary.pages == 1 and unit in pdf_text(path)
    with pytest.raises(Exception, match="unknown priority area"):
        make_patrol_pdf(loaded, police, catalog, context, parse_request({"area": "H500-9999"}), path, printed_by="x")


def test_view_while_the_analysis_warms_up(app, loaded, client_as, monkeypatch):
    """No user waits for the compile: areas answer 503 and Retry-After, a district prints without cells."""
    from webmap.views import priority as priority_view

    monkeypatch.setattr(priority_view.WARMUP, "state", "running")
    police = client_as("police", "CA-CT")
    response = police.get("/print/patrol.pdf?top=2")
    assert response.status_code == 503 and response.headers["Retry-After"]
    response = police.get("/print/patrol.pdf?district=916")
    assert response.status_code == 200
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pdf") as fh:
        fh.write(response.data)
        fh.flush()
        assert "Lớp vùng ưu tiên đang được chuẩn bị" in " ".join(pdf_text(fh.name).split())


# -- the analysis a print asks: the planners' page's filters ------------------------------------------------
def test_requests_carry_the_analysis_of_the_page():
    from webmap.patrol import parse_request

    request = parse_request({"area": "S250-0007", "types": "sabotage,cable_theft", "status": "verified",
                             "since": "2026-01-01", "until": "2026-03-31"})
    params = request.analysis
    assert (params.shape, params.cell_m) == ("square", 250.0)  # the grid comes from the cell id
    assert params.types == ("cable_theft", "sabotage") and params.statuses == ("verified",)
    assert (params.since.isoformat(), params.until.isoformat()) == ("2026-01-01", "2026-03-31")
    assert parse_request({"top": "3", "cell_m": "1000", "shape": "square"}).analysis.cell_m == 1000.0
    assert parse_request({"district": "916"}).analysis.types is None
    for values, fragment in (({"area": "H500-0001", "cell_m": "250"}, "grid"), ({"top": "2", "types": "x"}, "types"),
                             ({"top": "2", "until": "2026-02-30"}, "until"), ({"top": "2", "cell_m": "9"}, "cell_m")):
        with pytest.raises(BadInput, match=fragment):
            parse_request(values)


def test_cli_prints_the_filtered_analysis_and_audits_it(app, loaded, warm_esda, tmp_path, capsys):
    """The fixture's district U-916 holds 3 incidents: one cable theft, one sabotage, one fee fraud (2026-03-10,
    2026-02-11, 2025-03-01). `--types cable_theft` prints 1, `--since 2026-01-01` prints 2. In process:
    one Gi* compile per session."""
    from webmap import audit
    from webmap.cli import main

    def run(*args):
        out = str(tmp_path / "u.pdf")
        with pytest.raises(SystemExit) as exit_:
            main(["patrol-map", "--area", "U-916", *args, "-o", out])
        assert exit_.value.code == 0, capsys.readouterr().err
        return " ".join(pdf_text(out).split())

    assert "3 vụ" in run()
    text = run("--types", "cable_theft")
    assert "1 vụ" in text and "3 vụ" not in text and "loại: Trộm cắp cáp" in text
    text = run("--since", "2026-01-01", "--status", "verified,reported")
    assert "2 vụ" in text and "từ 01/01/2026" in text
    entry = audit.for_app(app).entries(action="print", limit=1)[0]
    assert entry.detail["priority"] == {"since": "2026-01-01", "status": ["reported", "verified"], "cell_m": 500.0,
                                        "shape": "hex"}
    read = audit.for_app(app).entries(action="read_key_sites", limit=1)[0]
    assert read.source == "cli" and read.detail["stake"] >= 1 and read.detail["priority"]["since"] == "2026-01-01"
    for args, word in ((["--types", "theft"], "types"), (["--cell-m", "1"], "cell_m"), (["--since", "2026-13-01"], "--since")):
        with pytest.raises(SystemExit) as exit_:
            main(["patrol-map", "--area", "U-916", *args, "-o", str(tmp_path / "bad.pdf")])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and word in err, err
