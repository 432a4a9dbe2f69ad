"""Write a stored layer to a file people can open: GeoJSON, GeoPackage, zipped Shapefile or CSV.

CSV cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return)
are prefixed with an apostrophe (OWASP's advice against CSV injection); numbers are left alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile

import geopandas as gpd
import pandas as pd
import pyogrio

from webmap.errors import BadInput

FORMATS = ("geojson", "gpkg", "shp", "csv")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")


def expand_extra(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Schema columns, then the file's extra properties as columns; internal columns removed."""
    out = gdf.drop(columns=[c for c in ("_search",) if c in gdf.columns])
    if "extra" in out.columns:
        extra = out.pop("extra")
        parsed = [json.loads(v) if isinstance(v, str) and v else {} for v in extra]
        keys = sorted({k for d in parsed for k in d if k not in out.columns})
        for key in keys:
            out[key] = [d.get(key) for d in parsed]
    geometry = out.geometry.name
    return out[[c for c in out.columns if c != geometry] + [geometry]]


def defuse_formula(value):
    """Prefix a text cell a spreadsheet would run as a formula; a plain number such as -1.5 stays as it is."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def defused(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell passed through :func:`defuse_formula`: what every CSV and
    spreadsheet webmap writes (layers, exposure, priority) does, so no cell from a file runs as a formula."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(defuse_formula)
    return out


def write_csv(gdf: gpd.GeoDataFrame, path: str):
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    geoms = gdf.geometry
    if len(gdf) and (geoms.geom_type == "Point").all():
        frame["lon"] = geoms.x.round(7)
        frame["lat"] = geoms.y.round(7)
    else:
        frame["wkt"] = geoms.to_wkt(rounding_precision=7)
    defused(frame).to_csv(path, index=False, encoding="utf-8-sig")  # the BOM makes Excel read UTF-8


def write_zipped_shapefile(gdf: gpd.GeoDataFrame, path: str, kind: str):
    """A Shapefile holds one geometry family: mixed layers become one .shp per family inside the zip."""
    workdir = tempfile.mkdtemp(prefix="webmap-export-")
    try:
        families = gdf.geometry.geom_type.str.replace("Multi", "", regex=False).fillna("Unknown")
        groups = list(families.unique())
        for family in sorted(groups):
            part = gdf[families == family]
            name = kind if len(groups) == 1 else f"{kind}_{family.lower()}"
            pyogrio.write_dataframe(part, os.path.join(workdir, f"{name}.shp"), driver="ESRI Shapefile",
                                    encoding="UTF-8", promote_to_multi=family != "Point")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(os.listdir(workdir)):
                archive.write(os.path.join(workdir, name), name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def export_layer(gdf: gpd.GeoDataFrame, kind: str, fmt: str, path: str):
    """Write ``gdf`` (as read from the store) to ``path`` in ``fmt``."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    gdf = expand_extra(gdf)
    tmp = path + ".part"
    if os.path.exists(tmp):
        os.remove(tmp)
    try:
        if fmt == "geojson":
            pyogrio.write_dataframe(gdf, tmp, driver="GeoJSON", layer=kind,
                                    layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": "7", "WRITE_NAME": "NO"})
        elif fmt == "gpkg":
            pyogrio.write_dataframe(gdf, tmp, driver="GPKG", layer=kind, promote_to_multi=False)
        elif fmt == "shp":
            write_zipped_shapefile(gdf, tmp, kind)
        else:
            write_csv(gdf, tmp)
        os.replace(tmp, path)  # the file appears whole or not at all
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
