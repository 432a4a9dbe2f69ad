"""The import pipeline: a user's file in, a new layer version in the store, and a report out.

    file -> open_source (checks, safe unpacking) -> read_source (pyogrio, text decoding)
         -> clean_geometries -> CRS to WGS 84 (VN-2000 pinned) -> conform_attributes -> store

Everything before the store only reads; the store swaps the version in one transaction. So any error, at
any step, leaves the store exactly as it was.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from webmap import crs as crs_mod
from webmap.catalog import get_layer
from webmap.errors import BadInput
from webmap.io.conform import conform_attributes
from webmap.io.geometry import clean_geometries, has_polygons, orient_rfc7946
from webmap.io.readers import read_source
from webmap.io.sources import open_source


@dataclass
class ImportReport:
    layer: str
    source: str
    format: str
    sha256: str
    features_read: int = 0
    features_kept: int = 0
    repaired: int = 0
    dropped_empty: int = 0
    dropped_unrepairable: int = 0
    crs: str = ""
    transformation: str = ""
    encoding: str = ""
    version: int | None = None
    warnings: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """The report as a person reads it (printed by the CLI, kept with the version)."""
        out = [
            f"layer {self.layer} <- {self.source} ({self.format}), sha256 {self.sha256[:16]}…",
            f"features: {self.features_read} read, {self.features_kept} kept, {self.repaired} repaired, "
            f"{self.dropped_empty} dropped (null/empty geometry), {self.dropped_unrepairable} dropped (unrepairable)",
            f"CRS: {self.transformation or self.crs}",
            f"text encoding: {self.encoding}",
        ]
        out += [f"warning: {w}" for w in self.warnings]
        if self.version is not None:
            out.append(f"stored as version {self.version}")
        return out


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class PreparedLayer:
    """What ``prepare_layer`` makes of a file: the rows to store, the report, and how to store them fast."""

    gdf: gpd.GeoDataFrame  # schema columns + extra + _search, geometry in EPSG:4326, in the file's order
    report: ImportReport
    wkb: object = None  # the file's own WKB of gdf's geometries when no check changed one (pyarrow), else None
    rank: object = None  # each row's place in a view cut off at its limit (newest first for timed layers)

    def store_options(self) -> dict:
        return {"wkb": self.wkb, "rank": self.rank}


def view_rank(layer, gdf) -> np.ndarray | None:
    """Each row's place in a cut-off view, lowest first: the newest events first for a layer with a time
    field (so a view at its limit shows the most recent), None (file order) otherwise.

    Times are stored as canonical ISO text (``2024-03-14T02:35:00+07:00``, one offset), so their first
    characters parse straight to seconds; empty times come last."""
    if not layer.time_field or layer.time_field not in gdf.columns or not len(gdf):
        return None
    text = pa.array(gdf[layer.time_field].astype("string"), type=pa.string())
    seconds = pc.strptime(pc.utf8_slice_codeunits(text, 0, 19), format="%Y-%m-%dT%H:%M:%S", unit="s",
                          error_is_null=True)
    if seconds.null_count > text.null_count:  # dates without a time (a date field), or empty times
        days = pc.strptime(pc.utf8_slice_codeunits(text, 0, 10), format="%Y-%m-%d", unit="s", error_is_null=True)
        seconds = pc.coalesce(seconds, days)
    seconds = seconds.cast(pa.int64())
    key = pc.fill_null(seconds, np.iinfo(np.int64).min + 1).to_numpy(zero_copy_only=False)  # negated below
    order = np.argsort(-key, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank


def _conform(layer, frame, mapping, owner):
    """``conform_attributes`` with the warnings it gives, and the rows' view rank, for a worker thread."""
    warnings = []
    attributes = conform_attributes(layer, frame, mapping=mapping, owner=owner, warnings=warnings)
    return attributes, warnings, view_rank(layer, attributes)


def prepare_layer(path, kind, *, owner=None, crs=None, encoding=None, member=None, mapping=None, progress=None):
    """Read, check and convert a file; return a ``PreparedLayer`` (rows in EPSG:4326 and the report). Writes nothing.

    ``progress``, if given, is called with the name of each step as it starts: read, geometry, crs, attributes.
    """
    step = progress or (lambda name: None)
    layer = get_layer(kind)
    if owner is not None and not layer.owner_field:
        raise BadInput(f"--owner applies to layers with an owner ({kind} has none)")
    if not os.path.isfile(str(path)):
        # open_source gives the precise message (missing, virtual path, not a file)
        with open_source(path, member):
            pass
    report = ImportReport(layer=kind, source=os.path.basename(str(path)), format="", sha256="")
    # Work at once on two cores (hashlib, shapely and Arrow release the GIL): the file is hashed while it is
    # read, and the attributes are mapped to the schema for every row while this thread parses and checks
    # the geometries. When a check drops rows (null or unrepairable geometries), the mapping is done again
    # on the rows kept, so its result and its errors are exactly those of mapping the kept rows alone.
    # Leaving the block waits for both: nothing runs on behind an error.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="webmap-import") as pool:
        hashed = pool.submit(file_sha256, path)
        step("read")
        with open_source(path, member) as source:
            report.format = source.format + (f" (layer {source.layer})" if source.layer else "")
            raw = read_source(source, encoding)
        report.encoding = raw.encoding
        report.warnings += raw.notes
        report.features_read = len(raw)
        if len(raw) == 0:
            raise BadInput(f"{report.source} holds no features")
        frame = raw.attributes()
        mapped = pool.submit(_conform, layer, frame, mapping, owner)
        checked = _check_geometries(raw, layer, crs, report, step)
        step("attributes")
        if checked.keep.all():
            attributes, warnings, rank = mapped.result()
        else:
            attributes, warnings, rank = _conform(layer, frame.loc[checked.keep], mapping, owner)
        report.sha256 = hashed.result()
    report.warnings += warnings
    out = gpd.GeoDataFrame(attributes.reset_index(drop=True), geometry=np.asarray(checked.lonlat, dtype=object),
                           crs="EPSG:4326")
    report.features_kept = len(out)
    if report.dropped_empty:
        report.warnings.append(f"{report.dropped_empty} feature(s) without geometry dropped")
    wkb = None
    if raw.wkb is not None and checked.untouched:  # the bytes read are stored as they are
        wkb = raw.wkb if checked.keep.all() else raw.wkb.filter(pa.array(checked.keep))
    return PreparedLayer(out, report, wkb=wkb, rank=rank)


