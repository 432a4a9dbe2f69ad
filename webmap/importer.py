"""The import pipeline: a user's file in, a new layer version in the store, and a report out.

    file -> open_source (checks, safe unpacking) -> read_source (pyogrio, text decoding)
         -> clean_geometries -> CRS to WGS 84 (VN-2000 pinned) -> conform_attributes -> store

Everything before the store only reads; the store swaps the version in one transaction. So any error, at
any step, leaves the store exactly as it was.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
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


def _hash_in_background(path):
    """SHA-256 of ``path`` on another thread (hashlib releases the GIL), while the file is read."""
    result = {}

    def work():
        try:
            result["sha256"] = file_sha256(path)
        except OSError as exc:  # reported when the digest is asked for
            result["error"] = exc

    thread = threading.Thread(target=work, name="webmap-sha256", daemon=True)
    thread.start()

    def digest():
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["sha256"]

    return digest


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
    digest = _hash_in_background(path)
    report = ImportReport(layer=kind, source=os.path.basename(str(path)), format="", sha256="")
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
    # Two things at once (shapely and Arrow release the GIL): the attributes are mapped to the schema for
    # every row on another thread while this one parses and checks the geometries. When a check drops rows
    # (null or unrepairable geometries), the mapping is done again on the rows kept, so its result and its
    # errors are exactly those of mapping the kept rows alone.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="webmap-conform") as pool:
        mapped = pool.submit(_conform, layer, frame, mapping, owner)
        try:
            step("geometry")
            counts = {}
            geoms, keep = clean_geometries(raw.geometries(), layer.geometry, counts)
            report.repaired = counts["repaired"]
            report.dropped_empty = counts["dropped_empty"]
            report.dropped_unrepairable = counts["dropped_unrepairable"]
            if not keep.any():
                raise BadInput(f"{report.source}: no feature has a usable geometry")
            everything_kept = bool(keep.all())
            kept = geoms if everything_kept else geoms[keep]
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
        finally:
            wait([mapped])  # never leave the mapping running behind an error
        step("attributes")
        if everything_kept:
            attributes, warnings, rank = mapped.result()
        else:
            attributes, warnings, rank = _conform(layer, frame.loc[keep], mapping, owner)
    report.warnings += warnings
    out = gpd.GeoDataFrame(attributes.reset_index(drop=True), geometry=np.asarray(lonlat, dtype=object),
                           crs="EPSG:4326")
    report.features_kept = len(out)
    if report.dropped_empty:
        report.warnings.append(f"{report.dropped_empty} feature(s) without geometry dropped")
    # the bytes read can be stored as they are when no check touched a geometry
    untouched = (raw.wkb is not None and not counts["forced_2d"] and not report.repaired
                 and not resolution.moves_coordinates and not polygons)
    wkb = None
    if untouched:
        wkb = raw.wkb if everything_kept else raw.wkb.filter(pa.array(keep))
    report.sha256 = digest()
    return PreparedLayer(out, report, wkb=wkb, rank=rank)


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
