"""Every coordinate reference system (CRS) decision of webmap, in one place.

Layers are stored and served in WGS 84 longitude/latitude (:data:`STORAGE_CRS`, EPSG:4326) and distances
are measured in VN-2000 / TM-3 zone 482 (:data:`METRIC_CRS`, EPSG:5897: Transverse Mercator, central
meridian 105°00', scale factor 0.9999, false easting 500 000 m, which is also Cần Thơ's provincial
meridian under Circular 973/2001/TT-TCĐC).

Files arrive in many CRSs. Anything on the Vietnamese datum VN-2000 (EPSG:4756) goes to WGS 84 with one
operation, pinned here rather than left to PROJ: EPSG:6960 "VN-2000 to WGS 84 (2)", the 7-parameter
coordinate-frame shift published by the Ministry of Natural Resources and Environment in Decision
05/2007/QĐ-BTNMT. PROJ knows a second one, EPSG:5194 "VN-2000 to WGS 84 (1)" (used by Total in the
Mekong delta), and by default picks it inside its area -- which includes Cần Thơ -- about 0.8 m away
from EPSG:6960. (PROJ's copy of the EPSG registry gives both the generic scope "Academic research, not
officially adopted"; 6960's source is Vietnam's Department of Survey and Mapping, version "DoSM-Vnm".)
We build the PROJ pipeline ourselves from the parameters of EPSG:6960, so the result does
not depend on the point, the PROJ version or its database order.

The importer calls :func:`resolve_crs` once per file and then :meth:`CrsResolution.transform_geometries`;
the command line passes ``--crs`` through :func:`parse_crs`; :func:`guess_crs` and
:func:`check_lonlat_bounds` turn a missing or wrong CRS into a message a user can act on.
"""

from __future__ import annotations

import math
import re
import warnings as _warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pyproj
import shapely
from pyproj import CRS, Transformer
from pyproj.crs import CoordinateOperation, GeographicCRS, ProjectedCRS
from pyproj.crs.coordinate_operation import TransverseMercatorConversion
from pyproj.enums import TransformDirection
from pyproj.exceptions import CRSError as _ProjCRSError
from pyproj.transformer import TransformerGroup

from webmap.errors import CrsError

__all__ = [
    "STORAGE_CRS",
    "METRIC_CRS",
    "SHIFT_EPSG",
    "CrsResolution",
    "parse_crs",
    "resolve_crs",
    "guess_crs",
    "check_lonlat_bounds",
    "to_metric",
]

STORAGE_CRS = "EPSG:4326"
METRIC_CRS = "EPSG:5897"

#: The one VN-2000 -> WGS 84 operation we use (Decision 05/2007/QĐ-BTNMT, coordinate frame rotation).
SHIFT_EPSG = 6960
SHIFT_LABEL = "EPSG:6960 (2007 official 7-parameter shift)"

VN2000_GEOG_EPSG = 4756

#: VN-2000 TM-3 grids in the EPSG registry: central meridian (degrees) -> EPSG code. Zones 481/482/491
#: (5896-5898) are the national 3° zones; 5899 and 9205-9218 are provincial meridians (Circular 973/2001).
VN2000_TM3_EPSG = {
    102.0: 5896, 105.0: 5897, 108.0: 5898, 107.75: 5899,
    103.0: 9205, 104.0: 9206, 104.5: 9207, 104.75: 9208, 105.5: 9209, 105.75: 9210,
    106.0: 9211, 106.25: 9212, 106.5: 9213, 107.0: 9214, 107.25: 9215, 107.5: 9216,
    108.25: 9217, 108.5: 9218,
}
VN2000_UTM_EPSG = {48: 3405, 49: 3406}

#: Ninh Kiều, the centre of Cần Thơ: the reference point for offsets and for ranking guesses.
NINH_KIEU = (105.7845, 10.0340)
#: Longitude/latitude box in which lon/lat data of Vietnam must lie (generous: islands, neighbours).
VIETNAM_LONLAT = (100.0, 8.0, 112.0, 24.0)
#: Central meridians of the VN-2000 TM-3 convention (k = 0.9999) span Vietnam's longitudes.
TM3_MERIDIAN_RANGE = (102.0, 109.5)

_ARCSEC = math.pi / (180 * 3600)
_WGS84_A = 6378137.0
_WGS84_RF = 298.257223563


# ----------------------------------------------------------------------------------------------------
# The pinned EPSG:6960 pipeline
# ----------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def shift_parameters() -> dict:
    """Return the parameters of EPSG:6960 as read from PROJ's EPSG database.

    Returns
    -------
    dict
        ``x, y, z`` (metres), ``rx, ry, rz`` (arc-seconds), ``s`` (parts per million) and
        ``convention`` (``"coordinate_frame"`` or ``"position_vector"``), ready for ``+proj=helmert``.

    Notes
    -----
    Read from the database rather than typed in, so that a changed EPSG entry shows up in the tests
    (which compare against the published 2007 values) instead of silently diverging.
    """
    op = CoordinateOperation.from_epsg(SHIFT_EPSG)
    conventions = {"9606": "position_vector", "9607": "coordinate_frame"}
    if op.method_code not in conventions:  # pragma: no cover - only if EPSG redefines 6960
        raise RuntimeError(f"EPSG:{SHIFT_EPSG} uses method {op.method_name!r}, not a 7-parameter Helmert")
    names = {"8605": "x", "8606": "y", "8607": "z", "8608": "rx", "8609": "ry", "8610": "rz", "8611": "s"}
    out = {"convention": conventions[op.method_code]}
    for p in op.params:
        key = names.get(p.code)
        if key is None:
            continue
        if key in ("x", "y", "z"):
            out[key] = p.value if p.unit_code == "9001" else p.value * p.unit_conversion_factor
        elif key in ("rx", "ry", "rz"):
            out[key] = p.value if p.unit_code == "9104" else p.value * p.unit_conversion_factor / _ARCSEC
        else:
            out[key] = p.value if p.unit_code == "9202" else p.value * p.unit_conversion_factor * 1e6
    missing = set(names.values()) - set(out)
    if missing:  # pragma: no cover
        raise RuntimeError(f"EPSG:{SHIFT_EPSG} lacks parameters {sorted(missing)}")
    return out


