"""Geometry checks for an import: drop null/empty, repair invalid, enforce the layer's type, orient rings.

Repairs use ``shapely.make_valid``; a repair that turns a polygon into a collection keeps only the parts of
the layer's geometry family. Polygon rings are oriented as RFC 7946 asks (exterior counter-clockwise).
"""

from __future__ import annotations

import numpy as np
import shapely

from webmap.errors import SchemaError

FAMILIES = {
    "point": {"Point", "MultiPoint"},
    "line": {"LineString", "MultiLineString"},
    "polygon": {"Polygon", "MultiPolygon"},
}
FAMILY_WORDS = {"point": "points", "line": "lines", "polygon": "polygons"}
_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5, "MultiPolygon": 6}


def _family_of(type_name: str) -> str | None:
    for family, names in FAMILIES.items():
        if type_name in names:
            return family
    return None


def _keep_family(geom, family: str):
    """From a repaired geometry (maybe a collection) keep the parts of ``family``; None if nothing is left."""
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) != 7 and p.geom_type in FAMILIES[family]]
    if not parts:
        collections = [p for p in shapely.get_parts(geom) if p.geom_type == "GeometryCollection"]
        for c in collections:
            parts += [p for p in shapely.get_parts(c) if p.geom_type in FAMILIES[family]]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if family == "point":
        return shapely.multipoints(parts)
    if family == "line":
        return shapely.multilinestrings(parts)
    return shapely.union_all(parts)


def clean_geometries(geoms: np.ndarray, geometry: str, report: dict) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(geometries, keep_mask)`` and count drops and repairs in ``report``.

    ``geometry`` is the layer's family: point, line, polygon or any.
    """
    geoms = np.asarray(geoms, dtype=object)
    report["forced_2d"] = bool(shapely.has_z(geoms).any())
    if report["forced_2d"]:  # force_2d copies every geometry: only pay for it when needed
        geoms = shapely.force_2d(geoms)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    report["dropped_empty"] = int(missing.sum())
    keep = ~missing
    type_ids = shapely.get_type_id(geoms)
    if geometry != "any":
        allowed = {_TYPE_IDS[t] for t in FAMILIES[geometry]}
        wrong = keep & ~np.isin(type_ids, list(allowed)) & (type_ids != 7)
        if wrong.any():
            names = sorted({geoms[i].geom_type for i in np.flatnonzero(wrong)[:50]})
            rows = ", ".join(str(i + 1) for i in np.flatnonzero(wrong)[:5])
            raise SchemaError(
                f"this layer holds {FAMILY_WORDS[geometry]}; {int(wrong.sum())} feature(s) are {', '.join(names)} (rows {rows})"
            )
    invalid = keep & ~shapely.is_valid(geoms)
    report["repaired"] = int(invalid.sum())
    if invalid.any():
        geoms = geoms.copy()  # never edit the reader's array in place
        repaired = shapely.make_valid(geoms[invalid])
        if geometry != "any":
            repaired = np.array([_keep_family(g, geometry) if g is not None else None for g in repaired], dtype=object)
        else:
            repaired = np.array([_keep_family(g, _family_of(orig.geom_type) or "polygon") for g, orig in
                                 zip(repaired, geoms[invalid])], dtype=object)
        geoms[invalid] = repaired
        lost = invalid & shapely.is_missing(geoms)
        report["dropped_unrepairable"] = int(lost.sum())
        keep &= ~lost
    else:
        report["dropped_unrepairable"] = 0
    collections = keep & (shapely.get_type_id(geoms) == 7)
    if collections.any():
        raise SchemaError(f"{int(collections.sum())} feature(s) are geometry collections; split them into one type per layer")
    return geoms, keep


def has_polygons(geoms: np.ndarray) -> bool:
    return bool(np.isin(shapely.get_type_id(np.asarray(geoms, dtype=object)), [3, 6]).any())


def orient_rfc7946(geoms: np.ndarray) -> np.ndarray:
    """Exterior rings counter-clockwise, holes clockwise (RFC 7946 section 3.1.6); other types unchanged."""
    geoms = np.asarray(geoms, dtype=object)
    polygons = np.isin(shapely.get_type_id(geoms), [3, 6])
    if polygons.any():
        geoms = geoms.copy()
        geoms[polygons] = shapely.orient_polygons(geoms[polygons], exterior_cw=False)
    return geoms
