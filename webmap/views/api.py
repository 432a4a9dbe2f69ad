"""JSON and GeoJSON answers for the map: layer list, features by viewport, search.

Thin views: parameters are checked in ``params``, who sees what comes from ``guard`` (the access rules),
data from the store, GeoJSON from ``webmap.geojson``. A layer the user may not see answers exactly like
one that does not exist; counts and extents are those of what the user may see.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from webmap import audit
from webmap.access import redact_rows
from webmap.app import get_store
from webmap.catalog import fold
from webmap.errors import BadInput, NotFound
from webmap.geojson import feature_collection, search_hit
from webmap.i18n import current_language
from webmap.store import FeatureQuery
from webmap.views import guard
from webmap.views.params import layer_filters, parse_bbox, parse_limit

bp = Blueprint("api", __name__, url_prefix="/api")

FEATURE_PARAMS = {"bbox", "limit", "since", "until", "lang", "_"}


def _audit_sensitive_read(layer, what: str, detail: dict):
    """Every read of a police-only layer (key sites) is written to the audit log."""
    if layer.sensitivity == "police":
        who = guard.principal().username or "anonymous"
        audit.for_app(current_app).record(who, f"read_{layer.kind}", what, detail, audit.request_source())


def _summary(layer, rule, version):
    """Count and extent of what the user may see (the stored ones when nothing is filtered)."""
    if not rule.filtered:
        return version.feature_count, list(version.bbox) if version.bbox else None
    cache = current_app.extensions.setdefault("webmap_summaries", {})
    key = (rule.key(), version.version)
    if key not in cache:
        if len(cache) > 512:
            cache.clear()
        cache[key] = get_store().summarize(layer.kind, guard.restrict(FeatureQuery(), layer, rule))
    return cache[key]


@bp.get("/layers")
def list_layers():
    lang = current_language()
    versions = {v.kind: v for v in get_store().list_versions()}
    layers = []
    for layer, rule in guard.visible_layers():
        info = layer.to_client(lang, rule.hidden_fields)
        version = versions.get(layer.kind)
        count, bbox = _summary(layer, rule, version) if version else (0, None)
        info.update(count=count, bbox=bbox, version=version.version if version else None,
                    updated=version.created_at if version else None)
        if version and layer.owner_field and rule.mask is None:
            # every owner the user may see, so the map gives each a colour that does not change with the view
            owners = list(rule.owner_in) if rule.owner_in is not None else \
                get_store().distinct_values(layer.kind, layer.owner_field)
            info["values"] = {layer.owner_field: owners}
        layers.append(info)
    return jsonify({"layers": layers})


@bp.get("/layers/<kind>/features")
def layer_features(kind):
    layer, rule = guard.visible(kind)
    allowed_params = FEATURE_PARAMS | {f.name for f in layer.fields if f.allowed and f.name not in rule.hidden_fields}
    unknown = sorted(set(request.args) - allowed_params)
    if unknown:
        raise BadInput(f"unknown parameter(s): {', '.join(unknown)}; accepted: {', '.join(sorted(allowed_params))}")
    maximum = current_app.config["MAX_FEATURES"]
    query = FeatureQuery(
        bbox=parse_bbox(request.args.get("bbox")),
        limit=parse_limit(request.args.get("limit"), current_app.config["PAGE_FEATURES"], maximum),
    )
    query.in_filters, query.min_filters, query.max_filters = layer_filters(layer, request.args)
    if rule.owner_in is not None and layer.owner_field in query.in_filters:
        # the user's own filter on owner can only narrow the rule, never widen it
        query.in_filters[layer.owner_field] = [o for o in query.in_filters[layer.owner_field] if o in rule.owner_in]
    gdf, exceeded = get_store().query_features(kind, guard.restrict(query, layer, rule))
    gdf = redact_rows(gdf, layer, rule)
    _audit_sensitive_read(layer, request.args.get("bbox") or "all", {"features": len(gdf)})
    body = feature_collection(layer, gdf, limit=query.limit, exceeded=exceeded, hidden=rule.hidden_fields)
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
    layers = {layer.kind: (layer, rule) for layer, rule in guard.visible_layers() if layer.search_fields}
    filters = {kind: guard.restrict(FeatureQuery(), layer, rule, search=True) for kind, (layer, rule) in layers.items()}
    folded = fold(text)
    hits = get_store().search(folded, list(layers), limit, filters=filters)
    results = [search_hit(layers[h["layer"]][0], h, lang, folded) for h in hits]
    results.sort(key=lambda r: (r["rank"], r["layer_order"], r["label"]))
    for kind in {r["layer"] for r in results}:
        _audit_sensitive_read(layers[kind][0], f"search {text!r}", {"hits": sum(r["layer"] == kind for r in results)})
    return jsonify({"query": text, "results": results[:limit]})


@bp.errorhandler(NotFound)
def not_found(exc):
    response = jsonify({"status": 404, "error": exc.message})
    response.status_code = 404
    return response
