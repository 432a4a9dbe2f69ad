"""Patrol maps for a user: what to print (an area, a district, a rectangle, the top N priority areas),
read through the access rules, turned into checkpoints and routes, drawn as a PDF.

The one place both ``webmap patrol-map`` (webmap/commands/patrol.py) and ``GET /print/patrol.pdf``
(webmap/views/prints.py) go through, so the two print the same thing for the same user:

- every layer is read with :func:`webmap.access.read_visible` for the principal: an enterprise gets its own
  network and the incidents near it, never key sites, another enterprise's assets or priority cells;
- priority areas (``area``, ``top``, and the cells drawn on any map) are for staff (admin, police) only:
  for anyone else an area id answers the same "not found" as an id that does not exist;
- the caller records the print in the audit log with :func:`audit_detail`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import geopandas as gpd
import shapely
from shapely.geometry import Point, box

from webmap.access import read_visible
from webmap.catalog import fold
from webmap.crs import STORAGE_CRS, to_metric
from webmap.errors import BadInput, NotFound
from webmap.priority_query import describe_filters

__all__ = ["PatrolRequest", "parse_request", "make_patrol_pdf", "PrintSummary", "audit_detail", "key_sites_read",
           "MAX_TOP", "PRINT_LAYERS"]

MAX_TOP = 30  # pages of an atlas at most (a planner's week, and a print that stays under a minute)
MAX_AREAS = 30
MAX_BBOX_KM = 60.0  # a rectangle wider or taller than the city is a mistake
#: layers a patrol map draws, read through the access rules (cells come from the priority analysis)
PRINT_LAYERS = ("districts", "roads", "cable_routes", "stations", "key_sites", "incidents")
_AREA_ID = re.compile(r"^([HS])(\d+(?:\.\d+)?)-\d+$")
_UNIT_ID = re.compile(r"^U-[0-9A-Za-z_.-]{1,20}$")
#: the analysis the priority areas come from: the planners' page's own parameters
#: (:mod:`webmap.priority_query`), so a print says what the page said
ANALYSIS_PARAMETERS = ("types", "status", "since", "until", "cell_m", "shape")
PARAMETERS = ("area", "district", "bbox", "top", "paper", "orientation", "scale", "grid", "start",
              "classification", "cells", "recent_days", *ANALYSIS_PARAMETERS)


@dataclass(frozen=True)
class PatrolRequest:
    """What to print, checked. Exactly one of ``area_ids``, ``district``, ``bbox``, ``top``."""

    area_ids: tuple = ()
    district: str | None = None
    bbox: tuple | None = None
    top: int | None = None
    paper: str = "A4"
    orientation: str = "portrait"
    scale: int | None = None
    grid: str = "tm3"
    start: str | None = None
    classification: str | None = None
    cells: bool = True
    recent_days: int = 90
    analysis: object = None  # PriorityParams of the priority areas; None: the defaults (grid from the area ids)

    @property
    def needs_priority(self) -> bool:
        return bool(self.area_ids) or self.top is not None

    @property
    def target(self) -> str:
        """A short name of what is printed (for the audit log and the file name)."""
        if self.area_ids:
            return ",".join(self.area_ids)
        if self.district:
            return f"district:{self.district}"
        if self.bbox:
            return "bbox:" + ",".join(f"{v:g}" for v in self.bbox)
        return f"top:{self.top}"


def _text(value) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def parse_request(values: dict) -> PatrolRequest:
    """A :class:`PatrolRequest` from text values (CLI options or a query string); BadInput names the
    parameter that is wrong."""
    from webmap.maps.patrol_pdf import GRIDS, ORIENTATIONS, PAPERS, check_scale
    from webmap.views.params import parse_bbox

    unknown = sorted(set(values) - set(PARAMETERS))
    if unknown:
        raise BadInput(f"unknown parameter(s): {', '.join(unknown)[:200]}; accepted: {', '.join(PARAMETERS)}")
    area, district, bbox, top = (_text(values.get(k)) for k in ("area", "district", "bbox", "top"))
    chosen = [name for name, v in (("area", area), ("district", district), ("bbox", bbox), ("top", top)) if v]
    if len(chosen) != 1:
        raise BadInput("say what to print with exactly one of area, district, bbox or top"
                       + (f" (got {', '.join(chosen)})" if chosen else ""))
    area_ids = ()
    if area:
        area_ids = tuple(dict.fromkeys(a.strip() for a in area.split(",") if a.strip()))
        if not area_ids or len(area_ids) > MAX_AREAS:
            raise BadInput(f"area takes 1 to {MAX_AREAS} area ids separated by commas")
        for ident in area_ids:
            if not (_AREA_ID.match(ident) or _UNIT_ID.match(ident)):
                raise BadInput(f"area: {ident[:40]!r} is not a priority area id (such as H500-0123 or U-916)")
    parsed_bbox = None
    if bbox:
        parsed_bbox = parse_bbox(bbox)
        west, south, east, north = parsed_bbox
        metric = to_metric(gpd.GeoDataFrame(geometry=[box(*parsed_bbox)], crs=STORAGE_CRS)).total_bounds
        if west == east or south == north:
            raise BadInput("bbox must have an area: west < east and south < north")
        if max(metric[2] - metric[0], metric[3] - metric[1]) > MAX_BBOX_KM * 1000:
            raise BadInput(f"bbox is more than {MAX_BBOX_KM:g} km across: print a district or a smaller rectangle")
    top_n = None
    if top:
        if not top.isdigit() or not 1 <= int(top) <= MAX_TOP:
            raise BadInput(f"top must be a whole number from 1 to {MAX_TOP}, got {top[:20]!r}")
        top_n = int(top)
    if district is not None and len(district) > 80:
        raise BadInput("district must be a district's name or GSO code")
    paper = (_text(values.get("paper")) or "A4").upper()
    if paper not in PAPERS:
        raise BadInput(f"paper must be one of {', '.join(PAPERS)}, got {paper[:20]!r}")
    orientation = (_text(values.get("orientation")) or "portrait").lower()
    if orientation not in ORIENTATIONS:
        raise BadInput(f"orientation must be portrait or landscape, got {orientation[:20]!r}")
    grid = (_text(values.get("grid")) or "tm3").lower()
    if grid not in GRIDS:
        raise BadInput(f"grid must be tm3 or degrees, got {grid[:20]!r}")
    scale = _text(values.get("scale"))
    scale = None if scale is None or scale.lower() in ("fit", "auto") else check_scale(scale)
    classification = _text(values.get("classification"))
    if classification is not None:
        classification = " ".join(classification.split())
        if len(classification) > 40 or any(ord(c) < 32 for c in classification):
            raise BadInput("classification must be at most 40 characters, e.g. \"MẬT\" or \"LƯU HÀNH NỘI BỘ\"")
    start = _text(values.get("start"))
    if start is not None and len(start) > 60:
        raise BadInput("start must be a station id, a key site id or lon,lat")
    cells = values.get("cells", True)
    if isinstance(cells, str):
        if cells.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise BadInput(f"cells must be 1 or 0, got {cells[:10]!r}")
        cells = cells.lower() in ("1", "true", "yes", "on")
    recent = _text(values.get("recent_days")) or "90"
    if not recent.isdigit() or not 1 <= int(recent) <= 3660:
        raise BadInput(f"recent_days must be a whole number of days from 1 to 3660, got {recent[:20]!r}")
    analysis = _analysis(values, area_ids)
    return PatrolRequest(area_ids, district, parsed_bbox, top_n, paper, orientation, scale, grid, start,
                         classification, bool(cells), int(recent), analysis)


def _analysis(values: dict, area_ids: tuple):
    """The priority analysis to print from: the page's filters and grid, read as the page reads them.
    A cell id names its grid (H500-0123: hexagons 500 m wide): an absent ``cell_m``/``shape`` is taken
    from it, a different one is a mistake (the id would not be the same cell)."""
    from webmap.priority_query import parse_filters

    wanted = {k: _text(values.get(k)) for k in ANALYSIS_PARAMETERS}
    grid = _priority_params(area_ids) if any(_AREA_ID.match(a) for a in area_ids) else None
    if grid is not None:
        wanted["cell_m"] = wanted["cell_m"] or f"{grid.cell_m:g}"
        wanted["shape"] = wanted["shape"] or grid.shape
    params = parse_filters(wanted)
    if grid is not None and (params.cell_m, params.shape) != (grid.cell_m, grid.shape):
        raise BadInput(f"area {area_ids[0]} is a cell of the {grid.shape} {grid.cell_m:g} m grid, "
                       f"not of cell_m={params.cell_m:g} shape={params.shape}")
    return params


# -- what to print ----------------------------------------------------------------------------------------
@dataclass
class _Area:
    ident: str
    title: str
    label: str
    geometry: object  # lon/lat
    cell: dict | None = None  # the priority row (rank, score...) for priority areas
    centre: tuple | None = None  # (id, name) of the centre checkpoint of a priority area


def _priority_params(area_ids):
    """The analysis a cell id belongs to: its shape and size are in its name (H500-0123: hexagons, 500 m)."""
    from webmap.analysis.priority import PriorityParams

    shapes = {(m.group(1), float(m.group(2))) for m in (_AREA_ID.match(a) for a in area_ids) if m}
    if len(shapes) > 1:
        raise BadInput("the areas of one print must come from one grid (same cell shape and size)")
    if shapes:
        letter, cell_m = shapes.pop()
        return PriorityParams(cell_m=cell_m, shape="hex" if letter == "H" else "square")
    return PriorityParams()


_CLASS_VI = {"very_high": "rất cao", "high": "cao", "medium": "trung bình", "low": "thấp"}
_TREND_VI = {"emerging": "mới nổi", "persistent": "kéo dài", "fading": "giảm dần"}


def _area_from_row(row, unit: bool = False) -> _Area:
    ident = str(row["area_id"])
    name = _clean(row.get("name")) if unit else ""
    score = row.get("score")
    parts = [f"hạng {int(row['rank'])}" if row.get("rank") is not None else "",
             f"điểm {float(score):.1f}".replace(".", ",") if score is not None else "",
             f"mức {_CLASS_VI.get(row.get('priority_class'), row.get('priority_class') or '')}",
             f"{int(row.get('incidents') or 0)} vụ", _TREND_VI.get(row.get("trend"), "")]
    label = f"Vùng ưu tiên {ident}{(' ' + name) if name else ''}: " + ", ".join(p for p in parts if p)
    title = f"Bản đồ tuần tra — vùng ưu tiên {ident}" + (f" ({name})" if name else "")
    return _Area(ident, title, label, row.geometry, cell=dict(row.drop(labels="geometry")),
                 centre=(ident, f"Tâm vùng ưu tiên {ident}"))


def _clean(value) -> str:
    """Text of a cell, "" for None and NaN (a missing optional attribute)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def _find_district(districts, text: str) -> _Area:
    if districts is None or not len(districts):
        raise NotFound("no districts layer is loaded: print a bbox instead")
    wanted = fold(text).replace("quan ", "").replace("huyen ", "").strip()
    for _, row in districts.iterrows():
        names = {fold(_clean(row.get(k))) for k in ("name", "name_official", "code")} - {""}
        names |= {n.replace("quan ", "").replace("huyen ", "").strip() for n in names}
        if wanted in names:
            name = _clean(row.get("name_official")) or _clean(row.get("name")) or _clean(row.get("code"))
            code = _clean(row.get("code"))
            return _Area(code, f"Bản đồ tuần tra — {name}", f"Khu vực: {name} (mã {code})", row.geometry)
    known = ", ".join(sorted(str(n) for n in districts["name"].dropna()))[:300]
    raise NotFound(f"unknown district {text[:80]!r}; districts: {known}")


