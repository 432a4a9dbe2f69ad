"""Turn a user's path into a local dataset that GDAL may open, after checking what it really is.

Rules (the file is hostile until proven otherwise):
- only a real local file, named by its path; ``/vsi...`` prefixes and URLs are refused, so GDAL is never
  handed a virtual path that the user controls;
- the format is chosen from an allow-list of extensions and then confirmed from the content (magic
  bytes, first character, XML root), so a ``.geojson`` that is really an OGR VRT never reaches GDAL;
- archives (.zip, .kmz) are unpacked by ``archive.extract_archive`` into a private folder with limits;
- KML is parsed with defusedxml first: no DTD, no entities, no external references.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from webmap.errors import BadInput, UnsafeInput
from webmap.io.archive import extract_archive

FORMATS = {
    ".shp": "shapefile",
    ".zip": "zip",
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".kml": "kml",
    ".kmz": "kmz",
    ".tab": "mapinfo",
    ".mif": "mapinfo",
    ".csv": "csv",
}
REFUSED = {".vrt": "OGR VRT", ".ovf": "OGR VRT", ".xml": "XML", ".gdalg": "GDAL algorithm", ".gfs": "GML schema"}
SUPPORTED_TEXT = ".shp, .zip (Shapefile inside), .geojson/.json, .gpkg, .kml/.kmz, .tab/.mif, .csv"
_DATASET_EXTS = (".shp", ".geojson", ".json", ".gpkg", ".kml", ".tab", ".mif", ".csv")
_SHAPEFILE_MAGIC = b"\x00\x00\x27\x0a"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_GPKG_APPLICATION_IDS = (b"GPKG", b"GP10", b"GP11")  # SQLite header offset 68
# Content that GDAL recognises, whatever the extension, as a dataset made of other datasets: an OGR VRT, a
# GDALG "streamed algorithm" (a JSON file holding a gdal command line that reads any path or URL), a WFS
# or other service description. GDAL identifies them from the first bytes, which _head() covers.
_INDIRECTIONS = (
    (b"<ogrvrtdatasource", "an OGR VRT (XML) file"),
    (b"gdal_streamed_alg", "a GDALG algorithm (JSON) file"),
    (b"<ogrwfsdatasource", "a WFS service description"),
    (b"<gdal_wms", "a WMS service description"),
)


@dataclass
class Source:
    """A local dataset ready for reading, and where it came from."""

    path: str  # local file that GDAL (or pandas) opens
    format: str  # shapefile, geojson, gpkg, kml, mapinfo, csv
    name: str  # what the user named (for reports)
    layer: str | None = None  # layer inside a multi-layer container
    members: list = field(default_factory=list)  # for reports: archive members


def _check_user_path(path: str) -> str:
    text = str(path)
    if text.lower().startswith("/vsi") or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        raise UnsafeInput(f"{text!r} is not a local file: name a file on this machine (virtual paths and URLs are refused)")
    if not os.path.exists(text):
        raise BadInput(f"file not found: {text}")
    if not os.path.isfile(text):
        raise BadInput(f"not a regular file: {text}")
    return os.path.realpath(text)


def _head(path: str, size: int = 4096) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def _confirm_content(path: str, fmt: str, shown: str):
    """Refuse a file whose content does not match its extension."""
    head = _head(path)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    lowered_head = head.lower()
    for marker, what in _INDIRECTIONS:
        if marker in lowered_head:
            raise UnsafeInput(f"{shown} is really {what}, which makes GDAL open other files or URLs; refused")
    ok = True
    if fmt == "shapefile":
        ok = head[:4] == _SHAPEFILE_MAGIC
    elif fmt == "gpkg":
        # a plain SQLite database would be opened by GDAL's SQLite driver (virtual tables, extensions)
        ok = head[:16] == _SQLITE_MAGIC and head[68:72] in _GPKG_APPLICATION_IDS
    elif fmt == "geojson":
        ok = stripped[:1] == b"{"
    elif fmt == "kml":
        ok = stripped[:1] == b"<"
        if ok:
            _check_kml(path, shown)
    elif fmt == "mapinfo":
        lowered = stripped[:64].lower()
        ok = lowered.startswith(b"!table") or lowered.startswith(b"version")
        if ok and path.lower().endswith(".tab"):
            _check_tab(path, shown)
    elif fmt == "csv":
        ok = stripped[:1] not in (b"<", b"{") and b"\x00" not in head
    if not ok:
        raise BadInput(f"{shown} does not contain what a {fmt} file holds (its content does not match its extension)")


def _check_kml(path: str, shown: str):
    try:
        root = safe_et.parse(path, forbid_dtd=True, forbid_entities=True, forbid_external=True).getroot()
    except DefusedXmlException:
        raise UnsafeInput(f"{shown}: KML with a DTD, entities or external references is refused") from None
    except safe_et.ParseError as exc:
        raise BadInput(f"{shown} is not well-formed XML ({exc})") from None
    if not root.tag.lower().endswith("kml"):
        raise BadInput(f"{shown} is XML but not KML (root element {root.tag!r})")


def _check_tab(path: str, shown: str):
    """A MapInfo .tab may be a view or seamless table pointing at other files: only native tables pass."""
    with open(path, "rb") as fh:
        text = fh.read(8192).decode("latin-1").lower()
    match = re.search(r"^\s*type\s+(\w+)", text, re.MULTILINE)
    if match and match.group(1) not in ("native", "dbf"):
        raise UnsafeInput(f"{shown}: MapInfo {match.group(1)} tables point at other files; only native tables are accepted")
    if "seamless" in text or "!relation" in text:
        raise UnsafeInput(f"{shown}: MapInfo seamless or view tables are refused; export a native table")


def _format_of(path: str, shown: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext in REFUSED:
        raise UnsafeInput(f"{shown}: {REFUSED[ext]} files are refused (they make GDAL open other files); supported: {SUPPORTED_TEXT}")
    if ext not in FORMATS:
        raise BadInput(f"{shown}: unsupported file type {ext or '(none)'!r}; supported: {SUPPORTED_TEXT}")
    return FORMATS[ext]


def _list_gpkg_layers(path: str, shown: str) -> list[str]:
    import pyogrio

    try:
        return [str(name) for name, _ in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as exc:  # a damaged GeoPackage
        message = (str(exc).splitlines() or [type(exc).__name__])[0].replace(path, shown)
        message = message.rsplit(" failed: ", 1)[-1][:200]  # SQLite's reason, not the SQL GDAL ran
        raise BadInput(f"GDAL cannot read {shown}: {message}") from None


def _names(option: str, member: str) -> bool:
    base = os.path.splitext(os.path.basename(option))[0]
    return member in (option, base, os.path.basename(option))


def _pick(options: list[str], member: str | None, what: str, shown: str) -> str:
    if member is None:
        if len(options) == 1:
            return options[0]
        raise BadInput(f"{shown} holds {len(options)} {what}s: choose one with --member ({', '.join(options)})")
    for option in options:
        if _names(option, member):
            return option
    raise BadInput(f"{shown} has no {what} named {member!r}; it has: {', '.join(options)}")


def _resolve_dataset(path: str, shown: str, member: str | None, workdir: str) -> Source:
    fmt = _format_of(path, shown)
    if fmt in ("zip", "kmz"):
        unpacked = os.path.join(workdir, f"unpacked{len(os.listdir(workdir))}")
        os.makedirs(unpacked)
        files = extract_archive(path, unpacked)
        if fmt == "kmz":
            kmls = sorted(f for f in files if f.lower().endswith(".kml"))
            if not kmls:
                raise BadInput(f"{shown} holds no .kml document")
            chosen = "doc.kml" if "doc.kml" in kmls else kmls[0]
            inner = os.path.join(unpacked, chosen)
            _confirm_content(inner, "kml", f"{shown}:{chosen}")
            return Source(inner, "kml", shown, members=files)
        datasets = sorted(f for f in files if f.lower().endswith(_DATASET_EXTS)
                          and not os.path.basename(f).startswith("._"))
        if any(f.lower().endswith(tuple(REFUSED)) for f in files) and not datasets:
            raise UnsafeInput(f"{shown} holds only indirection files (.vrt); refused")
        if not datasets:
            raise BadInput(f"{shown} holds no dataset; expected a Shapefile (.shp with .shx and .dbf) or {SUPPORTED_TEXT}")
        inner_member = None
        if len(datasets) == 1 and member is not None and not _names(datasets[0], member):
            chosen, inner_member = datasets[0], member  # --member names a layer of the one .gpkg inside
        else:
            chosen = _pick(datasets, member, "dataset", shown)
        inner = _resolve_dataset(os.path.join(unpacked, chosen), f"{shown}:{chosen}", inner_member, workdir)
        inner.name = shown
        inner.members = files
        return inner
    _confirm_content(path, fmt, shown)
    if fmt == "shapefile":
        stem = os.path.splitext(path)[0]
        folder = os.path.dirname(path) or "."
        siblings = {f.lower(): f for f in os.listdir(folder)}
        base = os.path.basename(stem).lower()
        for needed in (".shx", ".dbf"):
            if base + needed not in siblings:
                raise BadInput(f"{shown}: the Shapefile has no {needed} beside it; copy the .shp, .shx, .dbf (and .prj, .cpg) together")
    if fmt == "gpkg":
        layers = _list_gpkg_layers(path, shown)
        if not layers:
            raise BadInput(f"{shown} holds no layer")
        return Source(path, fmt, shown, layer=_pick(layers, member, "layer", shown))
    return Source(path, fmt, shown)


@contextlib.contextmanager
def open_source(user_path: str, member: str | None = None):
    """Yield a checked ``Source`` for ``user_path``; temporary files are removed afterwards, always."""
    real = _check_user_path(user_path)
    shown = os.path.basename(str(user_path))
    workdir = tempfile.mkdtemp(prefix="webmap-import-")
    try:
        yield _resolve_dataset(real, shown, member, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
