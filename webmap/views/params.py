"""Parse and check query parameters; every mistake is a BadInput (HTTP 400 with a JSON message)."""

from __future__ import annotations

import math
from datetime import date, timedelta

from webmap.errors import BadInput


def parse_bbox(text: str | None):
    """``W,S,E,N`` in lon/lat degrees, or None when absent."""
    if text is None or text == "":
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise BadInput(f"bbox must be 4 numbers 'west,south,east,north', got {len(parts)} value(s)")
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise BadInput("bbox must be 4 numbers 'west,south,east,north' in degrees") from None
    if not all(math.isfinite(v) for v in (west, south, east, north)):
        raise BadInput("bbox values must be finite numbers")
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= 90 and -90 <= north <= 90):
        raise BadInput("bbox is outside lon -180..180 / lat -90..90 (is it lon,lat order?)")
    if west > east or south > north:
        raise BadInput("bbox must be west,south,east,north with west <= east and south <= north")
    return (west, south, east, north)


def parse_limit(text: str | None, default: int, maximum: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadInput(f"limit must be a whole number, got {text!r}") from None
    if not 1 <= value <= maximum:
        raise BadInput(f"limit must be between 1 and {maximum}, got {value}")
    return value


def parse_day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{name} must be a date YYYY-MM-DD, got {text!r}") from None


def layer_filters(layer, args) -> tuple[dict, dict, dict]:
    """Filters a layer accepts: ``<field>=a,b`` for fields with allowed values; since/until on its time field."""
    in_filters, min_filters, max_filters = {}, {}, {}
    for f in layer.fields:
        if f.allowed and f.name in args:
            values = [v for v in args[f.name].split(",") if v]
            unknown = [v for v in values if v not in f.allowed]
            if unknown:
                raise BadInput(f"{f.name} value(s) {', '.join(unknown)} unknown; allowed: {', '.join(f.allowed)}")
            in_filters[f.name] = values
    since, until = args.get("since"), args.get("until")
    if (since or until) and not layer.time_field:
        raise BadInput(f"layer {layer.kind} has no time field: since/until do not apply")
    if since:
        min_filters[layer.time_field] = parse_day(since, "since").isoformat()
    if until:
        max_filters[layer.time_field] = (parse_day(until, "until") + timedelta(days=1)).isoformat()
    if since and until and min_filters[layer.time_field] >= max_filters[layer.time_field]:
        raise BadInput("since must be on or before until")
    return in_filters, min_filters, max_filters
