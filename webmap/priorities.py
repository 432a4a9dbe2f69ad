"""Priority areas from the store: read the layers, compute (``webmap.analysis.priority``), cache the result.

The analysis is pure; this module is the one place that knows which layers it needs and when a cached
result is still valid: a result is kept per store, per :class:`PriorityParams` and per unit layer, and
stamped with the active version (number and SHA-256) of every layer it read, so a new import of any of
them makes the next call compute again. Two threads asking for the same thing at once compute it once.
The layers read for a result are kept too, per layer version (:func:`cached_inputs`), the incidents parsed
into arrays: a new filter or period reads nothing from the store and parses nothing again.

Staff only: the result holds key-site counts and every enterprise's network. Callers check the role
(views: ``guard``; the CLI runs as the operator).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

from webmap.errors import BadInput, NotFound

__all__ = ["INPUT_LAYERS", "UNIT_LAYERS", "load_inputs", "cached_inputs", "layer_stamp", "get_priority",
           "start_warm_up", "clear_cache"]

#: layers the analysis reads (districts is required: it is the city boundary)
INPUT_LAYERS = ("districts", "wards", "incidents", "cable_routes", "stations", "key_sites")
UNIT_LAYERS = ("wards", "districts")
CACHE_SIZE = 12  # results kept per store (a 500 m result of the city is a few MB)


def _read(store, kind):
    try:
        return store.read_layer(kind)
    except NotFound:
        return None


def load_inputs(store) -> dict:
    """Every input layer as a GeoDataFrame (whole layers, the staff view), None for a layer not loaded."""
    return {kind: _read(store, kind) for kind in INPUT_LAYERS}


# Layers as read (and the incidents parsed: webmap.analysis.priority.PreparedIncidents), per store and per
# layer version: a version never changes once imported, so an entry is valid until the active version of its
# layer changes, and then replaced. One entry per layer: the incidents' arrays take ~30 bytes per incident
# (plus 4 per grid used), about 35 MB at a million; the frames of the other layers are small.
_INPUTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def cached_inputs(store, stamp: tuple) -> dict:
    """:func:`load_inputs`, but the incidents as ``PreparedIncidents``, and every layer read (and parsed)
    only when its version in ``stamp`` differs from the one kept. Call with ``_COMPUTE_LOCK`` held."""
    from webmap.analysis.priority import prepare_incidents

    kept = _INPUTS.get(store)
    if kept is None:
        kept = _INPUTS[store] = {}
    out = {}
    for kind, version, sha256 in stamp:
        hit = kept.get(kind)
        if hit is not None and hit[0] == (version, sha256):
            out[kind] = hit[1]
            continue
        value = _read(store, kind) if version is not None else None
        if kind == "incidents" and value is not None:
            value = prepare_incidents(value)
        out[kind] = value
        # keep it only if the active version is still the one asked for (an import may have run meanwhile)
        if dict((k, (v, h)) for k, v, h in layer_stamp(store)).get(kind) == (version, sha256):
            kept[kind] = ((version, sha256), value)
        else:
            kept.pop(kind, None)
    return out


def layer_stamp(store) -> tuple:
    """``((kind, version, sha256), ...)`` of the active versions of the input layers: the cache's validity."""
    active = {v.kind: v for v in store.list_versions()}
    return tuple((kind, active[kind].version, active[kind].sha256) if kind in active else (kind, None, None)
                 for kind in INPUT_LAYERS)


def _choose_units(inputs: dict, units: str | None) -> str | None:
    if units is None:  # the finest units loaded
        return next((kind for kind in UNIT_LAYERS if inputs.get(kind) is not None and len(inputs[kind])), None)
    if units not in UNIT_LAYERS:
        raise BadInput(f"units must be wards or districts, got {units!r}")
    if inputs.get(units) is None or not len(inputs[units]):
        raise BadInput(f"the {units} layer is not loaded: import it, or choose other units")
    return units


