"""Linear referencing on cable routes: a point from a chainage ("km 2.35 from the start"), and back.

Chainage is measured in metres in the metric CRS (:data:`webmap.crs.METRIC_CRS`, EPSG:5897, through the
pinned VN-2000 pipeline of :mod:`webmap.crs`) from the route's start: the first vertex of its first part.
A MultiLineString's parts are taken in their stored order and their lengths add up: the gap between one
part's end and the next part's start is not counted (a cable is not laid across a gap).

Used by the enterprises' damage reports (a cut "at 2.35 km along route X"), by the exposure analysis
(which incidents lie at which km of a route) and by anything that shows "km 2.35" of an incident.

>>> from shapely.geometry import LineString
>>> route = LineString([(105.76, 10.03), (105.78, 10.03)])   # about 2.19 km along latitude 10.03
>>> point = place_at_chainage(route, 1000)
>>> round(chainage_of(route, point), 3)
1000.0
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Point
from shapely.geometry.base import BaseGeometry

from webmap.crs import METRIC_CRS, lonlat_to_metric, resolve_crs
from webmap.errors import BadInput

#: A chainage this far beyond the route's length is its end (lengths are given rounded to the millimetre).
ROUNDING_M = 0.001

__all__ = ["place_at_chainage", "chainage_of", "route_length_m", "metric_parts", "to_lonlat"]


def _to_metric(geom: BaseGeometry) -> BaseGeometry:
    """One lon/lat geometry to EPSG:5897 metres (same pipeline as :func:`webmap.crs.to_metric`)."""
    return shapely.transform(geom, lambda xy: np.column_stack(lonlat_to_metric(xy[:, 0], xy[:, 1])))


def to_lonlat(geoms):
    """EPSG:5897 geometries (one or an array) back to WGS 84 lon/lat with the pinned EPSG:6960 pipeline."""
    single = isinstance(geoms, BaseGeometry)
    array = np.asarray([geoms] if single else geoms, dtype=object)
    out = resolve_crs(METRIC_CRS).transform_geometries(array)
    return out[0] if single else out


def metric_parts(route: BaseGeometry) -> list[LineString]:
    """The route's parts in EPSG:5897, in order (a LineString is one part); empty parts are skipped.

    Raises
    ------
    BadInput
        ``route`` is not a (Multi)LineString or holds no line at all.
    """
    if isinstance(route, LineString):
        parts = [route]
    elif isinstance(route, MultiLineString):
        parts = list(route.geoms)
    else:
        kind = route.geom_type if isinstance(route, BaseGeometry) else type(route).__name__
        raise BadInput(f"a route must be a LineString or MultiLineString, got {kind}")
    metric = [_to_metric(part) for part in parts if not part.is_empty and part.length > 0]
    if not metric:
        raise BadInput("the route has no length: it holds no line with two distinct points")
    return metric


def route_length_m(route: BaseGeometry) -> float:
    """Length of the route in metres (EPSG:5897), the sum of its parts."""
    return float(sum(part.length for part in metric_parts(route)))


def place_at_chainage(route: BaseGeometry, chainage_m: float) -> Point:
    """The point at ``chainage_m`` metres along ``route`` from its start, as a lon/lat Point.

    Parameters
    ----------
    route : LineString or MultiLineString
        In EPSG:4326 (lon/lat), as stored.
    chainage_m : float
        Metres from the start (first vertex of the first part), measured in EPSG:5897.

    Returns
    -------
    shapely.geometry.Point
        Lon/lat (EPSG:4326).

    Raises
    ------
    BadInput
        ``chainage_m`` is not a number, is negative or exceeds the route's length (the message gives the
        length in km), or the route is not a line.

    Notes
    -----
    The point is interpolated on the straight piece between two vertices in EPSG:5897, so it lies on the
    route as drawn in metres; between vertices a few hundred metres apart that differs from the straight
    piece in lon/lat by well under a millimetre. Grid and ground distances differ by the scale of the
    projection (about 2 cm per km at Cần Thơ), far below the 1 m the contract asks for.
    """
    try:
        chainage = float(chainage_m)
    except (TypeError, ValueError):
        raise BadInput(f"the chainage must be a number of metres, got {chainage_m!r}",
                       vi=f"Lý trình phải là một số (mét), không phải {chainage_m!r}") from None
    parts = metric_parts(route)
    lengths = np.array([part.length for part in parts])
    total = float(lengths.sum())
    if np.isfinite(chainage) and total < chainage <= total + ROUNDING_M:
        chainage = total  # the route's end, given as its length rounded to the millimetre
    if not np.isfinite(chainage) or chainage < 0 or chainage > total:
        raise BadInput(f"chainage {chainage / 1000:.3f} km is outside the route: it must lie between 0 and "
                       f"{total / 1000:.3f} km (the route's length)",
                       vi=f"Lý trình {chainage / 1000:.3f} km nằm ngoài tuyến: phải từ 0 đến {total / 1000:.3f} km "
                          "(chiều dài tuyến)".replace(".", ","))
    ends = np.cumsum(lengths)
    index = min(int(np.searchsorted(ends, chainage, side="left")), len(parts) - 1)
    start = ends[index] - lengths[index]
    point = parts[index].interpolate(min(max(chainage - start, 0.0), lengths[index]))
    return to_lonlat(point)


def chainage_of(route: BaseGeometry, point: BaseGeometry) -> float:
    """Chainage in metres of the point of ``route`` nearest to ``point`` (both lon/lat): the inverse of
    :func:`place_at_chainage` for a point on the route, the foot of the perpendicular for one beside it.

    With a MultiLineString, the nearest part wins (the first of equally near parts).
    """
    if not isinstance(point, BaseGeometry) or point.is_empty:
        raise BadInput("a point is needed to measure its chainage")
    parts = metric_parts(route)
    where = _to_metric(point)
    distances = [part.distance(where) for part in parts]
    index = int(np.argmin(distances))
    before = float(sum(part.length for part in parts[:index]))
    return before + float(parts[index].project(where))
