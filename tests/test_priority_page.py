"""The planners' page /priority, its data /api/priority and its exports, through the Flask client.

The city is the one district square of tests/fixtures.py (Ninh Kiều, 105.74-105.80 E, 10.00-10.06 N) with
its cables, stations and key site, and 14 incidents made here so every filter can be counted by hand:
a cluster of 8 within 450 m of C = (105.7795, 10.0302), around the key-site square, the trunk cable
C-001 and station S-001; and 6 scattered over the district. One incident (#5) is "rejected".

    #  where           type            status       day
    1  C               cable_theft     verified     2026-11-01
    2  C+(300,100)     cable_theft     verified     2026-10-20
    3  C+(-250,200)    cable_theft     reported     2026-10-05
    4  C+(150,-300)    cable_theft     resolved     2026-09-15
    5  C+(-100,-250)   cable_theft     rejected     2026-09-10
    6  C+(400,-150)    sabotage        verified     2026-08-30
    7  C+(-400,50)     sabotage        in_progress  2025-10-15
    8  C+(100,450)     sabotage        verified     2025-09-20
    9  SW corner  fee_fraud       resolved     2025-03-01
   10  NE corner  fee_fraud       resolved     2025-04-01
   11  NW         fire_explosion  in_progress  2025-05-01
   12  SE         fire_explosion  resolved     2025-06-01
   13  W          cable_theft     reported     2024-12-01
   14  N          cable_theft     resolved     2026-02-01

By default (every status but rejected) 13 incidents count. Offsets are metres east and north.
Whether 13 incidents make a significant hot spot is the analysis's business (its own tests); the outlines
of hot spots are checked on ``busy_city``: 120 incidents, 90 of them in a 400 m (1 sigma) cluster.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import namedtuple

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import Point, shape

import fixtures
from conftest import app_in, clients_by_name, log_in, make_account
from webmap.importer import import_layer

CENTRE = (105.7795, 10.0302)
LonLat = namedtuple("LonLat", "lon lat")  # a position; a plain pair is an offset from C in metres
METRE_LON = 1 / (111_320 * math.cos(math.radians(10.03)))
ROWS = [
    # (offset east m, offset north m) or LonLat; type; status; day
    ((0, 0), "cable_theft", "verified", "2026-11-01"),
    ((300, 100), "cable_theft", "verified", "2026-10-20"),
    ((-250, 200), "cable_theft", "reported", "2026-10-05"),
    ((150, -300), "cable_theft", "resolved", "2026-09-15"),
    ((-100, -250), "cable_theft", "rejected", "2026-09-10"),
    ((400, -150), "sabotage", "verified", "2026-08-30"),
    ((-400, 50), "sabotage", "in_progress", "2025-10-15"),
    ((100, 450), "sabotage", "verified", "2025-09-20"),
    (LonLat(105.745, 10.005), "fee_fraud", "resolved", "2025-03-01"),
    (LonLat(105.795, 10.055), "fee_fraud", "resolved", "2025-04-01"),
    (LonLat(105.750, 10.050), "fire_explosion", "in_progress", "2025-05-01"),
    (LonLat(105.790, 10.010), "fire_explosion", "resolved", "2025-06-01"),
    (LonLat(105.760, 10.020), "cable_theft", "reported", "2024-12-01"),
    (LonLat(105.765, 10.045), "cable_theft", "resolved", "2026-02-01"),
]


def _where(spot):
    if isinstance(spot, LonLat):
        return Point(spot.lon, spot.lat)
    return Point(CENTRE[0] + spot[0] * METRE_LON, CENTRE[1] + spot[1] * fixtures.METRE_LAT)  # metres from C


def incidents(rows=ROWS) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "id": [f"P-{i:03d}" for i in range(1, len(rows) + 1)],
            "occurred_at": [f"{day}T10:00:00+07:00" for _, _, _, day in rows],
            "type": [t for _, t, _, _ in rows],
            "status": [s for _, _, s, _ in rows],
            "severity": ["medium"] * len(rows),
            "source": ["police_patrol"] * len(rows),
            "description": [f"Vụ thử {i}" for i in range(1, len(rows) + 1)],
        },
        geometry=[_where(spot) for spot, _, _, _ in rows],
        crs="EPSG:4326",
    )


def busy_rows(seed=7):
    """90 incidents around C (normal, 400 m sigma) and 30 spread evenly over the district (seeded)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    near = rng.normal(0, 400, size=(90, 2)).clip(-1500, 1500)
    spread = np.column_stack([rng.uniform(105.741, 105.799, 30), rng.uniform(10.001, 10.059, 30)])
    spots = [(float(dx), float(dy)) for dx, dy in near] + [LonLat(float(x), float(y)) for x, y in spread]
    return [(spot, "cable_theft", "verified", "2026-06-01") for spot in spots]


