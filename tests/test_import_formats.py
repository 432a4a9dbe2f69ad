"""Every accepted format, text encoding and CRS, through real files read by the real GDAL drivers.

The files are written by the tests (tests/fixtures.py, tests/format_writers.py) from the hand-checkable
dataset, imported with ``import_layer`` into a real store, and read back from it.
"""

from __future__ import annotations

import json
import os
import unicodedata

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj
import pytest
from pyproj.enums import TransformDirection

import fixtures
import format_writers as fw
from webmap.errors import BadInput, CrsError, EncodingError
from webmap.importer import import_layer

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # GDAL notes on laundered DBF names

NAMES = ["Trạm BTS Cái Khế 01", "Tổng đài Ninh Kiều", "Bưu cục Cờ Đỏ"]
ADDRESSES = ["Phường Cái Khế", "Đường 3 Tháng 2", "Thị trấn Cờ Đỏ"]
GEOD = pyproj.Geod(ellps="WGS84")


def assert_stations(store, kind="stations", count=3):
    gdf = store.read_layer(kind).sort_values("id").reset_index(drop=True)
    assert len(gdf) == count
    assert list(gdf["id"]) == ["S-001", "S-002", "S-003"][:count]
    assert list(gdf["name"]) == NAMES[:count]
    assert list(gdf["address"]) == ADDRESSES[:count]
    expected = fixtures.stations().iloc[:count]
    assert np.allclose(gdf.geometry.x, expected.geometry.x, atol=1e-9)
    assert np.allclose(gdf.geometry.y, expected.geometry.y, atol=1e-9)
    return gdf


def distances_m(gdf, lon, lat):
    return np.asarray(GEOD.inv(gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy(), lon, lat)[2])


# -- formats -----------------------------------------------------------------------------------------
def test_shapefile_with_sidecars(store, tmp_path):
    path = fixtures.write_shapefile(fixtures.stations(), str(tmp_path / "shp"), "tram")
    assert {os.path.splitext(n)[1] for n in os.listdir(tmp_path / "shp")} >= {".shp", ".shx", ".dbf", ".prj", ".cpg"}
    report = import_layer(store, path, "stations")
    assert report.format == "shapefile" and report.encoding == "utf-8"
    assert (report.features_read, report.features_kept) == (3, 3)
    assert_stations(store)


def test_shapefile_without_its_dbf_is_refused(store, tmp_path):
    path = fixtures.write_shapefile(fixtures.stations(), str(tmp_path / "shp"), "tram")
    os.remove(tmp_path / "shp" / "tram.dbf")
    with pytest.raises(BadInput, match=r"no \.dbf"):
        import_layer(store, path, "stations")


@pytest.mark.parametrize("prefix", ["", "du_lieu/tram/"])
def test_zip_holding_a_shapefile(store, tmp_path, prefix):
    fixtures.write_shapefile(fixtures.stations(), str(tmp_path / "shp"), "tram")
    path = fw.write_zip(str(tmp_path / "tram.zip"), fw.folder_members(str(tmp_path / "shp"), prefix))
    report = import_layer(store, path, "stations")
    assert report.source == "tram.zip" and report.format == "shapefile"
    assert_stations(store)


def test_zip_with_several_layers_needs_member(store, tmp_path):
    fixtures.write_shapefile(fixtures.stations(), str(tmp_path / "shp"), "tram_vtsh")
    fixtures.write_shapefile(fixtures.stations().iloc[:1], str(tmp_path / "shp"), "tram_bdtm")
    members = fw.folder_members(str(tmp_path / "shp"), "data/")
    members["__MACOSX/data/._tram_vtsh.shp"] = b"\x00\x05\x16\x07"  # resource-fork junk is not a layer
    path = fw.write_zip(str(tmp_path / "two.zip"), members)
    with pytest.raises(BadInput) as caught:
        import_layer(store, path, "stations")
    assert "--member" in str(caught.value)
    assert "data/tram_bdtm.shp" in str(caught.value) and "data/tram_vtsh.shp" in str(caught.value)
    with pytest.raises(BadInput, match="tram_bdtm"):
        import_layer(store, path, "stations", member="nope")
    import_layer(store, path, "stations", member="tram_bdtm")
    assert_stations(store, count=1)
    import_layer(store, path, "stations", member="data/tram_vtsh.shp")
    assert_stations(store)


