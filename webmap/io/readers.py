"""Read a checked ``Source`` into a GeoDataFrame in its own CRS, with its text decoded to Unicode NFC.

Bulk reads go through pyogrio's Arrow path. Text that is not UTF-8 is decoded here, in Python, not by
GDAL: GDAL's own cp1258 conversion drops the last character of every field name and value (seen with
GDAL 3.12), GDAL leaves MapInfo text in the Vietnamese Windows charset undecoded, and no GDAL driver
knows TCVN3 or VNI. So such files are read with ``encoding="latin1"`` (a lossless byte-to-character
mapping), turned back into the original bytes, and decoded by ``webmap.io.vietnamese``.
"""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyogrio
import shapely

from webmap.catalog import fold
from webmap.errors import BadInput, EncodingError
from webmap.io import vietnamese
from webmap.io.sources import Source

CPG_ALIASES = {
    "utf-8": "utf-8", "utf8": "utf-8", "65001": "utf-8",
    "1258": "cp1258", "cp1258": "cp1258", "ansi 1258": "cp1258", "windows-1258": "cp1258",
    "1252": "cp1252", "ansi 1252": "cp1252", "cp1252": "cp1252", "windows-1252": "cp1252",
    "iso-8859-1": "latin1", "latin1": "latin1", "88591": "latin1",
    "tcvn3": "tcvn3", "abc": "tcvn3", "vni": "vni",
    # the spellings people type for --encoding (and some .cpg files hold)
    "tcvn-3": "tcvn3", "tcvn_3": "tcvn3", "tcvn 3": "tcvn3", "tcvn5712": "tcvn3", "tcvn 5712": "tcvn3",
    "tcvn-5712": "tcvn3", "vn3": "tcvn3", "vni-windows": "vni", "vni_windows": "vni", "vni windows": "vni",
    "vniwindows": "vni", "vni-win": "vni", "utf_8": "utf-8", "utf 8": "utf-8",
}
TAB_CHARSETS = {"windowsvietnamese": "cp1258", "utf8": "utf-8", "windowslatin1": "cp1252", "iso88591": "latin1"}
LON_NAMES = ("lon", "lng", "long", "longitude", "kinh_do", "kinhdo", "kinh do")
LAT_NAMES = ("lat", "latitude", "vi_do", "vido", "vi do")
X_NAMES = ("x", "easting", "toa_do_x")
Y_NAMES = ("y", "northing", "toa_do_y")


@dataclass
class RawLayer:
    """What a file holds, before schema mapping: geometries in the file's CRS.

    ``frame`` is a GeoDataFrame, or, for a file read in one piece through the Arrow path, its attributes
    alone with the geometries still as the WKB GDAL gave (``wkb``, pyarrow): the importer parses them on
    another thread while it maps the attributes (shapely and Arrow release the GIL), and an import whose
    checks change no geometry stores these bytes rather than have shapely write them again.
    """

    frame: pd.DataFrame
    crs: object | None  # pyproj CRS, or None when the file names none
    encoding: str
    notes: list = field(default_factory=list)
    wkb: object = None

    @property
    def lazy(self) -> bool:
        return not isinstance(self.frame, gpd.GeoDataFrame)

    def __len__(self) -> int:
        return len(self.frame)

    def attributes(self) -> pd.DataFrame:
        return self.frame if self.lazy else self.frame.drop(columns=self.frame.geometry.name)

    def geometries(self) -> np.ndarray:
        if self.lazy:
            return shapely.from_wkb(self.wkb.to_numpy(zero_copy_only=False), on_invalid="warn")
        return np.asarray(self.frame.geometry.values, dtype=object)


def normalise_encoding(name: str) -> str:
    key = name.strip().lower()
    return CPG_ALIASES.get(key, key)