@dataclass
class _CheckedGeometries:
    lonlat: np.ndarray  # the kept geometries, in WGS 84 lon/lat, rings oriented
    keep: np.ndarray  # which rows of the file are kept
    untouched: bool  # no check changed a kept geometry (no Z dropped, repair, transformation or re-orientation)


def _check_geometries(raw, layer, crs, report, step) -> _CheckedGeometries:
    """Parse, check and repair the geometries, resolve the CRS and bring them to WGS 84; counts and CRS go
    into ``report``."""
    step("geometry")
    counts = {}
    geoms, keep = clean_geometries(raw.geometries(), layer.geometry, counts)
    report.repaired = counts["repaired"]
    report.dropped_empty = counts["dropped_empty"]
    report.dropped_unrepairable = counts["dropped_unrepairable"]
    if not keep.any():
        raise BadInput(f"{report.source}: no feature has a usable geometry")
    kept = geoms if keep.all() else geoms[keep]
    bounds = tuple(float(v) for v in shapely.total_bounds(kept))
    step("crs")
    resolution = crs_mod.resolve_crs(raw.crs, user_crs=crs, bounds=bounds)
    report.crs = resolution.source.to_string() if resolution.source is not None else ""
    report.transformation = resolution.description
    report.warnings += list(resolution.warnings)
    lonlat = resolution.transform_geometries(kept) if resolution.moves_coordinates else kept
    crs_mod.check_lonlat_bounds(tuple(float(v) for v in shapely.total_bounds(lonlat)))
    polygons = has_polygons(lonlat)
    if polygons:
        lonlat = orient_rfc7946(lonlat)
    untouched = not (counts["forced_2d"] or report.repaired or resolution.moves_coordinates or polygons)
    return _CheckedGeometries(lonlat, keep, untouched)


def provenance_of(report: ImportReport) -> dict:
    """What the store keeps with a version: source name, SHA-256, CRS and the whole report."""
    return {"source_name": report.source, "sha256": report.sha256, "crs": report.crs, "report": report.as_dict()}


def merge_owner_rows(store, kind, gdf, owner):
    """The active version with ``owner``'s rows replaced by ``gdf``; every other owner's rows kept as they are.

    This is how an enterprise's upload changes only its own network. Ids need only be unique within one
    owner's rows here: refusing an id because another owner uses it would tell the uploader that it exists.
    """
    from webmap.catalog import get_layer
    from webmap.errors import NotFound

    layer = get_layer(kind)
    try:
        current = store.read_layer(kind)
    except NotFound:
        return gdf, 0
    others = current[current[layer.owner_field] != owner]
    others = others[[c for c in gdf.columns if c in others.columns]]
    merged = gpd.GeoDataFrame(pd.concat([others, gdf], ignore_index=True), geometry=gdf.geometry.name,
                              crs="EPSG:4326")
    return merged, len(current) - len(others)


def import_layer(store, path, kind, *, owner=None, crs=None, encoding=None, member=None, mapping=None, progress=None,
                 only_owner=False, notify_app=None):
    """Import ``path`` as the new version of layer ``kind``; all or nothing. Returns the ImportReport.

    With ``only_owner`` (an enterprise's upload), the file replaces ``owner``'s rows alone. With
    ``notify_app``, an incidents import raises that app's alerts for the recent incidents it adds
    (``webmap.alerts.notify_imported``).
    """
    prepared = prepare_layer(path, kind, owner=owner, crs=crs, encoding=encoding, member=member, mapping=mapping,
                             progress=progress)
    gdf, report, options = prepared.gdf, prepared.report, prepared.store_options()
    if only_owner:
        if not owner:
            raise BadInput("an upload limited to one owner needs that owner")
        gdf, replaced = merge_owner_rows(store, kind, gdf, owner)
        options = {"rank": view_rank(get_layer(kind), gdf)}
        report.warnings.append(f"replaced the {replaced} feature(s) of {owner}; other owners' features kept")
    previous = None
    if notify_app is not None and kind == "incidents":
        from webmap.alerts import incident_ids

        previous = incident_ids(store) or set()
    version = store.replace_layer(kind, gdf, provenance_of(report), progress=progress, **options)
    report.version = version.version
    if previous is not None:
        from webmap.alerts import notify_imported

        notify_imported(notify_app, gdf, previous)
    return report
