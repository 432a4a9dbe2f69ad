"""The Arrow version files and the import's fast paths: stored bytes, view ranks, typed filters, mixed types.

Each test reads back through the real store (memory-mapped files written by the real import) and, where
it matters, through geopandas as an outside reader would.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pytest
import shapely
from shapely.geometry import Point, Polygon

import fixtures
from webmap.catalog import get_layer
from webmap.errors import SchemaError
from webmap.importer import import_layer, prepare_layer, view_rank
from webmap.store import FeatureQuery
from webmap.store import version_file


def stored_wkb(store, kind):
    path = store.table_path(store.list_versions(kind)[0].kind + f"_v{store.list_versions(kind)[0].version}")
    return pa.ipc.open_file(path).read_all().column("geometry").to_pylist()


def test_untouched_geometries_are_stored_as_the_file_gave_them(store, tmp_path):
    path = fixtures.write_geojson(fixtures.incidents(), str(tmp_path / "incidents.geojson"))
    prepared = prepare_layer(path, "incidents")
    assert prepared.wkb is not None  # WGS 84 points, nothing repaired: the file's own bytes
    assert shapely.equals(shapely.from_wkb(np.array(prepared.wkb.to_pylist(), dtype=object)),
                          prepared.gdf.geometry.values).all()
    import_layer(store, path, "incidents")
    assert stored_wkb(store, "incidents") == prepared.wkb.to_pylist()


def test_changed_geometries_are_written_again(store, tmp_path):
    """Reprojected, repaired or re-oriented geometries are stored as changed, never as read."""
    vn2000 = fixtures.incidents().to_crs("EPSG:5897")
    path = fixtures.write_geojson(vn2000, str(tmp_path / "tm3.geojson"))
    prepared = prepare_layer(path, "incidents", crs="EPSG:5897")
    assert prepared.wkb is None
    import_layer(store, path, "incidents", crs="EPSG:5897")
    stored = shapely.from_wkb(np.array(stored_wkb(store, "incidents"), dtype=object))
    assert shapely.get_x(stored) == pytest.approx([105.77] * 3, abs=0.01)  # lon/lat, not metres
    # a clockwise exterior ring (re-oriented for RFC 7946) and a bow-tie (repaired)
    clockwise = Polygon([(105.74, 10.0), (105.74, 10.06), (105.80, 10.06), (105.80, 10.0)])
    districts = fixtures.districts().set_geometry([clockwise])
    prepared = prepare_layer(fixtures.write_geojson(districts, str(tmp_path / "d.geojson")), "districts")
    assert prepared.wkb is None and prepared.gdf.geometry.iloc[0].exterior.is_ccw


def test_rows_without_geometry_are_dropped_before_their_attributes_are_checked(store, tmp_path):
    """The attributes are mapped on another thread while geometries are checked; a row then dropped for
    its empty geometry must not fail the import with its own bad value (as with a sequential import)."""
    gdf = fixtures.incidents()
    gdf["type"] = gdf["type"].astype(object)
    gdf.loc[2, "type"] = "not-a-type"
    gdf = gdf.set_geometry([gdf.geometry.iloc[0], gdf.geometry.iloc[1], None])
    path = fixtures.write_geojson(gdf, str(tmp_path / "one-empty.geojson"))
    report = import_layer(store, path, "incidents")
    assert (report.features_read, report.features_kept, report.dropped_empty) == (3, 2, 1)
    assert sorted(store.read_layer("incidents")["id"]) == ["I-050", "I-150"]
    # the same bad value on a row that is kept is refused, with its row number
    gdf = gdf.set_geometry([Point(105.77, 10.03)] * 3)
    with pytest.raises(SchemaError, match="not-a-type"):
        prepare_layer(fixtures.write_geojson(gdf, str(tmp_path / "bad.geojson")), "incidents")


def test_view_rank_puts_the_newest_first_and_empty_times_last():
    layer = get_layer("incidents")
    frame = gpd.GeoDataFrame({"occurred_at": ["2025-01-10T02:30:00+07:00", None, "2026-03-01T12:00:00+07:00",
                                              "2025-01-10T02:30:01+07:00"]},
                             geometry=[Point(0, 0)] * 4)
    assert list(view_rank(layer, frame)) == [2, 3, 0, 1]
    assert view_rank(get_layer("stations"), fixtures.stations()) is None  # no time field: file order


def test_filters_take_the_column_type(store, tmp_path):
    import_layer(store, fixtures.write_geojson(fixtures.incidents(), str(tmp_path / "i.geojson")), "incidents")

    def ids(**query):
        return sorted(store.query_features("incidents", FeatureQuery(**query))[0]["id"])

    assert ids(in_filters={"damage_vnd": ["2500000"]}) == ["I-150"]  # text for a number column
    assert ids(in_filters={"damage_vnd": [0, "not a number"]}) == ["I-2000"]
    assert ids(min_filters={"damage_vnd": 1}) == ["I-050", "I-150"]
    assert ids(in_filters={"no_such_field": ["x"]}) == []
    assert ids(null_or_in={"asset_id": []}) == ["I-2000"]
    assert store.summarize("incidents", FeatureQuery(in_filters={"no_such_field": ["x"]})) == (0, None)
    assert store.distinct_values("incidents", "no_such_field") == []
    assert store.distinct_values("incidents", "asset_id") == ["C-001"]


def test_query_rows_come_as_plain_values(store, tmp_path):
    """Query results hold Python scalars and None (what the GeoJSON writer and the access rules expect)."""
    import_layer(store, fixtures.write_geojson(fixtures.incidents(), str(tmp_path / "i.geojson")), "incidents")
    gdf, _ = store.query_features("incidents", FeatureQuery(in_filters={"id": ["I-2000"]}))
    row = gdf.drop(columns="geometry").iloc[0].to_dict()
    assert row["fid"] == 3 and row["damage_vnd"] == 0 and isinstance(row["damage_vnd"], int)
    assert row["asset_id"] is None and row["id"] == "I-2000"
    assert not set(version_file.INTERNAL) & set(gdf.columns)
    assert not set(version_file.INTERNAL) & set(store.read_layer("incidents").columns)


def test_an_appended_column_of_another_type_becomes_text(store, tmp_path):
    import_layer(store, fixtures.write_geojson(fixtures.incidents(), str(tmp_path / "i.geojson")), "incidents")
    row = store.read_layer("incidents").iloc[:1].copy()
    row["id"] = "R-1"
    row["damage_vnd"] = "khoảng 2 triệu"  # words where the version holds numbers
    store.append_features("incidents", row, {})
    values = store.read_layer("incidents").set_index("id")["damage_vnd"]
    assert values["R-1"] == "khoảng 2 triệu" and values["I-150"] == "2500000"
    store.update_features("incidents", ["I-050"], {"damage_vnd": 7}, {})
    assert store.read_layer("incidents").set_index("id")["damage_vnd"]["I-050"] == "7"


def test_a_mask_query_reads_geometries_only_for_candidates(store, tmp_path):
    """A mask (a district) keeps the rows whose geometry meets it, in view order, up to the limit."""
    import_layer(store, fixtures.write_geojson(fixtures.incidents(), str(tmp_path / "i.geojson")), "incidents")
    mask = Point(105.77, 10.03).buffer(0.0025)  # about 275 m: the 50 m and 150 m incidents
    gdf, exceeded = store.query_features("incidents", FeatureQuery(mask=mask, limit=1))
    assert list(gdf["id"]) == ["I-150"] and exceeded  # the newer of the two first
    assert store.summarize("incidents", FeatureQuery(mask=mask))[0] == 2
    assert store.query_features("incidents", FeatureQuery(mask=Polygon()))[0].empty


def test_a_damaged_version_file_is_a_clear_store_error(store, tmp_path):
    """A version file cut short (a full disk, a bad copy) is refused in one line that names it; the catalogue
    is left as it was."""
    from webmap.errors import StoreError

    import_layer(store, fixtures.write_geojson(fixtures.stations(), str(tmp_path / "s.geojson")), "stations")
    path = store.table_path("stations_v1")
    with open(path, "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(StoreError, match=r"cannot read stations_v1\.arrow") as caught:
        store.query_features("stations", FeatureQuery())
    assert "\n" not in str(caught.value)
    assert [v.version for v in store.list_versions("stations", active_only=False)] == [1]
