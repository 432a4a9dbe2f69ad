"""Small changes to a stored layer: append_features and update_features on the embedded store.

Each change is a new immutable version made from the rows of the active one; the version it was made from
stays as it was, and any failure leaves the store exactly as it was (catalogue, files and reads).
"""

from __future__ import annotations

import os

import geopandas as gpd
import pyarrow as pa
import pytest
from shapely.geometry import Point

import fixtures
from webmap.errors import BadInput, NotFound, StoreError
from webmap.importer import import_layer
from webmap.store import FeatureQuery
from webmap.store.embedded import EmbeddedStore, _Conflict

NEW_POINT = (105.7712, 10.0377)  # about 850 m north-east of the fixture cable's middle


@pytest.fixture
def loaded(store, tmp_path):
    """The store with the three fixture incidents imported as version 1."""
    import_layer(store, fixtures.write_geojson(fixtures.incidents(), str(tmp_path / "incidents.geojson")), "incidents")
    return store


def new_rows(store, ident="R-2026-000001", **values):
    """One incident row shaped like the stored ones (a stored row, copied and changed)."""
    row = store.read_layer("incidents").iloc[:1].copy()
    row["id"] = ident
    row["status"] = "reported"
    row["severity"] = "medium"
    row["source"] = "enterprise"
    row["description"] = "Đứt cáp tại cột 12"
    row["_search"] = f"{ident.lower()} dut cap tai cot 12"
    for name, value in values.items():
        row[name] = value
    return row.set_geometry(gpd.GeoSeries([Point(*NEW_POINT)], index=row.index, crs="EPSG:4326"))


def state(store, kind="incidents"):
    """Everything a failed change must leave untouched: catalogue rows, files, and what readers get."""
    versions = [(v.version, v.active, v.feature_count, v.sha256) for v in store.list_versions(kind, active_only=False)]
    files = sorted(os.listdir(store.layers_dir))
    rows = store.read_layer(kind).drop(columns="geometry").astype(str).to_dict("records")
    return versions, files, rows


def test_append_makes_a_new_version_and_keeps_the_old_one(loaded):
    version = loaded.append_features("incidents", new_rows(loaded), {"source_name": "report R-2026-000001 (vtsh.demo)"})
    assert version.version == 2 and version.active
    assert version.feature_count == 4
    assert version.source_name == "report R-2026-000001 (vtsh.demo)"
    assert version.report == {"operation": "append", "features_added": 1, "base_version": 1, "first_appended_fid": 4}
    assert len(version.sha256) == 64
    assert version.crs == loaded.list_versions("incidents", active_only=False)[1].crs
    # the extent grows east to take the new point (the fixture incidents lie on longitude 105.77, from 50 m to
    # 2 km north of latitude 10.03)
    old_bbox = loaded.list_versions("incidents", active_only=False)[1].bbox
    assert version.bbox == pytest.approx((old_bbox[0], old_bbox[1], NEW_POINT[0], old_bbox[3]))
    assert old_bbox[0] == old_bbox[2] == pytest.approx(105.77)
    gdf = loaded.read_layer("incidents")
    assert list(gdf["id"]) == ["I-050", "I-150", "I-2000", "R-2026-000001"]
    # version 1 is still there, unchanged, for its readers
    old = gpd.read_feather(loaded.table_path("incidents_v1"))
    assert list(old["id"]) == ["I-050", "I-150", "I-2000"]


def test_appended_rows_are_found_by_box_search_and_outside_readers(loaded):
    loaded.append_features("incidents", new_rows(loaded), {})
    box = (NEW_POINT[0] - 0.0002, NEW_POINT[1] - 0.0002, NEW_POINT[0] + 0.0002, NEW_POINT[1] + 0.0002)
    gdf, exceeded = loaded.query_features("incidents", FeatureQuery(bbox=box))
    assert list(gdf["id"]) == ["R-2026-000001"] and not exceeded
    assert loaded.summarize("incidents", FeatureQuery(bbox=box)) == (1, pytest.approx([*NEW_POINT, *NEW_POINT]))
    assert [hit["row"]["id"] for hit in loaded.search("dut cap", ["incidents"], 10)] == ["R-2026-000001"]
    outside = gpd.read_feather(loaded.table_path("incidents_v2"))
    assert list(outside["id"]) == ["I-050", "I-150", "I-2000", "R-2026-000001"]
    assert outside.geometry.iloc[-1].equals(Point(*NEW_POINT)) and outside.crs.to_epsg() == 4326
    # and the new version can be changed again
    loaded.append_features("incidents", new_rows(loaded, "R-2026-000002"), {})
    assert len(gpd.read_feather(loaded.table_path("incidents_v3"))) == 5


