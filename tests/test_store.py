"""The embedded store (SQLite catalogue, Arrow version files): versions, provenance, atomic replacement, queries."""

import os
import shutil
import sqlite3

import pyogrio
import pytest

import fixtures
from webmap.importer import import_layer
from webmap.store import FeatureQuery
from webmap.store.embedded import EmbeddedStore


@pytest.fixture
def stations_file(tmp_path):
    return fixtures.write_geojson(fixtures.stations(), str(tmp_path / "stations.geojson"))


def test_a_version_file_opens_as_it_is_in_geopandas(store, stations_file):
    """The file is GeoArrow: geopandas (and GDAL's Arrow driver) read it without webmap."""
    import geopandas as gpd
    import pyarrow as pa

    import_layer(store, stations_file, "stations")
    path = store.table_path("stations_v1")
    assert path.endswith("stations_v1.arrow")
    outside = gpd.read_feather(path)
    assert outside.crs.to_epsg() == 4326 and len(outside) == 3
    ours = store.read_layer("stations")
    assert list(outside["id"]) == list(ours["id"]) and outside.geometry.geom_equals(ours.geometry).all()
    field = pa.ipc.open_file(path).schema.field("geometry")
    assert field.metadata[b"ARROW:extension:name"] == b"geoarrow.wkb"


def test_versions_keep_provenance(store, stations_file):
    report = import_layer(store, stations_file, "stations")
    (version,) = store.list_versions("stations")
    assert version.version == report.version == 1
    assert version.source_name == "stations.geojson"
    assert len(version.sha256) == 64 and version.sha256 == report.sha256
    assert version.feature_count == 3
    assert version.report["features_kept"] == 3
    import_layer(store, stations_file, "stations")
    assert [v.version for v in store.list_versions("stations", active_only=False)] == [2, 1]
    assert store.list_versions("stations")[0].version == 2


def test_old_versions_are_pruned(store, stations_file):
    for _ in range(5):
        import_layer(store, stations_file, "stations")
    versions = store.list_versions("stations", active_only=False)
    assert [v.version for v in versions] == [5, 4, 3]
    assert not os.path.exists(store.table_path("stations_v1"))
    assert os.path.exists(store.table_path("stations_v5"))


class FailingStore(EmbeddedStore):
    """The real store, with a failure injected after the new table is written, before activation."""

    def _before_activate(self, kind, version):
        raise RuntimeError("disk full (injected)")


def test_failure_mid_import_leaves_previous_version(instance, tmp_path, stations_file):
    path = str(tmp_path / "store")
    good = EmbeddedStore(path)
    import_layer(good, stations_file, "stations")
    before = good.read_layer("stations")
    failing = FailingStore(path)
    smaller = fixtures.write_geojson(fixtures.stations().iloc[:1], str(tmp_path / "one.geojson"))
    with pytest.raises(RuntimeError):
        import_layer(failing, smaller, "stations")
    after = EmbeddedStore(path)
    assert [v.version for v in after.list_versions("stations", active_only=False)] == [1]
    assert len(after.read_layer("stations")) == len(before) == 3
    assert sorted(os.listdir(os.path.join(path, "layers"))) == ["stations_v1.arrow"]  # the new file was removed


def test_orphan_table_from_a_crash_is_cleaned(store, stations_file):
    import_layer(store, stations_file, "stations")
    # simulate crashes after a file was written but before it was registered (and one of an earlier release)
    shutil.copyfile(store.table_path("stations_v1"), store.table_path("stations_v7"))
    shutil.copyfile(store.table_path("stations_v1"), os.path.join(store.layers_dir, ".tmp-stations_v8.arrow"))
    pyogrio.write_dataframe(fixtures.stations(), os.path.join(store.layers_dir, ".tmp-stations_v9.gpkg"), layer="stations_v9",
                            driver="GPKG")
    import_layer(store, stations_file, "stations")
    assert sorted(os.listdir(store.layers_dir)) == ["stations_v1.arrow", "stations_v2.arrow"]


