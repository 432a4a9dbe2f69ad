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

Writers take a lock file (``write.lock``, ``flock``) as well as a thread lock, so that two processes (the
server and a ``webmap import``) never write versions of the store at the same time: each would otherwise
take the other's temporary file for a crash's leftover, or the same version number. Readers take no lock.

Atomicity: a new version is written to a temporary name, renamed into place, and only then is the
active pointer moved in one transaction of the catalogue. A failure at any step removes the new file, so
the previous version is untouched. Files left by a crash are removed the next time a layer is written.

Small changes (an incident report appended, a status set: ``append_features``, ``update_features``) do
not rewrite the layer: the active file is copied to the temporary name, the copy's table is renamed to
the new version's name with Python's sqlite3 (table, R-tree, GeoPackage metadata, triggers), attributes
are updated there, new rows are appended by GDAL (whose triggers keep the R-tree), and the copy is then
registered exactly as an import is. The two SQLite libraries take turns on the private copy, never at
once. Appended rows come after the existing ones in the file; the version's report records where they
start (``first_appended_fid``) and viewport queries read them first, newest first, so that a view cut off
at its limit still shows a report just made (whole-layer reads keep the file's order).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import struct
import threading
from datetime import datetime, timezone

from webmap.errors import BadInput, NotFound, StoreError
from webmap.sqlite_util import immediate_transaction
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


class _Conflict(Exception):
    """Another process activated a version of the same layer while a change was being made."""


# GeoPackage metadata tables that name a feature table (those present in a file are renamed with it)
_GPKG_TABLE_REFERENCES = ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents",
                          "gpkg_data_columns", "gpkg_metadata_reference")


def _register_gpkg_functions(con: sqlite3.Connection):
    """The SQL functions GDAL's R-tree triggers call (GDAL registers its own; Python's sqlite3 has none).

    SQLite resolves a trigger's functions when an UPDATE is prepared, even for triggers whose condition
    is false (ours only change attributes), so they must exist; they are correct all the same.
    """
    def bounds(blob):
        import shapely

        if blob is None:
            return None
        geom = shapely.from_wkb(gpkg_blob_to_wkb(blob))
        return None if geom.is_empty else geom.bounds

    con.create_function("ST_IsEmpty", 1, lambda blob: None if blob is None else int(bool(blob[3] & 0x10) or
                                                                                     bounds(blob) is None),
                        deterministic=True)
    for index, name in enumerate(("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY")):
        con.create_function(name, 1, lambda blob, i=index: (bounds(blob) or (None,) * 4)[i], deterministic=True)


def _sql_type(values) -> str:
    """The GeoPackage column type for a new column holding ``values`` (a pandas Series or a Python value)."""
    import pandas as pd

    if isinstance(values, pd.Series):
        dtype = values.dtype
        if pd.api.types.is_bool_dtype(dtype):
            return "BOOLEAN"
        if pd.api.types.is_integer_dtype(dtype):
            return "INTEGER"
        if pd.api.types.is_float_dtype(dtype):
            return "REAL"
        return "TEXT"
    if isinstance(values, bool):
        return "BOOLEAN"
    if isinstance(values, int):
        return "INTEGER"
    if isinstance(values, float):
        return "REAL"
    return "TEXT"