def _shift_steps() -> str:
    """PROJ pipeline steps taking VN-2000 lon/lat degrees to WGS 84 lon/lat degrees with EPSG:6960."""
    p = shift_parameters()
    ell = f"+a={_WGS84_A!r} +rf={_WGS84_RF!r}"  # VN-2000 and WGS 84 share the WGS 84 ellipsoid
    helmert = " ".join(f"+{k}={p[k]!r}" for k in ("x", "y", "z", "rx", "ry", "rz", "s"))
    return (
        "+step +proj=unitconvert +xy_in=deg +xy_out=rad"
        " +step +proj=push +v_3"
        f" +step +proj=cart {ell}"
        f" +step +proj=helmert {helmert} +convention={p['convention']}"
        f" +step +inv +proj=cart {ell}"
        " +step +proj=pop +v_3"
        " +step +proj=unitconvert +xy_in=rad +xy_out=deg"
    )


def _as_vn2000(base: CRS) -> CRS:
    """The same coordinates (projection, axes, units) on the VN-2000 datum."""
    vn = CRS.from_epsg(VN2000_GEOG_EPSG)
    if base.is_geographic:
        if base.coordinate_system is not None and len(base.axis_info) == 2:
            return GeographicCRS(name="VN-2000", datum=vn.datum, ellipsoidal_cs=base.coordinate_system)
        return vn
    return ProjectedCRS(
        conversion=base.coordinate_operation,
        geodetic_crs=vn,
        cartesian_cs=base.coordinate_system,
        name=_tm_name(base) or f"{base.name} (on VN-2000)",
    )


_DATUM_SHIFT_WORDS = ("helmert", "cart", "towgs84", "nadgrids", "gridshift", "molodensky", "geocent")


def pinned_pipeline(vn2000_crs: CRS) -> str:
    """Build the PROJ pipeline from a VN-2000 CRS to WGS 84 lon/lat, with EPSG:6960 pinned.

    Parameters
    ----------
    vn2000_crs : pyproj.CRS
        A geographic or projected CRS on the VN-2000 datum (use :func:`_as_vn2000` to put a CRS on it).

    Returns
    -------
    str
        ``+proj=pipeline ...``: the source's own projection undone (a pure conversion, no datum change),
        then the EPSG:6960 Helmert. Input x/y in the source's easting/northing (or lon/lat) order,
        output lon/lat degrees.

    Notes
    -----
    The conversion part comes from PROJ (``VN-2000 CRS -> EPSG:4756``, same datum, so PROJ has no datum
    choice to make); we check that it contains no datum step and then append our Helmert.
    """
    conv = Transformer.from_crs(vn2000_crs, CRS.from_epsg(VN2000_GEOG_EPSG), always_xy=True).to_proj4()
    if conv is None:  # pragma: no cover
        raise RuntimeError(f"PROJ cannot express {vn2000_crs.name} -> VN-2000 as a pipeline")
    conv = " ".join(conv.split())
    lowered = conv.lower()
    if any(word in lowered for word in _DATUM_SHIFT_WORDS):  # pragma: no cover - would be a PROJ change
        raise RuntimeError(f"unexpected datum step in the VN-2000 conversion: {conv}")
    if conv == "+proj=noop":
        steps = ""
    elif conv.startswith("+proj=pipeline +step "):
        steps = conv[len("+proj=pipeline ") :] + " "
    elif conv.startswith("+proj=pipeline"):  # pragma: no cover - global pipeline options we do not expect
        raise RuntimeError(f"unexpected pipeline form: {conv}")
    else:
        steps = "+step " + conv + " "
    return "+proj=pipeline " + steps + _shift_steps()


@lru_cache(maxsize=64)
def _pinned_transformer(vn2000_wkt: str) -> tuple[Transformer, str]:
    pipeline = pinned_pipeline(CRS.from_wkt(vn2000_wkt))
    return Transformer.from_pipeline(pipeline), pipeline


@lru_cache(maxsize=1)
def _metric_transformer() -> Transformer:
    """The EPSG:5897 pinned pipeline; used in the inverse direction (WGS 84 -> VN-2000 TM-3 482)."""
    return _pinned_transformer(CRS.from_user_input(METRIC_CRS).to_wkt())[0]


# ----------------------------------------------------------------------------------------------------
# Reading CRS descriptions
# ----------------------------------------------------------------------------------------------------


def _norm(text) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text or "").lower())


def _dms(deg: float) -> str:
    """105.75 -> "105°45'"; a meridian that is not a whole minute stays decimal."""
    d = int(math.floor(deg + 1e-9))
    minutes = (deg - d) * 60
    if abs(minutes - round(minutes)) < 1e-6:
        return f"{d}°{int(round(minutes)):02d}'"
    return f"{deg:g}°"


def _tm_name(crs: CRS) -> str | None:
    params = _tm_params(crs)
    if params is None or abs(params["k"] - 0.9999) > 1e-9:
        return None
    d, m = divmod(round(params["lon_0"] * 60), 60)
    return f"VN-2000 / TM-3 {d}-{m:02d}"


def _tm_params(crs: CRS) -> dict | None:
    """Transverse Mercator parameters (metres, degrees) of a projected CRS, or None."""
    if not crs.is_projected or crs.coordinate_operation is None:
        return None
    op = crs.coordinate_operation
    if op.method_code != "9807" and _norm(op.method_name) != "transversemercator":
        return None
    codes = {"8801": "lat_0", "8802": "lon_0", "8805": "k", "8806": "x_0", "8807": "y_0"}
    out = {}
    for p in op.params:
        key = codes.get(p.code)
        if key is None:
            continue
        if key in ("lat_0", "lon_0"):
            out[key] = math.degrees(p.value * p.unit_conversion_factor)
        else:  # scale factor (unity) or metres
            out[key] = p.value * p.unit_conversion_factor
    if set(out) != set(codes.values()):
        return None
    axis_units = {a.unit_name for a in crs.axis_info}
    if not all(u.lower() in ("metre", "meter", "m") for u in axis_units):
        return None
    return out