def check_encoding_name(name: str) -> None:
    """Refuse an --encoding value that names no codec we can decode with."""
    import codecs

    if name in vietnamese.LEGACY_ENCODINGS:
        return
    try:
        codecs.lookup(name)
    except LookupError:
        raise EncodingError(
            f"unknown encoding {name!r}: use utf-8, cp1258, tcvn3 or vni (or any Python codec name)"
        ) from None
    vietnamese.decode_bytes(b"", name)  # the decoder must know it too (raises EncodingError otherwise)


def _string_columns(df) -> list[str]:
    return [c for c in df.columns if c != "geometry" and (df[c].dtype == object or pd.api.types.is_string_dtype(df[c]))]


def _as_bytes(value: str) -> bytes:
    return value.encode("latin1")


def _decode_frame(df, encoding: str | None, shown: str, notes: list) -> tuple[pd.DataFrame, str]:
    """Columns read as latin1 go back to bytes and are decoded with ``encoding`` (detected when None)."""
    columns = _string_columns(df)
    name_bytes = [_as_bytes(str(c)) for c in df.columns if c != "geometry"]
    name_bytes = [_trim_cut_utf8(n) if len(n) == 10 else n for n in name_bytes]  # names GDAL may have cut
    if encoding is None:
        samples = list(name_bytes)
        for c in columns:
            values = df[c].dropna()
            values = values[~values.astype(str).str.isascii()]
            samples.extend(_as_bytes(v) for v in values.astype(str).head(500))
        encoding = vietnamese.detect_encoding(samples)
        notes.append(f"text encoding detected: {encoding}")

    def decode(value):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return value
        raw = _as_bytes(value)
        if raw.isascii():
            return value
        return vietnamese.decode_bytes(raw, encoding)

    def decode_name(name):
        raw = _as_bytes(name)
        if raw.isascii():
            return name
        return vietnamese.decode_bytes(_trim_cut_utf8(raw) if encoding == "utf-8" else raw, encoding)

    out = df.copy()
    for c in columns:
        series = out[c].astype(object)
        mask = series.notna()
        if mask.any():
            out[c] = series.where(~mask, series[mask].map(decode))
    out.columns = [c if c == "geometry" else decode_name(str(c)) for c in out.columns]
    return out, encoding


def _trim_cut_utf8(raw: bytes) -> bytes:
    """Drop an incomplete UTF-8 sequence at the very end of a field name.

    DBF field names hold at most 10 bytes, and GDAL cuts longer UTF-8 names there, even in the middle of a
    letter ("địa_chỉ_tr" -> b"\xc4\x91\xe1\xbb\x8ba_ch\xe1"). Other bytes are left alone.
    """
    try:
        raw.decode("utf-8")
        return raw
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.end == len(raw) and len(raw) - exc.start < 4:
            return raw[: exc.start]
        return raw


class _NotUtf8(Exception):
    """GDAL handed over text that is not UTF-8 (pyogrio refuses to decode it)."""


def _read_cpg(path: str) -> str | None:
    stem = os.path.splitext(path)[0]
    folder = os.path.dirname(path) or "."
    wanted = os.path.basename(stem).lower() + ".cpg"
    for name in os.listdir(folder):
        if name.lower() == wanted:
            with open(os.path.join(folder, name), "rb") as fh:
                return normalise_encoding(fh.read(64).decode("ascii", "replace"))
    return None


def _tab_charset(path: str) -> str | None:
    with open(path, "rb") as fh:
        text = fh.read(8192).decode("latin-1")
    match = re.search(r'charset\s+"?([\w-]+)"?', text, re.IGNORECASE)
    if not match or match.group(1).lower() == "neutral":
        return None
    charset = match.group(1).lower()
    return TAB_CHARSETS.get(charset.replace("-", "").replace("_", ""), normalise_encoding(charset))


