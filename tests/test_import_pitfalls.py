"""Hostile and broken files, geometry and attribute problems, and the all-or-nothing promise of an import.

Every file is real (written by the tests) and goes through the real pipeline and GDAL drivers.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import zipfile

import pyogrio
import pytest
import shapely

import fixtures
import format_writers as fw
from webmap.errors import BadInput, CrsError, NotFound, SchemaError, UnsafeInput
from webmap.export import export_layer
from webmap.importer import import_layer
from webmap.io.archive import extract_archive

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # GDAL notes on laundered DBF names


@pytest.fixture
def shapefile_members(tmp_path):
    fixtures.write_shapefile(fixtures.stations(), str(tmp_path / "shp"), "tram")
    return fw.folder_members(str(tmp_path / "shp"))


def refused(store, path, kind="stations", error=BadInput, match=None, **options):
    with pytest.raises(error, match=match) as caught:
        import_layer(store, path, kind, **options)
    assert store.list_versions(kind) == []
    return str(caught.value)


# -- paths and archives ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/vsicurl/http://127.0.0.1/tram.geojson", "/vsizip//tmp/tram.zip/tram.shp", "/VSIZIP/x.zip",
     "http://127.0.0.1/tram.geojson", "file:///etc/passwd"],
)
def test_virtual_paths_and_urls_are_refused(store, path):
    message = refused(store, path, error=UnsafeInput)
    assert "not a local file" in message and "virtual paths and URLs are refused" in message


def test_missing_file_and_folder(store, tmp_path):
    assert "file not found" in refused(store, str(tmp_path / "none.geojson"))
    assert "not a regular file" in refused(store, str(tmp_path))


def test_unsupported_type(store, tmp_path):
    path = tmp_path / "tram.xlsx"
    path.write_bytes(b"PK\x03\x04")
    message = refused(store, str(path))
    assert "unsupported file type '.xlsx'" in message and ".geojson" in message


@pytest.mark.parametrize("prefix, fragment", [("../../", "'..'"), ("data/../../", "'..'"), ("/tmp/", "absolute path"),
                                              ("C:/", "absolute path"), ("..\\", "'..'")])
def test_zip_members_climbing_out_are_refused(store, tmp_path, shapefile_members, prefix, fragment):
    path = fw.write_zip(str(tmp_path / "evil.zip"), {prefix + k: v for k, v in shapefile_members.items()})
    assert fragment in refused(store, path, error=UnsafeInput)
    assert not os.path.exists(tmp_path.parent / "tram.shp") and not os.path.exists("/tmp/tram.shp")


def test_zip_symlink_member_is_refused(store, tmp_path, shapefile_members):
    others = {k: v for k, v in shapefile_members.items() if not k.endswith(".dbf")}
    path = fw.write_symlink_zip(str(tmp_path / "link.zip"), "tram.dbf", "/etc/passwd", others)
    assert "symbolic link" in refused(store, path, error=UnsafeInput)


def test_zip_bomb_member_is_refused(store, tmp_path, shapefile_members):
    path = fw.write_zip(str(tmp_path / "bomb.zip"), {**shapefile_members, "zeros.bin": bytes(50_000_000)})
    info = zipfile.ZipFile(path).getinfo("zeros.bin")
    assert info.file_size / info.compress_size > 900  # ~1000:1
    assert "compression ratio over 200:1" in refused(store, path, error=UnsafeInput)


def test_zip_with_too_many_members_is_refused(store, tmp_path, shapefile_members):
    many = {f"rac/{i}.txt": b"x" for i in range(2001)}
    path = fw.write_zip(str(tmp_path / "many.zip"), {**shapefile_members, **many})
    assert "at most 2000 are accepted" in refused(store, path, error=UnsafeInput)


def test_zip_claiming_a_huge_size_is_refused(store, tmp_path):
    geojson = open(fixtures.write_geojson(fixtures.stations(), str(tmp_path / "t.geojson")), "rb").read()
    path = fw.set_zip_sizes(fw.write_zip(str(tmp_path / "huge.zip"), {"tram.geojson": geojson}), 0xFFFFFF00)
    assert "unpacks to more than 2048 MiB" in refused(store, path, error=UnsafeInput)


def test_total_size_limit_counts_every_member(tmp_path, shapefile_members):
    path = fw.write_zip(str(tmp_path / "tram.zip"), shapefile_members)
    total = sum(len(v) for v in shapefile_members.values())
    (tmp_path / "out").mkdir()
    with pytest.raises(UnsafeInput, match="unpacks to more than"):
        extract_archive(path, str(tmp_path / "out"), max_total_bytes=total - 1)
    assert os.listdir(tmp_path / "out") == []  # checked before anything is written
    assert sorted(extract_archive(path, str(tmp_path / "out"), max_total_bytes=total)) == sorted(shapefile_members)


def test_damaged_zip_is_bad_input_not_a_crash(store, tmp_path):
    geojson = open(fixtures.write_geojson(fixtures.stations(), str(tmp_path / "t.geojson")), "rb").read()
    path = fw.write_zip(str(tmp_path / "bad.zip"), {"tram.geojson": geojson})
    data = bytearray(open(path, "rb").read())
    start = data.find(b"tram.geojson") + len("tram.geojson") + 40
    data[start:start + 30] = b"\xff" * 30
    open(path, "wb").write(data)
    assert "cannot be unpacked" in refused(store, path)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(b"PK\x03\x04 truncated")
    assert "not a readable zip archive" in refused(store, str(truncated))


# -- XML, indirection formats ------------------------------------------------------------------------
POINT = "<Placemark><name>{}</name><Point><coordinates>105.77,10.03</coordinates></Point></Placemark>"
HOSTILE_KML = {
    "external entity": '<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                       '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>' + POINT.format("&xxe;") + "</Document></kml>",
    "billion laughs": '<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY lol "lol">'
                      '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                      '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
                      '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>' + POINT.format("&lol3;") + "</Document></kml>",
    "external DTD": '<?xml version="1.0"?><!DOCTYPE kml SYSTEM "http://127.0.0.1/kml.dtd">'
                    '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>' + POINT.format("a") + "</Document></kml>",
}


@pytest.mark.parametrize("case", sorted(HOSTILE_KML))
@pytest.mark.parametrize("container", ["kml", "kmz"])
def test_kml_with_dtd_or_entities_is_refused(store, tmp_path, case, container):
    text = HOSTILE_KML[case]
    if container == "kml":
        path = tmp_path / "a.kml"
        path.write_text(text)
    else:
        path = fw.write_zip(str(tmp_path / "a.kmz"), {"doc.kml": text.encode()})
    assert "DTD, entities or external references is refused" in refused(store, str(path), error=UnsafeInput)


def test_xml_that_is_not_kml_is_refused(store, tmp_path):
    path = tmp_path / "a.kml"
    path.write_text('<?xml version="1.0"?><gpx><wpt lat="10" lon="105"/></gpx>')
    assert "not KML" in refused(store, str(path))


def vrt_text(target):
    return (f'<OGRVRTDataSource><OGRVRTLayer name="tram"><SrcDataSource>{target}</SrcDataSource>'
            "</OGRVRTLayer></OGRVRTDataSource>")


def test_vrt_is_refused(store, tmp_path):
    target = fixtures.write_geojson(fixtures.stations(), str(tmp_path / "secret.geojson"))
    path = tmp_path / "tram.vrt"
    path.write_text(vrt_text(target))
    assert "OGR VRT files are refused" in refused(store, str(path), error=UnsafeInput)
    only = fw.write_zip(str(tmp_path / "v.zip"), {"tram.vrt": vrt_text(target).encode()})
    assert "indirection" in refused(store, only, error=UnsafeInput)


@pytest.mark.parametrize("name", ["tram.geojson", "tram.json", "tram.kml", "tram.csv", "tram.mif"])
def test_vrt_in_disguise_is_refused(store, tmp_path, name):
    target = fixtures.write_geojson(fixtures.stations(), str(tmp_path / "secret.geojson"))
    path = tmp_path / name
    path.write_text("\n  " + vrt_text(target))
    assert "really an OGR VRT" in refused(store, str(path), error=UnsafeInput)
    zipped = fw.write_zip(str(tmp_path / "z.zip"), {name: path.read_bytes()})
    assert "really an OGR VRT" in refused(store, zipped, error=UnsafeInput)


def test_gdalg_json_in_disguise_is_refused(store, tmp_path):
    """GDAL (3.11+) runs a "streamed algorithm" JSON as a dataset: it would read any path or URL."""
    target = fixtures.write_geojson(fixtures.stations(), str(tmp_path / "secret.geojson"))
    path = tmp_path / "tram.geojson"
    path.write_text(json.dumps({"type": "gdal_streamed_alg", "command_line": f"gdal vector pipeline ! read {target}"}))
    assert "GDALG" in refused(store, str(path), error=UnsafeInput)


def test_plain_sqlite_named_gpkg_is_refused(store, tmp_path):
    path = str(tmp_path / "tram.gpkg")
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE tram (x)")
    con.commit()
    con.close()
    assert "does not contain what a gpkg file holds" in refused(store, path)


@pytest.mark.parametrize("header, fragment", [
    ("Definition Table\n  Type VIEW\n  Tables tram\n", "view tables point at other files"),
    ('Definition Table\n  Type SEAMLESS\n  Fields 2\n    Table Char (100) ;\n    Description Char (100) ;\n',
     "seamless tables point at other files"),
    ('Definition Table\n  Type NATIVE Charset "WindowsLatin1"\n  Fields 1\n    Table Char (100) ;\n'
     'begin_metadata\n"\\IsSeamless" = "TRUE"\nend_metadata\n', "seamless or view tables are refused"),
])
def test_mapinfo_view_and_seamless_tables_are_refused(store, tmp_path, header, fragment):
    fw.write_mapinfo(fixtures.stations(), str(tmp_path / "tram.tab"))  # the table they would point at
    path = tmp_path / "view.tab"
    path.write_text("!table\n!version 300\n!charset WindowsLatin1\n\n" + header)
    assert fragment in refused(store, str(path), error=UnsafeInput)


@pytest.mark.parametrize("ext", [".shp", ".zip", ".geojson", ".json", ".gpkg", ".kml", ".kmz", ".tab", ".mif", ".csv"])
def test_empty_files_are_bad_input(store, tmp_path, ext):
    path = tmp_path / f"empty{ext}"
    path.write_bytes(b"")
    refused(store, str(path))


def test_damaged_files_are_bad_input_not_crashes(store, tmp_path):
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", ')
    assert "GDAL cannot read the file" in refused(store, str(broken))
    gpkg = str(tmp_path / "damaged.gpkg")
    pyogrio.write_dataframe(fixtures.stations(), gpkg, driver="GPKG")
    data = bytearray(open(gpkg, "rb").read())
    data[5000:9000] = bytes(4000)
    open(gpkg, "wb").write(data)
    message = refused(store, gpkg)
    assert message.startswith("GDAL cannot read damaged.gpkg") and len(message) < 300
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    assert "holds no features" in refused(store, str(empty))


@pytest.mark.parametrize("text, fragment", [
    ("lon,lat,id,owner,kind,criticality\n105.7,10.0,S-1,VTSH,bts,low,surplus,values\n", "more values than the header"),
    ("lon,lat,id,owner,kind,criticality\n105.7,10.0,\"S-1,VTSH,bts,low\n", "not a readable CSV table"),
    ("lon,lat,id,owner,kind,criticality\nabc,10.0,S-1,VTSH,bts,low\n", "not numbers on line(s) 2"),
    ("id,owner,kind,criticality\nS-1,VTSH,bts,low\n", "no coordinate columns"),
    ("lon,lat,id,owner,kind,criticality\n", "holds no features"),
])
def test_broken_csv_is_bad_input(store, tmp_path, text, fragment):
    path = tmp_path / "tram.csv"
    path.write_text(text)
    assert fragment in refused(store, str(path))


def test_content_not_matching_extension_is_refused(store, tmp_path):
    path = tmp_path / "tram.shp"
    path.write_text("id,lon,lat\n1,105.7,10.0\n")
    assert "does not contain what a shapefile file holds" in refused(store, str(path))


# -- geometry ------------------------------------------------------------------------------------------
DISTRICT = {"name": "Ninh Kiều", "type": "Quận"}
CW = [[105.74, 10.0], [105.74, 10.06], [105.80, 10.06], [105.80, 10.0], [105.74, 10.0]]  # clockwise
BOWTIE = [[105.74, 10.0], [105.80, 10.06], [105.80, 10.0], [105.74, 10.06], [105.74, 10.0]]


def polygon(*rings):
    return {"type": "Polygon", "coordinates": list(rings)}


def test_null_and_empty_geometries_are_dropped_and_reported(store, tmp_path):
    path = fw.write_features(str(tmp_path / "d.geojson"), [
        fw.feature({**DISTRICT, "code": "1"}, polygon(CW)),
        fw.feature({**DISTRICT, "code": "2"}, None),
        fw.feature({**DISTRICT, "code": "3"}, polygon()),
    ])
    report = import_layer(store, path, "districts")
    assert (report.features_read, report.features_kept, report.dropped_empty) == (3, 1, 2)
    assert "2 feature(s) without geometry dropped" in report.warnings
    assert any("2 dropped (null/empty geometry)" in line for line in report.lines())
    assert list(store.read_layer("districts")["code"]) == ["1"]


def test_invalid_polygon_is_repaired_and_counted(store, tmp_path):
    path = fw.write_features(str(tmp_path / "d.geojson"), [
        fw.feature({**DISTRICT, "code": "1"}, polygon(BOWTIE)),
        fw.feature({**DISTRICT, "code": "2"}, polygon(CW)),
    ])
    assert not shapely.Polygon(BOWTIE).is_valid
    report = import_layer(store, path, "districts")
    assert (report.repaired, report.features_kept, report.dropped_unrepairable) == (1, 2, 0)
    gdf = store.read_layer("districts").sort_values("code")
    repaired = gdf.geometry.iloc[0]
    assert repaired.is_valid and repaired.geom_type == "MultiPolygon" and len(repaired.geoms) == 2
    assert repaired.area == pytest.approx(0.06 * 0.06 / 2)


def test_coordinates_out_of_range_are_refused(store, tmp_path):
    path = fw.write_features(str(tmp_path / "d.geojson"), [
        fw.feature({**DISTRICT, "code": "1"}, polygon([[x + 100, y] for x, y in CW]))])
    message = refused(store, path, kind="districts", error=CrsError)
    assert "outside longitude -180..180" in message


def test_swapped_lat_lon_is_refused(store, tmp_path):
    path = fw.write_features(str(tmp_path / "d.geojson"), [
        fw.feature({**DISTRICT, "code": "1"}, polygon([[y, x] for x, y in CW]))])
    assert "latitude and longitude look swapped" in refused(store, path, kind="districts", error=CrsError)
    csv = fw.write_csv(fixtures.stations(), str(tmp_path / "tram.csv"), swap=True)
    assert "swap the columns" in refused(store, csv, error=CrsError)


def test_geometry_type_is_enforced(store, tmp_path):
    station = {"id": "S-1", "owner": "VTSH", "kind": "bts", "criticality": "low"}
    path = fw.write_features(str(tmp_path / "s.geojson"), [
        fw.feature(station, {"type": "Point", "coordinates": [105.77, 10.03]}),
        fw.feature({**station, "id": "S-2"}, {"type": "LineString", "coordinates": [[105.7, 10.0], [105.8, 10.0]]}),
    ])
    message = refused(store, path, error=SchemaError)
    assert "this layer holds points" in message and "LineString" in message and "rows 2" in message
    cables = fixtures.write_shapefile(fixtures.cable_routes(), str(tmp_path / "cap"), "cap")
    assert "LineString" in refused(store, cables, error=SchemaError)


def test_multi_parts_are_accepted(store, tmp_path):
    station = {"id": "S-1", "owner": "VTSH", "kind": "bts", "criticality": "low"}
    path = fw.write_features(str(tmp_path / "s.geojson"), [
        fw.feature(station, {"type": "MultiPoint", "coordinates": [[105.77, 10.03], [105.78, 10.03]]})])
    import_layer(store, path, "stations")
    assert store.read_layer("stations").geometry.iloc[0].geom_type == "MultiPoint"
    cable = {"id": "C-1", "owner": "VTSH", "medium": "fibre", "placement": "aerial", "criticality": "low"}
    path = fw.write_features(str(tmp_path / "c.geojson"), [
        fw.feature(cable, {"type": "MultiLineString", "coordinates": [[[105.7, 10.0], [105.8, 10.0]],
                                                                       [[105.7, 10.1], [105.8, 10.1]]]})])
    import_layer(store, path, "cable_routes")
    assert store.read_layer("cable_routes").geometry.iloc[0].geom_type == "MultiLineString"


def test_geometry_collections_are_refused(store, tmp_path):
    station = {"id": "S-1", "owner": "VTSH", "kind": "bts", "criticality": "low"}
    path = fw.write_features(str(tmp_path / "s.geojson"), [fw.feature(station, {
        "type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [105.77, 10.03]}]})])
    assert "geometry collections" in refused(store, path, error=SchemaError)


def test_rings_are_oriented_as_rfc7946_asks(store, tmp_path):
    hole_ccw = [[105.76, 10.02], [105.78, 10.02], [105.78, 10.04], [105.76, 10.04], [105.76, 10.02]]
    assert not shapely.LinearRing(CW).is_ccw and shapely.LinearRing(hole_ccw).is_ccw
    path = fw.write_features(str(tmp_path / "d.geojson"), [
        fw.feature({**DISTRICT, "code": "1"}, polygon(CW, hole_ccw)),
        fw.feature({**DISTRICT, "code": "2"}, {"type": "MultiPolygon", "coordinates": [[CW], [[[106.0, 10.0], [106.0, 10.1], [106.1, 10.1], [106.0, 10.0]]]]}),
    ])
    import_layer(store, path, "districts")
    for geom in store.read_layer("districts").geometry:
        for part in shapely.get_parts(geom):
            assert part.exterior.is_ccw
            assert all(not ring.is_ccw for ring in part.interiors)
    shp = fixtures.write_shapefile(fixtures.districts(), str(tmp_path / "shp"), "quan")  # shapefiles store clockwise
    import_layer(store, shp, "districts")
    assert store.read_layer("districts").geometry.iloc[0].exterior.is_ccw


# -- attributes --------------------------------------------------------------------------------------
def test_truncated_shapefile_names_are_mapped(store, tmp_path):
    path = fixtures.write_shapefile(fixtures.incidents(), str(tmp_path / "shp"), "vu_viec")
    names = pyogrio.read_info(path)["fields"]
    assert "occurred_a" in names and "descriptio" in names
    report = import_layer(store, path, "incidents")
    assert not any("extra" in w for w in report.warnings)
    gdf = store.read_layer("incidents").sort_values("id")
    assert list(gdf["occurred_at"]) == ["2025-01-10T02:30:00+07:00", "2025-02-11T23:00:00+07:00",
                                        "2026-03-01T12:00:00+07:00"]
    assert list(gdf["description"]) == ["Cắt trộm 30 m cáp", "Phá hoại hộp cáp", "Gian lận cước"]
    stations = fixtures.write_shapefile(fixtures.stations(), str(tmp_path / "shp"), "tram")
    assert "criticalit" in pyogrio.read_info(stations)["fields"]
    import_layer(store, stations, "stations")
    assert sorted(store.read_layer("stations")["criticality"]) == ["critical", "low", "medium"]


def test_map_option_names_other_columns(store, tmp_path):
    frame = fixtures.cable_routes().rename(columns={"medium": "vat_lieu", "owner": "Đơn vị"})
    path = fixtures.write_geojson(frame, str(tmp_path / "cap.geojson"))
    message = refused(store, path, kind="cable_routes", error=SchemaError)
    assert "required column 'owner' not found" in message and "--map COLUMN=owner" in message
    import_layer(store, path, "cable_routes", mapping={"vat_lieu": "medium", "don vi": "owner"})
    gdf = store.read_layer("cable_routes").sort_values("id")
    assert list(gdf["owner"]) == ["VTSH", "MKN"] and list(gdf["medium"]) == ["fibre", "fibre"]
    with pytest.raises(SchemaError, match="--map names field 'chat_lieu'"):
        import_layer(store, path, "cable_routes", mapping={"vat_lieu": "chat_lieu"})
    with pytest.raises(SchemaError, match="--map names column 'khong_co'"):
        import_layer(store, path, "cable_routes", mapping={"khong_co": "medium"})


def test_required_values_must_be_present(store, tmp_path):
    frame = fixtures.stations()
    frame.loc[1, "kind"] = None
    path = fixtures.write_geojson(frame, str(tmp_path / "s.geojson"))
    assert "stations.kind is required but empty in rows 2" in refused(store, path, error=SchemaError)


def test_allowed_values_are_checked(store, tmp_path):
    frame = fixtures.cable_routes()
    frame["medium"] = ["laser", "vệ tinh"]
    path = fixtures.write_geojson(frame, str(tmp_path / "c.geojson"))
    message = refused(store, path, kind="cable_routes", error=SchemaError)
    assert message.startswith("cable_routes.medium:")
    assert "'laser'" in message and "'vệ tinh'" in message and "allowed: fibre, copper" in message


def test_vietnamese_value_labels_are_accepted(store, tmp_path):
    frame = fixtures.cable_routes()
    frame["medium"] = ["Cáp quang", "CÁP ĐỒNG"]
    frame["placement"] = ["Cáp ngầm", "cap vuot song"]
    frame["criticality"] = ["Đặc biệt quan trọng", "High"]
    import_layer(store, fixtures.write_geojson(frame, str(tmp_path / "c.geojson")), "cable_routes")
    gdf = store.read_layer("cable_routes").sort_values("id")
    assert list(gdf["medium"]) == ["fibre", "copper"]
    assert list(gdf["placement"]) == ["underground", "river_crossing"]
    assert list(gdf["criticality"]) == ["critical", "high"]


def test_unknown_columns_are_kept_as_extra_properties(store, client_as, tmp_path):
    client = client_as("police", "CA-CT")
    frame = fixtures.stations()
    frame["ghi_chú"] = ["Gần chợ Cái Khế", None, "=1+1"]
    frame["so_cot"] = [12, 7, -3]
    report = import_layer(store, fixtures.write_geojson(frame, str(tmp_path / "s.geojson")), "stations")
    assert "columns kept as extra properties: ghi_chú, so_cot" in report.warnings
    body = client.get("/api/layers/stations/features").get_json()
    props = {f["id"]: f["properties"] for f in body["features"]}
    assert props["S-001"]["ghi_chú"] == "Gần chợ Cái Khế" and props["S-001"]["so_cot"] == 12
    assert props["S-002"]["ghi_chú"] is None and props["S-003"]["so_cot"] == -3
    out = str(tmp_path / "out.geojson")
    export_layer(store.read_layer("stations"), "stations", "geojson", out)
    exported = {f["properties"]["id"]: f["properties"] for f in json.load(open(out, encoding="utf-8"))["features"]}
    assert exported["S-001"]["ghi_chú"] == "Gần chợ Cái Khế" and exported["S-003"]["so_cot"] == -3


def test_duplicate_ids_are_refused(store, tmp_path):
    frame = fixtures.stations()
    frame["id"] = ["S-001", "S-002", "S-001"]
    message = refused(store, fixtures.write_geojson(frame, str(tmp_path / "s.geojson")), error=SchemaError)
    assert message == "stations.id must be unique; repeated: S-001"


def test_unknown_layer_and_owner_on_a_layer_without_owner(store, tmp_path):
    path = fixtures.write_geojson(fixtures.districts(), str(tmp_path / "d.geojson"))
    with pytest.raises(NotFound, match="unknown layer 'quan'"):
        import_layer(store, path, "quan")
    assert "--owner applies to layers with an owner" in refused(store, path, kind="districts", owner="VTSH")


def test_owner_option_fills_the_owner(store, tmp_path):
    frame = fixtures.cable_routes().drop(columns=["owner"])
    import_layer(store, fixtures.write_geojson(frame, str(tmp_path / "c.geojson")), "cable_routes", owner="VNPT")
    assert set(store.read_layer("cable_routes")["owner"]) == {"VNPT"}


# -- all or nothing, report and provenance -------------------------------------------------------------
def test_a_failed_import_leaves_the_store_as_it_was(store, tmp_path):
    good = fixtures.write_geojson(fixtures.stations(), str(tmp_path / "good.geojson"))
    import_layer(store, good, "stations")
    before = (store.list_versions("stations", active_only=False), sorted(os.listdir(store.layers_dir)),
              store.read_layer("stations").to_json())
    dup = fixtures.stations().iloc[[0, 0, 1]]
    bad_value = fixtures.stations().assign(kind=["bts", "bts", "satellite"])
    lines = fixtures.stations().set_geometry(fixtures.cable_routes().geometry.iloc[[0, 0, 1]].values)
    no_prj = fw.remove_prj(fixtures.write_shapefile(fixtures.stations(), str(tmp_path / "shp"), "tram"))
    bad_files = [
        fixtures.write_geojson(dup.reset_index(drop=True), str(tmp_path / "dup.geojson")),
        fixtures.write_geojson(bad_value, str(tmp_path / "value.geojson")),
        fixtures.write_geojson(lines, str(tmp_path / "lines.geojson")),
        no_prj,
        fw.write_zip(str(tmp_path / "bomb.zip"), {"zeros.geojson": bytes(5_000_000)}),
        fw.write_csv(fixtures.stations(), str(tmp_path / "swap.csv"), swap=True),
    ]
    for path in bad_files:
        with pytest.raises(BadInput):
            import_layer(store, path, "stations")
    after = (store.list_versions("stations", active_only=False), sorted(os.listdir(store.layers_dir)),
             store.read_layer("stations").to_json())
    assert after == before
    assert [v.version for v in after[0]] == [1] and after[0][0].active and after[0][0].feature_count == 3
    assert after[1] == ["stations_v1.arrow"]


def test_report_is_kept_with_the_version(store, tmp_path):
    from webmap.importer import file_sha256

    frame, _, _ = fw.vn2000_stations()
    path = fixtures.write_shapefile(frame, str(tmp_path / "shp"), "tram")
    zipped = fw.write_zip(str(tmp_path / "tram.zip"), fw.folder_members(str(tmp_path / "shp")))
    report = import_layer(store, zipped, "stations")
    (version,) = store.list_versions("stations")
    assert version.source_name == "tram.zip"
    assert version.sha256 == report.sha256 == file_sha256(zipped)
    assert version.crs == "EPSG:5897" and version.created_at.endswith("+00:00")
    kept = version.report
    assert kept["features_read"] == kept["features_kept"] == 3
    assert kept["encoding"] == "utf-8" and "EPSG:6960" in kept["transformation"]
    assert kept["warnings"] == report.warnings
    text = "\n".join(report.lines())
    for fragment in ("layer stations <- tram.zip (shapefile)", "3 read, 3 kept, 0 repaired", "CRS: VN-2000",
                     "text encoding: utf-8", "stored as version 1"):
        assert fragment in text
    assert os.path.exists(path)


def test_negative_numbers_from_a_csv_are_exported_as_numbers(store, tmp_path):
    frame = fixtures.stations()
    frame["do_cao"] = [-1.5, 2.0, -3.25]
    import_layer(store, fw.write_csv(frame, str(tmp_path / "tram.csv")), "stations")
    out = str(tmp_path / "out.csv")
    export_layer(store.read_layer("stations"), "stations", "csv", out)
    with open(out, encoding="utf-8-sig", newline="") as fh:
        assert [row["do_cao"] for row in csv.DictReader(fh)] == ["-1.5", "2.0", "-3.25"]
