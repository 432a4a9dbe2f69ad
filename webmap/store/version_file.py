"""One layer version on disk: an Arrow IPC file (GeoArrow WKB geometry), written once, memory-mapped by readers.

Why Arrow rather than a GeoPackage per version: writing a million features into SQLite (GDAL's GPKG driver,
with or without its R-tree) took 5-7 s, three times longer than reading the file being imported, so no
import could come within the 3x of a raw read that the store is held to. An Arrow file of the same rows is
written in a tenth of a second, and readers map it into memory without decoding anything: the operating
system shares one copy of the pages between every thread and process that reads the version.

The file holds the layer's columns, the geometry as WKB (tagged ``geoarrow.wkb``, with GeoParquet-style
``geo`` metadata, so ``geopandas.read_feather`` and GDAL's Arrow driver open it as it is), and five internal
columns that stand in for a spatial index and an ordering:

- ``_xmin``, ``_ymin``, ``_xmax``, ``_ymax``: each feature's bounding box. A viewport query compares these
  four float64 columns with numpy (a few milliseconds for a million rows), then reads only the rows that
  passed; a mask (a district, say) is then tested with shapely on those rows alone.
- ``_rank``: the order in which a view cut off at its limit shows features (lowest first): incidents newest
  first, rows appended by a report before everything else. It replaces a physical sort of the file, which
  cost more than the whole write.

Nothing here knows about layers or roles: ``embedded.py`` decides which file is active and who may read it.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from webmap.errors import StoreError
from webmap.store.base import FeatureQuery

EXTENSION = ".arrow"
GEOMETRY = "geometry"
BOUNDS = ("_xmin", "_ymin", "_xmax", "_ymax")
RANK = "_rank"
INTERNAL = (*BOUNDS, RANK)
ROW_ID = "fid"  # 1-based position in the file, as GeoPackage fids were: given with query results, not stored
_WGS84_PROJJSON = None
_CACHE_SIZE = 16  # open versions kept mapped per process (each costs address space, not memory)


def _wgs84_projjson() -> dict:
    global _WGS84_PROJJSON
    if _WGS84_PROJJSON is None:
        from pyproj import CRS

        _WGS84_PROJJSON = CRS.from_epsg(4326).to_json_dict()
    return _WGS84_PROJJSON


# -- writing --------------------------------------------------------------------------------------------
def _attribute_column(series) -> pa.Array:
    """One attribute column as Arrow; an object column of mixed Python types (an extra property with numbers
    and words) is kept as text rather than refused.

    Text is stored with 32-bit offsets (pandas hands over 64-bit ones) while a column holds under 2 GB: a
    million rows of a dozen text columns, mostly empty, then take 50 MB less to write and to map."""
    try:
        values = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        values = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in series]
        return pa.array(values, type=pa.large_string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_large_string(values.type) and values.nbytes < (1 << 31) - (1 << 24):
        values = values.cast(pa.string())
    return values


def build_table(gdf, *, wkb=None, rank=None) -> pa.Table:
    """The Arrow table of a version from a GeoDataFrame in EPSG:4326.

    ``wkb``, if given, is the WKB of ``gdf``'s geometries in the same order (an import whose geometries the
    checks left as they were hands over the bytes it read, rather than have shapely write them again).
    ``rank`` gives each row's place in a cut-off view (lowest first); by default the file order.
    """
    import shapely

    geoms = np.asarray(gdf.geometry.values, dtype=object)
    names = [c for c in gdf.columns if c != gdf.geometry.name and c != ROW_ID and c not in INTERNAL and c != GEOMETRY]
    columns = {str(name): _attribute_column(gdf[name]) for name in names}
    bounds = shapely.bounds(geoms) if len(geoms) else np.empty((0, 4))
    for i, name in enumerate(BOUNDS):
        columns[name] = pa.array(bounds[:, i], type=pa.float64())
    if rank is None:
        rank = np.arange(len(gdf), dtype=np.int64)
    columns[RANK] = pa.array(np.asarray(rank, dtype=np.int64))
    if wkb is None:
        wkb = pa.array(shapely.to_wkb(geoms) if len(geoms) else [], type=pa.binary())
    elif len(wkb) != len(gdf):
        raise StoreError(f"internal error: {len(wkb)} geometries given for {len(gdf)} rows")
    columns[GEOMETRY] = wkb
    return with_geo_metadata(pa.table(columns))


def with_geo_metadata(table: pa.Table) -> pa.Table:
    """Tag the geometry column as GeoArrow WKB and describe it as GeoParquet does (GDAL and geopandas read these)."""
    crs = _wgs84_projjson()
    fields = []
    for field in table.schema:
        if field.name == GEOMETRY:
            field = pa.field(GEOMETRY, pa.binary(), nullable=True, metadata={
                b"ARROW:extension:name": b"geoarrow.wkb",
                b"ARROW:extension:metadata": json.dumps({"crs": crs}).encode("utf-8")})
        fields.append(field)
    geo = {"version": "1.0.0", "primary_column": GEOMETRY,
           "columns": {GEOMETRY: {"encoding": "WKB", "geometry_types": [], "crs": crs,
                                  "covering": {"bbox": {"xmin": ["_xmin"], "ymin": ["_ymin"],
                                                        "xmax": ["_xmax"], "ymax": ["_ymax"]}}}}}
    schema = pa.schema(fields, metadata={b"geo": json.dumps(geo).encode("utf-8")})
    return pa.Table.from_arrays([table.column(i) for i in range(table.num_columns)], schema=schema)


def write_file(path: str, table: pa.Table) -> None:
    """Write ``table`` as an Arrow IPC file, uncompressed (so readers map it), and flush it to disk."""
    with pa.OSFile(path, "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=1 << 20)
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def concat(tables: list[pa.Table]) -> pa.Table:
    """Rows of several versions' tables as one (columns one lacks are empty in its rows; a column whose
    types disagree, numbers in one and words in another, becomes text, as SQLite would have kept it)."""
    tables = [t.replace_schema_metadata(None) for t in tables]
    try:
        merged = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        types: dict = {}
        for table in tables:
            for field in table.schema:
                if not pa.types.is_null(field.type):
                    types.setdefault(field.name, set()).add(field.type)
        mixed = {name for name, found in types.items() if len(found) > 1 and name not in INTERNAL and name != GEOMETRY}
        for i, table in enumerate(tables):
            for name in mixed & set(table.column_names):
                position = table.column_names.index(name)
                table = table.set_column(position, name, pc.cast(table.column(name), pa.large_string()))
            tables[i] = table
        merged = pa.concat_tables(tables, promote_options="permissive")
    # the geometry column keeps its extension tags only if every part had them: put them back
    return with_geo_metadata(merged)


# -- reading --------------------------------------------------------------------------------------------
class Version:
    """A version file mapped into memory, with its boxes and ranks as numpy arrays (read once per process)."""

    def __init__(self, path: str):
        self.path = path
        try:
            self.table = pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
        except (OSError, pa.ArrowInvalid) as exc:
            raise StoreError(f"the store cannot read {os.path.basename(path)}: {exc}") from None
        self.num_rows = self.table.num_rows
        self.columns = [c for c in self.table.column_names if c not in INTERNAL and c != GEOMETRY]
        self.xmin, self.ymin, self.xmax, self.ymax = (self._numpy(name) for name in BOUNDS)
        self.rank = self._numpy(RANK)

    def _numpy(self, name) -> np.ndarray:
        column = self.table.column(name)
        if column.num_chunks == 1:
            return column.chunk(0).to_numpy(zero_copy_only=False)
        return column.to_numpy()

    # -- selecting rows ------------------------------------------------------------------------------
    def select(self, query: FeatureQuery, wanted: int | None = None) -> np.ndarray:
        """Row positions that ``query`` matches, in view order (rank), at most ``wanted`` of them."""
        bbox = query.bbox
        if query.mask is not None:
            if query.mask.is_empty:
                return np.empty(0, dtype=np.int64)
            mx = query.mask.bounds
            bbox = mx if bbox is None else (max(bbox[0], mx[0]), max(bbox[1], mx[1]), min(bbox[2], mx[2]),
                                            min(bbox[3], mx[3]))
            if bbox[0] > bbox[2] or bbox[1] > bbox[3]:
                return np.empty(0, dtype=np.int64)
        if bbox is not None:
            west, south, east, north = (float(v) for v in bbox)
            hit = (self.xmin <= east) & (self.xmax >= west) & (self.ymin <= north) & (self.ymax >= south)
            rows = np.flatnonzero(hit)
        else:
            rows = np.arange(self.num_rows, dtype=np.int64)
        rows = self.filter_rows(rows, query)
        if query.mask is None:
            return self.in_view_order(rows, wanted)
        return self.meeting_mask(self.in_view_order(rows, None), query.mask, wanted)

    def in_view_order(self, rows: np.ndarray, wanted: int | None) -> np.ndarray:
        ranks = self.rank[rows]
        if wanted is not None and wanted < len(rows):
            part = np.argpartition(ranks, wanted - 1)[:wanted]  # the first ``wanted`` without sorting the rest
            rows, ranks = rows[part], ranks[part]
        return rows[np.argsort(ranks, kind="stable")]

    def meeting_mask(self, rows: np.ndarray, mask, wanted: int | None) -> np.ndarray:
        """Keep the rows whose geometry meets ``mask``, reading geometries a block at a time, until ``wanted``."""
        import shapely

        shapely.prepare(mask)
        kept = []
        found = 0
        step = 4096
        for start in range(0, len(rows), step):
            block = rows[start:start + step]
            hits = shapely.intersects(mask, self.geometries(block))
            kept.append(block[hits])
            found += int(hits.sum())
            if wanted is not None and found >= wanted:
                break
        out = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
        return out if wanted is None else out[:wanted]

    def filter_rows(self, rows: np.ndarray, query: FeatureQuery) -> np.ndarray:
        """Apply the equality, range and empty-or-in filters to the candidate ``rows``."""
        conditions = []
        for name, values in query.in_filters.items():
            conditions.append(("in", name, list(values)))
        for name, value in query.min_filters.items():
            conditions.append(("min", name, value))
        for name, value in query.max_filters.items():
            conditions.append(("max", name, value))
        for name, values in (query.null_or_in or {}).items():
            if name in self.columns:  # a column the version lacks is empty in every row: no condition
                conditions.append(("null_or_in", name, list(values)))
        for op, name, value in conditions:
            if not len(rows):
                break
            if name not in self.columns:
                return np.empty(0, dtype=np.int64)  # nothing can equal or exceed a value in a missing column
            column = self._take(name, rows)
            if op == "in":
                keep = pc.is_in(column, value_set=values_like(column.type, value))
            elif op == "min":
                keep = pc.greater_equal(column, _scalar_like(column.type, value))
            elif op == "max":
                keep = pc.less(column, _scalar_like(column.type, value))
            else:
                keep = pc.is_null(column)
                if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                    keep = pc.or_kleene(keep, pc.equal(column, ""))
                if value:
                    keep = pc.or_kleene(keep, pc.is_in(column, value_set=values_like(column.type, value)))
            rows = rows[pc.fill_null(keep, False).to_numpy(zero_copy_only=False)]
        return rows

    def _take(self, name, rows):
        column = self.table.column(name)
        if len(rows) == self.num_rows:
            return column
        return column.take(pa.array(rows, type=pa.int64()))

    # -- reading rows ----------------------------------------------------------------------------------
    def geometries(self, rows: np.ndarray | None = None) -> np.ndarray:
        import shapely

        column = self.table.column(GEOMETRY)
        if rows is not None:
            column = column.take(pa.array(rows, type=pa.int64()))
        return shapely.from_wkb(column.to_numpy(zero_copy_only=False))

    def records(self, rows: np.ndarray, extra=()) -> list[dict]:
        """Rows as plain Python dicts (``fid`` first), for the few rows of a query or a search."""
        names = [*self.columns, *extra]
        part = self.table.select(names).take(pa.array(rows, type=pa.int64()))
        records = part.to_pylist()
        return [{ROW_ID: int(position) + 1, **record} for position, record in zip(rows, records)]

    def frame(self, rows: np.ndarray):
        """The given rows as a GeoDataFrame (EPSG:4326), values as plain Python scalars (None when empty)."""
        import geopandas as gpd
        import pandas as pd

        # object columns of Python scalars: pandas would put text back into Arrow, and every consumer of a
        # query turns the rows into dicts again (GeoJSON, access rules): 1.5x slower answers
        values = self.table.select(self.columns).take(pa.array(rows, type=pa.int64())).to_pydict()
        data = {ROW_ID: _objects([int(p) + 1 for p in rows])}
        data.update((name, _objects(values[name])) for name in self.columns)
        frame = pd.DataFrame(data, columns=[ROW_ID, *self.columns])
        return gpd.GeoDataFrame(frame, geometry=self.geometries(rows) if len(rows) else np.array([], dtype=object),
                                crs="EPSG:4326")

    def whole(self):
        """Every row, in file order, as a GeoDataFrame (exports and analyses); columns as pyogrio gives them."""
        import geopandas as gpd

        frame = self.table.select(self.columns).to_pandas()
        return gpd.GeoDataFrame(frame, geometry=self.geometries(), crs="EPSG:4326")

    def bounds_of(self, rows: np.ndarray) -> list | None:
        if not len(rows):
            return None
        return [float(self.xmin[rows].min()), float(self.ymin[rows].min()),
                float(self.xmax[rows].max()), float(self.ymax[rows].max())]

    def distinct(self, name: str, limit: int) -> list:
        if name not in self.columns:
            return []
        values = pc.unique(self.table.column(name)).drop_null()
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            values = values.filter(pc.not_equal(values, ""))
        values = values.take(pc.array_sort_indices(values))
        return values.slice(0, limit).to_pylist()

    def containing_text(self, name: str, text: str) -> np.ndarray:
        """Positions whose column ``name`` holds ``text`` (ASCII case ignored, as SQL LIKE did)."""
        if name not in self.columns:
            return np.empty(0, dtype=np.int64)
        column = self.table.column(name)
        hit = pc.fill_null(pc.match_substring(column, text, ignore_case=True), False)
        return np.flatnonzero(hit.to_numpy(zero_copy_only=False))

    def text_lengths(self, name: str, rows: np.ndarray) -> np.ndarray:
        return pc.fill_null(pc.utf8_length(self._take(name, rows)), 0).to_numpy(zero_copy_only=False)


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def values_like(arrow_type, values) -> pa.Array:
    """Filter values as an array of the column's type; values that cannot be of that type match nothing."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pa.array([str(v) for v in values if v is not None], type=arrow_type)
    kept = []
    for value in values:
        try:
            kept.append(pa.scalar(value).cast(arrow_type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError, ValueError):
            try:
                kept.append(pa.scalar(str(value)).cast(arrow_type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError, ValueError):
                continue
    return pa.array([k.as_py() for k in kept], type=arrow_type)


def _scalar_like(arrow_type, value):
    try:
        return pa.scalar(value).cast(arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError, ValueError):
        return pa.scalar(str(value))


_open: OrderedDict = OrderedDict()
_open_lock = threading.Lock()


def open_version(path: str) -> Version:
    """The mapped version at ``path``, opened once per process (version files never change once written)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise StoreError(f"the store has lost the file {os.path.basename(path)}; import the layer again") from None
    key = (path, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    with _open_lock:
        version = _open.get(key)
        if version is not None:
            _open.move_to_end(key)
            return version
    version = Version(path)
    with _open_lock:
        _open[key] = version
        while len(_open) > _CACHE_SIZE:
            _open.popitem(last=False)
    return version
