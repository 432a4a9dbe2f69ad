"""The embedded store: a folder under ``instance/``, nothing to install or start.

- ``webmap.sqlite``: the catalogue, one row per imported version of a layer (provenance and import
  report as JSON); ``active = 1`` marks the version that readers see.
- ``layers/<kind>_v<N>.gpkg``: the features of version N of a layer, a GeoPackage written once by GDAL
  (through Arrow, with its R-tree index) and never modified again; QGIS opens it as it is.

Why one GeoPackage per version rather than one file for everything: GDAL (inside pyogrio) carries its own
SQLite library, and two SQLite libraries on the same file in one process defeat SQLite's POSIX locks
(a "database disk image is malformed" was seen here when both touched one file). So each file has one
owner: GDAL writes a version file, Python's sqlite3 reads it with ``immutable=1`` (no locks needed, as
it never changes), and only Python's sqlite3 touches the catalogue.

Atomicity: a new version is written to a temporary name, renamed into place, and only then is the
active pointer moved in one transaction of the catalogue. A failure at any step removes the new file, so
the previous version is untouched. Files left by a crash are removed the next time a layer is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import struct
import threading
from datetime import datetime, timezone

from webmap.errors import NotFound, StoreError
from webmap.store.base import FeatureQuery, LayerVersion, Store

KEEP_VERSIONS = 3

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

# store-wide flags (e.g. demo = 1 on a store made by `webmap demo`), created on first use
_FLAGS_DDL = """
CREATE TABLE IF NOT EXISTS webmap_flags (
    name TEXT PRIMARY KEY,
    value TEXT
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
    """The catalogue ``webmap.sqlite`` and its immutable version files in ``layers/``."""

    CATALOGUE = "webmap.sqlite"
    LAYERS = "layers"

    def __init__(self, folder: str):
        self.folder = os.path.abspath(folder)
        self.path = os.path.join(self.folder, self.CATALOGUE)
        self.layers_dir = os.path.join(self.folder, self.LAYERS)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        os.makedirs(self.layers_dir, exist_ok=True)
        con = self._writer()
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(_VERSIONS_DDL)  # once, here: every later connection finds the table
            con.commit()
        finally:
            con.close()

    def table_path(self, table: str) -> str:
        return os.path.join(self.layers_dir, f"{table}.gpkg")

    # -- connections ----------------------------------------------------------------------------
    def _catalogue(self) -> sqlite3.Connection:
        """A connection per thread (Flask serves requests on threads)."""
        con = getattr(self._local, "catalogue", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            con.row_factory = sqlite3.Row
            self._local.catalogue = con
        return con

    def _writer(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.row_factory = sqlite3.Row
        return con

    def _table_reader(self, table: str) -> sqlite3.Connection:
        """Version files never change, so they are opened immutable (no locks) and kept open."""
        cache = getattr(self._local, "tables", None)
        if cache is None:
            cache = self._local.tables = {}
        con = cache.get(table)
        if con is None:
            path = self.table_path(table)
            if not os.path.exists(path):
                raise StoreError(f"the store has lost the file of {table}; import the layer again")
            con = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            con.row_factory = sqlite3.Row
            cache[table] = con
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
        return [self._version_from_row(r) for r in self._catalogue().execute(sql, params)]

    def _active_table(self, kind: str) -> str:
        row = self._catalogue().execute(
            "SELECT table_name FROM webmap_versions WHERE kind = ? AND active = 1", (kind,)
        ).fetchone()
        if row is None:
            raise NotFound(f"layer {kind} has not been imported yet")
        return row["table_name"]

    # -- writing --------------------------------------------------------------------------------
    def _remove_file(self, path: str):
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path + suffix)

    def _remove_orphans(self, kind: str):
        con = self._writer()
        try:
            known = {r[0] for r in con.execute("SELECT table_name FROM webmap_versions WHERE kind = ?", (kind,))}
        finally:
            con.close()
        for name in os.listdir(self.layers_dir):
            stem = name.split(".gpkg")[0].lstrip(".")
            if stem.startswith("tmp-"):
                stem = stem[4:]
            if stem.startswith(f"{kind}_v") and stem[len(kind) + 2:].isdigit() and (
                    stem not in known or name.startswith(".")):
                self._remove_file(os.path.join(self.layers_dir, name))

    def replace_layer(self, kind, gdf, provenance, progress=None):
        with self._write_lock:
            self._remove_orphans(kind)
            con = self._writer()
            try:
                row = con.execute("SELECT MAX(version) FROM webmap_versions WHERE kind = ?", (kind,)).fetchone()
            finally:
                con.close()
            version = (row[0] or 0) + 1
            table = f"{kind}_v{version}"
            final_path = self.table_path(table)
            tmp_path = os.path.join(self.layers_dir, f".tmp-{table}.gpkg")
            try:
                self._write_table(tmp_path, table, gdf, progress)
                os.replace(tmp_path, final_path)
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
                self._remove_file(tmp_path)
                self._remove_file(final_path)
                raise
            self._prune(kind)
            return self.list_versions(kind)[0]

    def _before_activate(self, kind, version):
        """Hook called inside the activation transaction (tests inject failures here)."""

    def _write_table(self, path, table, gdf, progress):
        import pyogrio
        
        # No journal and no syncs while GDAL writes: the file is private until it is complete, and it
        # is flushed to disk once (below) before the rename makes it visible.
        # A larger page cache (MB) lets GDAL build the R-tree of a million rows in memory (~15 % faster).
        options = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "OFF", "OGR_SQLITE_CACHE": "512"}
        pyogrio.set_gdal_config_options(options)
        try:
            self._write_all(path, table, gdf, progress)
        finally:
            pyogrio.set_gdal_config_options({key: None for key in options})
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())

    def _write_all(self, path, table, gdf, progress):
        import pyogrio
        
        # One call: GDAL builds the R-tree in bulk at the end of a new layer, but updates it row by row
        # (through triggers) when appending, which made chunked writes of 1,000,000 rows 3x slower.
        if progress:
            progress("write")
        options = dict(driver="GPKG", layer=table, promote_to_multi=False, geometry_type="Unknown")
        pyogrio.write_dataframe(gdf, path, use_arrow=len(gdf) > 0, **options)

    def _prune(self, kind):
        con = self._writer()
        try:
            old = con.execute(
                "SELECT version, table_name FROM webmap_versions WHERE kind = ? AND active = 0 ORDER BY version DESC",
                (kind,),
            ).fetchall()
            for row in old[KEEP_VERSIONS - 1:]:
                with con:
                    con.execute("DELETE FROM webmap_versions WHERE kind = ? AND version = ?", (kind, row["version"]))
                self._remove_file(self.table_path(row["table_name"]))
        finally:
            con.close()

    # -- flags ----------------------------------------------------------------------------------
    def get_flag(self, name):
        try:
            row = self._catalogue().execute("SELECT value FROM webmap_flags WHERE name = ?", (name,)).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # no flag was ever set: reading creates nothing
                return None
            raise
        return None if row is None else row["value"]

    def set_flag(self, name, value):
        with self._write_lock:
            con = self._writer()
            try:
                con.execute(_FLAGS_DDL)
                with con:
                    con.execute("INSERT OR REPLACE INTO webmap_flags (name, value) VALUES (?, ?)",
                                (name, None if value is None else str(value)))
            finally:
                con.close()

    # -- reading --------------------------------------------------------------------------------
    def read_layer(self, kind):
        import pyogrio
        
        table = self._active_table(kind)
        return pyogrio.read_dataframe(self.table_path(table), layer=table, use_arrow=True)

    def _select(self, kind, table, query: FeatureQuery):
        """SQL and parameters for a query, without its limit; None when nothing can match."""
        bbox = query.bbox
        if query.mask is not None:
            if query.mask.is_empty:
                return None
            mask_box = query.mask.bounds
            bbox = mask_box if bbox is None else (
                max(bbox[0], mask_box[0]), max(bbox[1], mask_box[1]), min(bbox[2], mask_box[2]), min(bbox[3], mask_box[3]))
            if bbox[0] > bbox[2] or bbox[1] > bbox[3]:
                return None
        where, params = [], []
        if bbox is not None:
            where_bbox, bbox_params = self._bbox_filter(kind, table, bbox)
            if where_bbox:
                where.append(where_bbox)
                params += bbox_params
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
        return sql + " ORDER BY t.fid", params

    def _masked_rows(self, table, sql, params, mask, wanted):
        """Stream rows and keep those whose geometry meets ``mask``, until ``wanted`` are found."""
        import numpy as np
        
        import shapely as _shapely

        _shapely.prepare(mask)
        geom_col = self._geometry_column(table)
        cursor = self._table_reader(table).execute(sql, params)
        kept = []
        while len(kept) < wanted:
            batch = cursor.fetchmany(1000)
            if not batch:
                break
            geoms = _shapely.from_wkb(np.array([gpkg_blob_to_wkb(r[geom_col]) for r in batch], dtype=object))
            hits = _shapely.intersects(mask, geoms)
            kept += [row for row, hit in zip(batch, hits) if hit]
        cursor.close()
        return kept[:wanted]

    def query_features(self, kind, query: FeatureQuery):
        table = self._active_table(kind)
        select = self._select(kind, table, query)
        if select is None:
            return self._rows_to_frame(table, []), False
        sql, params = select
        if query.mask is not None:
            rows = self._masked_rows(table, sql, params, query.mask, int(query.limit) + 1)
        else:
            rows = self._table_reader(table).execute(sql + " LIMIT ?", [*params, int(query.limit) + 1]).fetchall()
        exceeded = len(rows) > query.limit
        return self._rows_to_frame(table, rows[: query.limit]), exceeded

    def summarize(self, kind, query: FeatureQuery):
        """``(count, bbox)`` of everything the query matches (for filtered users: counts must not leak)."""
        table = self._active_table(kind)
        select = self._select(kind, table, query)
        if select is None:
            return 0, None
        sql, params = select
        rtree = _quote(f"rtree_{table}_{self._geometry_column(table)}")
        if query.mask is not None:
            rows = self._masked_rows(table, sql, params, query.mask, 10**12)
            fids = [r["fid"] for r in rows]
        else:
            fids = [r[0] for r in self._table_reader(table).execute(sql.replace("SELECT *", "SELECT t.fid", 1), params)]
        if not fids:
            return 0, None
        con = self._table_reader(table)
        box = [None, None, None, None]
        for start in range(0, len(fids), 900):
            chunk = fids[start:start + 900]
            row = con.execute(f"SELECT MIN(minx), MIN(miny), MAX(maxx), MAX(maxy) FROM {rtree} WHERE id IN"
                              f" ({', '.join('?' * len(chunk))})", chunk).fetchone()
            box = [row[i] if box[i] is None else (min if i < 2 else max)(box[i], row[i]) for i in range(4)]
        return len(fids), box

    def _bbox_filter(self, kind, table, bbox):
        """The cheapest plan for a bbox, from how much of the layer it covers.

        A view that holds the whole layer needs no filter. A view over much of it is answered by walking
        the table in order and checking each row's box in the R-tree by id, stopping at the limit. A small
        view asks the R-tree for its ids first (materialising a million ids took 2.5 s at city scale).
        """
        west, south, east, north = bbox
        row = self._catalogue().execute(
            "SELECT bbox FROM webmap_versions WHERE kind = ? AND active = 1", (kind,)).fetchone()
        extent = json.loads(row["bbox"]) if row and row["bbox"] else None
        if extent:
            ex_w, ex_s, ex_e, ex_n = extent
            if west <= ex_w and south <= ex_s and east >= ex_e and north >= ex_n:
                return None, []
            layer_area = max((ex_e - ex_w) * (ex_n - ex_s), 1e-12)
            overlap = max(0.0, min(east, ex_e) - max(west, ex_w)) * max(0.0, min(north, ex_n) - max(south, ex_s))
            correlated = overlap / layer_area >= 0.25
        else:
            correlated = False
        rtree = _quote(f"rtree_{table}_{self._geometry_column(table)}")
        box = "minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?"
        if correlated:
            return f"EXISTS (SELECT 1 FROM {rtree} r WHERE r.id = t.fid AND r.{box.replace(' AND ', ' AND r.')})", \
                [east, west, north, south]
        return f"t.fid IN (SELECT id FROM {rtree} WHERE {box})", [east, west, north, south]

    def _geometry_column(self, table):
        row = self._table_reader(table).execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (table,)
        ).fetchone()
        return row[0] if row else "geom"

    def _rows_to_frame(self, table, rows):
        import geopandas as gpd
        import numpy as np
        import pandas as pd
        import shapely
        
        geom_col = self._geometry_column(table)
        if rows:
            columns = list(rows[0].keys())
        else:
            columns = [r[1] for r in self._table_reader(table).execute(f"PRAGMA table_info({_quote(table)})")]
        frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=columns)
        blobs = frame.pop(geom_col) if geom_col in frame else pd.Series([], dtype=object)
        wkb = np.array([gpkg_blob_to_wkb(b) for b in blobs], dtype=object)
        geometry = shapely.from_wkb(wkb) if len(wkb) else np.array([], dtype=object)
        return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")

    def distinct_values(self, kind, field, limit=200):
        table = self._active_table(kind)
        rows = self._table_reader(table).execute(
            f"SELECT DISTINCT {_quote(field)} FROM {_quote(table)} WHERE {_quote(field)} IS NOT NULL"
            f" AND {_quote(field)} != '' ORDER BY 1 LIMIT ?", (limit,)
        ).fetchall()
        return [r[0] for r in rows]

    def search(self, text_folded, kinds, limit, filters=None):
        """Rows whose folded search text holds ``text_folded``; ``filters`` maps a kind to the
        FeatureQuery (owner filter, mask) that the searching user is held to."""
        results = []
        pattern = "%" + text_folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        for kind in kinds:
            try:
                table = self._active_table(kind)
            except NotFound:
                continue
            rule = (filters or {}).get(kind) or FeatureQuery()
            if rule.mask is not None and rule.mask.is_empty:
                continue
            rtree = _quote(f"rtree_{table}_{self._geometry_column(table)}")
            where, params = ["t._search LIKE ? ESCAPE '\\'"], [pattern]
            for name, values in rule.in_filters.items():
                where.append(f"t.{_quote(name)} IN ({', '.join('?' * len(values))})")
                params += list(values)
            sql = (
                f"SELECT t.*, r.minx AS _minx, r.miny AS _miny, r.maxx AS _maxx, r.maxy AS _maxy"
                f" FROM {_quote(table)} t JOIN {rtree} r ON r.id = t.fid"
                f" WHERE {' AND '.join(where)} ORDER BY length(t._search), t.fid"
            )
            if rule.mask is not None:
                rows = self._masked_rows(table, sql, params, rule.mask, limit)
            else:
                rows = self._table_reader(table).execute(sql + " LIMIT ?", [*params, limit]).fetchall()
            for row in rows:
                results.append({"layer": kind, "row": dict(row),
                                "bbox": [row["_minx"], row["_miny"], row["_maxx"], row["_maxy"]]})
        return results

    def close(self):
        con = getattr(self._local, "catalogue", None)
        if con is not None:
            con.close()
            self._local.catalogue = None
        for con in (getattr(self._local, "tables", None) or {}).values():
            con.close()
        self._local.tables = {}