def _start_point(request: PatrolRequest, layers: dict, area: _Area):
    """(id, name, point, what) of the route's start: the station or key site named, a lon,lat, or by
    default the station nearest the area's centre (any the user may see)."""
    from webmap.analysis.routes import make_start

    text = request.start
    if text:
        if re.match(r"^\s*-?\d+(\.\d+)?\s*,\s*-?\d+(\.\d+)?\s*$", text):
            lon, lat = (float(v) for v in text.split(","))
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise BadInput("start lon,lat is outside -180..180 / -90..90")
            return make_start("XP", f"Điểm xuất phát {lon:.5f}, {lat:.5f}", Point(lon, lat), "Trụ sở, chốt xuất phát")
        for kind, what in (("stations", "Trạm xuất phát"), ("key_sites", "Chốt xuất phát")):
            gdf = layers.get(kind)
            if gdf is not None and len(gdf):
                rows = gdf[gdf["id"].astype(str) == text]
                if len(rows):
                    row = rows.iloc[0]
                    point = row.geometry if row.geometry.geom_type == "Point" else row.geometry.representative_point()
                    return make_start(text, _clean(row.get("name")) or text, point, what)
        raise BadInput(f"start: no station or police post with id {text[:60]!r} (or give lon,lat)")
    centre = area.geometry.representative_point()
    stations = layers.get("stations")
    if stations is not None and len(stations):
        metric = to_metric(stations)
        here = to_metric(gpd.GeoDataFrame(geometry=[centre], crs=STORAGE_CRS)).geometry.iloc[0]
        distances = metric.distance(here)
        best = stations.loc[sorted(distances.index, key=lambda i: (distances[i], str(stations.loc[i, "id"])))[0]]
        return make_start(best["id"], _clean(best.get("name")) or str(best["id"]), best.geometry, "Trạm xuất phát")
    return make_start("XP", "Tâm khu vực", centre, "Điểm xuất phát")


