"""JSON and GeoJSON answers for the map: layer list, features by viewport, search.

Thin views: parameters are checked in ``params``, data comes from the store, GeoJSON is assembled in
``webmap.geojson``. A malformed parameter is a 400 with a JSON message, never a 500.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from webmap.app import get_store
from webmap.catalog import fold, get_layer, load_catalog
from webmap.errors import BadInput, NotFound
from webmap.geojson import feature_collection, search_hit
from webmap.i18n import current_language
from webmap.store import FeatureQuery
from webmap.views.params import layer_filters, parse_bbox, parse_limit

bp = Blueprint("api", __name__, url_prefix="/api")

FEATURE_PARAMS = {"bbox", "limit", "since", "until", "lang", "_"}


@bp.get("/layers")
def list_layers():
    lang = current_language()
    versions = {v.kind: v for v in get_store().list_versions()}
    layers = []
    for kind, layer in load_catalog().items():
        info = layer.to_client(lang)
        version = versions.get(kind)
        info.update(
            count=version.feature_count if version else 0,
            bbox=list(version.bbox) if version and version.bbox else None,
            version=version.version if version else None,
            updated=version.created_at if version else None,
        )
        if version and layer.owner_field:
            # every owner of the layer, so the map gives each one a colour that does not change with the view
            info["values"] = {layer.owner_field: get_store().distinct_values(kind, layer.owner_field)}
        layers.append(info)
    return jsonify({"layers": layers})


@bp.get("/layers/<kind>/features")
def layer_features(kind):
    layer = get_layer(kind)
    allowed_params = FEATURE_PARAMS | {f.name for f in layer.fields if f.allowed}
    unknown = sorted(set(request.args) - allowed_params)
    if unknown:
        raise BadInput(f"unknown parameter(s): {', '.join(unknown)}; accepted: {', '.join(sorted(allowed_params))}")
    maximum = current_app.config["MAX_FEATURES"]
    query = FeatureQuery(
        bbox=parse_bbox(request.args.get("bbox")),
        limit=parse_limit(request.args.get("limit"), current_app.config["PAGE_FEATURES"], maximum),
    )
    query.in_filters, query.min_filters, query.max_filters = layer_filters(layer, request.args)
    gdf, exceeded = get_store().query_features(kind, query)
    body = feature_collection(layer, gdf, limit=query.limit, exceeded=exceeded)
    return Response(body, mimetype="application/geo+json")


@bp.get("/search")
def search():
    text = (request.args.get("q") or "").strip()
    if len(text) < 2:
        raise BadInput("q must hold at least 2 characters")
    if len(text) > 100:
        raise BadInput("q must hold at most 100 characters")
    limit = parse_limit(request.args.get("limit"), 20, 100)
    lang = current_language()
    catalog = load_catalog()
    kinds = [k for k, layer in catalog.items() if layer.search_fields]
    folded = fold(text)
    hits = get_store().search(folded, kinds, limit)
    results = [search_hit(catalog[h["layer"]], h, lang, folded) for h in hits]
    results.sort(key=lambda r: (r["rank"], r["layer_order"], r["label"]))
    return jsonify({"query": text, "results": results[:limit]})


@bp.errorhandler(NotFound)
def not_found(exc):
    response = jsonify({"status": 404, "error": exc.message})
    response.status_code = 404
    return response
