"""GeoJSON (RFC 7946) assembled from store rows: lon/lat, right-hand rings (ensured at import)."""

from __future__ import annotations

import json
import math

import numpy as np
import shapely

from webmap.catalog import fold

INTERNAL_COLUMNS = {"_search", "extra", "fid"}


def _clean(value):
    if value is None:
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def feature_properties(layer, row: dict, hidden=frozenset()) -> dict:
    """Schema fields the user may see, then the file's extra properties (which never shadow them).

    Extra properties are kept only for users who see every field of the layer: a file's unknown columns
    are not classified, so they follow the most restricted field.
    """
    props = {}
    extra = row.get("extra")
    if extra and not hidden:
        try:
            props.update(json.loads(extra))
        except (TypeError, ValueError):
            pass
    for name in layer.field_names:
        if name in hidden:
            props.pop(name, None)
        elif name in row:
            props[name] = _clean(row[name])
    return props


def feature_collection(layer, gdf, *, limit: int, exceeded: bool, hidden=frozenset()) -> str:
    """Serialise a query result; ``limitExceeded`` tells the map that the view holds more than it got."""
    geoms = shapely.to_geojson(np.asarray(gdf.geometry.values, dtype=object)) if len(gdf) else []
    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    records = gdf[columns].to_dict("records") if len(gdf) else []
    parts = []
    for record, geometry in zip(records, geoms):
        feature = {
            "type": "Feature",
            "id": _clean(record.get(layer.id_field)),
            "properties": feature_properties(layer, record, hidden),
        }
        text = json.dumps(feature, ensure_ascii=False, default=str)
        parts.append(text[:-1] + ', "geometry": ' + (geometry or "null") + "}")
    head = json.dumps({"type": "FeatureCollection", "layer": layer.kind, "numberReturned": len(parts),
                       "limit": limit, "limitExceeded": bool(exceeded)}, ensure_ascii=False)
    return head[:-1] + ', "features": [' + ",".join(parts) + "]}"


def search_hit(layer, hit: dict, lang: str, query_folded: str) -> dict:
    """One search result; ``rank`` puts exact id/name matches first, then prefixes, then the rest."""
    row = hit["row"]
    ident = _clean(row.get(layer.id_field))
    name = _clean(row.get(layer.name_field)) if layer.name_field else None
    label = f"{name} ({ident})" if name and name != ident else str(ident)
    keys = [fold(v) for v in (ident, name) if v is not None]
    if query_folded in keys:
        rank = 0
    elif any(k.startswith(query_folded) for k in keys):
        rank = 1
    elif any(word.startswith(query_folded) for k in keys for word in k.split()):
        rank = 2
    else:
        rank = 3
    return {
        "layer": layer.kind,
        "layer_label": layer.label_for(lang),
        "layer_order": layer.order,
        "id": ident,
        "label": label,
        "bbox": hit["bbox"],
        "rank": rank,
    }