def make_city(folder, incident_frame, clients=("admin", "police", "district", "vtsh", "public")):
    """An app (TESTING: no warm-up thread) on the fixture city with these incidents, a client per role."""
    app = app_in(folder)
    store = app.extensions["webmap_store"]
    frames = {"districts": fixtures.districts(), "cable_routes": fixtures.cable_routes(),
              "stations": fixtures.stations(), "key_sites": fixtures.key_sites(), "incidents": incident_frame}
    for kind, frame in frames.items():
        import_layer(store, fixtures.write_geojson(frame, str(folder / f"{kind}.geojson")), kind)
    roles = {"admin": ("admin", None), "police": ("police", "CA-CT"), "district": ("district", "916"),
             "vtsh": ("enterprise", "VTSH"), "public": ("public", None)}
    return app, frames, clients_by_name(app, {name: roles[name] for name in clients}, "planner")


@pytest.fixture(scope="module")
def city(tmp_path_factory, warm_esda):
    """The 14 incidents of the table above."""
    app, frames, clients = make_city(tmp_path_factory.mktemp("priority"), incidents())
    yield app, frames, clients
    app.extensions["webmap_store"].close()


@pytest.fixture(scope="module")
def busy_city(tmp_path_factory, warm_esda):
    """120 incidents, 90 of them clustered around C: hot spots for sure."""
    app, frames, clients = make_city(tmp_path_factory.mktemp("busy"), incidents(busy_rows()), clients=("police",))
    yield app, frames, clients
    app.extensions["webmap_store"].close()


def get_areas(client, **params):
    response = client.get("/api/priority", query_string=params)
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/geo+json"
    return response.get_json()


def total(answer):
    return sum(f["properties"]["incidents"] for f in answer["features"])