def test_bbox_query_uses_the_index_and_limit(store, tmp_path):
    path = fixtures.write_geojson(fixtures.incidents(), str(tmp_path / "incidents.geojson"))
    import_layer(store, path, "incidents")
    near = (105.769, 10.029, 105.771, 10.0316)  # holds the 50 m and 150 m incidents only
    gdf, exceeded = store.query_features("incidents", FeatureQuery(bbox=near, limit=10))
    assert sorted(gdf["id"]) == ["I-050", "I-150"] and not exceeded
    gdf, exceeded = store.query_features("incidents", FeatureQuery(bbox=near, limit=1))
    assert len(gdf) == 1 and exceeded
    gdf, _ = store.query_features("incidents", FeatureQuery(in_filters={"type": ["fee_fraud"]}))
    assert list(gdf["id"]) == ["I-2000"]
    gdf, _ = store.query_features("incidents", FeatureQuery(min_filters={"occurred_at": "2025-02-01"},
                                                           max_filters={"occurred_at": "2026-01-01"}))
    assert list(gdf["id"]) == ["I-150"]


def test_search_ignores_diacritics_and_case(store, tmp_path):
    import_layer(store, fixtures.write_geojson(fixtures.stations(), str(tmp_path / "s.geojson")), "stations")
    hits = store.search("co do", ["stations"], 10)
    assert [h["row"]["id"] for h in hits] == ["S-003"]
    assert hits[0]["bbox"][0] == pytest.approx(105.772)
    assert store.search("100%", ["stations"], 10) == []  # LIKE wildcards are escaped


def test_wal_mode_lets_readers_in_during_writes(store):
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


@pytest.mark.parametrize(
    "bbox",
    [
        (100.0, 5.0, 110.0, 15.0),  # holds the whole layer
        (105.764, 10.024, 105.775, 10.036),  # most of it
        (105.779, 10.029, 105.781, 10.031),  # a small view
        (106.5, 11.0, 106.6, 11.1),  # nothing there
    ],
)
def test_every_bbox_returns_what_the_box_holds(store, tmp_path, bbox):
    import shapely

    import_layer(store, fixtures.write_geojson(fixtures.stations(), str(tmp_path / "s.geojson")), "stations")
    everything = store.read_layer("stations")
    expected = sorted(everything[shapely.intersects(everything.geometry.values, shapely.box(*bbox))]["id"])
    gdf, _ = store.query_features("stations", FeatureQuery(bbox=bbox, limit=100))
    assert sorted(gdf["id"]) == expected


def test_a_store_of_an_earlier_release_is_read_and_converted(tmp_path):
    """Stores made before the Arrow format hold one GeoPackage per version: read as they were (rows, order,
    appended rows leading the view), each turned into an Arrow file the first time it is read."""
    import json

    folder = tmp_path / "old-store"
    store = EmbeddedStore(str(folder))
    incidents = fixtures.incidents().iloc[::-1].reset_index(drop=True)  # the old importer stored newest first
    incidents["_search"] = incidents["id"].str.lower()
    legacy = os.path.join(store.layers_dir, "incidents_v2.gpkg")
    pyogrio.write_dataframe(incidents, legacy, layer="incidents_v2", driver="GPKG")
    con = sqlite3.connect(store.path)
    with con:  # as the previous release registered an import (v1) followed by one appended report (v2)
        con.execute("INSERT INTO webmap_versions VALUES ('incidents', 2, 'incidents_v2', '2026-11-01T00:00:00+00:00',"
                    " 'old.gpkg', ?, 'EPSG:4326', 3, ?, ?, 1)",
                    ("0" * 64, json.dumps([105.77, 10.03, 105.77, 10.05]),
                     json.dumps({"operation": "append", "first_appended_fid": 3})))
    con.close()
    reopened = EmbeddedStore(str(folder))
    gdf, exceeded = reopened.query_features("incidents", FeatureQuery(limit=2))
    assert list(gdf["id"]) == ["I-050", "I-2000"] and exceeded  # the appended row (fid 3) leads
    assert list(reopened.read_layer("incidents")["id"]) == ["I-2000", "I-150", "I-050"]
    assert sorted(os.listdir(store.layers_dir)) == ["incidents_v2.arrow"]
    version = reopened.append_features("incidents", reopened.read_layer("incidents").iloc[:1].assign(id="R-1"), {})
    assert version.version == 3 and version.report["first_appended_fid"] == 3
    assert list(reopened.query_features("incidents", FeatureQuery(limit=3))[0]["id"]) == ["R-1", "I-050", "I-2000"]
