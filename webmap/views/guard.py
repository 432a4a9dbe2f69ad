"""The access rules for the current request: every view asks here, never decides by itself."""

from __future__ import annotations

from flask import current_app, g

from webmap.access import AccessContext, Principal, excludes_redacted, rule_for, visible_layer
from webmap.app import get_store
from webmap.catalog import load_catalog
from webmap.store import FeatureQuery


def principal() -> Principal:
    return Principal.from_user(g.get("user"))


def access_context() -> AccessContext:
    context = current_app.extensions.get("webmap_access")
    if context is None:
        context = current_app.extensions["webmap_access"] = AccessContext.for_app(
            current_app, get_store(), load_catalog())
    return context


def visible_layers() -> list:
    """``(layer, rule)`` for every layer the current user may see, in drawing order."""
    who, context = principal(), access_context()
    pairs = [(layer, rule_for(who, layer, context)) for layer in load_catalog().values()]
    return [(layer, rule) for layer, rule in pairs if rule.visible]


def visible(kind: str):
    """``(layer, rule)``, or the 404 of an unknown layer when the user may not see it."""
    return visible_layer(principal(), kind, load_catalog(), access_context())


def restrict(query: FeatureQuery, layer, rule, search: bool = False) -> FeatureQuery:
    """Add the rule's row filters to a query (owner, area, reporting organisation); the caller's own filters
    stay, so call it last. For a text search (``search``) and for filters on fields that shared reports do not
    show, those reports are left out (see ``access.excludes_redacted``)."""
    if rule.owner_in is not None:
        query.in_filters[layer.owner_field] = list(rule.owner_in)
    if rule.mask is not None:
        query.mask = rule.mask
    if rule.rows_from is not None:
        name, values = rule.rows_from
        if excludes_redacted(query, layer, rule, search):
            values = tuple(v for v in values if v not in rule.redact[1])
        query.null_or_in[name] = list(values)
    return query