# -- who may see it ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["district", "vtsh", "public"])
def test_only_staff_see_the_page_data_and_exports(city, name):
    _, _, clients = city
    client = clients[name]
    unknown_page = client.get("/no-such-page")
    unknown_api = client.get("/api/no-such-thing")
    for url in ("/priority", "/priority?lang=en", "/priority/export.csv", "/priority/export.xlsx",
                "/priority/export.gpkg", "/priority/export.geojson", "/priority/export.pdf"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.data == unknown_page.data, url
    for url in ("/api/priority", "/api/priority?level=units", "/api/priority?types=nope"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.data == unknown_api.data, url  # even a bad parameter: nothing is checked first
    # the map page does not link to it either
    assert "/priority" not in client.get("/").data.decode()


@pytest.mark.parametrize("name", ["admin", "police"])
def test_staff_get_the_page(city, name):
    _, _, clients = city
    response = clients[name].get("/priority")
    assert response.status_code == 200
    html = response.data.decode()
    for text in ("Khu vực ưu tiên tuần tra", "Trộm cắp cáp", "Phá hoại", "Không xác thực", "Lục giác",
                 "Điểm nóng", "Mục tiêu", "Phương pháp", "priority.js", "leaflet.js", "priority.css"):
        assert text in html, text
    # every status but "rejected" is ticked by default
    assert 'value="rejected">' in html and 'value="verified" checked>' in html
    config = json.loads(html.split('id="wm-priority-config">', 1)[1].split("</script>", 1)[0])
    assert config["api"]["priority"] == "/api/priority"
    assert config["api"]["print"] == "/print/patrol.pdf"
    assert config["strings"]["priority_trend_emerging"] == "Mới nổi"
    assert "<script>" not in html  # only external scripts and the JSON block (CSP: no inline script)
    english = clients[name].get("/priority?lang=en").data.decode()
    assert "Cable theft" in english and "Priority areas for patrols" in english
    assert json.loads(english.split('id="wm-priority-config">', 1)[1].split("</script>", 1)[0])[
        "strings"]["priority_trend_fading"] == "Fading"
    assert "Trộm cắp cáp" in clients[name].get("/priority?lang=vi").data.decode()  # and back (a cookie keeps it)
    # and the map page links to it for staff
    assert 'id="wm-priority-link" href="/priority"' in clients[name].get("/").data.decode()


def test_the_answer_is_geojson_with_the_method(city):
    _, _, clients = city
    answer = get_areas(clients["police"])
    assert answer["type"] == "FeatureCollection"
    meta = answer["metadata"]
    assert meta["level"] == "cells"
    assert meta["query"] == {"types": None, "status": None, "since": None, "until": None, "cell_m": 500.0,
                             "shape": "hex", "level": "cells"}
    method = meta["method"]
    text = json.dumps(method, ensure_ascii=False)
    assert "Getis" in text and "999" in text
    assert meta["areas_returned"] == len(answer["features"]) <= meta["areas_total"]
    assert meta["empty_left_out"] == meta["areas_total"] - meta["areas_returned"]
    props = answer["features"][0]["properties"]
    for column in ("area_id", "incidents", "gi_z", "p_value", "q_value", "hotspot", "confidence", "risk",
                   "recent", "previous", "trend", "key_sites", "critical_stations", "trunk_km", "score_hotspot",
                   "score_trend", "score_risk", "score_stake", "score", "rank", "priority_class"):
        assert column in props, column
    assert [f["properties"]["rank"] for f in answer["features"]] == sorted(f["properties"]["rank"] for f in answer["features"])
    assert all(f["id"] == f["properties"]["area_id"] for f in answer["features"])
    # with all=1 the empty cells come too, and the counts do not change
    everything = get_areas(clients["police"], all=1)
    assert len(everything["features"]) == meta["areas_total"]
    assert total(everything) == total(answer) == 13


def test_each_cell_counts_the_incidents_inside_it(city):
    """Point in polygon, by shapely, on the incidents made above: the API's count of every cell agrees."""
    _, frames, clients = city
    answer = get_areas(clients["police"], all=1)
    kept = frames["incidents"][frames["incidents"]["status"] != "rejected"]
    points = shapely.points(kept.geometry.x.to_numpy(), kept.geometry.y.to_numpy())
    for feature in answer["features"]:
        cell = shape(feature["geometry"])
        inside = int(shapely.contains(cell, points).sum() + shapely.touches(cell, points).sum())
        assert feature["properties"]["incidents"] == inside, feature["id"]
    # the top of the ranking is in the cluster (about 450 m around C, 1 km with the cell)
    best = min(answer["features"], key=lambda f: f["properties"]["rank"])
    assert shape(best["geometry"]).distance(Point(*CENTRE)) < 0.009


def test_hot_spots_of_a_busy_city_are_in_its_cluster(busy_city):
    _, _, clients = busy_city
    answer = get_areas(clients["police"])
    hot = [f for f in answer["features"] if f["properties"]["hotspot"] == "hot"]
    assert hot and all(shape(f["geometry"]).distance(Point(*CENTRE)) < 0.012 for f in hot)  # within ~1.3 km
    assert total(answer) == 120


def test_spots_are_the_hot_and_cold_cells_merged(busy_city):
    """``spots``: per kind and confidence, the union of exactly the cells of that class (for the outlines)."""
    _, _, clients = busy_city
    answer = get_areas(clients["police"], all=1)
    spots = answer["spots"]["features"]
    assert spots, "the cluster makes at least one hot spot"
    for spot in spots:
        kind, confidence = spot["properties"]["hotspot"], spot["properties"]["confidence"]
        cells = [shape(f["geometry"]) for f in answer["features"]
                 if f["properties"]["hotspot"] == kind and f["properties"]["confidence"] == confidence]
        assert spot["properties"]["areas"] == len(cells) > 0
        merged = shape(spot["geometry"])
        assert merged.area == pytest.approx(sum(c.area for c in cells), rel=1e-4)
        assert all(merged.buffer(1e-6).contains(c) for c in cells)
    marked = sum(f["properties"]["hotspot"] != "none" for f in answer["features"])
    assert sum(s["properties"]["areas"] for s in spots) == marked


@pytest.mark.parametrize("params, expected", [
    ({}, 13),                                                   # every status but rejected
    ({"types": "cable_theft"}, 6),                              # 1, 2, 3, 4, 13, 14 (5 is rejected)
    ({"types": "cable_theft,sabotage"}, 9),                     # those 6 and 6, 7, 8
    ({"types": "fee_fraud,fire_explosion"}, 4),                 # 9, 10, 11, 12
    ({"status": "verified"}, 4),                                # 1, 2, 6, 8
    ({"status": "rejected"}, 1),                                # 5 only when asked for
    ({"status": "verified,rejected", "types": "cable_theft"}, 3),  # 1, 2, 5
    ({"since": "2026-01-01"}, 6),                               # 1, 2, 3, 4, 6, 14
    ({"until": "2025-12-31"}, 7),                               # 7 to 13
    ({"since": "2025-01-01", "until": "2025-12-31"}, 6),        # 7 to 12
    ({"since": "2026-11-01", "until": "2026-11-01"}, 1),        # 1: both days included
    ({"cell_m": "1000"}, 13),
    ({"shape": "square"}, 13),
])
def test_filters_change_the_answer(city, params, expected):
    _, _, clients = city
    answer = get_areas(clients["admin"], all=1, **params)
    assert total(answer) == expected
    assert answer["metadata"]["incidents_total"] == expected
    query = answer["metadata"]["query"]
    if "types" in params:
        assert query["types"] == sorted(params["types"].split(","))
    if "since" in params:
        assert query["since"] == params["since"]


def _corners(feature):
    return len(feature["geometry"]["coordinates"][0]) - 1


def test_cell_size_and_shape(city):
    _, _, clients = city
    hexes = get_areas(clients["police"], all=1)
    bigger = get_areas(clients["police"], all=1, cell_m=1000)
    squares = get_areas(clients["police"], all=1, shape="square")
    # the district is a 6.6 x 6.7 km square: about 4 times fewer cells when they are twice as wide
    ratio = hexes["metadata"]["areas_total"] / bigger["metadata"]["areas_total"]
    assert 3 <= ratio <= 5, ratio
    most = lambda answer: max(set(map(_corners, answer["features"])), key=list(map(_corners, answer["features"])).count)
    assert most(hexes) == 6 and most(squares) == 4
    assert {f["id"] for f in hexes["features"]}.isdisjoint({f["id"] for f in squares["features"]})


def test_units_level(city):
    _, _, clients = city
    answer = get_areas(clients["police"], level="units", all=1)
    assert answer["metadata"]["level"] == "units"
    assert [f["id"] for f in answer["features"]] == ["U-916"]  # one district, no wards loaded
    assert answer["features"][0]["properties"]["name"] == "Ninh Kiều"
    assert total(answer) == 13
    assert total(get_areas(clients["police"], level="units", types="fee_fraud")) == 2


@pytest.mark.parametrize("query, word", [
    ("types=nope", "types"), ("types=cable_theft,bogus", "bogus"), ("status=lost", "status"),
    ("since=2025-13-01", "since"), ("until=yesterday", "until"), ("since=2026-02-01&until=2026-01-01", "since"),
    ("cell_m=10", "cell_m"), ("cell_m=abc", "cell_m"), ("cell_m=nan", "cell_m"), ("cell_m=100000", "cell_m"),
    ("shape=circle", "shape"), ("level=streets", "level"), ("colour=red", "colour"),
])
def test_bad_parameters_answer_400_json_one_line(city, query, word):
    _, _, clients = city
    response = clients["police"].get("/api/priority?" + query)
    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert b"\n" not in response.data.strip()
    body = response.get_json()
    assert body["status"] == 400 and word in body["error"]
    assert "Traceback" not in body["error"]


# -- exports -------------------------------------------------------------------------------------------

def _download(client, fmt, **params):
    response = client.get(f"/priority/export.{fmt}", query_string=params)
    assert response.status_code == 200, response.data[:300]
    assert response.headers["Content-Disposition"].startswith('attachment; filename="uu-tien-')
    assert response.headers["Content-Disposition"].endswith(".csv.zip\"" if fmt == "csv" else f".{fmt}\"")
    return response.data


def _audited(app, data):
    from webmap import audit

    entry = audit.for_app(app).entries(action="export", limit=1)[0]
    assert entry.detail["sha256"] == hashlib.sha256(data).hexdigest()
    return entry


@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_geo_exports_read_back(city, tmp_path, fmt):
    import pyogrio

    app, _, clients = city
    areas_total = get_areas(clients["police"])["metadata"]["areas_total"]
    data = _download(clients["police"], fmt, types="cable_theft")
    path = tmp_path / f"areas.{fmt}"
    path.write_bytes(data)
    layers = [name for name, _ in pyogrio.list_layers(path)]
    cells = pyogrio.read_dataframe(path, layer=layers[0]) if fmt == "geojson" else \
        pyogrio.read_dataframe(path, layer=[n for n in layers if "cell" in n or "area" in n or "priorit" in n][0])
    assert len(cells) == areas_total  # every cell, empty ones included
    assert int(cells["incidents"].sum()) == 6
    assert cells.crs.to_epsg() == 4326
    assert {"area_id", "score", "score_hotspot", "score_trend", "score_risk", "score_stake", "rank",
            "priority_class", "trend", "hotspot", "confidence"} <= set(cells.columns)
    entry = _audited(app, data)
    assert entry.actor == "police.planner" and entry.target == "priority_cells"
    assert entry.detail["format"] == fmt and entry.detail["types"] == ["cable_theft"]


def test_csv_export_reads_back(city):
    """The CSV comes zipped with its method (a sidecar .method.json, as `webmap priority -o x.csv` writes)."""
    import zipfile

    app, _, clients = city
    areas_total = get_areas(clients["admin"])["metadata"]["areas_total"]
    data = _download(clients["admin"], "csv", since="2026-01-01")
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = sorted(archive.namelist())
    assert len(names) == 2 and names[0].endswith(".csv") and names[1].endswith(".method.json")
    rows = list(csv.DictReader(io.StringIO(archive.read(names[0]).decode("utf-8-sig"))))
    assert len(rows) == areas_total
    assert sum(int(float(r["incidents"])) for r in rows) == 6
    assert {"area_id", "score", "score_hotspot", "rank", "trend"} <= set(rows[0])
    method = json.loads(archive.read(names[1]).decode("utf-8"))
    assert method["filters"]["since"] == "2026-01-01" and "Getis" in method["text"]["en"]
    entry = _audited(app, data)
    assert entry.actor == "admin.planner" and entry.detail["since"] == "2026-01-01"


def test_xlsx_export_reads_back(city, tmp_path):
    import openpyxl

    from webmap.priority_export import COLUMN_LABELS

    app, _, clients = city
    areas_total = get_areas(clients["police"])["metadata"]["areas_total"]
    data = _download(clients["police"], "xlsx", level="units", types="fee_fraud,fire_explosion", lang="vi")
    path = tmp_path / "areas.xlsx"
    path.write_bytes(data)
    book = openpyxl.load_workbook(path, read_only=True)
    sheets = {ws.title: [r for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)]
              for ws in book.worksheets}
    cells, units = sheets["Khu vực - Areas"], sheets["Đơn vị - Units"]
    vi = {label[0]: column for column, label in COLUMN_LABELS.items()}
    header = [vi.get(h, h) for h in cells[0]]
    assert len(cells) - 1 == areas_total
    assert sum(r[header.index("incidents")] for r in cells[1:]) == 4  # 9, 10, 11, 12
    header = [vi.get(h, h) for h in units[0]]
    assert [r[header.index("area_id")] for r in units[1:]] == ["U-916"]
    assert units[1][header.index("incidents")] == 4
    method = " ".join(str(v) for row in sheets["Phương pháp - Method"] for v in row if v)
    assert "Getis" in method and "fee_fraud" in method
    assert _audited(app, data).target == "priority_units"
    # English headers with ?lang=en
    english = tmp_path / "en.xlsx"
    english.write_bytes(_download(clients["police"], "xlsx", lang="en"))
    first = next(openpyxl.load_workbook(english, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert "Area ID" in first and "Mã khu vực" not in first


def test_unknown_export_format_is_404(city):
    _, _, clients = city
    assert clients["police"].get("/priority/export.shp").status_code == 404
    assert clients["police"].get("/priority/export.csv?cell_m=1").status_code == 400


# -- warm-up -------------------------------------------------------------------------------------------

def test_503_while_the_analysis_warms_up(city):
    """The real flag of the view module: while its warm-up thread runs, nothing computes."""
    from webmap.views import priority as view

    _, _, clients = city
    before = view.WARMUP.state
    view.WARMUP.state = "running"
    try:
        response = clients["police"].get("/api/priority?lang=vi")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert b"\n" not in response.data.strip()
        body = response.get_json()
        assert body["error"].startswith("Đang chuẩn bị phân tích")
        assert body["messages"]["en"].startswith("Preparing the analysis")
        assert clients["police"].get("/api/priority?lang=en").get_json()["error"].startswith("Preparing")
        export = clients["police"].get("/priority/export.csv")
        assert export.status_code == 503 and export.headers["Retry-After"] == "5"
        page = clients["police"].get("/priority?lang=vi")
        assert page.status_code == 200  # the page comes, says so, and its script asks again
        html = page.data.decode()
        assert "Đang chuẩn bị phân tích…" in html and 'data-state="warming"' in html
        # bad parameters are still told at once, and others still get the 404
        assert clients["police"].get("/api/priority?shape=x").status_code == 400
        assert clients["vtsh"].get("/api/priority").status_code == 404
    finally:
        view.WARMUP.state = before
    assert clients["police"].get("/api/priority").status_code == 200


def test_warm_up_starts_with_the_server_not_with_other_apps(tmp_path, monkeypatch, warm_esda):
    """A served app starts the background compile at its first request; tests and PRIORITY_WARMUP=0 never."""
    from webmap.app import create_app
    from webmap.views import priority as view

    monkeypatch.setenv("WEBMAP_INSTANCE", str(tmp_path / "instance"))
    fresh = view.WarmUp()
    monkeypatch.setattr(view, "WARMUP", fresh)
    for config in ({"TESTING": True}, {"TESTING": False, "PRIORITY_WARMUP": False}):
        app = create_app(config)
        app.test_client().get("/login")
        assert fresh.state == "idle", config
        app.extensions["webmap_store"].close()
    app = create_app({"TESTING": False})
    app.test_client().get("/login")
    assert fresh.state in ("running", "done")
    import time

    deadline = time.monotonic() + 60
    while fresh.state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fresh.state == "done" and fresh.error is None
    app.extensions["webmap_store"].close()


def test_priority_warmup_setting_reads_from_the_environment():
    from webmap.config import DEFAULTS, from_environment

    assert DEFAULTS["PRIORITY_WARMUP"] is True
    assert from_environment({"WEBMAP_PRIORITY_WARMUP": "0"}) == {"PRIORITY_WARMUP": False}


def test_concurrent_analyses_run_one_at_a_time(busy_city, monkeypatch):
    """Several planners asking different questions at once get their answers, and the analyses run one
    after the other: run side by side, they can crash the process in GEOS (seen with the demo city and
    six filters at once). The real analysis runs; a wrapper only counts how many run at the same time."""
    import threading
    import time

    import webmap.priorities

    app, _, _ = busy_city
    user = make_account(app, "police.concurrent", "police", "CA-CT")
    real = webmap.priorities.get_priority
    running, most = [0], [0]
    count_lock = threading.Lock()

    def counted(*args, **kwargs):
        with count_lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.05)  # widen the window in which a second analysis would overlap
            return real(*args, **kwargs)
        finally:
            with count_lock:
                running[0] -= 1

    monkeypatch.setattr(webmap.priorities, "get_priority", counted)
    questions = [{"cell_m": size, "shape": shape} for size in (250, 300, 350) for shape in ("hex", "square")]
    answers = {}

    def ask(i, query):
        client = app.test_client()
        log_in(client, user)
        response = client.get("/api/priority", query_string=query)
        answers[i] = (response.status_code, total(response.get_json()) if response.status_code == 200 else None)

    threads = [threading.Thread(target=ask, args=(i, q)) for i, q in enumerate(questions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert answers == {i: (200, 120) for i in range(len(questions))}
    assert most[0] == 1


# -- prints from the page: the same analysis; reads of key sites audited ------------------------------------

def _pdf_text(data: bytes) -> str:
    """The PDF's text on one line (pdftotext), words separated by single spaces."""
    import subprocess

    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True).stdout
    return " ".join(text.decode().split())


def _print(client, **params):
    response = client.get("/print/patrol.pdf", query_string={"paper": "A4", **params})
    assert response.status_code == 200, response.data[:300]
    return _pdf_text(response.data)


def _score(value):
    return f"điểm {value:.1f}".replace(".", ",")


def test_a_print_asks_the_analysis_of_the_page(city):
    """The district's unit U-916 counts 13 incidents by default, 6 cable thefts, 4 verified (table above):
    a print from a filtered view says the filtered count and score, states the filters, and is audited."""
    from webmap import audit

    app, _, clients = city
    police = clients["police"]
    plain = _print(police, area="U-916")
    assert "13 vụ" in plain and "6 vụ" not in plain
    assert "Bộ lọc sự cố (filters): mọi loại; mọi trạng thái trừ bị bác bỏ; mọi thời gian" in plain
    theft = _print(police, area="U-916", types="cable_theft")
    assert "6 vụ" in theft and "13 vụ" not in theft
    assert "Bộ lọc sự cố (filters): loại: Trộm cắp cáp; mọi trạng thái" in theft
    verified = _print(police, area="U-916", status="verified", since="2025-01-01", until="2026-12-31")
    assert "4 vụ" in verified and "từ 01/01/2025 đến 31/12/2026" in verified
    # the scores printed are the page's, and differ between the two questions
    scores = [get_areas(police, level="units")["features"][0]["properties"]["score"],
              get_areas(police, level="units", types="cable_theft")["features"][0]["properties"]["score"]]
    assert _score(scores[0]) in plain and _score(scores[1]) in theft

    # a grid cell: the sabotage view's first area, printed with the page's link parameters
    sabotage = get_areas(police, types="sabotage")
    top = min(sabotage["features"], key=lambda f: f["properties"]["rank"])
    everything = {f["id"]: f["properties"] for f in get_areas(police, all=1)["features"]}
    assert everything[top["id"]]["incidents"] != top["properties"]["incidents"]  # 3 sabotages among more
    text = _print(police, area=top["id"], types="sabotage", cell_m="500", shape="hex")
    assert f"{top['properties']['incidents']} vụ" in text and _score(top["properties"]["score"]) in text
    text = _print(police, area=top["id"])
    assert f"{everything[top['id']]['incidents']} vụ" in text

    log = audit.for_app(app)
    entry = log.entries(action="print", limit=1)[0]
    assert entry.target == top["id"] and entry.detail["priority"] == {"cell_m": 500.0, "shape": "hex"}
    prints = [e for e in log.entries(action="print", limit=10) if e.detail.get("priority", {}).get("types")]
    assert prints[0].detail["priority"]["types"] == ["sabotage"]
    read = log.entries(action="read_key_sites", limit=1)[0]
    assert read.target == top["id"] and read.detail["print"] is True and read.detail["stake"] >= 1


@pytest.mark.parametrize("query, word", [
    ("area=U-916&types=bogus", "types"), ("area=U-916&status=lost", "status"), ("area=U-916&since=2025-13-01", "since"),
    ("area=U-916&since=2026-02-01&until=2026-01-01", "since"), ("area=U-916&cell_m=10", "cell_m"),
    ("area=U-916&shape=circle", "shape"), ("area=H500-0001&cell_m=1000", "grid"), ("area=S500-0001&shape=hex", "grid"),
])
def test_bad_print_parameters_answer_400_one_line(city, query, word):
    _, _, clients = city
    response = clients["police"].get("/print/patrol.pdf?" + query)
    assert response.status_code == 400
    message = response.get_json()["error"] if response.is_json else response.data.decode()
    assert word in message


@pytest.mark.parametrize("name", ["district", "vtsh"])
def test_filtered_prints_of_areas_stay_404_for_non_staff(city, name):
    _, _, clients = city
    for query in ("area=U-916&types=cable_theft", "top=3&since=2026-01-01&cell_m=1000"):
        assert clients[name].get("/print/patrol.pdf?" + query).status_code == 404


def test_reading_priority_answers_is_a_read_of_key_sites(city):
    """Each answer (cached or not) and each export: one read_key_sites entry with the question; the 503 of
    the warm-up reads nothing and writes nothing."""
    from webmap import audit
    from webmap.views import priority as view

    app, frames, clients = city
    log = audit.for_app(app)

    def reads():
        return [e for e in log.entries(action="read_key_sites", limit=500) if e.target.startswith("priority_")]

    before = len(reads())
    for _ in range(2):  # the second answer comes from the cache: still a read
        answer = get_areas(clients["police"], types="fee_fraud", since="2025-01-01", all=1)
    entries = reads()
    assert len(entries) == before + 2
    newest = entries[0]
    assert newest.target == "priority_cells" and newest.actor.startswith("police.")
    assert newest.detail["priority"] == {"types": ["fee_fraud"], "since": "2025-01-01", "cell_m": 500.0,
                                         "shape": "hex", "level": "cells"}
    # the key-site counts of the cells: the fixture's one key-site square lies across several cells
    assert len(frames["key_sites"]) == 1
    counted = sum(f["properties"]["key_sites"] for f in answer["features"])
    assert newest.detail["features"] == counted >= 1
    state = view.WARMUP.state
    view.WARMUP.state = "running"
    try:
        for _ in range(3):
            assert clients["police"].get("/api/priority?types=fee_fraud").status_code == 503
    finally:
        view.WARMUP.state = state
    assert len(reads()) == before + 2
    _download(clients["admin"], "csv", level="units")
    entries = reads()
    assert len(entries) == before + 3 and entries[0].target == "priority_units"
    assert entries[0].detail["priority"]["level"] == "units"
    assert clients["vtsh"].get("/api/priority").status_code == 404
    assert len(reads()) == before + 3
