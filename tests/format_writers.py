"""Writers for the import tests: real files in every accepted format, made with GDAL (pyogrio) or by hand.

Legacy Vietnamese text (TCVN3, VNI, Windows-1258) is written byte for byte: the text is encoded with the
codec, the bytes are carried through GDAL as latin1 characters (a lossless byte <-> character mapping)
and the .cpg GDAL writes is removed or rewritten, so the DBF holds exactly the legacy bytes.
"""

from __future__ import annotations

import io
import os
import re
import stat
import unicodedata
import zipfile
from xml.sax.saxutils import escape

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from webmap.io import vietnamese

TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"


def cp1258_bytes(text: str) -> bytes:
    """Windows-1258 as Windows writes it: tone marks as combining characters after precomposed base
    letters (ơ ư â ê ô ă đ stay single bytes)."""
    out = []
    for char in unicodedata.normalize("NFC", text):
        parts = unicodedata.normalize("NFD", char)
        tones = "".join(c for c in parts if c in TONE_MARKS)
        base = unicodedata.normalize("NFC", "".join(c for c in parts if c not in TONE_MARKS))
        out.append(base + tones)
    return "".join(out).encode("cp1258")


def legacy_bytes(text: str, encoding: str) -> bytes:
    if encoding == "tcvn3":
        return vietnamese.encode_tcvn3(text)
    if encoding == "vni":
        return vietnamese.encode_vni(text)
    if encoding == "cp1258":
        return cp1258_bytes(text)
    return text.encode(encoding)


def as_latin1(text, encoding: str):
    """``text`` encoded with ``encoding``, as the latin1 string GDAL writes back as those same bytes."""
    if not isinstance(text, str):
        return text
    return legacy_bytes(text, encoding).decode("latin1")


def legacy_frame(gdf: gpd.GeoDataFrame, encoding: str) -> gpd.GeoDataFrame:
    """A copy whose column names and string values are legacy bytes in latin1 clothing."""
    out = gdf.copy()
    for column in out.columns:
        if column != out.geometry.name and (out[column].dtype == object or pd.api.types.is_string_dtype(out[column])):
            out[column] = out[column].astype(object).map(lambda v: as_latin1(v, encoding))
    names = {c: as_latin1(c, encoding) for c in out.columns if c != out.geometry.name}
    return out.rename(columns=names)


def _cpg_path(shp_path: str) -> str:
    return os.path.splitext(shp_path)[0] + ".cpg"


def write_legacy_shapefile(gdf, folder, name, encoding, cpg=None) -> str:
    """A Shapefile whose DBF holds ``encoding`` bytes; ``cpg`` is the .cpg text to leave (None: no .cpg)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.shp")
    pyogrio.write_dataframe(legacy_frame(gdf, encoding), path, driver="ESRI Shapefile", encoding="latin1")
    if os.path.exists(_cpg_path(path)):
        os.remove(_cpg_path(path))
    if cpg is not None:
        with open(_cpg_path(path), "w") as fh:
            fh.write(cpg)
    return path


def remove_prj(shp_path: str) -> str:
    os.remove(os.path.splitext(shp_path)[0] + ".prj")
    return shp_path


def write_prj(shp_path: str, wkt: str) -> str:
    with open(os.path.splitext(shp_path)[0] + ".prj", "w") as fh:
        fh.write(wkt)
    return shp_path


def write_mapinfo(gdf, path, encoding=None, charset=None) -> str:
    """A MapInfo .tab or .mif. With ``encoding`` the text is written as those bytes; ``charset`` replaces
    the Charset the header declares (GDAL writes "Neutral" for latin1 bytes)."""
    frame = legacy_frame(gdf, encoding) if encoding else gdf
    pyogrio.write_dataframe(frame, path, driver="MapInfo File", encoding="latin1" if encoding else None)
    if charset is not None:
        header = path  # .tab header, or the .mif itself
        with open(header, "rb") as fh:
            text = fh.read()
        text = re.sub(rb'(?i)(\bcharset\s+)"?[\w-]+"?', lambda m: m.group(1) + b'"' + charset.encode() + b'"', text)
        with open(header, "wb") as fh:
            fh.write(text)
    return path


def _kml_geometry(geom) -> str:
    def coords(seq):
        return " ".join(f"{x!r},{y!r}" for x, y in seq)

    if geom.geom_type == "Point":
        return f"<Point><coordinates>{geom.x!r},{geom.y!r}</coordinates></Point>"
    if geom.geom_type == "LineString":
        return f"<LineString><coordinates>{coords(geom.coords)}</coordinates></LineString>"
    if geom.geom_type == "Polygon":
        inner = "".join(f"<innerBoundaryIs><LinearRing><coordinates>{coords(r.coords)}</coordinates></LinearRing>"
                        f"</innerBoundaryIs>" for r in geom.interiors)
        return (f"<Polygon><outerBoundaryIs><LinearRing><coordinates>{coords(geom.exterior.coords)}</coordinates>"
                f"</LinearRing></outerBoundaryIs>{inner}</Polygon>")
    return "<MultiGeometry>" + "".join(_kml_geometry(g) for g in shapely.get_parts(geom)) + "</MultiGeometry>"


def kml_text(folders: dict, name_field="name") -> str:
    """A KML document with one <Folder> per entry of ``folders`` ({folder name: GeoDataFrame in lon/lat});
    the name column becomes <name>, the others <ExtendedData><Data>."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', '<kml xmlns="http://www.opengis.net/kml/2.2">', "<Document>"]
    for folder, gdf in folders.items():
        parts.append(f"<Folder><name>{escape(folder)}</name>")
        for i, row in enumerate(gdf.itertuples(index=False)):
            values = row._asdict()
            geom = values.pop(gdf.geometry.name)
            parts.append(f'<Placemark id="{escape(folder)}.{i + 1}">')
            if name_field in values:
                parts.append(f"<name>{escape(str(values.pop(name_field)))}</name>")
            data = "".join(f'<Data name="{escape(k)}"><value>{escape(str(v))}</value></Data>'
                           for k, v in values.items() if v is not None)
            parts.append(f"<ExtendedData>{data}</ExtendedData>{_kml_geometry(geom)}</Placemark>")
        parts.append("</Folder>")
    parts += ["</Document>", "</kml>"]
    return "\n".join(parts)