def _pyogrio_read(path, layer=None, encoding=None, lazy=False):
    """The layer as a GeoDataFrame; with ``lazy``, ``(frame, crs, wkb)``: on the Arrow path the attributes
    alone and the WKB, unparsed (else the GeoDataFrame, its CRS and None)."""
    # pyogrio's Arrow path refuses any encoding but UTF-8 (ValueError), so latin1 reads take the classic path
    use_arrow = encoding is None or encoding.lower().replace("-", "") == "utf8"
    try:
        if use_arrow:
            frame, crs, wkb = _read_arrow(path, layer, encoding, parse=not lazy)
        else:
            frame = pyogrio.read_dataframe(path, layer=layer, encoding=encoding, on_invalid="warn")
            crs, wkb = frame.crs, None
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.FieldError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # name the file as the user knows it (not our private unpacking folder), without GDAL's driver-prefix hint
        message = message.split("; It might help")[0].replace(str(path), os.path.basename(str(path)))
        raise BadInput(f"GDAL cannot read the file: {message}") from None
    except UnicodeDecodeError:  # classic path: a field name or value is not UTF-8
        raise _NotUtf8() from None
    except Exception as exc:  # Arrow path: pyarrow.lib.ArrowInvalid("Invalid UTF8 sequence ...")
        if type(exc).__name__ == "ArrowInvalid" and "utf8" in str(exc).lower().replace("-", ""):
            raise _NotUtf8() from None
        raise
    return (frame, crs, wkb) if lazy else frame


def _read_arrow(path, layer, encoding, parse=True):
    """pyogrio's Arrow read, as ``read_dataframe(use_arrow=True)`` makes it: ``(GeoDataFrame, crs, wkb)``;
    without ``parse``, the attributes alone stand for the GeoDataFrame (the WKB is left to the caller)."""
    meta, table = pyogrio.read_arrow(path, layer=layer, encoding=encoding)
    name = meta.get("geometry_name") or "wkb_geometry"
    if name in table.column_names:
        wkb = table.column(name).combine_chunks()
        table = table.drop_columns([name])
        if hasattr(wkb, "storage"):  # a geoarrow.wkb extension array: its plain binary storage
            wkb = wkb.storage
    else:  # a table without geometry (GDAL reads some files so)
        wkb = pa.nulls(table.num_rows, type=pa.binary())
    frame = table.to_pandas()
    crs = meta.get("crs")
    if not parse:
        from pyproj import CRS

        return frame, (CRS.from_user_input(crs) if crs else None), wkb
    geometry = shapely.from_wkb(wkb.to_numpy(zero_copy_only=False), on_invalid="warn")
    gdf = gpd.GeoDataFrame(frame, geometry=geometry, crs=crs)
    return gdf, gdf.crs, wkb


# LIBKML names the placemark's id attribute "id" and then renames a data field called "id" to "id2" (for
# <SchemaData>) or overwrites it (for <Data>): read the placemark id under its own name instead.
KML_PLACEMARK_ID = "kml_placemark_id"
# Columns LIBKML adds to every KML layer: rendering settings (dropped) and placemark elements (dropped when empty).
_KML_RENDERING = ("altitudeMode", "tessellate", "extrude", "visibility", "drawOrder", "icon")
_KML_ELEMENTS = (KML_PLACEMARK_ID, "description", "timestamp", "begin", "end")


def _read_kml_layer(path, layer, encoding=None):
    previous = pyogrio.get_gdal_config_option("LIBKML_ID_FIELD")
    pyogrio.set_gdal_config_options({"LIBKML_ID_FIELD": KML_PLACEMARK_ID})
    try:
        return _pyogrio_read(path, layer=layer, encoding=encoding)
    finally:
        pyogrio.set_gdal_config_options({"LIBKML_ID_FIELD": previous})


def _tidy_kml(gdf):
    drop = [c for c in _KML_RENDERING if c in gdf.columns]
    drop += [c for c in _KML_ELEMENTS if c in gdf.columns and gdf[c].isna().all()]
    return gdf.drop(columns=drop)