def test_append_adds_a_column_the_version_lacks(loaded):
    """(As incidents.reported_by_org was added to versions imported before it existed.)"""
    assert "reviewed_by" not in pa.ipc.open_file(loaded.table_path("incidents_v1")).schema.names
    loaded.append_features("incidents", new_rows(loaded, reviewed_by="CA-CT"), {})
    gdf = loaded.read_layer("incidents").set_index("id")
    assert gdf.loc["R-2026-000001", "reviewed_by"] == "CA-CT"
    assert gdf.drop(index="R-2026-000001")["reviewed_by"].isna().all()


def test_null_or_in_filter(loaded):
    """Rows whose field is empty or listed; on a version without the column, every row."""
    assert loaded.query_features("incidents", FeatureQuery(null_or_in={"reported_by_org": []}))[0].shape[0] == 3
    assert loaded.query_features("incidents", FeatureQuery(null_or_in={"reviewed_by": ["X"]}))[0].shape[0] == 3
    loaded.append_features("incidents", new_rows(loaded, "R-2026-000001", reported_by_org="VTSH"), {})
    loaded.append_features("incidents", new_rows(loaded, "R-2026-000002", reported_by_org="MKN"), {})

    def ids(values):
        query = FeatureQuery(null_or_in={"reported_by_org": values})
        found = set(loaded.query_features("incidents", query)[0]["id"])
        assert loaded.summarize("incidents", query)[0] == len(found)
        hits = {h["row"]["id"] for h in loaded.search("dut cap", ["incidents"], 10, filters={"incidents": query})}
        assert hits == found & {"R-2026-000001", "R-2026-000002"}  # only these two say "đứt cáp"
        return found

    assert ids([]) == {"I-050", "I-150", "I-2000"}
    assert ids(["VTSH"]) == {"I-050", "I-150", "I-2000", "R-2026-000001"}
    assert ids(["VTSH", "MKN"]) == {"I-050", "I-150", "I-2000", "R-2026-000001", "R-2026-000002"}


def test_update_sets_values_on_the_given_ids_only(loaded):
    before = loaded.read_layer("incidents").set_index("id")
    version = loaded.update_features("incidents", ["I-150"], {"status": "verified", "severity": "high"},
                                     {"source_name": "verify I-150"})
    assert version.version == 2 and version.feature_count == 3
    assert version.report == {"operation": "update", "features_updated": 1, "id_field": "id",
                              "values": {"status": "verified", "severity": "high"}, "base_version": 1}
    assert version.bbox == loaded.list_versions("incidents", active_only=False)[1].bbox
    after = loaded.read_layer("incidents").set_index("id")
    assert after.loc["I-150", "status"] == "verified" and after.loc["I-150", "severity"] == "high"
    assert before.loc["I-150", "status"] == "reported"
    untouched = ["I-050", "I-2000"]
    assert after.loc[untouched].drop(columns="geometry").equals(before.loc[untouched].drop(columns="geometry"))
    assert after.geometry.equals(before.geometry)
    # a column the version lacks is added for the update
    loaded.update_features("incidents", ["I-050", "I-2000"], {"reported_by_org": "CA-CT"}, {})
    after = loaded.read_layer("incidents").set_index("id")["reported_by_org"]
    assert after["I-2000"] == after["I-050"] == "CA-CT" and after.isna()["I-150"]


def test_update_refuses_unknown_ids_and_geometry_and_changes_nothing(loaded):
    before = state(loaded)
    with pytest.raises(NotFound, match="no feature with id I-999"):
        loaded.update_features("incidents", ["I-150", "I-999"], {"status": "verified"}, {})
    assert state(loaded) == before
    with pytest.raises(BadInput, match="attributes only"):
        loaded.update_features("incidents", ["I-150"], {"geom": None}, {})
    with pytest.raises(BadInput):
        loaded.update_features("incidents", [], {"status": "verified"}, {})
    with pytest.raises(BadInput):
        loaded.append_features("incidents", new_rows(loaded).iloc[:0], {})
    with pytest.raises(BadInput, match="EPSG:4326"):
        loaded.append_features("incidents", new_rows(loaded).to_crs("EPSG:5897"), {})
    with pytest.raises(NotFound):
        loaded.append_features("stations", new_rows(loaded), {})  # never imported
    assert state(loaded) == before


class FailingActivation(EmbeddedStore):
    """The real store, failing inside the activation transaction (after the new file is in place)."""

    def _before_activate(self, kind, version):
        raise RuntimeError("disk full (injected)")


class FailingWrite(EmbeddedStore):
    """The real store, whose version file is written and then the write fails (as a full disk would)."""

    def _write_version(self, path, table):
        super()._write_version(path, table)
        raise OSError("disk full (injected)")