@pytest.mark.parametrize("ext", [".geojson", ".json"])
def test_geojson(store, tmp_path, ext):
    path = fixtures.write_geojson(fixtures.stations(), str(tmp_path / f"tram{ext}"))
    report = import_layer(store, path, "stations")
    assert report.format == "geojson"
    assert_stations(store)


def test_geopackage_with_several_layers_needs_member(store, tmp_path):
    path = str(tmp_path / "hạ_tầng.gpkg")
    pyogrio.write_dataframe(fixtures.stations(), path, layer="tram", driver="GPKG")
    pyogrio.write_dataframe(fixtures.cable_routes(), path, layer="tuyen_cap", driver="GPKG")
    with pytest.raises(BadInput, match=r"2 layers: choose one with --member \(tram, tuyen_cap\)"):
        import_layer(store, path, "stations")
    report = import_layer(store, path, "stations", member="tram")
    assert report.format == "gpkg (layer tram)"
    assert_stations(store)
    import_layer(store, path, "cable_routes", member="tuyen_cap")
    assert sorted(store.read_layer("cable_routes")["id"]) == ["C-001", "C-002"]


def test_geopackage_inside_a_zip_takes_member_as_its_layer(store, tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    pyogrio.write_dataframe(fixtures.stations(), str(folder / "x.gpkg"), layer="tram", driver="GPKG")
    pyogrio.write_dataframe(fixtures.cable_routes(), str(folder / "x.gpkg"), layer="cap", driver="GPKG")
    path = fw.write_zip(str(tmp_path / "g.zip"), fw.folder_members(str(folder)))
    with pytest.raises(BadInput, match=r"\(tram, cap\)"):
        import_layer(store, path, "stations")
    import_layer(store, path, "stations", member="tram")
    assert_stations(store)


def test_kml_folders_are_merged(store, tmp_path):
    st = fixtures.stations()
    path = fw.write_kml({"Ninh Kiều": st.iloc[:2], "Cờ Đỏ": st.iloc[2:]}, str(tmp_path / "tram.kml"))
    report = import_layer(store, path, "stations")
    assert report.format == "kml"
    assert any("Ninh Kiều, Cờ Đỏ" in w for w in report.warnings)
    gdf = assert_stations(store)
    assert "altitudeMode" not in gdf.columns and "tessellate" not in (gdf["extra"].iloc[0] or "")


def test_kmz(store, tmp_path):
    st = fixtures.stations()
    path = fw.write_kmz({"Ninh Kiều": st.iloc[:2], "Cờ Đỏ": st.iloc[2:]}, str(tmp_path / "tram.kmz"))
    import_layer(store, path, "stations")
    assert_stations(store)


def test_kml_written_by_gdal_keeps_its_own_id_field(store, tmp_path):
    """LIBKML reads the placemark's id attribute as "id" and renames a data field "id" to "id2"."""
    path = str(tmp_path / "tram.kml")
    pyogrio.write_dataframe(fixtures.stations(), path, driver="KML")
    import_layer(store, path, "stations")
    gdf = assert_stations(store)
    assert "kml_placemark_id" in gdf["extra"].iloc[0]


@pytest.mark.parametrize("ext", [".tab", ".mif"])
def test_mapinfo(store, tmp_path, ext):
    path = fw.write_mapinfo(fixtures.stations(), str(tmp_path / f"tram{ext}"))
    report = import_layer(store, path, "stations")
    assert report.format == "mapinfo"
    assert_stations(store)


@pytest.mark.parametrize(
    "lon, lat",
    [("lon", "lat"), ("Longitude", "Latitude"), ("kinh_do", "vi_do"), ("Kinh độ", "Vĩ độ"), ("LNG", "LAT")],
)
def test_csv_with_lonlat_columns(store, tmp_path, lon, lat):
    path = fw.write_csv(fixtures.stations(), str(tmp_path / "tram.csv"), lon=lon, lat=lat)
    report = import_layer(store, path, "stations")
    assert report.format == "csv" and "EPSG:4326" in report.transformation
    assert any(f"{lon}/{lat}" in w for w in report.warnings)
    gdf = assert_stations(store)
    assert gdf["extra"].isna().all()  # the coordinate columns are not kept as properties


def test_csv_semicolons_and_decimal_commas(store, tmp_path):
    path = fw.write_csv(fixtures.stations(), str(tmp_path / "tram.csv"), sep=";", decimal=",")
    assert "105,78;10,03" in open(path, encoding="utf-8").read()
    import_layer(store, path, "stations")
    assert_stations(store)


def test_csv_with_xy_in_vn2000_metres_and_crs(store, tmp_path):
    lon, lat = fixtures.stations().geometry.x.to_numpy(), fixtures.stations().geometry.y.to_numpy()
    x, y = fw.epsg6960().transform(lon, lat, direction=TransformDirection.INVERSE)
    frame = fixtures.stations().set_geometry(gpd.points_from_xy(x, y), crs=None)
    path = fw.write_csv(frame, str(tmp_path / "tram.csv"), lon="X", lat="Y")
    with pytest.raises(CrsError, match="EPSG:5897"):
        import_layer(store, path, "stations")
    report = import_layer(store, path, "stations", crs="EPSG:5897")
    assert "EPSG:6960" in report.transformation
    assert distances_m(store.read_layer("stations").sort_values("id"), lon, lat).max() < 0.01


def test_csv_with_xy_in_degrees_needs_crs(store, tmp_path):
    path = fw.write_csv(fixtures.stations(), str(tmp_path / "tram.csv"), lon="x", lat="y")
    with pytest.raises(CrsError, match="EPSG:4326"):
        import_layer(store, path, "stations")
    import_layer(store, path, "stations", crs="EPSG:4326")
    assert_stations(store)


# -- text encodings ----------------------------------------------------------------------------------
def legacy_stations(address="địa_chỉ"):
    """Stations with a Vietnamese field name (địa_chỉ -> address, through its alias) and an extra column.

    "địa_chỉ" takes 7-9 bytes in TCVN3, VNI or Windows-1258 but 12 in UTF-8: too long for a DBF field name.
    """
    frame = fixtures.stations().rename(columns={"address": address})
    frame["ghi_chú"] = ["Cờ Đỏ", "Đường 3 Tháng 2", "Phường Cái Khế"]
    return frame


def assert_legacy_decoded(store):
    gdf = assert_stations(store)
    extras = [json.loads(v) for v in gdf["extra"]]
    assert [e["ghi_chú"] for e in extras] == ["Cờ Đỏ", "Đường 3 Tháng 2", "Phường Cái Khế"]
    for value in list(gdf["name"]) + list(gdf["address"]) + [k for e in extras for k in e] + [v for e in extras for v in e.values()]:
        assert unicodedata.is_normalized("NFC", value)


def test_utf8_is_the_default_without_cpg(store, tmp_path):
    path = fixtures.write_shapefile(legacy_stations(address="address"), str(tmp_path / "shp"), "tram")
    os.remove(tmp_path / "shp" / "tram.cpg")
    report = import_layer(store, path, "stations")
    assert report.encoding == "utf-8"
    assert_legacy_decoded(store)


@pytest.mark.parametrize("cpg", [True, False])
def test_utf8_field_name_cut_mid_letter_by_gdal(store, tmp_path, cpg):
    """GDAL cuts "địa_chỉ_trạm" to 10 bytes, inside the "ỉ": pyogrio cannot decode the name."""
    frame = fixtures.stations()
    frame["địa_chỉ_trạm"] = ADDRESSES
    path = fixtures.write_shapefile(frame, str(tmp_path / "shp"), "tram")
    assert "\u0111\u1ecba_ch".encode() + b"\xe1\x00" in open(tmp_path / "shp" / "tram.dbf", "rb").read()
    if not cpg:
        os.remove(tmp_path / "shp" / "tram.cpg")
    report = import_layer(store, path, "stations")
    assert report.encoding == "utf-8"
    gdf = assert_stations(store)
    assert gdf["extra"].iloc[0] == '{"\u0111\u1ecba_ch":"Phường Cái Khế"}'


@pytest.mark.parametrize("encoding", ["tcvn3", "vni", "cp1258"])
def test_legacy_dbf_without_cpg_is_detected(store, tmp_path, encoding):
    path = fw.write_legacy_shapefile(legacy_stations(), str(tmp_path / "shp"), "tram", encoding)
    assert not os.path.exists(tmp_path / "shp" / "tram.cpg")
    raw = open(tmp_path / "shp" / "tram.dbf", "rb").read()
    assert fw.legacy_bytes("Phường Cái Khế", encoding) in raw and fw.legacy_bytes("ghi_chú", encoding) in raw
    assert "Phường".encode("utf-8") not in raw
    report = import_layer(store, path, "stations")
    assert report.encoding == encoding
    assert f"text encoding detected: {encoding}" in report.warnings
    assert_legacy_decoded(store)


def test_cp1258_bytes_are_realistic():
    # tone marks as combining characters, base letters ơ ư â ê ô ă đ as single bytes
    assert fw.cp1258_bytes("Phường") == b"Ph\xfd\xf5\xccng"
    assert fw.cp1258_bytes("Đỏ") == b"\xd0o\xd2"


def test_cpg_is_honoured(store, tmp_path):
    path = fw.write_legacy_shapefile(legacy_stations(), str(tmp_path / "shp"), "tram", "cp1258", cpg="ANSI 1258")
    report = import_layer(store, path, "stations")
    assert report.encoding == "cp1258" and ".cpg declares cp1258" in report.warnings
    assert not any("detected" in w for w in report.warnings)
    assert_legacy_decoded(store)


def test_encoding_option_overrides_a_wrong_cpg(store, tmp_path):
    path = fw.write_legacy_shapefile(legacy_stations(), str(tmp_path / "shp"), "tram", "tcvn3", cpg="1252")
    import_layer(store, path, "stations")
    assert store.read_layer("stations")["address"].iloc[0] != "Phường Cái Khế"  # the .cpg lies
    report = import_layer(store, path, "stations", encoding="tcvn3")
    assert report.encoding == "tcvn3"
    assert_legacy_decoded(store)


@pytest.mark.parametrize("spelling, encoding", [("VNI-Windows", "vni"), ("ABC", "tcvn3"), ("TCVN-3", "tcvn3"),
                                                ("Windows-1258", "cp1258")])
def test_encoding_option_spellings(store, tmp_path, spelling, encoding):
    path = fw.write_legacy_shapefile(legacy_stations(), str(tmp_path / "shp"), "tram", encoding, cpg="UTF-8")
    assert import_layer(store, path, "stations", encoding=spelling).encoding == encoding
    assert_legacy_decoded(store)


@pytest.mark.parametrize("ext", [".tab", ".mif"])
def test_mapinfo_windows_vietnamese_charset(store, tmp_path, ext):
    path = fw.write_mapinfo(legacy_stations(), str(tmp_path / f"tram{ext}"), encoding="cp1258",
                            charset="WindowsVietnamese")
    header = open(path, "rb").read()
    data = open(path[:-4] + (".mid" if ext == ".mif" else ".dat"), "rb").read()
    assert b'Charset "WindowsVietnamese"' in header and fw.cp1258_bytes("ghi_chú") in header
    assert fw.cp1258_bytes("Phường Cái Khế") in data
    report = import_layer(store, path, "stations")
    assert report.encoding == "cp1258" and "MapInfo charset declares cp1258" in report.warnings
    assert_legacy_decoded(store)


def test_legacy_csv_is_detected(store, tmp_path):
    path = fw.write_csv(legacy_stations(), str(tmp_path / "tram.csv"), encoding="tcvn3")
    report = import_layer(store, path, "stations")
    assert report.encoding == "tcvn3"
    assert_legacy_decoded(store)


@pytest.mark.parametrize("encoding", ["tcvn3", "vni"])
def test_geojson_holding_legacy_bytes(store, tmp_path, encoding):
    """Not valid UTF-8 (old converters copied the DBF bytes): detected, or named with --encoding."""
    path = fixtures.write_geojson(legacy_stations(), str(tmp_path / "tram.geojson"))
    text = open(path, encoding="utf-8").read()
    with open(path, "wb") as fh:
        fh.write(fw.legacy_bytes(text, encoding))
    report = import_layer(store, path, "stations")
    assert report.encoding == encoding
    assert_legacy_decoded(store)
    import_layer(store, path, "stations", encoding=encoding)
    assert_legacy_decoded(store)


def test_legacy_encoding_option_on_unicode_text_is_refused(store, tmp_path):
    path = fixtures.write_geojson(legacy_stations(), str(tmp_path / "tram.geojson"))
    with pytest.raises(EncodingError, match="already Unicode"):
        import_layer(store, path, "stations", encoding="tcvn3")
    assert store.list_versions("stations") == []


# -- CRS ---------------------------------------------------------------------------------------------
# The datum trap: a VN-2000 TM-3 grid declared on WGS 84 (ESRI WKT, as hand-made .prj files have it).
TRAP_PRJ = (
    'PROJCS["{name}",GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
    'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],PARAMETER["Central_Meridian",105.0],'
    'PARAMETER["Scale_Factor",0.9999],PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]'
)


def test_vn2000_tm3_shapefile_lands_at_the_right_place(store, tmp_path):
    frame, lon, lat = fw.vn2000_stations()
    path = fixtures.write_shapefile(frame, str(tmp_path / "shp"), "tram")
    assert "Vietnam_2000" in open(tmp_path / "shp" / "tram.prj").read()
    report = import_layer(store, path, "stations")
    assert report.transformation.startswith("VN-2000 / TM-3 zone 482 (EPSG:5897)") and "EPSG:6960" in report.transformation
    assert distances_m(store.read_layer("stations").sort_values("id"), lon, lat).max() < 1.0
    (version,) = store.list_versions("stations")
    assert "5897" in version.crs


@pytest.mark.parametrize("name", ["Transverse_Mercator", "TM3_CanTho"])
def test_vn2000_prj_lacking_the_shift_is_corrected_and_reported(store, tmp_path, name):
    frame, lon, lat = fw.vn2000_stations()
    path = fw.write_prj(fixtures.write_shapefile(frame, str(tmp_path / "shp"), "tram"), TRAP_PRJ.format(name=name))
    literal = pyproj.Transformer.from_crs(pyproj.CRS(TRAP_PRJ.format(name=name)), "EPSG:4326", always_xy=True)
    off = GEOD.inv(*literal.transform(frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()), lon, lat)[2]
    assert np.all((np.asarray(off) > 200) & (np.asarray(off) < 250))  # taken literally it would land ~225 m off
    report = import_layer(store, path, "stations")
    assert distances_m(store.read_layer("stations").sort_values("id"), lon, lat).max() < 1.0
    assert "read as VN-2000" in report.transformation and "EPSG:6960" in report.transformation
    (warning,) = [w for w in report.warnings if "VN-2000" in w]
    assert "no VN-2000 -> WGS 84 shift" in warning and "225 m" in warning
    stored_report = store.list_versions("stations")[0].report
    assert warning in stored_report["warnings"]


@pytest.mark.parametrize("ext", [".tab", ".mif"])
def test_vn2000_mapinfo_written_by_gdal_is_the_trap_too(store, tmp_path, ext):
    """GDAL's MapInfo writer keeps the TM-3 grid but writes datum 104 (WGS 84): the shift is lost."""
    frame, lon, lat = fw.vn2000_stations()
    path = str(tmp_path / f"tram{ext}")
    pyogrio.write_dataframe(frame, path, driver="MapInfo File")
    if ext == ".mif":
        assert 'CoordSys Earth Projection 8, 104, "m", 105, 0, 0.9999, 500000, 0' in open(path).read()
    report = import_layer(store, path, "stations")
    assert distances_m(store.read_layer("stations").sort_values("id"), lon, lat).max() < 1.0
    assert any("no VN-2000 -> WGS 84 shift" in w for w in report.warnings)


def test_vn2000_trap_with_a_vn2000_projcs_name_is_reported(store, tmp_path):
    frame, lon, lat = fw.vn2000_stations()
    path = fw.write_prj(fixtures.write_shapefile(frame, str(tmp_path / "shp"), "tram"),
                        TRAP_PRJ.format(name="VN_2000_TM3_105"))
    report = import_layer(store, path, "stations")
    assert distances_m(store.read_layer("stations").sort_values("id"), lon, lat).max() < 1.0
    assert any("no VN-2000 -> WGS 84 shift" in w for w in report.warnings)


@pytest.mark.parametrize("projected, likely", [(True, "EPSG:5897"), (False, "EPSG:4326")])
def test_missing_prj_is_refused_naming_the_likely_crs(store, tmp_path, projected, likely):
    frame = fw.vn2000_stations()[0] if projected else fixtures.stations()
    path = fw.remove_prj(fixtures.write_shapefile(frame, str(tmp_path / "shp"), "tram"))
    with pytest.raises(CrsError) as caught:
        import_layer(store, path, "stations")
    message = str(caught.value)
    assert "no coordinate reference system" in message and "--crs" in message
    assert message.split("look like ")[1].startswith(likely)
    assert store.list_versions("stations") == []


def test_crs_option_supplies_the_missing_prj(store, tmp_path):
    frame, lon, lat = fw.vn2000_stations()
    path = fw.remove_prj(fixtures.write_shapefile(frame, str(tmp_path / "shp"), "tram"))
    report = import_layer(store, path, "stations", crs="EPSG:5897")
    assert "EPSG:6960" in report.transformation
    assert distances_m(store.read_layer("stations").sort_values("id"), lon, lat).max() < 1.0
    assert store.list_versions("stations")[0].crs == "EPSG:5897"