_VN2000_DATUM_NAMES = {"vietnam2000", "dvietnam2000", "vn2000", "dvn2000", "vietnam2000datum"}
_WGS84_DATUM_NAMES = {
    "worldgeodeticsystem1984", "worldgeodeticsystem1984ensemble", "dwgs1984", "wgs1984", "wgs84",
    "mif104",  # MapInfo datum 104 is WGS 84
}
_UNNAMED_DATUM_PREFIXES = ("unknown", "unnamed", "notspecified", "dunknown", "undefined", "mif0", "none")


def _is_vn2000_datum(geod: CRS) -> bool:
    if geod is None or geod.datum is None:
        return False
    # the datum's and the geographic CRS's names, never a projection's: a grid named "VN_2000_TM3" on
    # GCS_WGS_1984 is the .prj trap, not a VN-2000 datum
    geographic = geod.geodetic_crs if geod.is_projected and geod.geodetic_crs is not None else geod
    names = {_norm(geod.datum.name), _norm(geographic.name)}
    if names & _VN2000_DATUM_NAMES or any(n.startswith("vn2000") for n in names):
        return True
    try:
        return geod.datum == CRS.from_epsg(VN2000_GEOG_EPSG).datum
    except _ProjCRSError:  # pragma: no cover
        return False


def _on_wgs84_ellipsoid(crs: CRS) -> bool:
    ell = crs.ellipsoid
    return (
        ell is not None
        and abs(ell.semi_major_metre - _WGS84_A) < 1e-3
        and abs(ell.inverse_flattening - _WGS84_RF) < 1e-4  # WGS 84 (and GRS 80, 0.1 mm apart)
    )


def _is_wgs84_or_unnamed_datum(crs: CRS) -> bool:
    if crs.datum is None or not _on_wgs84_ellipsoid(crs):
        return False
    name = _norm(crs.datum.name)
    return name in _WGS84_DATUM_NAMES or name.startswith(_UNNAMED_DATUM_PREFIXES) or name == ""


def _towgs84(bound: CRS | None) -> list[float] | None:
    """The 3 or 7 TOWGS84 values of a bound CRS (position-vector convention), or None."""
    if bound is None or bound.coordinate_operation is None:
        return None
    values = [p.value for p in bound.coordinate_operation.params]
    return values if len(values) in (3, 7) else None


def _looks_like_vn2000_shift(values: list[float] | None) -> bool:
    """TOWGS84 translations of VN-2000 (EPSG:6960 or 5194, either sign convention): ~(-192, -39, -111) m."""
    if not values:
        return False
    tx, ty, tz = (abs(v) for v in values[:3])
    return 189 <= tx <= 195 and 36 <= ty <= 43 and 108 <= tz <= 115


def _is_vn2000_tm3_grid(crs: CRS) -> bool:
    """Transverse Mercator, k = 0.9999, central meridian in Vietnam, false easting 500 km: the TM-3 convention."""
    p = _tm_params(crs)
    return (
        p is not None
        and abs(p["k"] - 0.9999) < 1e-9
        and TM3_MERIDIAN_RANGE[0] - 1e-9 <= p["lon_0"] <= TM3_MERIDIAN_RANGE[1] + 1e-9
        and abs(p["lat_0"]) < 1e-9
        and abs(p["x_0"] - 500000) < 1e-3
        and abs(p["y_0"]) < 1e-3
    )


def _horizontal(crs: CRS, origin: str) -> tuple[CRS, CRS | None, CRS]:
    """Split off the horizontal part: (base CRS without TOWGS84, the bound CRS or None, what PROJ should use)."""
    if crs.is_compound:
        crs = crs.sub_crs_list[0]
    bound = None
    if crs.is_bound:
        bound = crs
        crs = crs.source_crs
    if not (crs.is_geographic or crs.is_projected) or crs.is_geocentric:
        raise CrsError(
            f"{origin} names {crs.name!r}, which is not a map CRS (geographic or projected): "
            "name the horizontal CRS with --crs, e.g. --crs EPSG:5897"
        )
    return crs, bound, bound if bound is not None else crs


def _epsg_label(crs: CRS) -> str:
    """'VN-2000 / TM-3 zone 482 (EPSG:5897)'; just a name (or PROJ string) when no single EPSG code matches.

    A 70 % identification is accepted only when it is the only one: "+proj=utm +zone=48 +ellps=WGS84"
    matches DGN95, VN-2000 and others equally and must not be labelled as any of them.
    """
    try:
        matches = [m for m in crs.list_authority(min_confidence=70) if m.auth_name == "EPSG"]
    except _ProjCRSError:  # pragma: no cover
        matches = []
    best = max((m.confidence for m in matches), default=0)
    top = [m for m in matches if m.confidence == best]
    if len(top) == 1 or (top and best == 100):
        code = top[0].code
        try:
            return f"{CRS.from_epsg(int(code)).name} (EPSG:{code})"
        except (_ProjCRSError, ValueError):  # pragma: no cover
            pass
    return _display_name(crs)


def _display_name(crs: CRS, limit: int = 90) -> str:
    """The CRS's name, or its PROJ string when the name says nothing ("unknown", "unnamed")."""
    name = crs.name or ""
    if _norm(name) in ("", "unknown", "unnamed", "undefined"):
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore", UserWarning)  # "you will likely lose important projection information"
            text = crs.to_proj4()
        if text:
            return _short(text.replace(" +type=crs", "").replace(" +no_defs", ""), limit)
    return _short(name, limit) if name else "unnamed CRS"