def _plain(value):
    """numpy scalars and pandas NA as sqlite3 takes them."""
    import pandas as pd

    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


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
        self._columns_cache: dict = {}  # table -> its column names (version files never change)
        os.makedirs(self.layers_dir, exist_ok=True)
        con = self._writer()
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(_VERSIONS_DDL)  # once, here: every later connection finds the table
            con.commit()
        finally:
            con.close()

    @contextlib.contextmanager
    def _exclusive(self):
        """One writer at a time: the thread lock within this process, a lock file across processes."""
        with self._write_lock:
            try:
                import fcntl
            except ImportError:  # not POSIX: threads of one process only
                yield
                return
            with open(os.path.join(self.folder, "write.lock"), "a+b") as handle:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

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
        with self._exclusive():
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
                        self._insert_active(con, kind, version, record)
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

    def _insert_active(self, con, kind, version, record):
        """Insert the version's row and make it the one active version of ``kind``, inside the caller's
        transaction (a replace and an edit both move the pointer this way: all of it, or nothing)."""
        con.execute(
            "INSERT INTO webmap_versions (kind, version, table_name, created_at, source_name, sha256,"
            " crs, feature_count, bbox, report, active) VALUES (:kind, :version, :table_name,"
            " :created_at, :source_name, :sha256, :crs, :feature_count, :bbox, :report, 0)",
            record,
        )
        self._before_activate(kind, version)
        con.execute("UPDATE webmap_versions SET active = 0 WHERE kind = ?", (kind,))
        con.execute("UPDATE webmap_versions SET active = 1 WHERE kind = ? AND version = ?", (kind, version))

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

    # -- changing the active version: a copy, changed, registered as the next version ----------------
    def append_features(self, kind, gdf, provenance):
        if gdf is None or len(gdf) == 0:
            raise BadInput(f"nothing to append to {kind}: no features given")
        if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
            raise BadInput(f"features appended to {kind} must be in EPSG:4326 lon/lat, got {gdf.crs.to_string()}")
        rows = gdf.drop(columns=[c for c in ("fid",) if c in gdf.columns])
        if rows.crs is None:
            rows = rows.set_crs("EPSG:4326")
        attributes = rows.drop(columns=rows.geometry.name)
        bounds = [float(v) for v in rows.total_bounds]

        def edit(con, table):
            self._add_columns(con, table, {name: attributes[name] for name in attributes.columns})
            last = con.execute(f"SELECT MAX(fid) FROM {_quote(table)}").fetchone()[0]
            details["first_appended_fid"] = int(last or 0) + 1  # unless earlier appends lead already (_derive)

        def write(path, table):
            self._append_rows(path, table, rows)

        digest = hashlib.sha256(rows.to_json(default=str).encode("utf-8")).hexdigest()
        details = {"operation": "append", "features_added": int(len(rows))}
        return self._derive(kind, provenance, details, digest, edit, write, bounds)

    def update_features(self, kind, ids, values, provenance, id_field="id"):
        wanted = [_plain(i) for i in dict.fromkeys(ids)]
        if not wanted:
            raise BadInput(f"nothing to update in {kind}: no ids given")
        if not values:
            raise BadInput(f"nothing to update in {kind}: no values given")
        changes = {str(name): _plain(value) for name, value in values.items()}

        def edit(con, table):
            geometry = self._geometry_column_of(con, table)
            refused = sorted({geometry, "fid"} & set(changes))
            if refused:
                raise BadInput(f"update_features changes attributes only, not {', '.join(refused)}")
            if id_field not in self._table_columns(con, table):
                raise NotFound(f"layer {kind} has no field {id_field!r}")
            found = set()
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                found |= {r[0] for r in con.execute(
                    f"SELECT DISTINCT {_quote(id_field)} FROM {_quote(table)} WHERE {_quote(id_field)} IN"
                    f" ({', '.join('?' * len(chunk))})", chunk)}
            missing = [str(i) for i in wanted if i not in found]
            if missing:
                raise NotFound(f"{kind}: no feature with {id_field} {', '.join(missing[:5])}"
                               + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
            self._add_columns(con, table, changes)
            assignments = ", ".join(f"{_quote(name)} = ?" for name in changes)
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                con.execute(f"UPDATE {_quote(table)} SET {assignments} WHERE {_quote(id_field)} IN"
                            f" ({', '.join('?' * len(chunk))})", [*changes.values(), *chunk])

        payload = json.dumps({"ids": wanted, "values": changes}, sort_keys=True, ensure_ascii=False, default=str)
        details = {"operation": "update", "features_updated": len(wanted), "id_field": id_field,
                   "values": json.loads(json.dumps(changes, default=str))}
        return self._derive(kind, provenance, details, hashlib.sha256(payload.encode("utf-8")).hexdigest(), edit)

    def _derive(self, kind, provenance, details, digest, edit, write=None, added_bounds=None, attempts=3):
        """Copy the active file of ``kind``, ``edit`` the copy with sqlite3 (then ``write`` with GDAL), and
        register it as the next active version; the previous one stays as it was whatever fails."""
        with self._exclusive():
            self._remove_orphans(kind)
            for _ in range(attempts):
                con = self._writer()
                try:
                    base = con.execute("SELECT * FROM webmap_versions WHERE kind = ? AND active = 1", (kind,)).fetchone()
                    newest = con.execute("SELECT MAX(version) FROM webmap_versions WHERE kind = ?", (kind,)).fetchone()[0]
                finally:
                    con.close()
                if base is None:
                    raise NotFound(f"layer {kind} has not been imported yet")
                version = (newest or 0) + 1
                table = f"{kind}_v{version}"
                final_path = self.table_path(table)
                tmp_path = os.path.join(self.layers_dir, f".tmp-{table}.gpkg")
                try:
                    shutil.copyfile(self.table_path(base["table_name"]), tmp_path)
                    copy = sqlite3.connect(tmp_path, isolation_level=None)
                    _register_gpkg_functions(copy)
                    try:
                        copy.execute("BEGIN IMMEDIATE")
                        self._rename_table(copy, base["table_name"], table)
                        edit(copy, table)
                        copy.execute("COMMIT")
                    finally:
                        copy.close()
                    if write is not None:
                        self._with_gdal_options(lambda: write(tmp_path, table))
                    copy = sqlite3.connect(f"file:{tmp_path}?mode=ro", uri=True)
                    try:
                        count = copy.execute(f"SELECT COUNT(*) FROM {_quote(table)}").fetchone()[0]
                    finally:
                        copy.close()
                    with open(tmp_path, "rb+") as fh:
                        os.fsync(fh.fileno())
                    os.replace(tmp_path, final_path)
                    bbox = json.loads(base["bbox"]) if base["bbox"] else None
                    if added_bounds is not None:
                        bbox = list(added_bounds) if bbox is None else [
                            min(bbox[0], added_bounds[0]), min(bbox[1], added_bounds[1]),
                            max(bbox[2], added_bounds[2]), max(bbox[3], added_bounds[3])]
                    report = {**(provenance.get("report") or {}), **details, "base_version": base["version"]}
                    inherited = json.loads(base["report"] or "{}").get("first_appended_fid")
                    if inherited is not None:  # rows appended to earlier versions still lead
                        report["first_appended_fid"] = inherited
                    record = {
                        "kind": kind,
                        "version": version,
                        "table_name": table,
                        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "source_name": provenance.get("source_name") or f"{details['operation']} on version {base['version']}",
                        "sha256": provenance.get("sha256") or digest,
                        "crs": provenance.get("crs") or base["crs"],
                        "feature_count": int(count),
                        "bbox": json.dumps(bbox) if bbox else None,
                        "report": json.dumps(report, ensure_ascii=False, default=str),
                    }
                    self._register(kind, version, record, expected_active=base["version"])
                except _Conflict:
                    self._remove_file(tmp_path)
                    self._remove_file(final_path)
                    continue
                except BaseException:
                    self._remove_file(tmp_path)
                    self._remove_file(final_path)
                    raise
                self._prune(kind)
                return self.list_versions(kind)[0]
        raise StoreError(f"layer {kind} kept changing while this change was made (imports in another process?); "
                         "nothing was changed: try again")

    def _register(self, kind, version, record, expected_active):
        """Insert and activate a version in one transaction, if ``expected_active`` is still the active one."""
        con = self._writer()
        try:
            con.isolation_level = None
            with immediate_transaction(con):
                active = con.execute("SELECT version FROM webmap_versions WHERE kind = ? AND active = 1", (kind,)).fetchone()
                taken = con.execute("SELECT 1 FROM webmap_versions WHERE kind = ? AND version = ?", (kind, version)).fetchone()
                if taken or active is None or active[0] != expected_active:
                    raise _Conflict()
                self._insert_active(con, kind, version, record)
        finally:
            con.close()

    @staticmethod
    def _table_columns(con, table) -> list:
        return [r[1] for r in con.execute(f"PRAGMA table_info({_quote(table)})")]

    @staticmethod
    def _geometry_column_of(con, table) -> str:
        row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (table,)).fetchone()
        return row[0] if row else "geom"

    def _rename_table(self, con, old, new):
        """Rename feature table ``old`` to ``new`` in a GeoPackage: the table, its R-tree, the metadata rows
        and the triggers (GDAL's triggers name the table inside strings, which ALTER TABLE leaves alone)."""
        geometry = self._geometry_column_of(con, old)
        triggers = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                               (old,)).fetchall()
        for name, _ in triggers:
            con.execute(f"DROP TRIGGER {_quote(name)}")
        con.execute(f"ALTER TABLE {_quote(old)} RENAME TO {_quote(new)}")
        rtree_old, rtree_new = f"rtree_{old}_{geometry}", f"rtree_{new}_{geometry}"
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (rtree_old,)).fetchone():
            con.execute(f"ALTER TABLE {_quote(rtree_old)} RENAME TO {_quote(rtree_new)}")
        present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for meta in _GPKG_TABLE_REFERENCES:
            if meta in present:
                con.execute(f"UPDATE {meta} SET table_name = ? WHERE table_name = ?", (new, old))
        con.execute("UPDATE gpkg_contents SET identifier = ? WHERE identifier = ?", (new, old))
        # the old name as a whole word (not the prefix of kind_v12 when renaming kind_v1)
        pattern = re.compile(r"(?<![0-9A-Za-z])" + re.escape(old) + r"(?![0-9])")
        for _, sql in triggers:
            con.execute(pattern.sub(new, sql))

    def _add_columns(self, con, table, columns: dict):
        """Add the columns the table lacks (name -> a Series or value giving the type); empty in every row."""
        existing = set(self._table_columns(con, table))
        for name, values in columns.items():
            if name in existing:
                continue
            if not str(name) or str(name).lower() == "fid":
                raise BadInput(f"cannot add a column named {name!r}")
            con.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(str(name))} {_sql_type(values)}")
            existing.add(name)

    @staticmethod
    def _append_rows(path, table, rows):
        import pyogrio

        pyogrio.write_dataframe(rows, path, driver="GPKG", layer=table, append=True, promote_to_multi=False,
                                geometry_type="Unknown")

    @staticmethod
    def _with_gdal_options(action):
        import pyogrio

        options = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "OFF"}
        pyogrio.set_gdal_config_options(options)
        try:
            return action()
        finally:
            pyogrio.set_gdal_config_options({key: None for key in options})

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
        with self._exclusive():
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
        null_where, null_params = self._null_or_in(table, query.null_or_in)
        where += null_where
        params += null_params
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
        wanted = int(query.limit) + 1
        head_from = self._head_from(kind)
        if head_from is None:
            rows = self._rows(table, sql, params, query.mask, wanted)
        else:
            # appended rows (reports) first, newest first, then the rest in file order; each part by fid range
            where = " AND " if " WHERE " in sql else " WHERE "
            body = sql[: -len(" ORDER BY t.fid")]
            rows = self._rows(table, f"{body}{where}t.fid >= ? ORDER BY t.fid DESC", [*params, head_from],
                              query.mask, wanted)
            if len(rows) < wanted:
                rows += self._rows(table, f"{body}{where}t.fid < ? ORDER BY t.fid", [*params, head_from], query.mask,
                                   wanted - len(rows))
        exceeded = len(rows) > query.limit
        return self._rows_to_frame(table, rows[: query.limit]), exceeded

    def _rows(self, table, sql, params, mask, wanted):
        if mask is not None:
            return self._masked_rows(table, sql, params, mask, wanted)
        return self._table_reader(table).execute(sql + " LIMIT ?", [*params, wanted]).fetchall()

    def _head_from(self, kind):
        """The first fid of the rows appended since the layer was last imported (None: nothing appended).

        Appended rows sit at the end of the file, but they are the newest news (a report just made): viewport
        queries read them first, so that a view cut off at its limit still shows them."""
        row = self._catalogue().execute(
            "SELECT json_extract(report, '$.first_appended_fid') FROM webmap_versions WHERE kind = ? AND active = 1",
            (kind,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

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

    def _columns(self, table) -> set:
        columns = self._columns_cache.get(table)
        if columns is None:
            columns = self._columns_cache[table] = {
                r[1] for r in self._table_reader(table).execute(f"PRAGMA table_info({_quote(table)})")}
        return columns

    def _null_or_in(self, table, filters: dict):
        """SQL for ``FeatureQuery.null_or_in``; a column the version lacks is empty in every row: no clause."""
        where, params = [], []
        columns = self._columns(table)
        for name, values in (filters or {}).items():
            if name not in columns:
                continue
            column = f"t.{_quote(name)}"
            clause = f"{column} IS NULL OR {column} = ''"
            if values:
                clause += f" OR {column} IN ({', '.join('?' * len(values))})"
                params += list(values)
            where.append(f"({clause})")
        return where, params

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
            null_where, null_params = self._null_or_in(table, rule.null_or_in)
            where += null_where
            params += null_params
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