def _reinterpret_legacy(df, encoding: str, notes: list):
    """A UTF-8 format whose strings hold legacy-font text (TCVN3/VNI glyphs typed as Windows-1252 characters)."""
    def fix(value):
        if not isinstance(value, str) or value.isascii():
            return value
        try:
            raw = value.encode("cp1252")
        except UnicodeEncodeError:
            try:
                raw = value.encode("latin1")
            except UnicodeEncodeError:
                letter = next(ch for ch in value if ord(ch) > 0xFF)
                raise EncodingError(
                    f"--encoding {encoding} does not fit: the text is already Unicode (e.g. {letter!r} in "
                    f"{value[:40]!r}); import it without --encoding"
                ) from None
        return vietnamese.decode_bytes(raw, encoding)

    out = df.copy()
    for c in _string_columns(out):
        out[c] = out[c].map(fix)
    notes.append(f"text re-read as {encoding} (legacy font text inside a UTF-8 file)")
    return out


def _read_vector(source: Source, notes: list, encoding=None, lazy=False):
    """GeoJSON, GeoPackage or KML (every folder of a KML, merged) as one GeoDataFrame; with ``lazy``,
    ``(frame, crs, wkb)`` as ``_pyogrio_read`` gives them."""
    if source.format != "kml":
        return _pyogrio_read(source.path, layer=source.layer, encoding=encoding, lazy=lazy)
    layers = [name for name, _ in pyogrio.list_layers(source.path)]
    frames = [_tidy_kml(_read_kml_layer(source.path, name, encoding)) for name in layers]
    frames = [f for f in frames if len(f)] or frames[:1]
    if not frames:
        raise BadInput(f"{source.name} holds no placemark")
    if len(layers) > 1:
        notes.append(f"KML folders merged: {', '.join(layers)}")
    merged = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    return (merged, merged.crs, None) if lazy else merged


def read_source(source: Source, encoding: str | None = None) -> RawLayer:
    """Read ``source`` with the reader of its format; ``encoding`` overrides what the file says."""
    notes: list[str] = []
    override = normalise_encoding(encoding) if encoding else None
    if override:
        check_encoding_name(override)
    fmt = source.format
    if fmt == "csv":
        return _read_csv(source, override, notes)
    if fmt in ("geojson", "gpkg", "kml"):
        try:
            frame, crs, wkb = _read_vector(source, notes, lazy=True)
        except _NotUtf8:
            # not UTF-8 as these formats require: legacy bytes from an old converter; decode them like a DBF
            notes.append(f"{fmt} text is not valid UTF-8")
            gdf = _read_vector(source, [], encoding="latin1")
            frame, used = _decode_frame(gdf.drop(columns=gdf.geometry.name), override, source.name, notes)
            gdf = gpd.GeoDataFrame(frame, geometry=gdf.geometry.values, crs=gdf.crs)
            return RawLayer(gdf, gdf.crs, used, notes)
        used = "utf-8"
        if override and override not in ("utf-8",):
            if override in vietnamese.LEGACY_ENCODINGS:
                frame = _reinterpret_legacy(frame, override, notes)
                used = override
            else:
                notes.append(f"--encoding {override} ignored: {fmt} text is always UTF-8")
        return RawLayer(frame, crs, used, notes, wkb=wkb)
    if fmt in ("shapefile", "mapinfo"):
        declared = None
        if fmt == "shapefile":
            declared = _read_cpg(source.path)
            if declared:
                notes.append(f".cpg declares {declared}")
        elif source.path.lower().endswith((".tab", ".mif")):
            declared = _tab_charset(source.path)
            if declared:
                notes.append(f"MapInfo charset declares {declared}")
        chosen = override or declared
        if chosen == "utf-8":
            try:
                frame, crs, wkb = _pyogrio_read(source.path, encoding="UTF-8", lazy=True)
                return RawLayer(frame, crs, "utf-8", notes, wkb=wkb)
            except _NotUtf8:  # e.g. a UTF-8 field name cut at 10 bytes in the middle of a letter
                notes.append("some text is not valid UTF-8 (a field name cut in the middle of a letter?): "
                             "decoded byte by byte")
        try:
            gdf = _pyogrio_read(source.path, encoding="latin1")
        except _NotUtf8:  # pragma: no cover - latin1 decodes any byte
            raise EncodingError(f"{source.name}: its text cannot be read") from None
        frame, used = _decode_frame(gdf.drop(columns="geometry"), chosen, source.name, notes)
        gdf = gpd.GeoDataFrame(frame, geometry=gdf.geometry.values, crs=gdf.crs)
        return RawLayer(gdf, gdf.crs, used, notes)
    raise BadInput(f"{source.name}: no reader for format {fmt}")


