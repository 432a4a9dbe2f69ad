"""The ``webmap`` command, run as a real process: exit codes, one-line errors, reports, layers, exports."""

from __future__ import annotations

import csv
import json
import os
import zipfile

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import Point

import fixtures
import format_writers as fw

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # GDAL notes on laundered DBF names


def assert_one_line_error(code, out, err, fragment=None, exit_code=2):
    assert code == exit_code, (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("webmap: ")
    if fragment:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small good and bad inputs (read only), written once for the module."""
    tmp_path = tmp_path_factory.mktemp("inputs")
    stations = fixtures.write_geojson(fixtures.stations(), str(tmp_path / "tram.geojson"))
    no_prj = fw.remove_prj(fixtures.write_shapefile(fw.vn2000_stations()[0], str(tmp_path / "shp"), "tram"))
    missing = fixtures.stations().drop(columns=["kind"])
    (tmp_path / "notes.txt").write_text("x")
    return {
        "stations": stations,
        "no_prj": no_prj,
        "missing_column": fixtures.write_geojson(missing, str(tmp_path / "thieu.geojson")),
        "txt": str(tmp_path / "notes.txt"),
        "vrt": fw.write_zip(str(tmp_path / "v.zip"), {"a.vrt": b"<OGRVRTDataSource/>"}),
        "folder": str(tmp_path),
        "none": str(tmp_path / "none.geojson"),
    }


def test_import_prints_the_report_and_layers_lists_it(run_cli, files, instance):
    code, out, err = run_cli("import", files["stations"], "--layer", "stations")
    assert code == 0, err
    assert "layer stations <- tram.geojson (geojson), sha256" in out
    assert "features: 3 read, 3 kept, 0 repaired" in out and "CRS: WGS 84 (EPSG:4326)" in out
    assert "text encoding: utf-8" in out and out.rstrip().endswith("stored as version 1")
    assert_one_line_error(*run_cli("import", files["missing_column"], "--layer", "stations"), "required column")
    code, out, err = run_cli("import", files["no_prj"], "--layer", "stations", "--crs", "EPSG:5897")
    assert code == 0, err
    assert "EPSG:6960" in out and "stored as version 2" in out
    code, out, err = run_cli("layers")
    assert code == 0 and err == ""
    (row,) = [line for line in out.splitlines() if line.startswith("stations")]
    assert row.split()[:3] == ["stations", "2", "3"] and "tram.shp" in row and "Trạm viễn thông" in row
    code, out, _ = run_cli("layers", "--history")
    assert code == 0 and "tram.geojson" in out and "(old)" in out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["import", "{none}", "--layer", "stations"], "file not found"),
        (["import", "{folder}", "--layer", "stations"], "is a directory"),
        (["import", "{txt}", "--layer", "stations"], "unsupported file type '.txt'"),
        (["import", "/vsicurl/http://127.0.0.1/a.geojson", "--layer", "stations"], "not a local file"),
        (["import", "{vrt}", "--layer", "stations"], "indirection"),
        (["import", "{stations}", "--layer", "tram"], "unknown layer 'tram'"),
        (["import", "{stations}"], "Missing option '--layer'"),
        (["import", "{stations}", "--layer", "stations", "--crs", "EPSG:99999"], "unknown coordinate reference system"),
        (["import", "{stations}", "--layer", "stations", "--encoding", "klingon"], "unknown encoding 'klingon'"),
        (["import", "{stations}", "--layer", "stations", "--map", "vat_lieu"], "--map takes COLUMN=FIELD"),
        (["import", "{stations}", "--layer", "stations", "--map", "name=ten_goi"], "--map names field 'ten_goi'"),
        (["import", "{stations}", "--layer", "stations", "--colour", "red"], "No such option"),
        (["import", "{missing_column}", "--layer", "stations"], "required column 'kind' not found"),
        (["import", "{no_prj}", "--layer", "stations"], "EPSG:5897"),
        (["export", "stations", "--format", "geojson", "-o", "{folder}/x.geojson"], "has not been imported"),
        (["export", "tram", "--format", "geojson", "-o", "{folder}/x.geojson"], "unknown layer 'tram'"),
        (["export", "stations", "--format", "kml", "-o", "{folder}/x.kml"], "'kml' is not one of"),
        (["export", "stations", "--format", "csv", "-o", "{folder}/no/such/x.csv"], "does not exist"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(run_cli, files, instance, args, fragment):
    code, out, err = run_cli(*[a.format(**files) for a in args])
    assert_one_line_error(code, out, err, fragment)
    assert out == ""
    layers = instance / "store" / "layers"
    assert not layers.exists() or os.listdir(layers) == []


def test_internal_error_is_exit_1_with_one_line(run_cli, instance):
    """A damaged store catalogue is not the user's input: exit 1, a generic line, details on request."""
    (instance / "store").mkdir()
    (instance / "store" / "webmap.sqlite").write_bytes(b"this is not a database " * 100)
    line = assert_one_line_error(*run_cli("layers"), exit_code=1)
    assert line == "webmap: internal error (set WEBMAP_DEBUG=1 for details)"
    code, _, err = run_cli("layers", env={"WEBMAP_DEBUG": "1"})
    assert code == 1 and "Traceback" in err and "DatabaseError" in err


@pytest.mark.parametrize("command", [[], ["import"], ["export"], ["layers"], ["demo"], ["serve"]])
def test_help_works_on_every_command(run_cli, command):
    code, out, err = run_cli(*command, "--help")
    assert code == 0 and err == "" and out.startswith("Usage: webmap")


def test_no_command_shows_the_help(run_cli):
    code, out, err = run_cli()
    assert code == 0 and "Commands:" in out and "import" in out and err == ""


def test_dry_run_stores_nothing(run_cli, files, instance):
    code, out, err = run_cli("import", files["stations"], "--layer", "stations", "--dry-run")
    assert code == 0, err
    assert "features: 3 read, 3 kept" in out and "stored as version" not in out
    code, out, _ = run_cli("layers")
    assert code == 0 and "no layers yet" in out
    assert os.listdir(instance / "store" / "layers") == []


def test_export_round_trips(run_cli, files, tmp_path):
    frame = fixtures.stations()
    frame["ghi_chú"] = ["Gần chợ", None, "Cờ Đỏ"]
    path = fixtures.write_geojson(frame, str(tmp_path / "tram_extra.geojson"))
    assert run_cli("import", path, "--layer", "stations")[0] == 0
    for fmt, name in [("geojson", "o.geojson"), ("gpkg", "o.gpkg"), ("shp", "o.zip"), ("csv", "o.csv")]:
        out_path = tmp_path / name
        code, out, err = run_cli("export", "stations", "--format", fmt, "-o", out_path)
        assert code == 0, err
        assert out.strip() == f"stations: 3 features written to {out_path}"
        if fmt == "csv":
            back = pd.read_csv(out_path, encoding="utf-8-sig")
            lon, lat = back.pop("lon"), back.pop("lat")
            assert list(lon) == [105.78, 105.765, 105.772] and list(lat) == [10.03, 10.035, 10.025]
        else:
            back = gpd.read_file(f"zip://{out_path}" if fmt == "shp" else out_path)
            assert list(back.geometry.x) == [105.78, 105.765, 105.772]
        back = back.sort_values("id").reset_index(drop=True)
        assert list(back["id"]) == ["S-001", "S-002", "S-003"]
        assert list(back["name"]) == fixtures.stations()["name"].tolist()
        assert list(back["address"]) == fixtures.stations()["address"].tolist()
        assert back["ghi_chú"].iloc[0] == "Gần chợ" and back["ghi_chú"].iloc[2] == "Cờ Đỏ"
        assert "_search" not in back.columns and "extra" not in back.columns
    with zipfile.ZipFile(tmp_path / "o.zip") as archive:  # the Shapefile: zipped, with a .cpg saying UTF-8
        names = sorted(archive.namelist())
        assert names == [f"stations.{ext}" for ext in ("cpg", "dbf", "prj", "shp", "shx")]
        assert archive.read("stations.cpg").strip().upper() in (b"UTF-8", b"UTF8")
        assert "Phường Cái Khế".encode("utf-8") in archive.read("stations.dbf")
    code, out, err = run_cli("import", tmp_path / "o.zip", "--layer", "stations")  # and it imports back
    assert code == 0 and "text encoding: utf-8" in out and "3 kept" in out, err


def test_mixed_key_sites_export_as_two_shapefiles(run_cli, tmp_path):
    point = gpd.GeoDataFrame({"id": ["K-002"], "name": ["Trạm phát sóng Cờ Đỏ"], "category": ["broadcasting"],
                              "protection_level": ["level_1"]}, geometry=[Point(105.77, 10.03)], crs="EPSG:4326")
    sites = pd.concat([fixtures.key_sites(), point], ignore_index=True)
    path = fixtures.write_geojson(sites, str(tmp_path / "muc_tieu.geojson"))
    assert run_cli("import", path, "--layer", "key_sites")[0] == 0
    out_path = tmp_path / "muc_tieu.zip"
    assert run_cli("export", "key_sites", "--format", "shp", "-o", out_path)[0] == 0
    with zipfile.ZipFile(out_path) as archive:
        shps = sorted(n for n in archive.namelist() if n.endswith(".shp"))
        assert shps == ["key_sites_point.shp", "key_sites_polygon.shp"]
    polygons = pyogrio.read_dataframe(f"zip://{out_path}!key_sites_polygon.shp")
    points = pyogrio.read_dataframe(f"zip://{out_path}!key_sites_point.shp")
    assert list(polygons["id"]) == ["K-001"] and list(points["id"]) == ["K-002"]
    assert points["name"].iloc[0] == "Trạm phát sóng Cờ Đỏ"


def test_csv_export_defuses_formulas_but_not_numbers(run_cli, tmp_path):
    frame = fixtures.stations()
    frame["name"] = ["=HYPERLINK(\"http://127.0.0.1\")", "+84 292 3820 000", "@SUM(A1)"]
    frame["address"] = ["-Phường Cái Khế", "Đường 3 Tháng 2", "Thị trấn Cờ Đỏ"]
    frame["do_cao"] = [-1.5, 2.0, -3.25]  # a number column (kept as an extra property)
    path = fixtures.write_geojson(frame, str(tmp_path / "tram.geojson"))
    code, out, err = run_cli("import", path, "--layer", "stations")
    assert code == 0 and "warning: columns kept as extra properties: do_cao" in out.splitlines(), err
    out_path = tmp_path / "tram.csv"
    assert run_cli("export", "stations", "--format", "csv", "-o", out_path)[0] == 0
    with open(out_path, encoding="utf-8-sig", newline="") as fh:
        rows = {row["id"]: row for row in csv.DictReader(fh)}
    assert rows["S-001"]["name"] == "'=HYPERLINK(\"http://127.0.0.1\")"
    assert rows["S-002"]["name"] == "'+84 292 3820 000" and rows["S-003"]["name"] == "'@SUM(A1)"
    assert rows["S-001"]["address"] == "'-Phường Cái Khế"
    assert rows["S-002"]["address"] == "Đường 3 Tháng 2"
    assert [rows[i]["do_cao"] for i in ("S-001", "S-002", "S-003")] == ["-1.5", "2.0", "-3.25"]
    assert rows["S-001"]["lon"] == "105.78"


def test_import_options_reach_the_importer(run_cli, tmp_path):
    frame = fixtures.cable_routes().rename(columns={"medium": "vat_lieu"}).drop(columns=["owner"])
    frame["criticality"] = ["Đặc biệt quan trọng", "Cao"]
    folder = str(tmp_path / "shp")
    fw.write_legacy_shapefile(frame, folder, "tuyen_cap", "vni")
    fixtures.write_shapefile(fixtures.stations(), folder, "tram")  # a second layer: --member is needed
    zipped = fw.write_zip(str(tmp_path / "cap.zip"), fw.folder_members(folder, "cap/"))
    code, out, err = run_cli("import", zipped, "--layer", "cable_routes", "--owner", "VNPT", "--map", "vat_lieu=medium",
                             "--encoding", "vni", "--member", "tuyen_cap")
    assert code == 0, err
    assert "text encoding: vni" in out
    code, out, err = run_cli("export", "cable_routes", "--format", "geojson", "-o", tmp_path / "cap.geojson")
    assert code == 0, err
    features = json.load(open(tmp_path / "cap.geojson", encoding="utf-8"))["features"]
    props = {f["properties"]["id"]: f["properties"] for f in features}
    assert [props[i]["name"] for i in ("C-001", "C-002")] == fixtures.cable_routes()["name"].tolist()
    assert {p["owner"] for p in props.values()} == {"VNPT"}
    assert [props[i]["criticality"] for i in ("C-001", "C-002")] == ["critical", "high"]
