"""The embedded store: a folder under ``instance/``, nothing to install or start.

- ``webmap.sqlite``: the catalogue (SQLite), one row per version of a layer (provenance and import report
  as JSON); ``active = 1`` marks the version that readers see.
- ``layers/<kind>_v<N>.arrow``: the features of version N of a layer, an Arrow IPC file written once and
  never modified again (``version_file.py`` says why Arrow and what the file holds). ``geopandas.read_feather``
  and GDAL's Arrow driver open it as it is; ``webmap export`` writes GeoPackage, Shapefile, GeoJSON or CSV.

Only Python's sqlite3 touches the catalogue; version files are read by memory-mapping them, so readers take
no lock at all.

Writers take a lock file (``write.lock``, ``flock``) as well as a thread lock, so that two processes (the
server and a ``webmap import``) never write versions of the store at the same time: each would otherwise
take the other's temporary file for a crash's leftover, or the same version number. Readers take no lock.

Atomicity: a new version is written to a temporary name, flushed to disk, renamed into place, and only then
is the active pointer moved in one transaction of the catalogue. A failure at any step removes the new
file, so the previous version is untouched. Files left by a crash are removed the next time a layer is
written.

Small changes (an incident report appended, a status set: ``append_features``, ``update_features``) make a
new version too: the active file's table, changed in memory (rows added after the existing ones, or values
set), written under the next version's name and registered exactly as an import is. Writing a million rows
this way takes a fraction of a second. Appended rows get the lowest view ranks, newest lowest, so that a
view cut off at its limit still shows a report just made; whole-layer reads keep the file's order. The
version's report records where the appended rows start (``first_appended_fid``).

A store made by an earlier release holds GeoPackage version files (``<kind>_v<N>.gpkg``): each is turned
into an Arrow file the first time it is read, keeping its rows, order and appended-rows-first view.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from webmap.errors import BadInput, NotFound, StoreError
from webmap.sqlite_util import immediate_transaction
from webmap.store import version_file
from webmap.store.base import FeatureQuery, LayerVersion, Store

KEEP_VERSIONS = 3
LEGACY_EXTENSION = ".gpkg"  # version files of stores made before the Arrow format

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

# columns a caller may not set or add: the row id given with query results, the geometry, the store's own
_RESERVED = {version_file.ROW_ID, version_file.GEOMETRY, *version_file.INTERNAL}


class _Conflict(Exception):
    """Another process activated a version of the same layer while a change was being made."""


def _plain(value):
    """numpy scalars and pandas NA as plain Python values."""
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


def _set_where(column: pa.ChunkedArray | None, mask: pa.Array, value, num_rows: int) -> pa.Array:
    """``column`` with ``value`` in the rows of ``mask`` (a new column, empty elsewhere, when ``column`` is None).

    A value that does not fit the column's type turns the column into text, as a GeoPackage (SQLite) column
    would have kept it."""
    if column is None:
        scalar = pa.scalar(value) if value is not None else pa.scalar(None, type=pa.string())
        if pa.types.is_null(scalar.type):
            scalar = pa.scalar(None, type=pa.string())
        return pc.if_else(mask, scalar, pa.nulls(num_rows, type=scalar.type))
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_null(column.type):
        return _set_where(None, mask, value, num_rows)
    try:
        scalar = pa.scalar(value).cast(column.type) if value is not None else pa.scalar(None, type=column.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError, ValueError):
        column, scalar = column.cast(pa.string()), pa.scalar(str(value))
    return pc.if_else(mask, scalar, column)


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
        return os.path.join(self.layers_dir, f"{table}{version_file.EXTENSION}")

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

    def _active_row(self, kind: str):
        row = self._catalogue().execute(
            "SELECT table_name, report FROM webmap_versions WHERE kind = ? AND active = 1", (kind,)
        ).fetchone()
        if row is None:
            raise NotFound(f"layer {kind} has not been imported yet")
        return row

    def _active(self, kind: str) -> version_file.Version:
        """The active version of ``kind``, mapped (converted first if an earlier release wrote it)."""
        row = self._active_row(kind)
        return self._open(row["table_name"], json.loads(row["report"] or "{}").get("first_appended_fid"))

    def _open(self, table: str, first_appended_fid=None, *, locked=False) -> version_file.Version:
        """The version file of ``table``, mapped; an earlier release's GeoPackage is converted first (taking
        the write lock unless the caller, a change, holds it already)."""
        path = self.table_path(table)
        legacy = os.path.join(self.layers_dir, table + LEGACY_EXTENSION)
        if not os.path.exists(path) and os.path.exists(legacy):
            if locked:
                self._convert_legacy_locked(table, legacy, first_appended_fid)
            else:
                self._convert_legacy(table, legacy, first_appended_fid)
        return version_file.open_version(path)

    def _convert_legacy(self, table, legacy, first_appended_fid):
        """Turn an earlier release's GeoPackage version file into the Arrow file of the same version."""
        with self._exclusive():
            self._convert_legacy_locked(table, legacy, first_appended_fid)

    def _convert_legacy_locked(self, table, legacy, first_appended_fid):
        """(The write lock held.) Its rows keep their order; rows appended after its import
        (``first_appended_fid`` on) keep leading the view, newest first, as they did."""
        import pyogrio

        path = self.table_path(table)
        if os.path.exists(path):  # another thread or process converted it meanwhile
            return
        gdf = pyogrio.read_dataframe(legacy, layer=table, use_arrow=True)
        rank = np.arange(len(gdf), dtype=np.int64)
        if first_appended_fid is not None and 0 < int(first_appended_fid) <= len(gdf):
            head = len(gdf) - int(first_appended_fid) + 1
            rank[len(gdf) - head:] = -np.arange(1, head + 1)  # the last appended first
        self._place(table, version_file.build_table(gdf, rank=rank))
        self._remove_file(legacy)

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
            stem = name
            for extension in (version_file.EXTENSION, LEGACY_EXTENSION):
                stem = stem.split(extension)[0]
            stem = stem.lstrip(".")
            if stem.startswith("tmp-"):
                stem = stem[4:]
            if stem.startswith(f"{kind}_v") and stem[len(kind) + 2:].isdigit() and (
                    stem not in known or name.startswith(".")):
                self._remove_file(os.path.join(self.layers_dir, name))

    def _write_version(self, path, table):
        """Write a version file (tests inject failures here)."""
        version_file.write_file(path, table)

    def _place(self, name, table) -> str:
        """Write ``table`` as the version file ``name``: under a temporary name, flushed, then renamed into
        place (a failure leaves no file behind). Returns the file's path."""
        final_path = self.table_path(name)
        tmp_path = os.path.join(self.layers_dir, f".tmp-{name}{version_file.EXTENSION}")
        try:
            self._write_version(tmp_path, table)
            os.replace(tmp_path, final_path)
        except BaseException:
            self._remove_file(tmp_path)
            raise
        return final_path

    @staticmethod
    def _record(kind, version, name, table, *, source_name, sha256, crs, bbox, report) -> dict:
        """The catalogue row of a new version (``bbox`` a list or None, ``report`` a dict)."""
        return {
            "kind": kind,
            "version": version,
            "table_name": name,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source_name": source_name,
            "sha256": sha256,
            "crs": crs,
            "feature_count": int(table.num_rows),
            "bbox": json.dumps(bbox) if bbox else None,
            "report": json.dumps(report, ensure_ascii=False, default=str),
        }

    def replace_layer(self, kind, gdf, provenance, progress=None, *, wkb=None, rank=None):
        """See ``Store.replace_layer``; ``wkb`` and ``rank`` as ``version_file.build_table`` takes them."""
        if progress:
            progress("write")
        table = version_file.build_table(gdf, wkb=wkb, rank=rank)
        with self._exclusive():
            self._remove_orphans(kind)
            con = self._writer()
            try:
                row = con.execute("SELECT MAX(version) FROM webmap_versions WHERE kind = ?", (kind,)).fetchone()
            finally:
                con.close()
            version = (row[0] or 0) + 1
            name = f"{kind}_v{version}"
            final_path = self.table_path(name)
            try:
                self._place(name, table)
                record = self._record(kind, version, name, table, source_name=provenance.get("source_name", ""),
                                      sha256=provenance.get("sha256", ""), crs=provenance.get("crs", ""),
                                      bbox=self._extent(table) if table.num_rows else None,
                                      report=provenance.get("report", {}))
                con = self._writer()
                try:
                    with con:  # one transaction: the pointer moves, or nothing happens
                        self._insert_active(con, kind, version, record)
                finally:
                    con.close()
            except BaseException:
                self._remove_file(final_path)
                raise
            self._prune(kind)
            return self.list_versions(kind)[0]

    @staticmethod
    def _extent(table) -> list | None:
        """[w, s, e, n] of a version's features, from its box columns (None when it holds none)."""
        values = [pc.min_max(table.column(name)) for name in version_file.BOUNDS]
        box = [values[0]["min"].as_py(), values[1]["min"].as_py(), values[2]["max"].as_py(), values[3]["max"].as_py()]
        return None if any(v is None for v in box) else [float(v) for v in box]

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
                self._remove_file(os.path.join(self.layers_dir, row["table_name"] + LEGACY_EXTENSION))
        finally:
            con.close()

    # -- changing the active version: its rows changed in memory, written as the next version ---------
    def append_features(self, kind, gdf, provenance):
        if gdf is None or len(gdf) == 0:
            raise BadInput(f"nothing to append to {kind}: no features given")
        if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
            raise BadInput(f"features appended to {kind} must be in EPSG:4326 lon/lat, got {gdf.crs.to_string()}")
        rows = gdf.drop(columns=[c for c in (version_file.ROW_ID,) if c in gdf.columns])
        if rows.crs is None:
            rows = rows.set_crs("EPSG:4326")
        for name in rows.columns:
            if name != rows.geometry.name and (not str(name) or str(name) in _RESERVED):
                raise BadInput(f"cannot add a column named {name!r}")
        bounds = [float(v) for v in rows.total_bounds]

        def change(base: version_file.Version) -> pa.Table:
            details["first_appended_fid"] = base.num_rows + 1  # unless earlier appends lead already (_derive)
            lowest = int(base.rank.min()) if base.num_rows else 0
            # the newest row leads the view, then the one before it..., then every row the version had
            rank = lowest - 1 - np.arange(len(rows), dtype=np.int64)
            return version_file.concat([base.table, version_file.build_table(rows, rank=rank)])

        digest = hashlib.sha256(rows.to_json(default=str).encode("utf-8")).hexdigest()
        details = {"operation": "append", "features_added": int(len(rows))}
        return self._derive(kind, provenance, details, digest, change, bounds)

    def update_features(self, kind, ids, values, provenance, id_field="id"):
        wanted = [_plain(i) for i in dict.fromkeys(ids)]
        if not wanted:
            raise BadInput(f"nothing to update in {kind}: no ids given")
        if not values:
            raise BadInput(f"nothing to update in {kind}: no values given")
        changes = {str(name): _plain(value) for name, value in values.items()}
        refused = sorted((set(changes) & _RESERVED) | ({"geom"} & set(changes)) | ({""} & set(changes)))
        if refused:
            raise BadInput(f"update_features changes attributes only, not {', '.join(map(repr, refused))}")

        def change(base: version_file.Version) -> pa.Table:
            if id_field not in base.columns:
                raise NotFound(f"layer {kind} has no field {id_field!r}")
            column = base.table.column(id_field)
            keys = version_file.values_like(column.type, wanted)
            mask = pc.fill_null(pc.is_in(column, value_set=keys), False).combine_chunks()
            found = set(pc.unique(column.filter(mask)).to_pylist())
            missing = [str(i) for i in wanted if i not in found]
            if missing:
                raise NotFound(f"{kind}: no feature with {id_field} {', '.join(missing[:5])}"
                               + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
            table = base.table
            for name, value in changes.items():
                current = table.column(name) if name in table.column_names else None
                updated = _set_where(current, mask, value, table.num_rows)
                if current is None:  # new columns go before the store's own (boxes, rank, geometry)
                    table = table.add_column(table.column_names.index(version_file.BOUNDS[0]), name, updated)
                else:
                    table = table.set_column(table.column_names.index(name), name, updated)
            return version_file.with_geo_metadata(table)

        payload = json.dumps({"ids": wanted, "values": changes}, sort_keys=True, ensure_ascii=False, default=str)
        details = {"operation": "update", "features_updated": len(wanted), "id_field": id_field,
                   "values": json.loads(json.dumps(changes, default=str))}
        return self._derive(kind, provenance, details, hashlib.sha256(payload.encode("utf-8")).hexdigest(), change)

    def _derive(self, kind, provenance, details, digest, change, added_bounds=None, attempts=3):
        """``change`` the rows of the active version of ``kind`` and register them as the next active version;
        the previous one stays as it was whatever fails."""
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
                inherited = json.loads(base["report"] or "{}").get("first_appended_fid")
                version = (newest or 0) + 1
                name = f"{kind}_v{version}"
                final_path = self.table_path(name)
                try:
                    table = change(self._open(base["table_name"], inherited, locked=True))
                    self._place(name, table)
                    bbox = json.loads(base["bbox"]) if base["bbox"] else None
                    if added_bounds is not None:
                        bbox = list(added_bounds) if bbox is None else [
                            min(bbox[0], added_bounds[0]), min(bbox[1], added_bounds[1]),
                            max(bbox[2], added_bounds[2]), max(bbox[3], added_bounds[3])]
                    report = {**(provenance.get("report") or {}), **details, "base_version": base["version"]}
                    if inherited is not None:  # rows appended to earlier versions still lead
                        report["first_appended_fid"] = inherited
                    record = self._record(
                        kind, version, name, table,
                        source_name=provenance.get("source_name") or f"{details['operation']} on version {base['version']}",
                        sha256=provenance.get("sha256") or digest, crs=provenance.get("crs") or base["crs"],
                        bbox=bbox, report=report)
                    self._register(kind, version, record, expected_active=base["version"])
                except _Conflict:
                    self._remove_file(final_path)
                    continue
                except BaseException:
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
        return self._active(kind).whole()

    def query_features(self, kind, query: FeatureQuery):
        version = self._active(kind)
        rows = version.select(query, wanted=int(query.limit) + 1)
        exceeded = len(rows) > query.limit
        return version.frame(rows[: query.limit]), exceeded

    def summarize(self, kind, query: FeatureQuery):
        """``(count, bbox)`` of everything the query matches (for filtered users: counts must not leak)."""
        version = self._active(kind)
        rows = version.select(query)
        return int(len(rows)), version.bounds_of(rows)

    def distinct_values(self, kind, field, limit=200):
        return self._active(kind).distinct(field, limit)

    def search(self, text_folded, kinds, limit, filters=None):
        """Rows whose folded search text holds ``text_folded``, shortest text first; ``filters`` maps a kind
        to the FeatureQuery (owner filter, mask) that the searching user is held to."""
        results = []
        for kind in kinds:
            try:
                version = self._active(kind)
            except NotFound:
                continue
            rule = (filters or {}).get(kind) or FeatureQuery()
            if rule.mask is not None and rule.mask.is_empty:
                continue
            rows = version.containing_text("_search", text_folded)
            rows = version.filter_rows(rows, rule)
            rows = rows[np.lexsort((rows, version.text_lengths("_search", rows)))]
            if rule.mask is not None:
                rows = version.meeting_mask(rows, rule.mask, limit)
            rows = rows[:limit]
            for position, row in zip(rows, version.records(rows)):
                results.append({"layer": kind, "row": row, "bbox": version.bounds_of(np.array([position]))})
        return results

    def close(self):
        con = getattr(self._local, "catalogue", None)
        if con is not None:
            con.close()
            self._local.catalogue = None