@dataclass
class PrintSummary:
    """What was printed: for the command's output and the audit log."""

    path: str
    pages: int
    scales: tuple
    classification: str
    areas: list = field(default_factory=list)  # [{"area": id, "checkpoints": n, "route_m": m, "scale": s}]
    key_sites: int = 0
    layers: list = field(default_factory=list)
    sha256: str = ""
    priority: dict | None = None  # the analysis printed from (its filters and grid), None: no priority areas
    stake_key_sites: int = 0  # key sites counted in the priority areas' stake (a read of key sites)


def _method_note(method: dict | None) -> str:
    """One line on how the priority cells were computed (the whole method goes in the PDF's metadata)."""
    if not method:
        return ""
    params = method.get("parameters") or {}
    shape = "lục giác" if params.get("shape", "hex") == "hex" else "vuông"
    bits = [f"lưới {shape} {params.get('cell_m', 500):g} m"]
    if "permutations" in params:
        bits.append(f"{params['permutations']} hoán vị")
    if "fdr_alpha" in params:
        bits.append(f"FDR {str(params['fdr_alpha']).replace('.', ',')}")
    reference = (method.get("trend") or {}).get("reference")
    if reference:
        bits.append(f"xu hướng 90 ngày đến {reference}")
    note = "Vùng ưu tiên: Getis-Ord Gi* (esda), rủi ro theo hạ tầng, xu hướng, tài sản; " + ", ".join(bits)
    if method.get("computed_at"):
        note += f"; tính lúc {method['computed_at']}"
    return note