def _short(text: str, limit: int = 80) -> str:
    one_line = " ".join(str(text).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


_TM3_ALIAS = re.compile(
    r"^vn-?2000[-_ ]?tm-?3[-_ ]?(?P<deg>\d{3})(?:(?:\.(?P<frac>\d+))|(?:[-:°_ ](?P<min>\d{1,2})'?))?$"
)
_UTM_ALIAS = re.compile(r"^(?P<vn>vn-?2000[-_ ]?)?utm[-_ ]?(?P<zone>48|49)n?$")
_SIMPLE_ALIASES = {
    "wgs84": 4326, "wgs-84": 4326, "lonlat": 4326, "lon/lat": 4326, "crs84": 4326,
    "vn2000": VN2000_GEOG_EPSG, "vn-2000": VN2000_GEOG_EPSG,
}


def parse_crs(text: str) -> CRS:
    """Turn a user's ``--crs`` value into a :class:`pyproj.CRS`.

    Parameters
    ----------
    text : str
        One of: an EPSG code (``"EPSG:5897"``, ``"epsg:5897"`` or just ``"5897"``); a short name
        (``"wgs84"``, ``"vn2000"``, ``"utm48n"``, ``"vn2000-utm48n"``, ``"vn2000-tm3-105.75"`` or
        ``"vn2000-tm3-105-45"`` for a VN-2000 TM-3 grid with that central meridian); a PROJ string;
        WKT or PROJJSON; any other authority code PROJ knows (``"ESRI:102100"``).

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    CrsError
        The value is empty or PROJ does not know it; the message repeats the value and says what is
        accepted.

    Notes
    -----
    ``vn2000-tm3-<meridian>`` returns the EPSG CRS when the registry has that meridian (e.g. 105.75 ->
    EPSG:9210) and otherwise builds Transverse Mercator, k = 0.9999, false easting 500 000 m on VN-2000
    (EPSG:4756), as MapInfo users often do for a provincial meridian. Whatever the value, the datum
    question is settled later by :func:`resolve_crs`: a WGS 84 TM k = 0.9999 grid given here is still
    recognised as VN-2000.
    """
    if text is None or not str(text).strip():
        raise CrsError("empty --crs value: give an EPSG code such as EPSG:5897, or a PROJ string or WKT")
    raw = str(text).strip()
    key = raw.lower()
    try:
        if re.fullmatch(r"\d{4,6}", key):
            return CRS.from_epsg(int(key))
        if key in _SIMPLE_ALIASES:
            return CRS.from_epsg(_SIMPLE_ALIASES[key])
        m = _UTM_ALIAS.match(key)
        if m:
            zone = int(m.group("zone"))
            return CRS.from_epsg(VN2000_UTM_EPSG[zone] if m.group("vn") else 32600 + zone)
        m = _TM3_ALIAS.match(key)
        if m:
            return _tm3_crs(m, raw)
        return CRS.from_user_input(raw)
    except _ProjCRSError:
        pass
    raise CrsError(
        f"unknown coordinate reference system {_short(raw)!r}: give an EPSG code (e.g. EPSG:5897), "
        "vn2000-tm3-<central meridian> (e.g. vn2000-tm3-105.75), a PROJ string or WKT"
    )


def _tm3_crs(m: re.Match, raw: str) -> CRS:
    deg = int(m.group("deg"))
    if m.group("frac"):
        cm = float(f"{deg}.{m.group('frac')}")
    elif m.group("min"):
        minutes = int(m.group("min"))
        if minutes >= 60:
            raise CrsError(f"--crs {raw!r}: minutes of the central meridian must be below 60")
        cm = deg + minutes / 60
    else:
        cm = float(deg)
    lo, hi = TM3_MERIDIAN_RANGE
    if not lo <= cm <= hi:
        raise CrsError(f"--crs {raw!r}: a VN-2000 TM-3 central meridian lies between {lo:g} and {hi:g} degrees")
    for known, code in VN2000_TM3_EPSG.items():
        if abs(known - cm) < 1e-9:
            return CRS.from_epsg(code)
    d, mm = divmod(round(cm * 60), 60)
    return ProjectedCRS(
        conversion=TransverseMercatorConversion(
            latitude_natural_origin=0,
            longitude_natural_origin=cm,
            false_easting=500000,
            false_northing=0,
            scale_factor_natural_origin=0.9999,
        ),
        geodetic_crs=CRS.from_epsg(VN2000_GEOG_EPSG),
        name=f"VN-2000 / TM-3 {d}-{mm:02d}",
    )


# ----------------------------------------------------------------------------------------------------
# Resolution
# ----------------------------------------------------------------------------------------------------


def transform_xy(geoms: np.ndarray, xy_func) -> np.ndarray:
    """Apply ``xy_func(x, y) -> (x, y)`` to every vertex of ``geoms``, keeping Z where there is one.

    Per geometry dimension, so that 2D stays 2D and 3D keeps its Z (works on shapely 2.0 too).
    """

    def fn(coords):
        res = np.array(coords, dtype=float, copy=True)
        res[:, 0], res[:, 1] = xy_func(coords[:, 0], coords[:, 1])
        return res

    has_z = shapely.has_z(geoms)
    out = np.empty_like(geoms)
    if np.any(~has_z):
        out[~has_z] = shapely.transform(geoms[~has_z], fn, include_z=False)
    if np.any(has_z):
        out[has_z] = shapely.transform(geoms[has_z], fn, include_z=True)
    return out


@dataclass
class CrsResolution:
    """What :func:`resolve_crs` decided: the source CRS, how it reaches WGS 84, and what to tell the user.

    Attributes
    ----------
    source : pyproj.CRS
        The CRS as the file (or ``--crs``) states it, unchanged.
    is_vn2000 : bool
        True when the coordinates are on VN-2000, whether the CRS says so or not (see Notes).
    description : str
        One line for the import report, e.g. ``"VN-2000 / TM-3 zone 482 (EPSG:5897) -> WGS 84 with
        EPSG:6960 (2007 official 7-parameter shift)"``.
    warnings : list of str
        One line each, for the import report.
    pipeline : str
        The PROJ pipeline (VN-2000) or operation description (others) actually used.
    offset_m : float or None
        For a VN-2000 grid declared without a shift (or with a different one): how far, in metres, the
        literal reading lands from ours at the data (or at Ninh Kiều). None otherwise.

    Notes
    -----
    The datum trap: a .prj that describes the VN-2000 TM-3 grid (Transverse Mercator, k = 0.9999,
    central meridian 102-109.5°, false easting 500 000 m) on "WGS 84", or on an unnamed datum of the
    WGS 84 ellipsoid, with no TOWGS84. VN-2000 uses the WGS 84 *ellipsoid*, so such files are common
    (hand-written .prj, MapInfo exports, "WGS 84" picked in a dialog). Taken literally they skip the
    datum shift and land about 225 m off. In Vietnam a k = 0.9999 TM grid is the VN-2000 TM-3
    convention (WGS 84 grids use UTM, k = 0.9996), so we read it as VN-2000, apply EPSG:6960 and say so
    in :attr:`warnings`.
    """

    source: CRS
    is_vn2000: bool
    description: str
    warnings: list[str] = field(default_factory=list)
    pipeline: str = ""
    offset_m: float | None = None
    _transformer: Transformer | None = field(default=None, repr=False, compare=False)

    def transform(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """Transform source coordinates to WGS 84 longitude/latitude (x = lon, y = lat, always).

        Parameters
        ----------
        x, y : array_like
            Easting/northing (projected source) or longitude/latitude (geographic source), whatever axis
            order the CRS's authority prescribes.

        Returns
        -------
        lon, lat : numpy.ndarray
            Degrees, WGS 84.

        Raises
        ------
        CrsError
            Some finite coordinates cannot be transformed (outside the projection's domain): the CRS does
            not fit the data.
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if self._transformer is None:
            return x.copy(), y.copy()
        lon, lat = self._transformer.transform(x, y)
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        bad = np.isfinite(x) & np.isfinite(y) & ~(np.isfinite(lon) & np.isfinite(lat))
        if np.any(bad):
            first = np.argwhere(np.atleast_1d(bad))[0][0]
            bx, by = np.atleast_1d(x)[first], np.atleast_1d(y)[first]
            raise CrsError(
                f"{int(np.sum(bad))} of {bad.size} coordinates cannot be transformed from {self.source.name} "
                f"to WGS 84 (the first is x={bx:.10g}, y={by:.10g}): the CRS does not fit the data; "
                "name the right one with --crs"
            )
        return lon, lat

    @property
    def moves_coordinates(self) -> bool:
        """False when the source is already WGS 84 lon/lat: geometries pass through as they are."""
        return self._transformer is not None

    def transform_geometries(self, geoms) -> np.ndarray:
        """Transform shapely geometries to WGS 84 lon/lat with :func:`shapely.transform`.

        Parameters
        ----------
        geoms : array_like of shapely geometries
            A numpy array, list or GeoSeries; None and empty geometries pass through.

        Returns
        -------
        numpy.ndarray of shapely geometries
            Same shape; a Z coordinate is kept as it is (heights are not changed by the datum shift:
            VN-2000 heights are orthometric, Hòn Dấu datum).
        """
        arr = np.asarray(geoms, dtype=object)
        if self._transformer is None or arr.size == 0:
            return arr.copy()

        return transform_xy(arr, self.transform)


def _literal_offset_m(resolution_transformer: Transformer, literal: CRS, ref_xy) -> float:
    """Distance between our reading and PROJ's literal reading of ``literal`` at ``ref_xy`` (metres)."""
    lit = Transformer.from_crs(literal, STORAGE_CRS, always_xy=True)
    lon1, lat1 = lit.transform(*ref_xy)
    lon2, lat2 = resolution_transformer.transform(*ref_xy)
    if not all(math.isfinite(v) for v in (lon1, lat1, lon2, lat2)):
        return float("nan")
    return float(pyproj.Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)[2])


def _reference_xy(base: CRS, bounds) -> tuple[float, float]:
    """A point in source coordinates to measure offsets at: the data's centre, else near Ninh Kiều."""
    if bounds is not None:
        b = np.asarray(bounds, dtype=float)
        if b.shape == (4,) and np.all(np.isfinite(b)):
            return float((b[0] + b[2]) / 2), float((b[1] + b[3]) / 2)
    lon, lat = NINH_KIEU
    if not base.is_projected:
        return lon, lat
    p = _tm_params(base)
    if p is not None:  # stay inside the grid's own zone
        lon = min(max(lon, p["lon_0"] - 1.5), p["lon_0"] + 1.5)
    # A conversion on the CRS's own datum: the reference point only needs to be near the data.
    x, y = Transformer.from_crs(base.geodetic_crs, base, always_xy=True).transform(lon, lat)
    return float(x), float(y)


def resolve_crs(crs, *, user_crs: str | None = None, bounds=None) -> CrsResolution:
    """Decide how a file's coordinates reach WGS 84 lon/lat, pinning EPSG:6960 for VN-2000.

    Parameters
    ----------
    crs : pyproj.CRS, str or None
        The file's CRS (a CRS, WKT from a .prj, or anything :meth:`pyproj.CRS.from_user_input` takes);
        None or an empty string when the file has none.
    user_crs : str, optional
        The ``--crs`` value; overrides the file's CRS (a warning says so when they differ).
    bounds : tuple of 4 floats, optional
        ``(minx, miny, maxx, maxy)`` of the data in source coordinates. Used to guess a CRS when there is
        none, to measure offsets at the data, and to check that the result is sane lon/lat.

    Returns
    -------
    CrsResolution

    Raises
    ------
    CrsError
        No CRS and no ``--crs`` (the message lists :func:`guess_crs` candidates); an unreadable .prj; a
        non-map CRS; coordinates that do not fit the CRS (out of lon/lat range, swapped axes, outside the
        projection's domain).

    Notes
    -----
    VN-2000 is recognised (1) by datum name (EPSG:4756 and everything on it, ESRI ``D_Vietnam_2000``,
    GDAL ``Vietnam_2000``); (2) by a TOWGS84 whose translations are VN-2000's (~ -192, -39, -111 m, as
    MapInfo "MIF 9999" datums carry); (3) the datum trap: a VN-2000 TM-3 grid (TM, k = 0.9999, central
    meridian 102-109.5°, false easting 500 000 m, false northing 0) declared on WGS 84 or an unnamed
    datum of the WGS 84 ellipsoid without a shift. All three are transformed with our EPSG:6960
    pipeline, never with a shift carried by the file or chosen by PROJ; a file shift that differs from
    EPSG:6960 by more than 1 cm is reported with its size. A genuine WGS 84 UTM grid (k = 0.9996, e.g.
    EPSG:32648) is not VN-2000, nor is anything else; those go through PROJ's usual choice.

    A geographic CRS on an unnamed WGS 84-ellipsoid datum could also be VN-2000 lon/lat, but nothing in
    the file tells it apart from WGS 84; it is taken as WGS 84 (about 225 m of risk, stated in a
    warning only when PROJ itself has to guess the datum).
    """
    if isinstance(crs, str) and not crs.strip():
        crs = None
    warnings: list[str] = []
    file_crs = None
    if crs is not None:
        try:
            file_crs = crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
        except _ProjCRSError as exc:
            if user_crs is None:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise CrsError(
                    f"the file's coordinate reference system (.prj) cannot be read ({_short(first, 100)}): "
                    "name the CRS with --crs"
                ) from None
            warnings.append("the file's .prj cannot be read; using --crs")
    if user_crs is not None:
        source = parse_crs(user_crs)
        origin = f"--crs {_short(user_crs, 40)}"
        if file_crs is not None and not file_crs.equals(source, ignore_axis_order=True):
            warnings.append(f"--crs {_short(user_crs, 40)} overrides the file's CRS ({_short(file_crs.name, 60)})")
    elif file_crs is not None:
        source = file_crs
        origin = "the .prj"
    else:
        candidates = guess_crs(bounds) if bounds is not None else []
        hint = (
            "the coordinates look like " + " or ".join(candidates[:3])
            if candidates
            else "the coordinates look like neither lon/lat nor a Vietnamese grid"
            if bounds is not None
            else "e.g. --crs EPSG:5897 for VN-2000 / TM-3 metres, --crs EPSG:4326 for lon/lat"
        )
        raise CrsError(f"the file has no coordinate reference system (.prj): name it with --crs; {hint}")

    base, bound, horizontal = _horizontal(source, origin)
    resolution = _resolve_vn2000(source, base, bound, origin, bounds, warnings)
    if resolution is None:
        resolution = _resolve_other(source, base, horizontal, origin, warnings)
    if bounds is not None:
        _check_data_bounds(resolution, bounds)
    return resolution


def _resolve_vn2000(source, base, bound, origin, bounds, warnings) -> CrsResolution | None:
    shift = _towgs84(bound)
    zero_shift = shift is not None and all(abs(v) < 1e-12 for v in shift)
    if _is_vn2000_datum(base):
        how = "datum"
    elif shift is not None and _looks_like_vn2000_shift(shift) and _on_wgs84_ellipsoid(base):
        how = "towgs84"
    elif (shift is None or zero_shift) and _is_wgs84_or_unnamed_datum(base) and _is_vn2000_tm3_grid(base):
        how = "trap"
    else:
        return None

    vn = _as_vn2000(base)
    transformer, pipeline = _pinned_transformer(vn.to_wkt())
    label = _epsg_label(vn)
    if how == "trap" and "(EPSG:" not in label:
        label = f"{_tm_name(base)} (no EPSG code)"
    offset = None
    literal = bound if bound is not None else base if how != "datum" else None
    if literal is not None:
        offset = _literal_offset_m(transformer, literal, _reference_xy(base, bounds))

    if how == "datum":
        description = f"{label} -> WGS 84 with {SHIFT_LABEL}"
        if bound is not None and offset is not None and offset > 0.01:
            warnings.append(
                f"{origin} carries its own VN-2000 -> WGS 84 shift (TOWGS84), {offset:.2f} m away from "
                f"EPSG:6960 here; applied EPSG:6960"
            )
    elif how == "towgs84":
        datum = _short(base.datum.name, 40)
        description = (
            f"{_display_name(base, 60)} (datum {datum!r} with a VN-2000 TOWGS84) read as {label} -> WGS 84 "
            f"with {SHIFT_LABEL}"
        )
        msg = f"{origin} names datum {datum!r} but its TOWGS84 is a VN-2000 shift; read it as VN-2000"
        if offset is not None and offset > 0.01:
            msg += f" and applied EPSG:6960 ({offset:.2f} m away from the file's own shift here)"
        else:
            msg += " and applied EPSG:6960"
        warnings.append(msg)
    else:
        p = _tm_params(base)
        datum = _short(base.datum.name, 40)
        description = (
            f"{_display_name(base, 60)} (declared on {datum}) read as VN-2000: {label} -> WGS 84 "
            f"with {SHIFT_LABEL}"
        )
        warnings.append(
            f"{origin} has no VN-2000 -> WGS 84 shift: it declares {datum} on a VN-2000 TM-3 grid "
            f"(Transverse Mercator, k=0.9999, central meridian {_dms(p['lon_0'])}); read it as VN-2000 and "
            f"applied EPSG:6960 (would be ~{offset:.0f} m off otherwise)"
        )
    return CrsResolution(
        source=source,
        is_vn2000=True,
        description=description,
        warnings=warnings,
        pipeline=pipeline,
        offset_m=offset,
        _transformer=transformer,
    )


def _resolve_other(source, base, horizontal, origin, warnings) -> CrsResolution:
    storage = CRS.from_user_input(STORAGE_CRS)
    label = _epsg_label(horizontal)
    if horizontal.equals(storage, ignore_axis_order=True):
        return CrsResolution(
            source=source,
            is_vn2000=False,
            description=f"{label}: stored as is",
            warnings=warnings,
            pipeline="+proj=noop",
            _transformer=None,
        )
    transformer = Transformer.from_crs(horizontal, storage, always_xy=True)
    group = TransformerGroup(horizontal, storage, always_xy=True)
    ops = group.transformers
    operation = ops[0].description if ops else transformer.description
    if len(ops) > 1:
        operation += f" (PROJ's first of {len(ops)} candidates; it may pick another per point)"
    datum = _norm(base.datum.name if base.datum else "")
    if ops and all(op.description and "ballpark" in op.description.lower() for op in ops):
        if datum not in _WGS84_DATUM_NAMES and "worldgeodeticsystem1984" not in datum:
            warnings.append(
                f"{origin} gives no shift from datum {base.datum.name!r} to WGS 84; PROJ ignores the datum "
                "(positions may be off by up to hundreds of metres): name a CRS with a known datum with --crs"
            )
    if not group.best_available:
        warnings.append(
            f"the most accurate transformation from {_short(label, 60)} needs a PROJ grid file that is not "
            "installed; a less accurate one was used"
        )
    return CrsResolution(
        source=source,
        is_vn2000=False,
        description=f"{label} -> WGS 84 ({operation})",
        warnings=warnings,
        pipeline=ops[0].definition if ops else transformer.definition,
        _transformer=transformer,
    )


def _check_data_bounds(resolution: CrsResolution, bounds) -> None:
    """Transform a grid of points over ``bounds`` and check the lon/lat they land on."""
    b = np.asarray(bounds, dtype=float)
    if b.shape != (4,) or not np.all(np.isfinite(b)):
        return  # empty layer (NaN bounds) or no usable bounds: nothing to check
    xs = np.linspace(b[0], b[2], 5)
    ys = np.linspace(b[1], b[3], 5)
    gx, gy = np.meshgrid(xs, ys)
    try:
        lon, lat = resolution.transform(gx.ravel(), gy.ravel())
    except CrsError:
        candidates = guess_crs(tuple(b))
        hint = f"; they look like {' or '.join(candidates[:3])}" if candidates else ""
        raise CrsError(
            f"the coordinates (x {b[0]:.10g}..{b[2]:.10g}, y {b[1]:.10g}..{b[3]:.10g}) do not fit "
            f"{_short(resolution.source.name, 60)}: name the right CRS with --crs{hint}"
        ) from None
    out = (float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    check_lonlat_bounds(out, source_bounds=tuple(b))
    west, south, east, north = VIETNAM_LONLAT
    if out[2] < west or out[0] > east or out[3] < south or out[1] > north:
        candidates = guess_crs(tuple(b))
        hint = f"; the coordinates look like {' or '.join(candidates[:3])}" if candidates else ""
        resolution.warnings.append(
            f"the data lands at lon {out[0]:.4f}..{out[2]:.4f}, lat {out[1]:.4f}..{out[3]:.4f}, outside Vietnam: "
            f"check the CRS ({_short(resolution.source.name, 60)}){hint}"
        )


# ----------------------------------------------------------------------------------------------------
# Guessing and checking
# ----------------------------------------------------------------------------------------------------

#: Projected candidates for :func:`guess_crs` and a ranking penalty in km (lower = more likely at equal
#: distance from Cần Thơ): the national zone 482 (= Cần Thơ's provincial meridian) first, then the
#: other VN-2000 TM-3 grids, then UTM on WGS 84 and on VN-2000.
_GUESS_PROJECTED = (
    [(5897, 0.0)]
    + [(code, 2.0) for code in VN2000_TM3_EPSG.values() if code != 5897]
    + [(32648, 3.0), (3405, 4.0), (32649, 5.0), (3406, 6.0)]
)


@lru_cache(maxsize=None)
def _guess_tools(code: int):
    crs = CRS.from_epsg(code)
    geod = crs.geodetic_crs
    to_lonlat = Transformer.from_crs(crs, geod, always_xy=True)  # conversion only: the datum is irrelevant here
    aou = crs.area_of_use
    box = (aou.west, aou.south, aou.east, aou.north) if aou else (-180.0, -90.0, 180.0, 90.0)
    return crs.name, to_lonlat, box


def guess_crs(bounds) -> list[str]:
    """List the CRSs a coordinate range could be in, most likely first.

    Parameters
    ----------
    bounds : tuple of 4 floats
        ``(minx, miny, maxx, maxy)`` of the data, in the file's unknown units.

    Returns
    -------
    list of str
        Entries like ``"EPSG:5897 (VN-2000 / TM-3 zone 482)"``, ready to paste into ``--crs``; empty
        when nothing fits.

    Notes
    -----
    Lon/lat (EPSG:4326) fits when x is within 100-112 and y within 8-24 (Vietnam). A projected candidate
    fits when its inverse projection puts every corner of the range inside both its EPSG area of use
    (±0.5°) and that box. For Cần Thơ city (since 2025 with Hậu Giang and Sóc Trăng, about 105.2-106.3 E,
    9.2-10.4 N) that means, in VN-2000 / TM-3 zone 482, x ≈ 521 700-642 700 m and y ≈ 1 017 400-
    1 150 400 m; WGS 84 / UTM 48N numbers are within a few hundred metres of those (k 0.9996 against
    0.9999 plus the datum), and the provincial TM-3 meridians give the same numbers shifted across
    Vietnam, so metres alone cannot tell these grids apart. We rank them by how close they put the data
    to Ninh Kiều, plus a small penalty that prefers zone 482, then other VN-2000 TM-3, then UTM.
    """
    try:
        b = np.asarray(bounds, dtype=float)
    except (TypeError, ValueError):
        return []
    if b.shape != (4,) or not np.all(np.isfinite(b)) or b[0] > b[2] or b[1] > b[3]:
        return []
    west, south, east, north = VIETNAM_LONLAT
    geod = pyproj.Geod(ellps="WGS84")
    ranked: list[tuple[float, str]] = []
    if west <= b[0] and b[2] <= east and south <= b[1] and b[3] <= north:
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        ranked.append((geod.inv(cx, cy, *NINH_KIEU)[2] / 1000, "EPSG:4326 (WGS 84 longitude/latitude)"))
    xs = np.array([b[0], b[2], b[0], b[2], (b[0] + b[2]) / 2])
    ys = np.array([b[1], b[1], b[3], b[3], (b[1] + b[3]) / 2])
    margin = 0.5
    for code, penalty in _GUESS_PROJECTED:
        name, to_lonlat, (aw, as_, ae, an) = _guess_tools(code)
        lon, lat = (np.asarray(v, dtype=float) for v in to_lonlat.transform(xs, ys))
        if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
            continue
        lo_w, lo_e = max(west, aw - margin), min(east, ae + margin)
        la_s, la_n = max(south, as_ - margin), min(north, an + margin)
        if np.all((lon >= lo_w) & (lon <= lo_e) & (lat >= la_s) & (lat <= la_n)):
            ranked.append((geod.inv(lon[-1], lat[-1], *NINH_KIEU)[2] / 1000 + penalty, f"EPSG:{code} ({name})"))
    ranked.sort(key=lambda item: item[0])
    return [label for _, label in ranked]


def check_lonlat_bounds(bounds, *, source_bounds=None) -> None:
    """Check that transformed bounds are plausible WGS 84 lon/lat.

    Parameters
    ----------
    bounds : tuple of 4 floats
        ``(min lon, min lat, max lon, max lat)`` after transformation. All-NaN (an empty layer) passes.
    source_bounds : tuple of 4 floats, optional
        The range before transformation, used to suggest CRSs (defaults to ``bounds``: for data declared
        as lon/lat the transformation is the identity, so the numbers are the file's own).

    Raises
    ------
    CrsError
        Coordinates not finite, outside -180..180 / -90..90, or lat/lon swapped: x looks like a latitude in
        Vietnam (8-24) and y like a longitude (100-112), as happens with a "lat, lon" column order or
        an EPSG:4326 axis-order mix-up.

    Notes
    -----
    The swap check runs first: a swapped Vietnamese point has y > 90 and would otherwise be reported
    merely as out of range.
    """
    b = np.asarray(bounds, dtype=float)
    if b.shape != (4,):
        raise CrsError(f"bounds must be (minx, miny, maxx, maxy), got {bounds!r}")
    if np.all(np.isnan(b)):
        return
    if not np.all(np.isfinite(b)):
        raise CrsError("some coordinates are not finite after transformation to WGS 84: check the CRS with --crs")
    minx, miny, maxx, maxy = (float(v) for v in b)
    west, south, east, north = VIETNAM_LONLAT
    if south <= minx and maxx <= north and west <= miny and maxy <= east:
        raise CrsError(
            f"latitude and longitude look swapped: x runs {minx:.6g}..{maxx:.6g} (a latitude in Vietnam) and "
            f"y {miny:.6g}..{maxy:.6g} (a longitude); swap the columns or the axis order and import again",
            vi=f"Kinh độ và vĩ độ có vẻ bị đảo: x từ {minx:.6g} đến {maxx:.6g} (là vĩ độ ở Việt Nam), y từ "
               f"{miny:.6g} đến {maxy:.6g} (là kinh độ); hãy đổi chỗ hai giá trị rồi nhập lại",
        )
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        candidates = guess_crs(source_bounds if source_bounds is not None else tuple(b))
        hint = f"; the coordinates look like {' or '.join(candidates[:3])}" if candidates else ""
        raise CrsError(
            f"coordinates outside longitude -180..180 / latitude -90..90 after transformation "
            f"(x {minx:.10g}..{maxx:.10g}, y {miny:.10g}..{maxy:.10g}): the CRS is wrong; name the right "
            f"one with --crs{hint}",
            vi=f"Tọa độ sau khi chuyển đổi nằm ngoài kinh độ -180..180 / vĩ độ -90..90 (x {minx:.10g}..{maxx:.10g}, "
               f"y {miny:.10g}..{maxy:.10g}): hệ tọa độ không đúng, hãy chọn đúng hệ tọa độ"
               + (f" (tọa độ có vẻ thuộc {' hoặc '.join(candidates[:3])})" if candidates else ""),
        )


# ----------------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------------


def lonlat_to_metric(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS 84 lon/lat -> VN-2000 / TM-3 zone 482 easting/northing, through the inverse of EPSG:6960."""
    e, n = _metric_transformer().transform(
        np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), direction=TransformDirection.INVERSE
    )
    return np.asarray(e, dtype=float), np.asarray(n, dtype=float)


def to_metric(gdf):
    """Return a copy of ``gdf`` in :data:`METRIC_CRS` (VN-2000 / TM-3 zone 482), for distances and areas.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        With a CRS (normally :data:`STORAGE_CRS`).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy whose geometry is in EPSG:5897 metres.

    Raises
    ------
    CrsError
        ``gdf`` has no CRS.

    Notes
    -----
    Not ``gdf.to_crs(METRIC_CRS)``: that lets PROJ choose the WGS 84 -> VN-2000 operation, and around
    Cần Thơ it chooses EPSG:5194, 0.8 m away from the EPSG:6960 our stored coordinates came through.
    Here the data goes to WGS 84 with :func:`resolve_crs` (the identity for stored layers) and then
    through the inverse of our pinned EPSG:5897 pipeline, so a VN-2000 file imported and measured comes
    back on its own coordinates.
    """
    import geopandas as gpd

    if gdf.crs is None:
        raise CrsError("the layer has no coordinate reference system: set one before measuring distances")
    metric = CRS.from_user_input(METRIC_CRS)
    name = gdf.geometry.name
    out = gdf.copy()
    if CRS.from_user_input(gdf.crs).equals(metric):
        return out
    resolution = resolve_crs(gdf.crs)
    geoms = resolution.transform_geometries(np.asarray(gdf.geometry.array, dtype=object))

    moved = transform_xy(geoms, lonlat_to_metric)
    out[name] = gpd.GeoSeries(moved, index=gdf.index, crs=metric)
    return out.set_crs(metric, allow_override=True)
