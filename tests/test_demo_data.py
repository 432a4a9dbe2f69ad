"""The demo city in data/demo: what scripts/make_demo_data.py makes, and what the layer schemas allow.

The generator runs once per session (about 3 s) into a temporary folder; the committed files must be
byte-identical to its output, so every other check here also holds for data/demo.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import struct
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
import yaml
from shapely.geometry import shape

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"
LAYERS = ROOT / "layers"
SHAPEFILE_KINDS = ("cable_routes", "stations", "incidents")
URBAN = ("Ninh Kiều", "Cái Răng", "Bình Thủy")
RURAL = ("Vĩnh Thạnh", "Cờ Đỏ", "Thới Lai")
ISO_LOCAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:00\+07:00$")


def _load_script():
    spec = importlib.util.spec_from_file_location("make_demo_data", ROOT / "scripts" / "make_demo_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    _load_script().generate(out, seed=2026)
    return out


def _features(kind):
    with open(DEMO / f"{kind}.geojson", encoding="utf-8") as f:
        return json.load(f)["features"]


def _schema(kind):
    with open(LAYERS / f"{kind}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def _metres(geoms):
    """Geometries in a local metric frame (good to 0.1 % over the city): enough for areas and distances."""
    kx = 6_371_008.8 * np.pi / 180 * np.cos(np.radians(10.12))
    ky = 6_371_008.8 * np.pi / 180
    return shapely.transform(np.asarray(geoms), lambda c: c * (kx, ky))


# numpy keeps Generator streams stable within a minor version, not across them: data/demo was made with
# this one, and byte identity is only promised for it (regenerate and commit after an upgrade).
MADE_WITH_NUMPY = "2.4"


def test_committed_files_are_what_the_script_makes(regenerated):
    made = sorted(p.name for p in regenerated.iterdir())
    committed = sorted(p.name for p in DEMO.iterdir())
    assert made == committed
    if ".".join(np.__version__.split(".")[:2]) != MADE_WITH_NUMPY:
        # the other tests still check the committed files' counts, extent, density and schema
        pytest.skip(f"byte identity is checked with numpy {MADE_WITH_NUMPY}.x; this is {np.__version__}")
    for name in made:
        assert (regenerated / name).read_bytes() == (DEMO / name).read_bytes(), (
            f"data/demo/{name} differs from what scripts/make_demo_data.py makes: regenerate and commit it")


def test_another_seed_gives_another_city(tmp_path):
    _load_script().generate(tmp_path, seed=7)
    assert (tmp_path / "stations.geojson").read_bytes() != (DEMO / "stations.geojson").read_bytes()


def test_organisations():
    with open(DEMO / "organisations.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    kinds = [r["kind"] for r in rows]
    assert kinds.count("telecom") >= 3 and kinds.count("postal") >= 1
    assert all("(demo)" in r["name"] for r in rows)
    codes = {r["code"]: r["kind"] for r in rows}
    for kind in ("cable_routes", "stations"):
        for feat in _features(kind):
            p = feat["properties"]
            expected = "postal" if p.get("kind") == "post_office" else "telecom"
            assert codes.get(p["owner"]) == expected, (kind, p["id"], p["owner"])


def test_counts():
    stations = _features("stations")
    assert len(stations) >= 300
    assert {f["properties"]["kind"] for f in stations} == {"bts", "exchange", "data_centre", "post_office", "gateway"}
    routes = _features("cable_routes")
    assert len(routes) >= 200
    assert {f["properties"]["placement"] for f in routes} == {"aerial", "underground", "river_crossing"}
    assert {f["properties"]["tier"] for f in routes} == {"trunk", "distribution"}
    sites = _features("key_sites")
    assert len(sites) >= 20
    assert all(f["properties"]["demo"] is True and f["properties"]["name"].startswith("[DEMO]") for f in sites)
    assert {f["geometry"]["type"] for f in sites} == {"Polygon", "Point"}
    assert len(_features("districts")) == 9


def test_incidents_span_the_period_and_every_type():
    incidents = [f["properties"] for f in _features("incidents")]
    assert len(incidents) >= 3000
    types = next(f["allowed"] for f in _schema("incidents")["fields"] if f["name"] == "type")
    assert {p["type"] for p in incidents} == set(types)
    assert all(ISO_LOCAL.match(p["occurred_at"]) for p in incidents)
    days = sorted(p["occurred_at"][:10] for p in incidents)
    assert "2023-12-01" <= days[0] <= "2023-12-03"
    assert "2026-11-27" <= days[-1] <= "2026-11-30"
    assert len({p["id"] for p in incidents}) == len(incidents)


def test_every_feature_is_inside_the_city():
    with open(ROOT / "data" / "cantho_boundary.geojson", encoding="utf-8") as f:
        city = shape(json.load(f)["features"][0]["geometry"])
    shapely.prepare(city)
    for kind in ("cable_routes", "stations", "key_sites", "incidents"):
        geoms = np.array([shape(f["geometry"]) for f in _features(kind)])
        outside = np.flatnonzero(~shapely.covers(city, geoms))
        assert not len(outside), f"{kind}: {len(outside)} features outside the city, e.g. #{outside[0]}"


def test_urban_districts_are_denser_than_rural_ones():
    districts = _features("districts")
    polys = _metres([shape(f["geometry"]) for f in districts])
    names = [f["properties"]["name"] for f in districts]
    points = _metres([shape(f["geometry"]) for f in _features("stations")])
    density = {}
    for name, poly in zip(names, polys):
        n = int(shapely.contains(poly, points).sum())
        density[name] = n / (poly.area / 1e6)
    assert min(density[n] for n in URBAN) > 3 * max(density[n] for n in RURAL), density


def test_cable_theft_happens_near_cables():
    routes = _metres([shape(f["geometry"]) for f in _features("cable_routes")])
    thefts = _metres([shape(f["geometry"]) for f in _features("incidents") if f["properties"]["type"] == "cable_theft"])
    _, dist = shapely.STRtree(routes).query_nearest(thefts, return_distance=True, all_matches=False)
    assert np.median(dist) < 150 and np.quantile(dist, 0.75) < 400


def test_an_emerging_hot_spot_exists():
    """Some 1 km cell has many more incidents in the last 90 days than in any earlier 90 days on average."""
    feats = _features("incidents")
    xy = shapely.get_coordinates(_metres([shape(f["geometry"]) for f in feats]))
    recent = np.array([f["properties"]["occurred_at"][:10] >= "2026-09-02" for f in feats])
    cells = [tuple(c) for c in np.floor(xy / 1000).astype(int)]
    last, before = {}, {}
    for cell, is_recent in zip(cells, recent):
        target = last if is_recent else before
        target[cell] = target.get(cell, 0) + 1
    periods_before = (1096 - 90) / 90
    emerging = [c for c, n in last.items() if n >= 20 and n >= 5 * before.get(c, 0) / periods_before]
    assert emerging


def _check_value(field, value, where):
    if value is None:
        assert not field.get("required"), f"{where}: required field {field['name']} is empty"
        return
    ftype = field.get("type", "string")
    if ftype == "string":
        assert isinstance(value, str) and value.strip(), where
    elif ftype == "integer":
        assert isinstance(value, int) and not isinstance(value, bool) and value >= 0, where
    elif ftype == "boolean":
        assert isinstance(value, bool), where
    elif ftype == "datetime":
        assert datetime.fromisoformat(value).tzinfo is not None, where
    if "allowed" in field:
        assert value in field["allowed"], f"{where}: {value!r} not in {field['allowed']}"


@pytest.mark.parametrize("kind", ["cable_routes", "stations", "key_sites", "incidents", "districts"])
def test_attributes_follow_the_layer_schema(kind):
    schema = _schema(kind)
    fields = {f["name"]: f for f in schema["fields"]}
    for feat in _features(kind):
        props = feat["properties"]
        assert set(props) <= set(fields), f"{kind}: attributes not in layers/{kind}.yaml: {set(props) - set(fields)}"
        for name, field in fields.items():
            _check_value(field, props.get(name), f"{kind} {props.get(schema.get('id_field', 'id'))}")
    ids = [f["properties"][schema.get("id_field", "id")] for f in _features(kind)]
    assert len(set(ids)) == len(ids)


def test_asset_ids_name_existing_assets():
    assets = {f["properties"]["id"] for kind in ("cable_routes", "stations") for f in _features(kind)}
    incidents = [f["properties"] for f in _features("incidents")]
    for p in incidents:
        if p["type"] in ("cable_theft", "sabotage", "fire_explosion", "cyber_attack", "postal_smuggling"):
            assert p["asset_id"] in assets, p["id"]


def test_rfc7946_geojson():
    for path in sorted(DEMO.glob("*.geojson")):
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
        assert "crs" not in data
        for number in re.findall(r"-?\d+\.\d+", text.split('"features"', 1)[1]):
            assert len(number.split(".")[1]) <= 6, f"{path.name}: {number} has more than 6 decimals"
    for feat in _features("key_sites"):
        if feat["geometry"]["type"] == "Polygon":
            ring = shapely.LinearRing(feat["geometry"]["coordinates"][0])
            assert ring.is_ccw, feat["properties"]["id"]


@pytest.mark.parametrize("kind", SHAPEFILE_KINDS)
def test_zipped_shapefiles(kind):
    path = DEMO / f"{kind}.zip"
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(f"{kind}.{ext}" for ext in ("cpg", "dbf", "prj", "shp", "shx"))
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
        # webmap.io.archive refuses members over 1 MB packed more than 200:1
        assert all(i.file_size <= 200 * i.compress_size or i.file_size <= 1024**2 for i in infos)
        assert z.read(f"{kind}.cpg") == b"UTF-8"
        year, month, day = struct.unpack("<3B", z.read(f"{kind}.dbf")[1:4])
        assert (1900 + year, month, day) == (2026, 1, 1)
    info = pyogrio.read_info(f"/vsizip/{path}/{kind}.shp")
    assert info["encoding"] == "UTF-8" and info["crs"] == "EPSG:4326"
    table = pyogrio.read_dataframe(f"/vsizip/{path}/{kind}.shp")
    features = _features(kind)
    assert len(table) == len(features)
    # every column is a schema field or one of its aliases (the 10-character names)
    fields = _schema(kind)["fields"]
    truncated = {}
    for f in fields:
        for alias in [f["name"], *f.get("aliases", [])]:
            truncated[alias] = f["name"]
    columns = [c for c in table.columns if c != "geometry"]
    assert set(columns) <= set(truncated), set(columns) - set(truncated)
    for row, feat in zip(table.head(50).itertuples(index=False), features[:50]):
        for col in columns:
            value = getattr(row, col)
            expected = feat["properties"][truncated[col]]
            if expected is None:
                assert value is None or value != value or value == ""
            else:
                assert value == expected, (kind, col, value, expected)
    assert np.allclose(shapely.get_coordinates(table.geometry.values[:50]),
                       shapely.get_coordinates(np.array([shape(f["geometry"]) for f in features[:50]])))


def test_readme_describes_these_files():
    text = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    assert "seed 2026" in text
    assert "Ranh giới hành chính: Cổng TTĐT Chính phủ" in text  # attribution kept
    for kind in ("cable_routes", "stations", "key_sites", "incidents"):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{kind}.geojson`"))
        assert f"| {len(_features(kind))} |" in row, f"data/README.md: the {kind} count is out of date"