@pytest.mark.parametrize("failing", [FailingActivation, FailingWrite])
def test_injected_failure_leaves_the_store_unchanged(loaded, failing):
    loaded.update_features("incidents", ["I-150"], {"status": "verified"}, {})  # some history first
    before = state(loaded)
    broken = failing(loaded.folder)
    with pytest.raises((RuntimeError, OSError), match="injected"):
        broken.append_features("incidents", new_rows(loaded), {})
    with pytest.raises((RuntimeError, OSError), match="injected"):
        broken.update_features("incidents", ["I-150"], {"status": "resolved"}, {})
    fresh = EmbeddedStore(loaded.folder)
    assert state(fresh) == before == state(loaded)
    assert not [name for name in os.listdir(loaded.layers_dir) if name.startswith(".")]
    # and the store goes on working after the failure
    assert loaded.append_features("incidents", new_rows(loaded), {}).version == 3


def test_changes_keep_three_versions(loaded):
    for number in range(1, 5):
        loaded.append_features("incidents", new_rows(loaded, f"R-2026-00000{number}"), {})
    assert [v.version for v in loaded.list_versions("incidents", active_only=False)] == [5, 4, 3]
    assert sorted(os.listdir(loaded.layers_dir)) == ["incidents_v3.arrow", "incidents_v4.arrow", "incidents_v5.arrow"]
    assert len(loaded.read_layer("incidents")) == 7


class ConflictOnce(EmbeddedStore):
    """Registration finds, once (or always), that the active version changed meanwhile: what a writer that
    ignores the lock file would cause (the lock file keeps webmap's own writers from it)."""

    conflicts = 1

    def _register(self, kind, version, record, expected_active):
        if self.conflicts:
            self.conflicts -= 1
            raise _Conflict()
        return super()._register(kind, version, record, expected_active)


def test_a_change_is_made_again_after_a_conflict(loaded):
    version = ConflictOnce(loaded.folder).append_features("incidents", new_rows(loaded), {})
    assert version.version == 2 and version.report["base_version"] == 1
    assert list(loaded.read_layer("incidents")["id"]) == ["I-050", "I-150", "I-2000", "R-2026-000001"]
    assert sorted(os.listdir(loaded.layers_dir)) == ["incidents_v1.arrow", "incidents_v2.arrow"]


def test_a_layer_that_keeps_changing_is_refused(loaded):
    before = state(loaded)
    always = ConflictOnce(loaded.folder)
    always.conflicts = 10
    with pytest.raises(StoreError, match="kept changing"):
        always.append_features("incidents", new_rows(loaded), {})
    assert state(loaded) == before


def test_writers_in_two_processes_take_turns(loaded, tmp_path):
    """While this process holds the write lock, an import in another process waits for it."""
    import subprocess
    import sys
    import time

    path = fixtures.write_geojson(fixtures.incidents().iloc[:1], str(tmp_path / "one.geojson"))
    script = ("import sys; from webmap.store.embedded import EmbeddedStore; from webmap.importer import import_layer;"
              f"import_layer(EmbeddedStore({loaded.folder!r}), {path!r}, 'incidents')")
    with loaded._exclusive():
        child = subprocess.Popen([sys.executable, "-c", script])
        time.sleep(3)  # ample time for the import of one feature, had it not waited
        assert child.poll() is None
        assert [v.version for v in loaded.list_versions("incidents")] == [1]
    assert child.wait(timeout=60) == 0
    assert [v.version for v in loaded.list_versions("incidents")] == [2]


def test_appended_rows_lead_viewport_queries(loaded, tmp_path):
    """A view cut off at its limit shows what was appended (a report just made) first, newest first; whole
    reads keep the file's order; a new import starts the order afresh."""
    def first(limit, **query):
        gdf, exceeded = loaded.query_features("incidents", FeatureQuery(limit=limit, **query))
        return list(gdf["id"]), exceeded

    assert first(2) == (["I-2000", "I-150"], True)  # as imported: newest first by time
    loaded.append_features("incidents", new_rows(loaded, "R-2026-000001"), {})
    loaded.update_features("incidents", ["I-050"], {"severity": "critical"}, {})  # keeps the appended rows ahead
    loaded.append_features("incidents", new_rows(loaded, "R-2026-000002"), {})
    assert first(3) == (["R-2026-000002", "R-2026-000001", "I-2000"], True)
    assert first(10) == (["R-2026-000002", "R-2026-000001", "I-2000", "I-150", "I-050"], False)
    assert first(1) == (["R-2026-000002"], True)
    assert first(10, in_filters={"severity": ["critical"]}) == (["I-050"], False)
    box = (105.769, 10.030, 105.7715, 10.0378)  # I-050, I-150 and the two reports, not I-2000
    assert first(3, bbox=box) == (["R-2026-000002", "R-2026-000001", "I-150"], True)
    from shapely.geometry import box as make_box

    assert first(3, mask=make_box(*box)) == (["R-2026-000002", "R-2026-000001", "I-150"], True)
    assert list(loaded.read_layer("incidents")["id"]) == ["I-050", "I-150", "I-2000", "R-2026-000001", "R-2026-000002"]
    import_layer(loaded, fixtures.write_geojson(fixtures.incidents(), str(tmp_path / "again.geojson")), "incidents")
    assert first(2) == (["I-2000", "I-150"], True)