def make_patrol_pdf(store, principal, catalog, context, request: PatrolRequest, path: str, *,
                    printed_by: str, printed_at: datetime | None = None, attribution: str = "",
                    priority=None, notes: tuple = ()) -> PrintSummary:
    """Print ``request`` for ``principal`` to ``path``; ``notes`` are printed at the foot of every sheet.

    ``priority``: a function ``params -> PriorityResult`` (default :func:`webmap.priorities.get_priority`
    on ``store``), called only for staff.
    """
    from webmap.analysis.routes import build_road_graph, plan_route, select_checkpoints
    from webmap.maps.patrol_pdf import OverviewSheet, PatrolSheet, PrintOptions, render_atlas, render_patrol_pdf

    staff = principal.is_staff
    if request.needs_priority and not staff:
        # the same answer as an area that does not exist: priority areas are not for this user
        raise NotFound(f"unknown priority area {request.target[:60]!r}")
    layers = {kind: read_visible(store, principal, kind, catalog, context) for kind in PRINT_LAYERS}
    result = None
    if staff and (request.needs_priority or request.cells):
        if priority is None:
            from webmap.priorities import get_priority

            def priority(params):
                return get_priority(store, params)
        try:
            result = priority(request.analysis if request.analysis is not None
                              else _priority_params(request.area_ids))
        except BadInput as exc:
            if request.needs_priority:
                raise
            # a district or rectangle still prints without the cells (no districts layer: no city, no grid)
            notes = (*notes, f"Không có lớp vùng ưu tiên (priority areas unavailable): {exc}")
    cells = result.cells if result is not None else None
    if result is not None:
        # the incidents counted in the scores printed: the same filters as the page they came from
        notes = (describe_filters(request.analysis or _priority_params(request.area_ids), catalog), *notes)

    areas: list[_Area] = []
    if request.area_ids:
        for ident in request.area_ids:
            table = result.units if ident.startswith("U-") else cells
            rows = table[table["area_id"] == ident] if table is not None else []
            if not len(rows):
                raise NotFound(f"unknown priority area {ident!r}")
            areas.append(_area_from_row(rows.iloc[0], unit=ident.startswith("U-")))
    elif request.top is not None:
        ranked = cells.sort_values(["rank", "area_id"], kind="stable").head(request.top)
        areas = [_area_from_row(row) for _, row in ranked.iterrows()]
    elif request.district:
        areas = [_find_district(layers.get("districts"), request.district)]
    else:
        west, south, east, north = request.bbox
        areas = [_Area("bbox", "Bản đồ tuần tra — khu vực chọn trên bản đồ",
                       f"Khu vực: kinh độ {west:.4f}–{east:.4f}, vĩ độ {south:.4f}–{north:.4f}", box(*request.bbox))]

    sheet_layers = dict(layers)
    sheet_layers["cells"] = cells if (staff and request.cells) else None
    roads = build_road_graph(layers.get("roads")) if layers.get("roads") is not None else None
    sheets, area_rows = [], []
    for area in areas:
        checkpoints = select_checkpoints(area.geometry, key_sites=layers.get("key_sites"), stations=layers.get("stations"),
                                         cells=cells if staff else None, incidents=layers.get("incidents"),
                                         area_centre=area.centre)
        start = _start_point(request, layers, area)
        route = plan_route(start, checkpoints, roads)
        sheets.append(PatrolSheet(area.title, area.geometry, area.label, sheet_layers, route, tuple(notes)))
        area_rows.append({"area": area.ident, "checkpoints": len(route.stops) - 1, "route_m": round(route.length_m, 1),
                          "on_roads": route.on_roads, "legs": len(route.legs)})

    from webmap.i18n import strings

    options = PrintOptions(paper=request.paper, orientation=request.orientation, scale=request.scale,
                           grid=request.grid, classification=request.classification, printed_by=printed_by,
                           printed_at=printed_at or datetime.now(timezone.utc),
                           attribution=attribution or strings("vi")["attribution"], recent_days=request.recent_days,
                           method_note=_method_note(result.method) if result is not None and sheet_layers["cells"] is not None else "",
                           metadata={"keywords": json.dumps(result.method, ensure_ascii=False, default=str)}
                           if result is not None and sheet_layers["cells"] is not None else {})
    if len(sheets) == 1 and request.top is None:
        rendered = render_patrol_pdf(sheets[0], options, path, catalog)
    else:
        table = gpd.GeoDataFrame(
            [{"area_id": a.ident, **{k: (a.cell or {}).get(k) for k in
                                     ("rank", "score", "priority_class", "incidents", "trend")},
              "checkpoints": row["checkpoints"], "route_km": row["route_m"] / 1000.0, "geometry": a.geometry}
             for a, row in zip(areas, area_rows)], geometry="geometry", crs=STORAGE_CRS)
        title = (f"Tập bản đồ tuần tra — {len(sheets)} vùng ưu tiên cao nhất" if request.top is not None
                 else f"Tập bản đồ tuần tra — {len(sheets)} vùng")
        overview = OverviewSheet(title, table, sheet_layers)
        rendered = render_atlas(overview, sheets, options, path, catalog)
    for row, scale in zip(area_rows, rendered.scales[-len(area_rows):]):
        row["scale"] = scale
    with open(path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    drawn = [kind for kind, gdf in sheet_layers.items() if gdf is not None and len(gdf)]
    analysis = None
    stake = 0
    if result is not None:
        from webmap.priority_query import query_echo

        analysis = query_echo(request.analysis or _priority_params(request.area_ids))
        if (result.method.get("layers") or {}).get("key_sites") and "key_sites" in result.cells:
            stake = int(result.cells["key_sites"].sum())
    return PrintSummary(path, rendered.pages, rendered.scales, rendered.classification, area_rows,
                        rendered.key_sites, drawn, digest, analysis, stake)


def audit_detail(request: PatrolRequest, summary: PrintSummary, output: str | None = None) -> dict:
    """The ``detail`` of the audit entry of a print."""
    detail = {
        "kind": "patrol_map", "pages": summary.pages, "paper": request.paper, "orientation": request.orientation,
        "scales": list(summary.scales), "grid": request.grid, "classification": summary.classification,
        "areas": summary.areas, "key_sites": summary.key_sites, "layers": summary.layers, "sha256": summary.sha256,
    }
    if summary.priority is not None:
        detail["priority"] = {k: v for k, v in summary.priority.items() if v is not None}
    if request.start:
        detail["start"] = request.start
    if output:
        detail["output"] = output
    return detail


def key_sites_read(summary: PrintSummary) -> dict | None:
    """The ``detail`` of the one ``read_key_sites`` entry of a print, or None when it read none: key sites
    drawn on the map, or counted in the stake of the priority areas printed (their scores)."""
    if not summary.key_sites and not (summary.priority is not None and summary.stake_key_sites):
        return None
    detail = {"features": summary.key_sites, "print": True}
    if summary.priority is not None:
        detail["stake"] = summary.stake_key_sites
        detail["priority"] = {k: v for k, v in summary.priority.items() if v is not None}
    return detail


def file_name(request: PatrolRequest) -> str:
    """A download name: ban-do-tuan-tra-<what>.pdf, ASCII only."""
    slug = re.sub(r"[^a-z0-9]+", "-", fold(request.target).lower()).strip("-")[:60] or "khu-vuc"
    return f"ban-do-tuan-tra-{slug}.pdf"
