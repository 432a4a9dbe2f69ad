"""The embedded store: one GeoPackage file under ``instance/``, nothing to install or start.

Why a GeoPackage: it is one SQLite file that QGIS opens as it is, GDAL writes it fast through Arrow, and
its R-tree index answers viewport queries. Layout inside the file:

- ``webmap_versions``: one row per imported version of a layer (provenance and import report, JSON);
  ``active = 1`` marks the version that readers see.
- ``<kind>_v<N>``: the features of version N of a layer, written by GDAL with its spatial index.

Atomicity: a new version is written to a new table that no reader knows of; only when it is complete is
the active pointer moved, in one SQLite transaction. A failure drops the half-written table, so the
previous version is untouched. Tables left by a crash are removed the next time a layer is written.

Reads go straight to SQLite (the R-tree join and the GeoPackage geometry blobs are simple), which avoids
opening the dataset through GDAL on every map request.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import threading
from datetime import datetime, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from webmap.errors import NotFound, StoreError
from webmap.store.base import FeatureQuery, LayerVersion, Store

KEEP_VERSIONS = 3
WRITE_CHUNK_ROWS = 200_000

_VERSIONS_DDL = """
CREATE TABLE IF NOT EXISTS webmap_versions (
    kind TEXT NOT NULL,
    version INTEGER NOT NULL,
    table_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    source_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    crs TEXT NOT NULL,
    feature_count INTEGER NOT NULL,
    bbox TEXT,
    report TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, version)
)
"""

# GeoPackage geometry blob: 'GP', version, flags, srs_id, then an envelope whose size the flags give.
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def gpkg_blob_to_wkb(blob: bytes) -> bytes | None:
    """Strip the GeoPackage header from a geometry blob, leaving standard WKB."""
    if blob is None:
        return None
    flags = blob[3]
    envelope = _ENVELOPE_BYTES.get((flags >> 1) & 0x07)
    if blob[:2] != b"GP" or envelope is None:
        raise StoreError("the store holds a geometry that is not a GeoPackage blob")
    return bytes(blob[8 + envelope:])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class EmbeddedStore(Store):
    """A GeoPackage file that holds every layer and its versions."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        if not os.path.exists(self.path):
            self._create()

    # -- set-up ---------------------------------------------------------------------------------
    def _create(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        # GDAL makes a valid, empty GeoPackage (application id, spatial_ref_sys, contents); an attribute
        # table records the store's schema version.
        meta = pd.DataFrame({"key": ["store_schema"], "value": ["1"]})
        pyogrio.write_dataframe(meta, self.path, layer="webmap_meta", driver="GPKG")
        con = sqlite3.connect(self.path)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(_VERSIONS_DDL)
            con.commit()
        finally:
            con.close()

    def _reader(self) -> sqlite3.Connection:
        """A read-only connection per thread (Flask serves requests on threads)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            con.row_factory = sqlite3.Row
            self._local.con = con
        return con

    def _writer(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        con.execute(_VERSIONS_DDL)
        return con

    # -- versions -------------------------------------------------------------------------------
    @staticmethod
    def _version_from_row(row) -> LayerVersion:
        return LayerVersion(
            kind=row["kind"],
            version=row["version"],
            created_at=row["created_at"],
            source_name=row["source_name"],
            sha256=row["sha256"],
            crs=row["crs"],
            feature_count=row["feature_count"],
            bbox=tuple(json.loads(row["bbox"])) if row["bbox"] else None,
            report=json.loads(row["report"]),
            active=bool(row["active"]),
        )

    def list_versions(self, kind=None, active_only=True):
        sql = "SELECT * FROM webmap_versions WHERE 1=1"
        params = []
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        if active_only:
            sql += " AND active = 1"
        sql += " ORDER BY kind, version DESC"
        return [self._version_from_row(r) for r in self._reader().execute(sql, params)]

    def _active_table(self, kind: str) -> str:
        row = self._reader().execute(
            "SELECT table_name FROM webmap_versions WHERE kind = ? AND active = 1", (kind,)
        ).fetchone()
        if row is None:
            raise NotFound(f"layer {kind} has not been imported yet")
        return row["table_name"]

    # -- writing --------------------------------------------------------------------------------
    def _drop_table(self, table: str):
        """Remove a feature table with everything GDAL registered for it (R-tree, contents, triggers)."""
        import fiona

        try:
            fiona.remove(self.path, layer=table, driver="GPKG")
        except Exception:  # noqa: BLE001 - absent or half-made table: clean what SQLite can
            con = self._writer()
            try:
                con.execute(f"DROP TABLE IF EXISTS {_quote(table)}")
                con.execute("DELETE FROM gpkg_contents WHERE table_name = ?", (table,))
                con.execute("DELETE FROM gpkg_geometry_columns WHERE table_name = ?", (table,))
                con.commit()
            finally:
                con.close()

    def _orphan_tables(self, kind: str) -> list[str]:
        con = self._writer()
        try:
            known = {r[0] for r in con.execute("SELECT table_name FROM webmap_versions WHERE kind = ?", (kind,))}
            tables = [
                r[0]
                for r in con.execute("SELECT table_name FROM gpkg_contents WHERE table_name LIKE ?", (f"{kind}_v%",))
            ]
        finally:
            con.close()
        return [t for t in tables if t not in known and t[len(kind) + 2:].isdigit()]

    def replace_layer(self, kind, gdf, provenance, progress=None):
        with self._write_lock:
            for orphan in self._orphan_tables(kind):
                self._drop_table(orphan)
            con = self._writer()
            try:
                row = con.execute("SELECT MAX(version) FROM webmap_versions WHERE kind = ?", (kind,)).fetchone()
            finally:
                con.close()
            version = (row[0] or 0) + 1
            table = f"{kind}_v{version}"
            try:
                self._write_table(table, gdf, progress)
                bbox = [float(v) for v in gdf.total_bounds] if len(gdf) else None
                record = {
                    "kind": kind,
                    "version": version,
                    "table_name": table,
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "source_name": provenance.get("source_name", ""),
                    "sha256": provenance.get("sha256", ""),
                    "crs": provenance.get("crs", ""),
                    "feature_count": int(len(gdf)),
                    "bbox": json.dumps(bbox) if bbox else None,
                    "report": json.dumps(provenance.get("report", {}), ensure_ascii=False),
                }
                con = self._writer()
                try:
                    with con:  # one transaction: the pointer moves, or nothing happens
                        con.execute(
                            "INSERT INTO webmap_versions (kind, version, table_name, created_at, source_name, sha256,"
                            " crs, feature_count, bbox, report, active) VALUES (:kind, :version, :table_name,"
                            " :created_at, :source_name, :sha256, :crs, :feature_count, :bbox, :report, 0)",
                            record,
                        )
                        self._before_activate(kind, version)
                        con.execute("UPDATE webmap_versions SET active = 0 WHERE kind = ?", (kind,))
                        con.execute(
                            "UPDATE webmap_versions SET active = 1 WHERE kind = ? AND version = ?", (kind, version)
                        )
                finally:
                    con.close()
            except BaseException:
                self._drop_table(table)
                raise
            self._prune(kind)
            return self.list_versions(kind)[0]

    def _before_activate(self, kind, version):
        """Hook called inside the activation transaction (tests inject failures here)."""

    def _write_table(self, table, gdf, progress):
        total = len(gdf)
        if total == 0:
            pyogrio.write_dataframe(gdf, self.path, layer=table, driver="GPKG", promote_to_multi=False)
            return
        for start in range(0, total, WRITE_CHUNK_ROWS):
            chunk = gdf.iloc[start:start + WRITE_CHUNK_ROWS]
            pyogrio.write_dataframe(
                chunk, self.path, layer=table, driver="GPKG", append=start > 0,
                use_arrow=True, promote_to_multi=False, geometry_type="Unknown",
            )
            if progress:
                progress(len(chunk))

    def _prune(self, kind):
        con = self._writer()
        try:
            old = con.execute(
                "SELECT version, table_name FROM webmap_versions WHERE kind = ? AND active = 0 ORDER BY version DESC",
                (kind,),
            ).fetchall()
        finally:
            con.close()
        for row in old[KEEP_VERSIONS - 1:]:
            self._drop_table(row["table_name"])
            con = self._writer()
            try:
                with con:
                    con.execute("DELETE FROM webmap_versions WHERE kind = ? AND version = ?", (kind, row["version"]))
            finally:
                con.close()

    # -- reading --------------------------------------------------------------------------------
    def read_layer(self, kind):
        table = self._active_table(kind)
        gdf = pyogrio.read_dataframe(self.path, layer=table, use_arrow=True)
        return gdf

    def query_features(self, kind, query: FeatureQuery):
        table = self._active_table(kind)
        where, params = [], []
        if query.bbox is not None:
            west, south, east, north = query.bbox
            rtree = _quote(f"rtree_{table}_geom")
            where.append(f"t.fid IN (SELECT id FROM {rtree} WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)")
            params += [east, west, north, south]
        for name, values in query.in_filters.items():
            where.append(f"t.{_quote(name)} IN ({', '.join('?' * len(values))})")
            params += list(values)
        for name, value in query.min_filters.items():
            where.append(f"t.{_quote(name)} >= ?")
            params.append(value)
        for name, value in query.max_filters.items():
            where.append(f"t.{_quote(name)} < ?")
            params.append(value)
        sql = f"SELECT * FROM {_quote(table)} t"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY t.fid LIMIT ?"
        params.append(int(query.limit) + 1)
        rows = self._reader().execute(sql, params).fetchall()
        exceeded = len(rows) > query.limit
        rows = rows[: query.limit]
        return self._rows_to_frame(table, rows), exceeded

    def _geometry_column(self, table):
        row = self._reader().execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (table,)
        ).fetchone()
        return row[0] if row else "geom"

    def _rows_to_frame(self, table, rows):
        geom_col = self._geometry_column(table)
        if rows:
            columns = rows[0].keys()
        else:
            columns = [r[1] for r in self._reader().execute(f"PRAGMA table_info({_quote(table)})")]
        records = [tuple(r) for r in rows]
        frame = pd.DataFrame.from_records(records, columns=columns)
        blobs = frame.pop(geom_col) if geom_col in frame else pd.Series([], dtype=object)
        wkb = np.array([gpkg_blob_to_wkb(b) for b in blobs], dtype=object)
        geometry = shapely.from_wkb(wkb) if len(wkb) else []
        return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")

    def search(self, text_folded, kinds, limit):
        results = []
        pattern = "%" + text_folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        for kind in kinds:
            try:
                table = self._active_table(kind)
            except NotFound:
                continue
            rtree = _quote(f"rtree_{table}_geom")
            sql = (
                f"SELECT t.*, r.minx AS _minx, r.miny AS _miny, r.maxx AS _maxx, r.maxy AS _maxy"
                f" FROM {_quote(table)} t JOIN {rtree} r ON r.id = t.fid"
                f" WHERE t._search LIKE ? ESCAPE '\\' ORDER BY length(t._search), t.fid LIMIT ?"
            )
            for row in self._reader().execute(sql, (pattern, limit)):
                results.append({"layer": kind, "row": dict(row),
                                "bbox": [row["_minx"], row["_miny"], row["_maxx"], row["_maxy"]]})
        return results

    def close(self):
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