def write_kml(folders: dict, path: str) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(kml_text(folders))
    return path


def write_kmz(folders: dict, path: str) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("doc.kml", kml_text(folders))
    return path


def write_csv(gdf, path, lon="lon", lat="lat", sep=",", decimal=".", encoding="utf-8", swap=False) -> str:
    """A CSV of point features with coordinate columns ``lon``/``lat`` (x/y written first unless ``swap``)."""
    frame = gdf.drop(columns=gdf.geometry.name).copy()
    xs, ys = gdf.geometry.x, gdf.geometry.y
    if swap:
        xs, ys = ys, xs
    frame.insert(0, lon, xs.map(lambda v: repr(float(v)).replace(".", decimal)))
    frame.insert(1, lat, ys.map(lambda v: repr(float(v)).replace(".", decimal)))
    buffer = io.StringIO()
    frame.to_csv(buffer, sep=sep, index=False)
    with open(path, "wb") as fh:
        fh.write(legacy_bytes(buffer.getvalue(), encoding))
    return path


def write_zip(path: str, members: dict, compression=zipfile.ZIP_DEFLATED) -> str:
    """A zip archive from ``{member name: bytes}``, names written exactly as given."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name) if name.endswith("/") else name, data)
    return path


def write_symlink_zip(path: str, link_name: str, target: str, others: dict | None = None) -> str:
    """A zip holding a symbolic-link member (as Info-ZIP stores them: mode bits and the target as data)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in (others or {}).items():
            archive.writestr(name, data)
        info = zipfile.ZipInfo(link_name)
        info.create_system = 3  # Unix
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
    return path


def folder_members(folder: str, prefix: str = "") -> dict:
    return {prefix + name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))}


def feature(properties: dict, geometry: dict | None) -> dict:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def write_features(path: str, features: list) -> str:
    """A GeoJSON FeatureCollection written exactly as given (ring order, nulls, invalid shapes kept)."""
    import json

    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"type": "FeatureCollection", "features": features}, fh, ensure_ascii=False)
    return path


def set_zip_sizes(path: str, member_size: int) -> str:
    """Make the first member's headers (local and central) claim ``member_size`` unpacked bytes."""
    import struct

    data = bytearray(open(path, "rb").read())
    struct.pack_into("<I", data, data.find(b"PK\x03\x04") + 22, member_size)
    struct.pack_into("<I", data, data.find(b"PK\x01\x02") + 24, member_size)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def epsg6960():
    """PROJ's own EPSG:5897 -> WGS 84 operation through EPSG:6960 (a reference independent of the importer's
    pinned pipeline), picked by its EPSG code among the candidates PROJ lists."""
    from pyproj.transformer import TransformerGroup

    group = TransformerGroup("EPSG:5897", "EPSG:4326", always_xy=True)
    (op,) = [t for t in group.transformers if "6960" in t.to_json()]
    return op


def vn2000_stations():
    """The fixture stations in VN-2000 / TM-3 zone 482 metres, with their known WGS 84 lon/lat."""
    import fixtures
    from pyproj.enums import TransformDirection

    lon, lat = fixtures.stations().geometry.x.to_numpy(), fixtures.stations().geometry.y.to_numpy()
    x, y = epsg6960().transform(lon, lat, direction=TransformDirection.INVERSE)
    return fixtures.stations().set_geometry(gpd.points_from_xy(x, y), crs="EPSG:5897"), lon, lat