# -- CSV ---------------------------------------------------------------------------------------------
def _find_column(columns, names):
    folded = {fold(c).strip(): c for c in columns}
    for name in names:
        if name in folded:
            return folded[name]
    return None


def _parse_numbers(series, decimal_comma: bool):
    text = series.astype("string").str.strip()
    if decimal_comma:
        text = text.str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce")


def _read_csv(source: Source, override: str | None, notes: list) -> RawLayer:
    with open(source.path, "rb") as fh:
        data = fh.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        detected = "utf-8"
    else:
        detected = None
    if override:
        used = override
    elif detected:
        used = detected
    else:
        used = vietnamese.detect_encoding([line for line in data.splitlines()[:2000] if not line.isascii()] or [b""])
        if used != "utf-8":
            notes.append(f"text encoding detected: {used}")
    text = vietnamese.decode_bytes(data, used)
    sample = text[:20000]
    try:
        dialect = csv.Sniffer().sniff(sample.split("\n", 1)[0] + "\n", delimiters=",;\t|")
        sep = dialect.delimiter
    except csv.Error:
        sep = ","
    try:
        with warnings.catch_warnings():
            # a row with more values than the header has names: pandas would shift the columns (or, with
            # index_col=False, drop the surplus with a warning); refuse it instead
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                                index_col=False)
    except pd.errors.ParserWarning:
        raise BadInput(f"{source.name}: some rows have more values than the header has column names") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise BadInput(f"{source.name} is not a readable CSV table ({str(exc).splitlines()[0]})") from None
    columns = list(frame.columns)
    lon = _find_column(columns, LON_NAMES)
    lat = _find_column(columns, LAT_NAMES)
    crs = None
    if lon is not None and lat is not None:
        crs = "EPSG:4326"
        notes.append(f"coordinates from columns {lon}/{lat}, taken as WGS 84 lon/lat (name another CRS with --crs)")
    else:
        lon = _find_column(columns, X_NAMES)
        lat = _find_column(columns, Y_NAMES)
        if lon is None or lat is None:
            raise BadInput(
                f"{source.name}: no coordinate columns; expected lon/lat, longitude/latitude, x/y or kinh_do/vi_do, "
                f"found {', '.join(columns)}"
            )
        notes.append(f"coordinates from columns {lon}/{lat}")
    decimal_comma = sep == ";"
    xs = _parse_numbers(frame[lon], decimal_comma)
    ys = _parse_numbers(frame[lat], decimal_comma)
    bad = frame.index[(xs.isna() != frame[lon].isna()) | (ys.isna() != frame[lat].isna())]
    if len(bad):
        rows = ", ".join(str(i + 2) for i in bad[:5])
        raise BadInput(f"{source.name}: coordinates that are not numbers on line(s) {rows}")
    present = xs.notna() & ys.notna()
    geometry = np.full(len(frame), None, dtype=object)
    geometry[present.to_numpy()] = shapely.points(xs[present].to_numpy(float), ys[present].to_numpy(float))
    attrs = frame.drop(columns=[lon, lat])
    from pyproj import CRS

    gdf = gpd.GeoDataFrame(attrs, geometry=gpd.array.from_shapely(geometry), crs=None)
    return RawLayer(gdf, CRS.from_user_input(crs) if crs else None, used, notes)
