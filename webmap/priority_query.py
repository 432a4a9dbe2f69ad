"""The question put to the priority analysis, as text: incident filters and grid -> ``PriorityParams``.

One parser for every place a planner's question arrives as text, so the page's data (``/api/priority``),
its exports, a patrol map printed from it (``/print/patrol.pdf``) and ``webmap patrol-map`` ask
:func:`webmap.priorities.get_priority` exactly the same question (same parameters: the same cached
answer, the same scores) and refuse the same mistakes with the same one-line message.

Parameters (each optional): ``types`` and ``status`` (comma lists of the incident layer's codes),
``since`` and ``until`` (``YYYY-MM-DD``, both days included), ``cell_m`` (grid cell size in metres,
:data:`CELL_M_MIN` to :data:`CELL_M_MAX`, default 500), ``shape`` (``hex`` or ``square``).
"""

from __future__ import annotations

import math

from webmap.catalog import load_catalog
from webmap.errors import BadInput

__all__ = ["FILTERS", "SHAPES", "CELL_M_MIN", "CELL_M_MAX", "DEFAULT_CELL_M", "parse_filters", "query_echo",
           "describe_filters"]

FILTERS = ("types", "status", "since", "until", "cell_m", "shape")
SHAPES = ("hex", "square")
CELL_M_MIN, CELL_M_MAX = 200, 5000
DEFAULT_CELL_M = 500.0


def _codes(values, name: str, field) -> tuple | None:
    text = (values.get(name) or "").strip()
    if not text:
        return None
    chosen = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in field.allowed]
    if unknown:
        raise BadInput(f"{name}: unknown value(s) {', '.join(unknown)[:200]}; allowed: {', '.join(field.allowed)}")
    return tuple(sorted(set(chosen)))


def _cell_m(text) -> float:
    text = None if text is None else str(text)
    if text is None or text.strip() == "":
        return DEFAULT_CELL_M
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"cell_m must be a number of metres, got {text[:40]!r}") from None
    if not math.isfinite(value) or not CELL_M_MIN <= value <= CELL_M_MAX:
        raise BadInput(f"cell_m must be between {CELL_M_MIN} and {CELL_M_MAX} metres, got {text[:40]}")
    return value


def choice(values, name: str, allowed: tuple) -> str:
    """``values[name]`` if it is one of ``allowed`` (absent: the first); BadInput otherwise."""
    value = (values.get(name) or allowed[0]).strip()
    if value not in allowed:
        raise BadInput(f"{name} must be one of {', '.join(allowed)}, got {value[:40]!r}")
    return value


def _day(text: str, name: str):
    from datetime import date

    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise BadInput(f"{name} must be a date YYYY-MM-DD, got {str(text)[:40]!r}") from None


def parse_filters(values) -> "PriorityParams":  # noqa: F821 - imported lazily (numpy, esda)
    """A ``PriorityParams`` from text ``values`` (a query string or CLI options; other keys are ignored:
    the caller says which it accepts). BadInput names the parameter that is wrong."""
    from webmap.analysis.priority import PriorityParams

    incidents = load_catalog()["incidents"]
    types = _codes(values, "types", incidents.get_field("type"))
    statuses = _codes(values, "status", incidents.get_field("status"))
    since = _day(values["since"], "since") if values.get("since") else None
    until = _day(values["until"], "until") if values.get("until") else None
    if since and until and since > until:
        raise BadInput("since must be on or before until")
    return PriorityParams(types=types, statuses=statuses, since=since, until=until,
                          cell_m=_cell_m(values.get("cell_m")), shape=choice(values, "shape", SHAPES))


def query_echo(params) -> dict:
    """The question as the page, the file names and the audit log write it (None: not filtered)."""
    return {
        "types": list(params.types) if params.types else None,
        "status": list(params.statuses) if params.statuses else None,
        "since": params.since.isoformat() if params.since else None,
        "until": params.until.isoformat() if params.until else None,
        "cell_m": params.cell_m,
        "shape": params.shape,
    }


def describe_filters(params, catalog=None) -> str:
    """One Vietnamese line naming the incidents counted (for a printed sheet), codes in their official labels."""
    incidents = (catalog or load_catalog())["incidents"]

    def labels(field_name, codes):
        field = incidents.get_field(field_name)
        return ", ".join((field.value_labels.get(c, {}).get("vi") or c) for c in codes)

    types = f"loại: {labels('type', params.types)}" if params.types else "mọi loại"
    statuses = (f"trạng thái: {labels('status', params.statuses)}" if params.statuses
                else "mọi trạng thái trừ bị bác bỏ")
    if params.since or params.until:
        period = ("từ " + params.since.strftime("%d/%m/%Y") if params.since else "") + \
                 (" " if params.since and params.until else "") + \
                 ("đến " + params.until.strftime("%d/%m/%Y") if params.until else "")
    else:
        period = "mọi thời gian"
    return f"Bộ lọc sự cố (filters): {types}; {statuses}; {period}"