# One analysis at a time per process: the cached grids (and the prepared GEOS geometries and STRtrees they
# hold) are shared between calls, and two threads querying them at once crashed the process in GEOS
# (seen with six concurrent filters on the demo data). The page, prints, exposure and the CLI all come here.
_COMPUTE_LOCK = threading.Lock()


def compute_from_store(store, params, units: str | None = None, stamp: tuple | None = None):
    """Read the layers and compute (no cache). The result's method names the layer versions it used."""
    with _COMPUTE_LOCK:
        return _compute_from_store(store, params, units, stamp)


def _compute_from_store(store, params, units, stamp):
    from webmap.analysis.priority import compute_priority

    stamp = stamp if stamp is not None else layer_stamp(store)
    inputs = cached_inputs(store, stamp)
    if inputs["districts"] is None or not len(inputs["districts"]):
        raise BadInput("the districts layer is not loaded: it is the city boundary (run `webmap demo` or import it)")
    unit_kind = _choose_units(inputs, units)
    result = compute_priority(
        inputs["incidents"], boundary=inputs["districts"], cables=inputs["cable_routes"],
        stations=inputs["stations"], key_sites=inputs["key_sites"],
        units=inputs[unit_kind] if unit_kind else None, params=params)
    result.method["units_layer"] = unit_kind
    result.method["layers"] = {kind: {"version": version, "sha256": sha256}
                               for kind, version, sha256 in stamp if version is not None}
    return result


class _Slot:
    """One cache entry: filled once by the thread that computes it; others wait on ``ready``."""

    def __init__(self):
        self.ready = threading.Event()
        self.result = None
        self.error = None


_CACHES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def get_priority(store, params=None, *, units: str | None = None):
    """The :class:`~webmap.analysis.priority.PriorityResult` for ``params`` on the store's active layers.

    Parameters
    ----------
    store : webmap.store.base.Store
    params : PriorityParams, optional
        Default ``PriorityParams()``.
    units : {"wards", "districts"}, optional
        Layer of the per-unit table; default the wards when loaded, else the districts.

    Notes
    -----
    Cached in memory per store by (params, units, active layer versions); thread-safe, and a result being
    computed is waited for rather than computed twice. Results are shared: do not modify them.
    The first Gi* of a process compiles esda's numba code (see :func:`start_warm_up`).
    """
    from webmap.analysis.priority import PriorityParams

    params = params if params is not None else PriorityParams()
    stamp = layer_stamp(store)
    key = (params, units, stamp)
    with _LOCK:
        cache = _CACHES.get(store)
        if cache is None:
            cache = _CACHES[store] = OrderedDict()
        slot = cache.get(key)
        owner = slot is None
        if owner:
            slot = cache[key] = _Slot()
            while len(cache) > CACHE_SIZE:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
    if owner:
        try:
            slot.result = compute_from_store(store, params, units, stamp)
        except BaseException as exc:
            slot.error = exc
            with _LOCK:
                if cache.get(key) is slot:
                    del cache[key]  # a failure is not remembered: the next call tries again
            raise
        finally:
            slot.ready.set()
        return slot.result
    slot.ready.wait()
    if slot.error is not None:
        raise slot.error
    return slot.result


def clear_cache(store=None) -> None:
    """Forget cached results and the layers read for them (of one store, or all)."""
    with _LOCK:
        if store is None:
            _CACHES.clear()
        else:
            _CACHES.pop(store, None)
    with _COMPUTE_LOCK:
        if store is None:
            _INPUTS.clear()
        else:
            _INPUTS.pop(store, None)


_WARM_THREAD = None


def start_warm_up() -> threading.Thread:
    """Compile esda's numba code in a background daemon thread (once per process); returns the thread."""
    global _WARM_THREAD
    from webmap.analysis.hotspots import warm_up

    with _LOCK:
        if _WARM_THREAD is None:
            _WARM_THREAD = threading.Thread(target=warm_up, name="webmap-esda-warm-up", daemon=True)
            _WARM_THREAD.start()
        return _WARM_THREAD
