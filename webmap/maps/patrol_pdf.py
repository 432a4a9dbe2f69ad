"""Printed patrol maps: a PDF at a true scale, one sheet per area, and an atlas with an overview page.

Drawn with matplotlib (Agg-free: the PDF backend only, on ``Figure`` objects, never pyplot) in VN-2000 /
TM-3 zone 482 metres (:data:`webmap.crs.METRIC_CRS`): the map axes are placed on the page at an exact size in
millimetres and given exactly ``size_mm / 1000 * scale`` metres of ground, so a distance measured on the paper
times the scale is the distance on the ground (to the grid's scale factor, 0.9999-1.0000 in Cần Thơ).
The scale bar and the grid are drawn in the same metres.

Text is DejaVu Sans (shipped with matplotlib, every Vietnamese letter; see :func:`print_font_family`),
embedded as TrueType (``pdf.fonttype = 42``) so the PDF shows and copies Vietnamese text and ``pdftotext``
reads it.

What a sheet holds: title, area, scale, date, a classification marking top and bottom ("MẬT" when key sites
are shown, else "LƯU HÀNH NỘI BỘ", or the caller's text), the map (boundaries, roads, priority cells, cables,
stations, key sites, recent incidents, the patrol route and its checkpoints), a labelled coordinate grid
(TM-3 metres or WGS 84 degrees), scale bar, north arrow (true north, with the grid convergence), legend
(Vietnamese, English in brackets where short), the checkpoint table (order, id, name, lon/lat, VN-2000 X/Y,
what to inspect), the route's length, the data attribution and "In bởi / Printed by" with the time.

The caller decides what the user may see (:mod:`webmap.patrol` reads every layer through
:func:`webmap.access.read_visible`): this module draws what it is given and nothing else.
"""

from __future__ import annotations

import math
import os
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import shapely
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Polygon as MplPolygon, Rectangle
from matplotlib.textpath import TextToPath
from shapely.geometry import LineString, box

from webmap.crs import METRIC_CRS, STORAGE_CRS, lonlat_to_metric, resolve_crs, to_metric
from webmap.errors import BadInput

__all__ = ["PAPERS", "ORIENTATIONS", "GRIDS", "MIN_SCALE", "MAX_SCALE", "ROUND_SCALES", "PrintOptions",
           "PatrolSheet", "OverviewSheet", "RenderResult", "page_layout", "fit_scale", "render_patrol_pdf",
           "render_atlas", "default_classification", "SECRET", "INTERNAL"]

matplotlib.rcParams["pdf.fonttype"] = 42  # TrueType, embedded (subset): Vietnamese text stays text
# matplotlib 3.11's PDF writer sizes its font subsets by ps.fonttype: at the default (3) every letter beyond
# ASCII (ả, đ, ồ...) goes to a second subset of each font, and subsetting each takes most of a second
matplotlib.rcParams["ps.fonttype"] = 42
matplotlib.rcParams["font.family"] = "DejaVu Sans"
PRINT_FAMILY = "DejaVu Sans Print"
_FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
_FONT_LOCK = threading.Lock()
_font_family: str | None = None
matplotlib.rcParams["hatch.linewidth"] = 0.5

PAPERS = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}  # portrait width, height in millimetres
ORIENTATIONS = ("portrait", "landscape")
GRIDS = ("tm3", "degrees")
MIN_SCALE, MAX_SCALE = 2_000, 50_000  # the scales a user may ask for
#: Round scales a fitted map picks from (the next one up that holds the area); beyond 1:50,000 only when
#: fitting a large district or the atlas overview.
ROUND_SCALES = (2_000, 2_500, 5_000, 7_500, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 75_000, 100_000,
                150_000, 200_000, 250_000, 300_000, 400_000, 500_000, 1_000_000)
SECRET, INTERNAL = "MẬT", "LƯU HÀNH NỘI BỘ"
VN_TZ = timezone(timedelta(hours=7), "ICT")

OWNER_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#1f78b4",
                 "#b15928", "#6a3d9a", "#33a02c", "#666666")  # as webmap.js: Dark2, then Paired's dark hues
PRIORITY_COLOURS = {"very_high": "#bd0026", "high": "#f03b20", "medium": "#fd8d3c"}
PRIORITY_LABELS = {"very_high": ("Rất cao", "Very high"), "high": ("Cao", "High"), "medium": ("Trung bình", "Medium"),
                   "low": ("Thấp", "Low")}
ROUTE_COLOUR = "#0038a8"
AREA_COLOUR = "#1a1a1a"
BASE_GROUP = "Khu vực (Area)"
SITES_GROUP = "Công trình, trạm (Sites, stations)"
_LOCK = threading.Lock()  # matplotlib is not thread-safe: one print at a time per process
_TEXT = TextToPath()


def _to_lonlat(x, y):
    """EPSG:5897 metres -> WGS 84 through the pinned EPSG:6960 shift (webmap.crs), as the data came in."""
    return resolve_crs(METRIC_CRS).transform(x, y)


def _geom_to_metric(geom):
    """One lon/lat geometry in EPSG:5897 (webmap.crs.to_metric: the pinned shift, not PROJ's choice)."""
    return to_metric(gpd.GeoDataFrame(geometry=[geom], crs=STORAGE_CRS)).geometry.iloc[0]


# -- options and inputs ---------------------------------------------------------------------------------------
@dataclass
class PrintOptions:
    """How to print: paper, orientation, scale (None: fitted), grid, marking, who and when."""

    paper: str = "A4"
    orientation: str = "portrait"
    scale: int | None = None
    grid: str = "tm3"
    classification: str | None = None  # None: by content (see default_classification)
    printed_by: str = ""
    printed_at: datetime | None = None
    attribution: str = ""
    recent_days: int = 90
    method_note: str = ""  # one line on how the priority cells were computed
    metadata: dict = field(default_factory=dict)

    def checked(self) -> "PrintOptions":
        """These options, validated (BadInput names the wrong one); printed_at filled in."""
        paper = str(self.paper or "A4").upper()
        if paper not in PAPERS:
            raise BadInput(f"paper must be one of {', '.join(PAPERS)}, got {self.paper!r}")
        orientation = str(self.orientation or "portrait").lower()
        if orientation not in ORIENTATIONS:
            raise BadInput(f"orientation must be portrait or landscape, got {self.orientation!r}")
        grid = str(self.grid or "tm3").lower()
        if grid not in GRIDS:
            raise BadInput(f"grid must be tm3 or degrees, got {self.grid!r}")
        scale = self.scale
        if scale is not None:
            scale = check_scale(scale)
        classification = self.classification
        if classification is not None:
            classification = " ".join(str(classification).split())
            if not classification or len(classification) > 40:
                raise BadInput("classification must be 1 to 40 characters, e.g. \"MẬT\" or \"LƯU HÀNH NỘI BỘ\"")
        if not 1 <= int(self.recent_days) <= 3660:
            raise BadInput(f"recent_days must be between 1 and 3660, got {self.recent_days}")
        when = self.printed_at or datetime.now(timezone.utc)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return PrintOptions(paper, orientation, scale, grid, classification, self.printed_by, when,
                            self.attribution, int(self.recent_days), self.method_note, dict(self.metadata))


def check_scale(value) -> int:
    """A scale denominator as a user gives it ("10000", "1:10000", "10,000"), between 2,000 and 50,000."""
    text = str(value).strip().replace(" ", "").replace(",", "").replace(".", "")
    if text.startswith("1:"):
        text = text[2:]
    if not text.isdigit():
        raise BadInput(f"scale must be a whole number such as 10000 (for 1:10,000), got {value!r}")
    scale = int(text)
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise BadInput(f"scale must be between {MIN_SCALE} and {MAX_SCALE} (1:2,000 to 1:50,000), got {scale}; "
                       "leave it out to fit the area")
    return scale


@dataclass
class PatrolSheet:
    """One page: an area, the layers to draw (EPSG:4326, already filtered for the user) and its route.

    ``layers`` keys: districts, roads, cable_routes, stations, key_sites, incidents, cells (priority cells
    with ``priority_class`` and ``hotspot``); a missing or None layer is not drawn.
    """

    title: str
    area: object  # shapely geometry, lon/lat
    area_label: str = ""
    layers: dict = field(default_factory=dict)
    route: object = None  # webmap.analysis.routes.PatrolRoute
    notes: tuple = ()


@dataclass
class OverviewSheet:
    """The atlas's first page: where the areas of the following pages are.

    ``areas``: GeoDataFrame (EPSG:4326), one row per sheet in order, with ``area_id`` and optional ``rank``, ``score``,
    ``priority_class``, ``incidents``, ``trend``, ``checkpoints``, ``route_km``.
    """

    title: str
    areas: gpd.GeoDataFrame
    layers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RenderResult:
    pages: int
    scales: tuple
    classification: str
    key_sites: int  # key sites drawn (all pages)
    checkpoints: int


def default_classification(sheets, options: "PrintOptions | None" = None) -> str:
    """"MẬT" when any page shows key sites (national-security works), else "LƯU HÀNH NỘI BỘ".

    A key site counts when it lies in a page's map frame or is one of its checkpoints; a layer that is loaded
    but outside every frame does not make the print secret.
    """
    options = (options or PrintOptions()).checked()
    for sheet in sheets:
        route = getattr(sheet, "route", None)
        if route is not None and (route.stops["kind"] == "key_site").any():
            return SECRET
        sites = sheet.layers.get("key_sites")
        if sites is None or not len(sites):
            continue
        _, extent = overview_frame(sheet, options) if isinstance(sheet, OverviewSheet) else sheet_frame(sheet, options)
        if shapely.intersects(to_metric(sites).geometry.values, box(*extent)).any():
            return SECRET
    return INTERNAL


# -- page geometry ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float  # millimetres from the page's bottom-left corner


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    k: float  # 1 on A4, about 1.41 on A3: sizes of text and marks grow with the paper
    header: Box
    map: Box
    legend: Box
    table: Box
    footer: Box
    table_mode: str  # "wide" (one line a row) or "narrow" (two lines a row)


def page_layout(paper: str = "A4", orientation: str = "portrait") -> Layout:
    """Where everything goes on the page, in millimetres."""
    width, height = PAPERS[paper]
    if orientation == "landscape":
        width, height = height, width
    k = min(width, height) / 210.0
    margin, header_h, footer_h, band, gap = 10 * k, 19 * k, 13 * k, 6 * k, 3 * k
    bottom, top = margin + footer_h, height - margin - header_h
    content_w = width - 2 * margin
    header = Box(margin, top, content_w, header_h)
    footer = Box(margin, margin, content_w, footer_h)
    if orientation == "portrait":
        table_h = 0.25 * (top - bottom)  # 18 checkpoints and the start (see routes.select_checkpoints)
        legend_h = 0.12 * (top - bottom)
        table = Box(margin, bottom, content_w, table_h)
        legend = Box(margin, bottom + table_h + gap, content_w, legend_h)
        map_y = legend.y + legend_h + band
        mapbox = Box(margin + band, map_y, content_w - 2 * band, top - band - map_y)
        mode = "wide"
    else:
        col_w = 0.35 * content_w
        side_x = width - margin - col_w
        legend_h = 0.34 * (top - bottom)
        legend = Box(side_x, top - legend_h, col_w, legend_h)
        table = Box(side_x, bottom, col_w, top - bottom - legend_h - gap)
        mapbox = Box(margin + band, bottom + band, side_x - gap - 2 * band - margin, top - bottom - 2 * band)
        mode = "narrow"
    return Layout(width, height, k, header, mapbox, legend, table, footer, mode)


def fit_scale(ground_w_m: float, ground_h_m: float, frame_w_mm: float, frame_h_mm: float,
              margin: float = 0.06) -> int:
    """The smallest round scale at which a ``ground_w_m`` x ``ground_h_m`` extent (plus ``margin`` each
    side) fits a ``frame_w_mm`` x ``frame_h_mm`` map frame.

    >>> fit_scale(1000, 500, 180, 130)
    7500
    """
    need = max(ground_w_m * (1 + 2 * margin) / (frame_w_mm / 1000.0),
               ground_h_m * (1 + 2 * margin) / (frame_h_mm / 1000.0), 1.0)
    for scale in ROUND_SCALES:
        if scale >= need:
            return scale
    return int(math.ceil(need / 1_000_000.0) * 1_000_000)


# -- text helpers ----------------------------------------------------------------------------------------------
_PROPS: dict = {}


def _font_cache_dir() -> str:
    return os.environ.get("WEBMAP_FONT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "webmap", "fonts")


def print_font_family() -> str:
    """The font family every print uses: DejaVu Sans without its OpenType layout tables, made once.

    Why: the PDF embeds a subset of each font, and fontTools spends most of a second per font subsetting
    DejaVu Sans's large GSUB/GPOS/kern/MATH tables on every print, which the PDF does not use (matplotlib
    has already placed every glyph; text is NFC, where every Vietnamese letter is one glyph). A copy
    without them, renamed "DejaVu Sans Print" (the DejaVu/Bitstream Vera licence allows modified copies
    under a name without "Bitstream" or "Vera"), is written to WEBMAP_FONT_CACHE (default
    ~/.cache/webmap/fonts) and registered with matplotlib. If that folder cannot be written, DejaVu Sans
    itself is used: the same print, a second slower.
    """
    global _font_family
    with _FONT_LOCK:
        if _font_family is not None:
            return _font_family
        try:
            from matplotlib import font_manager

            source_dir = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
            folder = _font_cache_dir()
            os.makedirs(folder, exist_ok=True)
            for name in _FONT_FILES:
                source = os.path.join(source_dir, name)
                stat = os.stat(source)
                target = os.path.join(folder, f"print-{stat.st_size}-{int(stat.st_mtime)}-{name}")
                if not os.path.exists(target):
                    _write_print_font(source, target)
                font_manager.fontManager.addfont(target)
            _font_family = PRINT_FAMILY
        except Exception:  # noqa: BLE001 - no cache folder, no fontTools: the original font does the job
            _font_family = "DejaVu Sans"
        matplotlib.rcParams["font.family"] = _font_family
        return _font_family


def _write_print_font(source: str, target: str):
    from fontTools.ttLib import TTFont

    font = TTFont(source)
    for table in ("GSUB", "GPOS", "GDEF", "kern", "MATH"):
        if table in font:
            del font[table]
    names = font["name"]
    bold = "Bold" in os.path.basename(source)
    for record in names.names:
        if record.nameID in (1, 16):
            record.string = PRINT_FAMILY
        elif record.nameID == 4:
            record.string = PRINT_FAMILY + (" Bold" if bold else "")
        elif record.nameID == 6:
            record.string = "DejaVuSansPrint" + ("-Bold" if bold else "")
    tmp = f"{target}.{os.getpid()}.part"
    font.save(tmp)
    os.replace(tmp, target)  # several processes may build it at once: each file appears whole


def _props(size: float, bold: bool = False) -> FontProperties:
    key = (round(size, 2), bold)
    if key not in _PROPS:
        _PROPS[key] = FontProperties(family=print_font_family(), size=size, weight="bold" if bold else "normal")
    return _PROPS[key]


@lru_cache(maxsize=4096)
def _advance(char: str, bold: bool) -> float:
    """Advance width of one character at 100 pt, from the font's metrics."""
    width, _, _ = _TEXT.get_text_width_height_descent(char, _props(100.0, bold), ismath=False)
    return float(width)


def text_width_pt(text: str, size: float, bold: bool = False) -> float:
    """Width of ``text`` in points: the sum of its characters' advances (kerning ignored: a few tenths of a
    point on a label). Per-character and cached, because shaping whole strings costs milliseconds each."""
    if not text:
        return 0.0
    return sum(_advance(c, bold) for c in str(text)) * size / 100.0


def fit_text(text: str, width_pt: float, size: float, bold: bool = False) -> str:
    """``text`` cut with an ellipsis so that it fits ``width_pt``."""
    text = str(text)
    if text_width_pt(text, size, bold) <= width_pt:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text_width_pt(text[:mid].rstrip() + "…", size, bold) <= width_pt:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def wrap_text(text: str, width_pt: float, size: float, max_lines: int = 2, bold: bool = False) -> list[str]:
    """Words of ``text`` in lines no wider than ``width_pt``; the last line cut with an ellipsis."""
    words, lines, line = str(text).split(), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if text_width_pt(trial, size, bold) <= width_pt or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [" ".join(lines[max_lines - 1:])]
    return [fit_text(part, width_pt, size, bold) for part in lines] or [""]


def bilingual(vi: str, en: str | None, limit: int = 18) -> str:
    """"Vietnamese (English)" when the English is short and says something new; else the Vietnamese."""
    if en and len(en) <= limit and en.strip().lower() != vi.strip().lower():
        return f"{vi} ({en})"
    return vi


def group_thousands(value: float, sep: str = " ") -> str:
    """An integer with spaces between thousands, as survey coordinates are written.

    >>> group_thousands(1109123.4)
    '1 109 123'
    """
    return f"{int(round(value)):,}".replace(",", sep)


def vn_number(value: float, decimals: int = 1) -> str:
    """A number as Vietnamese write it: ``.`` between thousands, ``,`` before decimals (12.345,6)."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def scale_text(scale: int) -> str:
    return f"1:{vn_number(scale, 0)}"


def dms(value: float, positive: str, negative: str) -> str:
    """Degrees, minutes, seconds: 105°46'30"E (seconds rounded to the whole)."""
    hemi = positive if value >= 0 else negative
    total = round(abs(value) * 3600)
    d, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{d}°{m:02d}'{s:02d}\"{hemi}"


# -- drawing the map -------------------------------------------------------------------------------------------
def _metric(gdf, cache: dict):
    """``gdf`` in EPSG:5897, converted once per document."""
    if gdf is None or not len(gdf):
        return None
    key = id(gdf)
    if key not in cache:
        cache[key] = (gdf, to_metric(gdf.set_crs(STORAGE_CRS, allow_override=True) if gdf.crs is None else gdf))
    return cache[key][1]


def _in_window(gdf, window):
    """Rows of a metric GeoDataFrame that touch the window (a box a little larger than the frame)."""
    if gdf is None or not len(gdf):
        return None
    xmin, ymin, xmax, ymax = window
    rows = gdf.cx[xmin:xmax, ymin:ymax]
    return rows if len(rows) else None


def _line_parts(geoms) -> list:
    """Coordinate arrays of every LineString part of ``geoms`` (as a LineCollection wants them)."""
    return [np.asarray(part.coords)[:, :2] for part in shapely.get_parts(np.asarray(geoms, dtype=object))
            if part.geom_type == "LineString" and not part.is_empty]


def _polygon_patches(geoms):
    """Matplotlib paths for polygons (holes included) in one compound path per part."""
    from matplotlib.path import Path

    paths = []
    for geom in geoms:
        for poly in shapely.get_parts(geom):
            if poly.geom_type != "Polygon" or poly.is_empty:
                continue
            rings = [np.asarray(poly.exterior.coords)[:, :2]] + [np.asarray(r.coords)[:, :2] for r in poly.interiors]
            vertices = np.concatenate(rings)
            codes = np.concatenate([[Path.MOVETO] + [Path.LINETO] * (len(r) - 2) + [Path.CLOSEPOLY] for r in rings])
            paths.append(Path(vertices, codes))
    return paths


def _draw_polygons(ax, geoms, *, facecolor, edgecolor, linewidth, zorder, alpha=1.0, hatch=None, linestyle="-"):
    from matplotlib.collections import PathCollection

    paths = _polygon_patches(geoms)
    if not paths:
        return
    collection = PathCollection(paths, facecolors=facecolor, edgecolors=edgecolor, linewidths=linewidth,
                                zorder=zorder, alpha=alpha, hatch=hatch, linestyles=linestyle)
    ax.add_collection(collection)


class Legend:
    """What the map drew, in drawing order, for the legend: (group heading or None, symbol, style, label)."""

    def __init__(self):
        self.entries: list[tuple] = []
        self.group: str | None = None

    def head(self, text: str | None):
        """Entries added from now on go under this heading (shown only if an entry follows)."""
        self.group = text

    def add(self, kind: str, style: dict, label: str):
        if not any(e[3] == label and e[1] == kind for e in self.entries):
            self.entries.append((self.group, kind, style, label))

    def items(self) -> list[tuple]:
        """("head", text) and ("entry", kind, style, label) rows in order."""
        groups: dict = {}
        for group, kind, style, label in self.entries:  # grouped, groups in order of first appearance
            groups.setdefault(group, []).append(("entry", kind, style, label))
        out = []
        for group, entries in groups.items():
            if group:
                out.append(("head", group))
            out.extend(entries)
        return out


def _label(catalog, kind: str, lang: str = "vi") -> tuple[str, str]:
    layer = catalog.get(kind)
    if layer is None:
        return kind, kind
    return layer.label_for("vi"), layer.label_for("en")


def _value_label(catalog, kind: str, field_name: str, code: str) -> str:
    layer = catalog.get(kind)
    try:
        labels = layer.get_field(field_name).value_labels.get(str(code), {}) if layer else {}
    except KeyError:
        labels = {}
    vi = labels.get("vi") or str(code)
    return bilingual(vi, labels.get("en"))


def _style(catalog, kind: str) -> dict:
    layer = catalog.get(kind)
    return dict(layer.style) if layer is not None else {}


class MapPainter:
    """Draws one map frame (axes in EPSG:5897 metres) and collects the legend of what it drew."""

    def __init__(self, ax, window, catalog, k: float, cache: dict, legend: Legend, owners=None, scale: int = 10_000):
        self.ax, self.window, self.catalog, self.k, self.cache, self.legend = ax, window, catalog, k, cache, legend
        self.owners = owners or []
        # lines a little thinner on small-scale maps, where a district's whole network is drawn
        self.scale = scale
        self.thin = 1.0 if scale <= 10_000 else (0.8 if scale <= 25_000 else 0.65)
        self.key_sites_drawn = 0

    def layer(self, gdf):
        return _in_window(_metric(gdf, self.cache), self.window)

    # context
    def districts(self, gdf, labels: bool = False):
        rows = self.layer(gdf)
        if rows is None:
            return
        style = _style(self.catalog, "districts")
        _draw_polygons(self.ax, rows.geometry.values, facecolor=style.get("fill_color", "#f2efe6"), edgecolor="none",
                       linewidth=0, zorder=1, alpha=0.45)
        _draw_polygons(self.ax, rows.geometry.values, facecolor="none", edgecolor=style.get("color", "#555555"),
                       linewidth=0.9 * self.k, zorder=4, linestyle=(0, (6, 2, 1, 2)))
        self.legend.head(BASE_GROUP)
        if shapely.intersects(shapely.boundary(rows.geometry.values), box(*self.window)).any():
            self.legend.add("line", {"color": style.get("color", "#555555"), "lw": 0.9, "ls": (0, (6, 2, 1, 2))},
                            bilingual("Ranh giới quận, huyện", "District boundary", 20))
        if labels and "name" in rows.columns:
            for _, row in rows.iterrows():
                spot = row.geometry.representative_point()
                self.ax.text(spot.x, spot.y, str(row["name"]), fontsize=6.5 * self.k, color="#444444", ha="center",
                             va="center", zorder=14, clip_on=True)

    def roads(self, gdf):
        rows = self.layer(gdf)
        if rows is None:
            return
        widths = (_style(self.catalog, "roads").get("width_by") or {}).get("values", {})
        classes = rows["class"] if "class" in rows.columns else pd.Series("", index=rows.index)
        segments, lws = [], []
        for geom, cls in zip(rows.geometry.values, classes):
            for part in _line_parts([geom]):
                segments.append(part)
                lws.append(0.35 * float(widths.get(str(cls), 1)) * self.k * self.thin)
        self.ax.add_collection(LineCollection(segments, colors="#b0b0b0", linewidths=lws, zorder=3, capstyle="round"))
        vi, en = _label(self.catalog, "roads")
        self.legend.head(BASE_GROUP)
        self.legend.add("line", {"color": "#b0b0b0", "lw": 1.0}, bilingual(vi, en))

    def cells(self, gdf):
        rows = self.layer(gdf)
        if rows is None or "priority_class" not in rows.columns:
            return
        self.legend.head("Vùng ưu tiên (Priority areas)")
        for cls, colour in PRIORITY_COLOURS.items():
            part = rows[rows["priority_class"] == cls]
            if len(part):
                _draw_polygons(self.ax, part.geometry.values, facecolor=colour, edgecolor="none", linewidth=0,
                               zorder=2, alpha=0.30)
                vi, en = PRIORITY_LABELS[cls]
                self.legend.add("patch", {"fc": colour, "alpha": 0.30, "ec": "none"}, f"Ưu tiên {vi.lower()} ({en})")
        if "hotspot" in rows.columns:
            hot = rows[rows["hotspot"] == "hot"]
            if len(hot):
                _draw_polygons(self.ax, hot.geometry.values, facecolor="none", edgecolor="#99000d",
                               linewidth=0.7 * self.k, zorder=2.5)
                self.legend.add("patch", {"fc": "none", "ec": "#99000d", "lw": 0.7}, "Điểm nóng Gi* (Hot spot)")

    def area(self, geom):
        """Outline the patrol area and veil what lies outside it, so the area stands out."""
        metric = [_geom_to_metric(geom)]
        outside = box(*self.window).difference(metric[0])
        if not outside.is_empty:
            _draw_polygons(self.ax, [outside], facecolor="white", edgecolor="none", linewidth=0, zorder=8.6,
                           alpha=0.45)
        _draw_polygons(self.ax, metric, facecolor="none", edgecolor="white", linewidth=3.2 * self.k, zorder=9)
        _draw_polygons(self.ax, metric, facecolor="none", edgecolor=AREA_COLOUR, linewidth=1.5 * self.k, zorder=9.1,
                       linestyle=(0, (5, 2)))
        self.legend.head(BASE_GROUP)
        self.legend.add("patch", {"fc": "none", "ec": AREA_COLOUR, "lw": 1.5, "ls": (0, (5, 2))},
                        "Khu vực tuần tra (Patrol area)")

    # infrastructure
    def cables(self, gdf):
        rows = self.layer(gdf)
        if rows is None:
            return
        style = _style(self.catalog, "cable_routes")
        widths = (style.get("width_by") or {}).get("values", {})
        dashes = (style.get("dash_by") or {}).get("values", {})
        owners = self.owners or (sorted(rows["owner"].dropna().astype(str).unique()) if "owner" in rows.columns else [])
        colours = {o: OWNER_PALETTE[i % len(OWNER_PALETTE)] for i, o in enumerate(owners)}
        segments, cols, lws, lss = [], [], [], []
        present_owners, present_dash = set(), set()
        for _, row in rows.iterrows():
            owner = str(row.get("owner"))
            colour = colours.get(owner, "#555555")
            lw = 0.32 * float(widths.get(str(row.get("criticality")), 3)) * self.k * self.thin
            dash = dashes.get(str(row.get("placement")))
            ls = (0, tuple(float(v) * 0.6 for v in dash.split())) if dash else "solid"
            for part in _line_parts([row.geometry]):
                segments.append(part)
                cols.append(colour)
                lws.append(lw)
                lss.append(ls)
            present_owners.add(owner)
            if dash:
                present_dash.add(str(row.get("placement")))
        self.ax.add_collection(LineCollection(segments, colors=cols, linewidths=lws, linestyles=lss, zorder=5,
                                              capstyle="butt"))
        vi, en = _label(self.catalog, "cable_routes")
        self.legend.head(bilingual(vi, en, 14))
        for owner in owners:
            if owner in present_owners:
                self.legend.add("line", {"color": colours[owner], "lw": 1.3}, f"Cáp của {owner}")
        for placement in sorted(present_dash):
            dash = dashes[placement]
            self.legend.add("line", {"color": "#555555", "lw": 1.0, "ls": (0, tuple(float(v) * 0.6 for v in dash.split()))},
                            _value_label(self.catalog, "cable_routes", "placement", placement))

    def key_sites(self, gdf):
        rows = self.layer(gdf)
        if rows is None:
            return
        self.key_sites_drawn += len(rows)
        style = _style(self.catalog, "key_sites")
        colour = style.get("color", "#b30000")
        polys = rows[rows.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
        points = rows[rows.geometry.geom_type.isin(["Point", "MultiPoint"])]
        if len(polys):
            _draw_polygons(self.ax, polys.geometry.values, facecolor=colour, edgecolor="none", linewidth=0, zorder=6,
                           alpha=0.18)
            _draw_polygons(self.ax, polys.geometry.values, facecolor="none", edgecolor=colour, linewidth=0.9 * self.k,
                           zorder=6.1, hatch="////")
        if len(points):
            xy = shapely.get_coordinates(points.geometry.values)
            self.ax.scatter(xy[:, 0], xy[:, 1], s=(6 * self.k) ** 2, marker="s", facecolors="#ffdddd",
                            edgecolors=colour, linewidths=1.0 * self.k, hatch="////", zorder=6.2)
        vi, en = _label(self.catalog, "key_sites")
        self.legend.head(SITES_GROUP)
        self.legend.add("patch", {"fc": colour, "alpha": 0.18, "ec": colour, "hatch": "////"}, bilingual(vi, en))

    def stations(self, gdf):
        rows = self.layer(gdf)
        if rows is None:
            return
        style = _style(self.catalog, "stations")
        colours = ((style.get("color_by") or {}).get("values") or {})
        radii = ((style.get("radius_by") or {}).get("values") or {})
        kinds = rows["kind"].astype(str) if "kind" in rows.columns else pd.Series("", index=rows.index)
        crit = rows["criticality"].astype(str) if "criticality" in rows.columns else pd.Series("", index=rows.index)
        xy = shapely.get_coordinates(rows.geometry.values)
        sizes = np.array([(0.75 * float(radii.get(c, 5)) * self.k) ** 2 for c in crit])
        cols = [colours.get(kind, "#555555") for kind in kinds]
        self.ax.scatter(xy[:, 0], xy[:, 1], s=sizes, c=cols, marker="o", edgecolors="white",
                        linewidths=0.4 * self.k, zorder=7)
        self.legend.head(SITES_GROUP)
        for kind in (self.catalog["stations"].get_field("kind").allowed if "stations" in self.catalog else ()):
            if (kinds == kind).any():
                self.legend.add("marker", {"marker": "o", "color": colours.get(kind, "#555555"), "size": 4.5},
                                _value_label(self.catalog, "stations", "kind", kind))

    def incidents(self, gdf, since):
        rows = self.layer(gdf)
        if rows is None:
            return
        if since is not None and "occurred_at" in rows.columns:
            when = pd.to_datetime(rows["occurred_at"], errors="coerce", utc=True)
            rows = rows[when >= pd.Timestamp(since)]
        if not len(rows):
            return
        colours = ((_style(self.catalog, "incidents").get("color_by") or {}).get("values") or {})
        types = rows["type"].astype(str) if "type" in rows.columns else pd.Series("other", index=rows.index)
        xy = shapely.get_coordinates(rows.geometry.values)
        self.ax.scatter(xy[:, 0], xy[:, 1], s=(3.6 * self.k) ** 2, c=[colours.get(t, "#969696") for t in types],
                        marker="^", edgecolors="white", linewidths=0.3 * self.k, zorder=8)
        self.legend.head("Sự cố trong kỳ (Recent incidents)")
        allowed = self.catalog["incidents"].get_field("type").allowed if "incidents" in self.catalog else ()
        for code in allowed:
            if (types == code).any():
                self.legend.add("marker", {"marker": "^", "color": colours.get(code, "#969696"), "size": 4},
                                _value_label(self.catalog, "incidents", "type", code))

    # the patrol
    def route(self, route):
        """The route (white-cased line, direction arrows) and its stops: numbered circles, the start a square
        marked XP, each labelled with its id. Stops that would cover one another are displaced round the
        first (a thin leader line joins them), and labels take the first free place of eight around their
        mark, so the map stays readable where a station stands inside a key site."""
        if route is None:
            return
        self.legend.head("Tuần tra (Patrol)")
        legs = [np.asarray(leg.coords)[:, :2] for leg in route.legs if leg.length > 0]
        if legs:
            self.ax.add_collection(LineCollection(legs, colors="white", linewidths=3.6 * self.k, zorder=10,
                                                  capstyle="round", joinstyle="round"))
            self.ax.add_collection(LineCollection(legs, colors=ROUTE_COLOUR, linewidths=1.7 * self.k, zorder=10.1,
                                                  capstyle="round", joinstyle="round"))
            for leg in route.legs:
                self._direction_arrow(leg)
            self.legend.add("line", {"color": ROUTE_COLOUR, "lw": 1.7}, "Lộ trình tuần tra (Patrol route)")
        m_per_pt = self.scale / 1000.0 * 25.4 / 72.0  # ground metres per point of paper
        radius = 5.0 * self.k * m_per_pt
        marks = []
        for _, stop in route.stops.iterrows():
            x0, y0 = float(stop["x"]), float(stop["y"])
            x, y = x0, y0
            for turn in range(12):  # displace round the true place until free
                if all(math.hypot(x - mx, y - my) >= 2 * radius for mx, my, *_ in marks):
                    break
                angle = math.radians(45 + 60 * turn)
                ring = 2.05 * radius * (1 + turn // 6)
                x, y = x0 + ring * math.cos(angle), y0 + ring * math.sin(angle)
            marks.append((x, y, x0, y0, stop))
        boxes = [(x - radius, y - radius, x + radius, y + radius) for x, y, *_ in marks]
        for x, y, x0, y0, stop in marks:
            if (x, y) != (x0, y0):
                self.ax.plot([x0, x], [y0, y], color=ROUTE_COLOUR, lw=0.6 * self.k, zorder=10.9)
            if stop["kind"] == "start":
                self.ax.scatter([x], [y], s=(10 * self.k) ** 2, marker="s", facecolors=ROUTE_COLOUR, edgecolors="white",
                                linewidths=0.8 * self.k, zorder=11)
                self.ax.text(x, y, "XP", fontsize=5.2 * self.k, color="white", weight="bold", ha="center",
                             va="center_baseline", zorder=11.1, clip_on=True)
            else:
                self.ax.scatter([x], [y], s=(9 * self.k) ** 2, marker="o", facecolors="white", edgecolors=ROUTE_COLOUR,
                                linewidths=1.2 * self.k, zorder=11)
                self.ax.text(x, y, str(int(stop["order"])), fontsize=5.6 * self.k, color=ROUTE_COLOUR, weight="bold",
                             ha="center", va="center_baseline", zorder=11.1, clip_on=True)
            self._label(str(stop["id"]), x, y, m_per_pt, boxes)
        self.legend.add("marker", {"marker": "s", "color": ROUTE_COLOUR, "size": 6, "text": "XP"},
                        "Điểm xuất phát, kết thúc (Start, end)")
        if (route.stops["kind"] != "start").any():
            self.legend.add("marker", {"marker": "o", "color": "white", "edge": ROUTE_COLOUR, "size": 6, "text": "1"},
                            "Điểm kiểm tra, thứ tự (Checkpoint)")

    #: label offsets in points from the mark (text anchored at its left or right baseline): NE first
    LABEL_PLACES = ((6.5, 3.5, "left"), (6.5, -8.0, "left"), (-6.5, 3.5, "right"), (-6.5, -8.0, "right"),
                    (6.5, -2.2, "left"), (-6.5, -2.2, "right"), (0.0, 7.5, "center"), (0.0, -12.5, "center"))

    def _label(self, text: str, x: float, y: float, m_per_pt: float, boxes: list):
        size = 5.4 * self.k
        width = text_width_pt(text, size) * m_per_pt
        height = size * m_per_pt
        chosen = None
        for dx, dy, align in self.LABEL_PLACES:
            lx = x + dx * self.k * m_per_pt
            ly = y + dy * self.k * m_per_pt
            left = lx if align == "left" else (lx - width if align == "right" else lx - width / 2)
            candidate = (left, ly - 0.25 * height, left + width, ly + height)
            if not any(candidate[0] < b[2] and b[0] < candidate[2] and candidate[1] < b[3] and b[1] < candidate[3]
                       for b in boxes):
                chosen = (dx, dy, align, candidate)
                break
        if chosen is None:
            dx, dy, align = self.LABEL_PLACES[0]
            chosen = (dx, dy, align, None)
        dx, dy, align, candidate = chosen
        if candidate is not None:
            boxes.append(candidate)
        self.ax.annotate(text, xy=(x, y), xytext=(dx * self.k, dy * self.k), textcoords="offset points",
                         fontsize=size, color="#111111", ha=align, va="baseline", zorder=12, annotation_clip=True,
                         bbox={"boxstyle": "square,pad=0.12", "fc": "white", "ec": "none", "alpha": 0.8})

    def _direction_arrow(self, leg):
        """A triangle pointing the way, in the middle of a leg."""
        if leg.length < 1:
            return
        a = leg.interpolate(0.5 * leg.length - min(1.0, leg.length * 0.01))
        b = leg.interpolate(0.5 * leg.length + min(1.0, leg.length * 0.01))
        if a.distance(b) < 1e-9:
            return
        angle = math.degrees(math.atan2(b.y - a.y, b.x - a.x))
        self.ax.plot([(a.x + b.x) / 2], [(a.y + b.y) / 2], marker=(3, 0, angle - 90), markersize=6.5 * self.k,
                     color=ROUTE_COLOUR, markeredgecolor="white", markeredgewidth=0.5 * self.k, zorder=10.2)


# -- frame furniture: grid, north arrow, scale bar ---------------------------------------------------------------
def _nice_step(span: float, steps=(1, 2, 2.5, 5), target: int = 5) -> float:
    raw = span / target
    exp = 10 ** math.floor(math.log10(raw))
    for s in steps:
        if s * exp >= raw:
            return s * exp
    return 10 * exp


def _draw_grid(ax, extent, grid: str, k: float):
    xmin, ymin, xmax, ymax = extent
    label = dict(fontsize=5.4 * k, color="#333333", clip_on=False, zorder=30)
    line = dict(color="#5a5a5a", linewidth=0.3 * k, alpha=0.7, zorder=3.5)
    offset = 1.6 * k  # millimetres from the frame to the labels
    pt = offset / 25.4 * 72
    from matplotlib.transforms import offset_copy

    fig = ax.figure
    below = offset_copy(ax.get_xaxis_transform(), fig=fig, y=-pt, units="points")
    above = offset_copy(ax.get_xaxis_transform(), fig=fig, y=pt, units="points")
    left = offset_copy(ax.get_yaxis_transform(), fig=fig, x=-pt, units="points")
    right = offset_copy(ax.get_yaxis_transform(), fig=fig, x=pt, units="points")

    m_per_pt = (xmax - xmin) / (ax.get_position().width * fig.get_figwidth() * 72)

    def room(value, low, high, text):
        """A label centred on ``value`` must not run past the frame's corner (into the header or margin)."""
        half = text_width_pt(text, label["fontsize"]) / 2 * m_per_pt
        return low + half <= value <= high - half

    def xlabel(x, text):
        if room(x, xmin, xmax, text):
            ax.text(x, 0, text, transform=below, ha="center", va="top", **label)
            ax.text(x, 1, text, transform=above, ha="center", va="bottom", **label)

    def ylabel(y, text):
        if room(y, ymin, ymax, text):
            ax.text(0, y, text, transform=left, ha="right", va="center", rotation=90, rotation_mode="anchor", **label)
            ax.text(1, y, text, transform=right, ha="left", va="center", rotation=90, rotation_mode="anchor", **label)

    if grid == "tm3":
        step = _nice_step(min(xmax - xmin, ymax - ymin), steps=(1, 2, 2.5, 5), target=4)
        for x in np.arange(math.ceil(xmin / step) * step, xmax, step):
            ax.plot([x, x], [ymin, ymax], **line)
            xlabel(x, group_thousands(x))
        for y in np.arange(math.ceil(ymin / step) * step, ymax, step):
            ax.plot([xmin, xmax], [y, y], **line)
            ylabel(y, group_thousands(y))
        return f"Lưới tọa độ VN-2000 / TM-3 kinh tuyến trục 105°, mỗi ô {vn_number(step, 0)} m (Y: đông, X: bắc)"
    # degrees: meridians and parallels are (almost) straight in TM-3 here; drawn exactly as transformed lines
    corners_lon, corners_lat = _to_lonlat([xmin, xmax, xmin, xmax], [ymin, ymin, ymax, ymax])
    lon0, lon1, lat0, lat1 = min(corners_lon), max(corners_lon), min(corners_lat), max(corners_lat)
    seconds = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
    span = min(lon1 - lon0, lat1 - lat0) * 3600
    step = next((s for s in seconds if span / s <= 5), 3600) / 3600
    frame = box(xmin, ymin, xmax, ymax)
    edges = {"bottom": LineString([(xmin, ymin), (xmax, ymin)]), "top": LineString([(xmin, ymax), (xmax, ymax)]),
             "left": LineString([(xmin, ymin), (xmin, ymax)]), "right": LineString([(xmax, ymin), (xmax, ymax)])}
    margin = step
    for lon in np.arange(math.ceil(lon0 / step) * step, lon1 + 1e-12, step):
        lats = np.linspace(lat0 - margin, lat1 + margin, 50)
        xs, ys = lonlat_to_metric(np.full_like(lats, lon), lats)
        meridian = LineString(np.column_stack([xs, ys])).intersection(frame)
        if meridian.is_empty:
            continue
        ax.plot(xs, ys, **line)
        for name in ("bottom", "top"):
            hit = meridian.intersection(edges[name])
            if not hit.is_empty and room(shapely.get_coordinates(hit)[0][0], xmin, xmax, dms(lon, "E", "W")):
                spot = shapely.get_coordinates(hit)[0]
                ax.text(spot[0], 0 if name == "bottom" else 1, dms(lon, "E", "W"),
                        transform=below if name == "bottom" else above, ha="center",
                        va="top" if name == "bottom" else "bottom", **label)
    for lat in np.arange(math.ceil(lat0 / step) * step, lat1 + 1e-12, step):
        lons = np.linspace(lon0 - margin, lon1 + margin, 50)
        xs, ys = lonlat_to_metric(lons, np.full_like(lons, lat))
        parallel = LineString(np.column_stack([xs, ys])).intersection(frame)
        if parallel.is_empty:
            continue
        ax.plot(xs, ys, **line)
        for name in ("left", "right"):
            hit = parallel.intersection(edges[name])
            if not hit.is_empty and room(shapely.get_coordinates(hit)[0][1], ymin, ymax, dms(lat, "N", "S")):
                spot = shapely.get_coordinates(hit)[0]
                ax.text(0 if name == "left" else 1, spot[1], dms(lat, "N", "S"),
                        transform=left if name == "left" else right, ha="right" if name == "left" else "left",
                        va="center", rotation=90, rotation_mode="anchor", **label)
    minutes = step * 60
    size = f"{vn_number(minutes, 0)}′" if minutes >= 1 else f"{vn_number(step * 3600, 0)}″"
    return f"Lưới kinh độ, vĩ độ WGS 84, mỗi ô {size}"


def _convergence_deg(x: float, y: float) -> float:
    """Angle (degrees, clockwise) from grid north to true north at a TM-3 point."""
    lon, lat = _to_lonlat(x, y)
    x2, y2 = lonlat_to_metric(lon, lat + 0.01)
    x2, y2 = float(x2), float(y2)
    return math.degrees(math.atan2(x2 - x, y2 - y))


def _draw_north_arrow(ax, extent, k: float):
    xmin, ymin, xmax, ymax = extent
    gamma = _convergence_deg((xmin + xmax) / 2, (ymin + ymax) / 2)
    fig = ax.figure
    # position in axes fraction; size in millimetres converted with the axes' size on the page
    bbox = ax.get_position()
    w_mm, h_mm = bbox.width * fig.get_figwidth() * 25.4, bbox.height * fig.get_figheight() * 25.4
    length = 11 * k
    cx, cy = 1 - (8 * k) / w_mm, 1 - (15 * k) / h_mm
    a = math.radians(gamma)
    dx, dy = math.sin(a) * length / 2 / w_mm, math.cos(a) * length / 2 / h_mm
    px, py = math.cos(a) * 2.6 * k / w_mm, -math.sin(a) * 2.6 * k / h_mm
    tip, tail = (cx + dx, cy + dy), (cx - dx, cy - dy)
    ax.add_patch(Rectangle((cx - 6.5 * k / w_mm, cy - 9.5 * k / h_mm), 13 * k / w_mm, 21 * k / h_mm,
                           transform=ax.transAxes, fc="white", ec="#777777", lw=0.4 * k, alpha=0.85, zorder=20))
    ax.add_patch(MplPolygon([tip, (cx - px, cy - py), tail], closed=True, transform=ax.transAxes, fc="black",
                            ec="black", lw=0.5 * k, zorder=21))
    ax.add_patch(MplPolygon([tip, (cx + px, cy + py), tail], closed=True, transform=ax.transAxes, fc="white",
                            ec="black", lw=0.5 * k, zorder=21))
    ax.text(cx + dx * 1.25, cy + dy * 1.25 + 1.0 * k / h_mm, "B (N)", transform=ax.transAxes, ha="center",
            va="bottom", fontsize=6.2 * k, weight="bold", zorder=22)
    minutes = abs(gamma) * 60
    sign = "-" if gamma < 0 else ""
    ax.text(cx, cy - 8.2 * k / h_mm, f"γ = {sign}{int(minutes // 60)}°{int(round(minutes % 60)):02d}′",
            transform=ax.transAxes, ha="center", va="bottom", fontsize=4.4 * k, color="#333333", zorder=22)
    return gamma


def _draw_scale_bar(ax, extent, scale: int, k: float):
    xmin, ymin, xmax, ymax = extent
    width = xmax - xmin
    length = _nice_step(width * 0.25, steps=(1, 2, 2.5, 5), target=1)
    if length > width * 0.4:
        length = _nice_step(width * 0.12, steps=(1, 2, 2.5, 5), target=1)
    ground_per_mm = scale / 1000.0
    x0 = xmin + 7 * k * ground_per_mm
    y0 = ymin + 7 * k * ground_per_mm
    bar_h = 1.5 * k * ground_per_mm
    pad = 3 * k * ground_per_mm
    ax.add_patch(Rectangle((x0 - pad, y0 - 5.2 * k * ground_per_mm), length + 2 * pad + 6 * k * ground_per_mm,
                           13.6 * k * ground_per_mm, fc="white", ec="#777777", lw=0.4 * k, alpha=0.88, zorder=20))
    parts = 4
    for i in range(parts):
        ax.add_patch(Rectangle((x0 + i * length / parts, y0), length / parts, bar_h, fc="black" if i % 2 == 0 else "white",
                               ec="black", lw=0.5 * k, zorder=21))
    unit, div = ("km", 1000.0) if length >= 1000 else ("m", 1.0)
    for i in (0, parts // 2, parts):
        value = length * i / parts / div
        text = vn_number(value, 0 if value == int(value) else 1)
        if i == parts:
            text += f" {unit}"
        ax.text(x0 + length * i / parts, y0 - 0.8 * k * ground_per_mm, text, ha="center", va="top",
                fontsize=5.2 * k, zorder=22)
    ax.text(x0, y0 + bar_h + 1.2 * k * ground_per_mm, f"Tỷ lệ (Scale) {scale_text(scale)}", ha="left",
            va="bottom", fontsize=6.6 * k, weight="bold", zorder=22)
    return length


# -- page furniture: header, legend, table, footer ---------------------------------------------------------------
def _box_axes(fig, layout: Layout, box_: Box):
    ax = fig.add_axes([box_.x / layout.width, box_.y / layout.height, box_.w / layout.width, box_.h / layout.height])
    ax.set_xlim(0, box_.w / 25.4 * 72)
    ax.set_ylim(0, box_.h / 25.4 * 72)
    ax.set_axis_off()
    return ax  # coordinates in points from the box's bottom-left corner


def _draw_header(fig, layout: Layout, title: str, lines: list[str], classification: str):
    ax = _box_axes(fig, layout, layout.header)
    k = layout.k
    w, h = ax.get_xlim()[1], ax.get_ylim()[1]
    marking_size = 11 * k
    mark_w = text_width_pt(classification, marking_size, True) + 12 * k
    ax.add_patch(Rectangle((w - mark_w, h - 22 * k), mark_w, 20 * k, fc="white", ec="#c00000", lw=1.4 * k))
    ax.text(w - mark_w / 2, h - 12 * k, classification, ha="center", va="center", fontsize=marking_size,
            weight="bold", color="#c00000")
    title_size = 13 * k
    ax.text(0, h - 4 * k, fit_text(title, w - mark_w - 10 * k, title_size, True), ha="left", va="top",
            fontsize=title_size, weight="bold")
    y = h - 4 * k - title_size * 1.45
    for line in lines:
        ax.text(0, y, fit_text(line, w - mark_w - 10 * k, 7.2 * k), ha="left", va="top", fontsize=7.2 * k, color="#222222")
        y -= 7.2 * k * 1.35
    ax.plot([0, w], [1, 1], color="#222222", lw=0.6 * k)


def _draw_footer(fig, layout: Layout, options: PrintOptions, notes: list[str], page: int, pages: int,
                 classification: str):
    ax = _box_axes(fig, layout, layout.footer)
    k = layout.k
    w, h = ax.get_xlim()[1], ax.get_ylim()[1]
    size = 5.0 * k
    ax.plot([0, w], [h - 0.5, h - 0.5], color="#222222", lw=0.5 * k)
    when = options.printed_at.astimezone(VN_TZ)
    printed = (f"In bởi / Printed by: {options.printed_by or 'không rõ'} — "
               f"{when:%d/%m/%Y %H:%M} (giờ Việt Nam, UTC+07:00) — webmap")
    y = h - 2.5 * k
    text_lines = [printed] + [n for n in notes if n]
    attribution = f"Nguồn dữ liệu (Data): {options.attribution}" if options.attribution else ""
    if attribution:
        text_lines += wrap_text(attribution, w - 70 * k, size, max_lines=3)
    for line in text_lines[:6]:
        ax.text(0, y, fit_text(line, w - 70 * k, size), ha="left", va="top", fontsize=size, color="#222222")
        y -= size * 1.3
    ax.text(w, h - 2.5 * k, f"Trang {page}/{pages}", ha="right", va="top", fontsize=6 * k)
    ax.text(w, 1 * k, classification, ha="right", va="bottom", fontsize=8 * k, weight="bold", color="#c00000")


def _legend_symbol(ax, kind: str, style: dict, x: float, y: float, k: float):
    """A symbol 12 pt wide centred on height y."""
    w = 12 * k
    if kind == "line":
        ax.plot([x, x + w], [y, y], color=style["color"], lw=style.get("lw", 1) * k, ls=style.get("ls", "solid"),
                solid_capstyle="butt")
    elif kind == "patch":
        ax.add_patch(Rectangle((x, y - 3.2 * k), w, 6.4 * k, fc=style.get("fc", "none"), ec=style.get("ec", "none"),
                               lw=style.get("lw", 0.6) * k, alpha=style.get("alpha", 1.0), ls=style.get("ls", "solid")))
        if style.get("hatch"):
            ax.add_patch(Rectangle((x, y - 3.2 * k), w, 6.4 * k, fc="none", ec=style.get("ec", "black"),
                                   lw=0.6 * k, hatch=style["hatch"]))
    elif kind == "marker":
        ax.scatter([x + w / 2], [y], s=(style.get("size", 4) * k) ** 2, marker=style["marker"], c=[style["color"]],
                   edgecolors=style.get("edge", "white"), linewidths=0.6 * k)
        if style.get("text"):
            ax.text(x + w / 2, y, style["text"], ha="center", va="center_baseline", fontsize=3.4 * k, weight="bold",
                    color="white" if style.get("color") != "white" else style.get("edge", "black"))


def _draw_legend(fig, layout: Layout, legend: Legend):
    """The legend in columns as wide as its longest label, the font made smaller until every row fits."""
    ax = _box_axes(fig, layout, layout.legend)
    k = layout.k
    w, h = ax.get_xlim()[1], ax.get_ylim()[1]
    ax.text(0, h - 1, "CHÚ GIẢI (LEGEND)", ha="left", va="top", fontsize=6.8 * k, weight="bold")
    items = legend.items()
    if not items:
        return ax
    top = h - 6.8 * k * 1.6
    size = 5.8 * k
    while True:
        row = size * 1.5
        symbol_w = 16 * k
        widest = max(text_width_pt(i[1], size, True) if i[0] == "head" else symbol_w + text_width_pt(i[3], size)
                     for i in items) + 8 * k
        columns = max(1, int(w // widest))
        rows_per_col = max(1, int(top // row))
        if math.ceil(len(items) * 1.1 / columns) <= rows_per_col or size <= 4.2 * k:
            break
        size *= 0.92
    columns = max(columns, math.ceil(len(items) / rows_per_col))
    col_w = w / columns
    col, r = 0, 0
    for item in items:
        # a column never ends with a heading: its first entry goes with it
        if r >= rows_per_col or (item[0] == "head" and r >= rows_per_col - 1 and r > 0):
            col, r = col + 1, 0
        x, y = col * col_w, top - r * row - row / 2
        if item[0] == "head":
            ax.text(x, y, fit_text(item[1], col_w - 4, size, True), ha="left", va="center", fontsize=size, weight="bold")
        else:
            _, kind, style, label = item
            _legend_symbol(ax, kind, style, x + 1, y, k)
            ax.text(x + symbol_w, y, fit_text(label, col_w - symbol_w - 3 * k, size), ha="left", va="center",
                    fontsize=size)
        r += 1
    return ax


TABLE_HEAD_VI = ("TT", "Mã", "Tên", "Kinh độ, vĩ độ", "X / Y (m) VN-2000", "Nội dung kiểm tra")


def _table_rows(route) -> list[dict]:
    rows = []
    if route is None:
        return rows
    for _, stop in route.stops.iterrows():
        rows.append({
            "order": "XP" if stop["kind"] == "start" else str(int(stop["order"])),
            "id": str(stop["id"]), "name": str(stop["name"]),
            "lonlat": f"{stop['lon']:.5f}, {stop['lat']:.5f}",
            "lon": f"{stop['lon']:.5f}", "lat": f"{stop['lat']:.5f}",
            "x": group_thousands(stop["y"]), "y": group_thousands(stop["x"]),  # VN-2000: X north, Y east
            "inspect": str(stop["inspect"]),
        })
    return rows


def route_summary(route) -> str:
    if route is None:
        return ""
    km = route.length_m / 1000.0
    legs = len(route.legs)
    how = "theo đường giao thông (along roads)" if route.on_roads == legs and legs else \
        (f"{route.on_roads}/{legs} chặng theo đường giao thông" if route.on_roads else "đường thẳng (straight lines)")
    return (f"Chiều dài lộ trình (Route length): {vn_number(km, 2)} km, {how}; "
            f"{len(route.stops) - 1} điểm kiểm tra, khép kín về điểm xuất phát.")


def _table_metrics(layout: Layout, box_: Box, n_rows: int, mode: str, summary: bool = True):
    """``(font size, line height, row height, rows that fit)`` of a checkpoint table in ``box_``: the font
    shrinks a little (5.4 to 4.6 pt on A4) before rows go to a page of their own."""
    k = layout.k
    lines = 1 if mode == "wide" else 2
    height = box_.h / 25.4 * 72
    for size in (5.4 * k, 5.0 * k, 4.6 * k):
        line_h = size * 1.32
        row_h = line_h * lines + 1.2 * k
        usable = height - 6.8 * k * 1.7 - line_h - (line_h * 2.2 if summary else 2)
        capacity = max(0, int(usable // row_h))
        if capacity >= n_rows:
            break
    return size, line_h, row_h, capacity


def _continuation_box(layout: Layout) -> Box:
    """The table's box on a page of its own (between header and footer)."""
    return Box(layout.header.x, layout.footer.y + layout.footer.h + 2 * layout.k, layout.header.w,
               layout.header.y - layout.footer.y - layout.footer.h - 6 * layout.k)


def _draw_table(fig, layout: Layout, box_: Box, rows: list[dict], summary: str, start: int = 0,
                title: str = "BẢNG ĐIỂM KIỂM TRA (CHECKPOINTS)", mode: str | None = None) -> int:
    """Draw rows[start:] as far as they fit; returns the index of the first row not drawn."""
    mode = mode or layout.table_mode
    ax = _box_axes(fig, layout, box_)
    k = layout.k
    w, h = ax.get_xlim()[1], ax.get_ylim()[1]
    size, line_h, row_h, _ = _table_metrics(layout, box_, len(rows) - start, mode, bool(summary))
    ax.text(0, h - 1, title, ha="left", va="top", fontsize=6.8 * k, weight="bold")
    y = h - 6.8 * k * 1.7
    if mode == "wide":
        fractions = (0.03, 0.115, 0.2, 0.125, 0.13, 0.40)
        heads = TABLE_HEAD_VI
    else:
        fractions = (0.06, 0.33, 0.25, 0.36)
        heads = ("TT", "Mã / Tên", "Kinh, vĩ độ / X, Y (m)", "Nội dung kiểm tra")
    xs = np.concatenate([[0], np.cumsum(fractions)]) * w
    ax.add_patch(Rectangle((0, y - line_h), w, line_h, fc="#e8e8e8", ec="none"))
    for i, head in enumerate(heads):
        ax.text(xs[i] + 1.5, y - line_h / 2, fit_text(head, xs[i + 1] - xs[i] - 3, size, True), ha="left",
                va="center", fontsize=size, weight="bold")
    y -= line_h
    bottom_reserved = (line_h * 2.2) if summary else 2
    done = start
    for index in range(start, len(rows)):
        if y - row_h < bottom_reserved:
            break
        row = rows[index]
        if mode == "wide":
            cells = [row["order"], row["id"], row["name"], row["lonlat"], f"{row['x']} / {row['y']}", row["inspect"]]
            texts = [[fit_text(c, xs[i + 1] - xs[i] - 3, size, bold=(i == 1))] for i, c in enumerate(cells)]
        else:
            texts = [[row["order"]],
                     [fit_text(row["id"], xs[2] - xs[1] - 3, size, True), fit_text(row["name"], xs[2] - xs[1] - 3, size)],
                     [f"{row['lon']}, {row['lat']}", f"X {row['x']}  Y {row['y']}"],
                     wrap_text(row["inspect"], xs[4] - xs[3] - 3, size, 2)]
        if (index - start) % 2 == 1:
            ax.add_patch(Rectangle((0, y - row_h), w, row_h, fc="#f4f4f4", ec="none"))
        for i, lines in enumerate(texts):
            for j, text in enumerate(lines):
                ax.text(xs[i] + 1.5, y - 0.6 * k - line_h * (j + 0.5), text, ha="left", va="center", fontsize=size,
                        weight="bold" if (i == 1 and j == 0) else "normal")
        y -= row_h
        ax.plot([0, w], [y, y], color="#cccccc", lw=0.3 * k)
        done = index + 1
    if not rows:
        ax.text(0, y - line_h, "Không có điểm kiểm tra trong khu vực (no checkpoints in the area).", ha="left",
                va="top", fontsize=size)
    if done < len(rows):
        ax.text(0, y - line_h * 0.8, f"… còn {len(rows) - done} điểm ở trang sau (continued overleaf).", ha="left",
                va="top", fontsize=size)
    elif summary:
        lines = wrap_text(summary, w, size * 1.05, 2, bold=True)
        for j, line in enumerate(lines):
            ax.text(0, y - line_h * (0.8 + j * 1.1), line, ha="left", va="top", fontsize=size * 1.05, weight="bold")
        _draw_patrol_notes(ax, w, y - line_h * (1.6 + 1.1 * len(lines)), size, k)
    return done


def _draw_patrol_notes(ax, w: float, top: float, size: float, k: float):
    """What is left below the table becomes the patrol's own record: ruled lines and a signature."""
    rule = size * 2.4
    if top < rule * 3:
        return
    ax.text(0, top, "GHI CHÚ TUẦN TRA (Patrol notes)", ha="left", va="top", fontsize=size * 1.05, weight="bold")
    y = top - rule * 1.3
    while y > rule * 1.6:
        ax.plot([0, w], [y, y], color="#bbbbbb", lw=0.3 * k, ls=(0, (1, 2)))
        y -= rule
    ax.text(0, rule * 0.4, "Cán bộ tuần tra (ký, ghi rõ họ tên): ..................................................    "
            "Thời gian tuần tra: từ ...... giờ ...... ngày ...... đến ...... giờ ...... ngày ......",
            ha="left", va="bottom", fontsize=size)


# -- pages --------------------------------------------------------------------------------------------------------
def _extent(area_metric, frame: Box, scale: int):
    """The ground rectangle of the map frame: centred on the area, exactly frame size x scale."""
    xmin, ymin, xmax, ymax = area_metric.bounds
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    gw, gh = frame.w / 1000.0 * scale, frame.h / 1000.0 * scale
    return (cx - gw / 2, cy - gh / 2, cx + gw / 2, cy + gh / 2)


def _map_axes(fig, layout: Layout, extent):
    m = layout.map
    ax = fig.add_axes([m.x / layout.width, m.y / layout.height, m.w / layout.width, m.h / layout.height])
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(0.9 * layout.k)
        spine.set_zorder(40)
    ax.set_facecolor("white")
    return ax


def _owners(layers) -> list:
    cables = layers.get("cable_routes")
    stations = layers.get("stations")
    owners = set()
    for gdf in (cables, stations):
        if gdf is not None and len(gdf) and "owner" in gdf.columns:
            owners |= set(gdf["owner"].dropna().astype(str))
    return sorted(owners)


def _sheet_scale(sheet_area_metric, layout: Layout, scale: int | None) -> int:
    xmin, ymin, xmax, ymax = sheet_area_metric.bounds
    if scale:
        return scale
    return max(MIN_SCALE, fit_scale(max(xmax - xmin, 1.0), max(ymax - ymin, 1.0), layout.map.w, layout.map.h))


def _new_figure(layout: Layout) -> Figure:
    return Figure(figsize=(layout.width / 25.4, layout.height / 25.4))


def _save(pdf, fig):
    """Save a page. Ligatures off (``-liga``): "fi" stays two letters for search and copy. Text in NFC:
    the print font has no mark positioning, and every Vietnamese letter has its own precomposed glyph."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_fontfeatures(("-liga", "-clig"))
        content = text.get_text()
        if content and not unicodedata.is_normalized("NFC", content):
            text.set_text(unicodedata.normalize("NFC", content))  # one glyph per Vietnamese letter
    pdf.savefig(fig)


def sheet_frame(sheet: PatrolSheet, options: PrintOptions) -> tuple[int, tuple]:
    """``(scale, (xmin, ymin, xmax, ymax))`` of a sheet's map frame in EPSG:5897: centred on the area, at the
    scale asked for or, fitted, the next round scale that holds the area and the whole route."""
    layout = page_layout(options.paper, options.orientation)
    area_metric = _geom_to_metric(sheet.area)
    if options.scale is None and sheet.route is not None and len(sheet.route.stops):
        # a fitted map shows the whole route: the start may lie outside the area
        stops = shapely.multipoints(sheet.route.stops[["x", "y"]].to_numpy())
        area_metric = shapely.union(area_metric, stops.envelope)
    scale = _sheet_scale(area_metric, layout, options.scale)
    return scale, _extent(area_metric, layout.map, scale)


def overview_frame(overview: "OverviewSheet", options: PrintOptions) -> tuple[int, tuple]:
    """The atlas overview's frame: the areas with at least 2 km round them, fitted (the districts are the
    context: the top areas of a city often sit in one district, and a whole-city frame would pile them up)."""
    layout = page_layout(options.paper, options.orientation)
    areas = _geom_to_metric(shapely.union_all(overview.areas.geometry.values))
    area_metric = shapely.buffer(shapely.envelope(areas), 2000.0, join_style="mitre")
    xmin, ymin, xmax, ymax = area_metric.bounds
    scale = fit_scale(xmax - xmin, ymax - ymin, layout.map.w, layout.map.h, margin=0.02)
    return scale, _extent(area_metric, layout.map, scale)


def _draw_sheet(pdf, sheet: PatrolSheet, options: PrintOptions, catalog, cache, classification, page, pages):
    layout = page_layout(options.paper, options.orientation)
    scale, extent = sheet_frame(sheet, options)
    window = extent  # what touches the frame: the legend lists only what is seen
    fig = _new_figure(layout)
    ax = _map_axes(fig, layout, extent)
    legend = Legend()
    painter = MapPainter(ax, window, catalog, layout.k, cache, legend, owners=_owners(sheet.layers), scale=scale)
    layers = sheet.layers
    since = options.printed_at - timedelta(days=options.recent_days)
    painter.districts(layers.get("districts"))
    painter.cells(layers.get("cells"))
    painter.roads(layers.get("roads"))
    painter.area(sheet.area)
    painter.cables(layers.get("cable_routes"))
    painter.key_sites(layers.get("key_sites"))
    painter.stations(layers.get("stations"))
    painter.incidents(layers.get("incidents"), since)
    painter.route(sheet.route)
    grid_note = _draw_grid(ax, extent, options.grid, layout.k)
    _draw_north_arrow(ax, extent, layout.k)
    _draw_scale_bar(ax, extent, scale, layout.k)
    when = options.printed_at.astimezone(VN_TZ)
    paper = f"{options.paper} {'đứng' if options.orientation == 'portrait' else 'ngang'}"
    header_lines = [
        sheet.area_label,
        f"Tỷ lệ {scale_text(scale)} — khổ {paper} — ngày in {when:%d/%m/%Y} — sự cố trong "
        f"{options.recent_days} ngày gần nhất (từ {since.astimezone(VN_TZ):%d/%m/%Y})",
    ]
    _draw_header(fig, layout, sheet.title, [line for line in header_lines if line], classification)
    _draw_legend(fig, layout, legend)
    rows = _table_rows(sheet.route)
    summary = route_summary(sheet.route)
    done = _draw_table(fig, layout, layout.table, rows, summary)
    notes = [grid_note + ". Khoảng cách đo trên giấy × tỷ lệ = khoảng cách thực địa.", options.method_note,
             *sheet.notes]
    _draw_footer(fig, layout, options, notes, page, pages, classification)
    _save(pdf, fig)
    drawn = 1
    while done < len(rows):  # the rest of a long table on pages of their own
        fig = _new_figure(layout)
        _draw_header(fig, layout, sheet.title, [sheet.area_label, "Bảng điểm kiểm tra (tiếp) — checkpoints (continued)"],
                     classification)
        done = _draw_table(fig, layout, _continuation_box(layout), rows, summary, start=done, mode="wide",
                           title="BẢNG ĐIỂM KIỂM TRA (TIẾP)")
        _draw_footer(fig, layout, options, [options.method_note], page + drawn, pages, classification)
        _save(pdf, fig)
        drawn += 1
    return scale, painter.key_sites_drawn, drawn


def _pages_for(sheet: PatrolSheet, options: PrintOptions) -> int:
    """Pages a sheet takes: 1, plus continuation pages when its checkpoint table is long."""
    layout = page_layout(options.paper, options.orientation)
    rows = 0 if sheet.route is None else len(sheet.route.stops)
    first = _table_metrics(layout, layout.table, rows, layout.table_mode)[3]
    pages, left = 1, rows - first
    while left > 0:
        per_page = max(1, _table_metrics(layout, _continuation_box(layout), left, "wide")[3])
        pages, left = pages + 1, left - per_page
    return pages


def _write(path: str, metadata: dict, draw):
    print_font_family()
    tmp = path + ".part"
    try:
        with _LOCK, PdfPages(tmp, metadata=metadata) as pdf:
            result = draw(pdf)
        os.replace(tmp, path)  # the file appears whole or not at all
        return result
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _metadata(title: str, options: PrintOptions, classification: str) -> dict:
    meta = {"Title": title, "Author": options.printed_by or "webmap", "Creator": "webmap patrol-map",
            "Subject": f"{classification} — bản đồ tuần tra (patrol map)",
            "CreationDate": options.printed_at, "Keywords": options.metadata.get("keywords", "")}
    return {k: v for k, v in meta.items() if v}


def render_patrol_pdf(sheet: PatrolSheet, options: PrintOptions, path: str, catalog=None) -> RenderResult:
    """Write the patrol map of one area to ``path`` (a PDF; more pages only when the checkpoint table is long).

    The map frame is ``layout.map`` millimetres wide and shows exactly ``width_mm / 1000 * scale`` metres.
    """
    from webmap.catalog import load_catalog

    options = options.checked()
    catalog = catalog if catalog is not None else load_catalog()
    classification = options.classification or default_classification([sheet], options)
    pages = _pages_for(sheet, options)

    def draw(pdf):
        scale, sites, _ = _draw_sheet(pdf, sheet, options, catalog, {}, classification, 1, pages)
        checkpoints = 0 if sheet.route is None else len(sheet.route.stops) - 1
        return RenderResult(pages, (scale,), classification, sites, checkpoints)

    return _write(path, _metadata(sheet.title, options, classification), draw)


def _draw_overview(pdf, overview: OverviewSheet, options: PrintOptions, catalog, cache, classification, pages):
    layout = page_layout(options.paper, options.orientation)
    areas = overview.areas
    districts = overview.layers.get("districts")
    scale, extent = overview_frame(overview, options)
    window = extent
    fig = _new_figure(layout)
    ax = _map_axes(fig, layout, extent)
    legend = Legend()
    painter = MapPainter(ax, window, catalog, layout.k, cache, legend, owners=_owners(overview.layers), scale=scale)
    painter.districts(districts, labels=True)
    painter.cells(overview.layers.get("cells"))
    cables = _metric(overview.layers.get("cable_routes"), cache)
    if cables is not None:
        segments = [part for geom in cables.geometry.values for part in _line_parts([geom])]
        ax.add_collection(LineCollection(segments, colors="#7d7d7d", linewidths=0.35 * layout.k, zorder=5))
        legend.head(SITES_GROUP)
        legend.add("line", {"color": "#7d7d7d", "lw": 0.6}, "Tuyến cáp (Cable routes)")
    painter.key_sites(overview.layers.get("key_sites"))
    metric_areas = to_metric(areas)
    _draw_polygons(ax, metric_areas.geometry.values, facecolor="none", edgecolor=ROUTE_COLOUR,
                   linewidth=1.5 * layout.k, zorder=9)
    legend.head("Tập bản đồ (Atlas)")
    legend.add("patch", {"fc": "none", "ec": ROUTE_COLOUR, "lw": 1.5}, "Vùng in trong tập (Areas in this atlas)")
    # page numbers beside their areas, each in the first of twelve places round it that is free
    m_per_pt = scale / 1000.0 * 25.4 / 72.0
    size = 6.5 * layout.k
    places = [(r * math.cos(math.radians(a)), r * math.sin(math.radians(a)))
              for r in (9, 17) for a in (90, 30, 330, 270, 210, 150)]
    boxes = []
    for _, row in metric_areas.iterrows():
        spot = row.geometry.representative_point()
        half_w = (text_width_pt(str(row["page"]), size, True) / 2 + 3) * m_per_pt
        half_h = (size / 2 + 3) * m_per_pt
        chosen = places[0]
        for dx, dy in places:
            cx, cy = spot.x + dx * layout.k * m_per_pt, spot.y + dy * layout.k * m_per_pt
            candidate = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
            if not any(candidate[0] < b[2] and b[0] < candidate[2] and candidate[1] < b[3] and b[1] < candidate[3]
                       for b in boxes):
                chosen = (dx, dy)
                break
        cx, cy = spot.x + chosen[0] * layout.k * m_per_pt, spot.y + chosen[1] * layout.k * m_per_pt
        boxes.append((cx - half_w, cy - half_h, cx + half_w, cy + half_h))
        ax.annotate(f"{row['page']}", xy=(spot.x, spot.y), xytext=(cx, cy), ha="center", va="center",
                    fontsize=size, weight="bold", zorder=15, annotation_clip=True,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": ROUTE_COLOUR, "lw": 0.7 * layout.k},
                    arrowprops={"arrowstyle": "-", "lw": 0.6 * layout.k, "color": ROUTE_COLOUR, "shrinkA": 0,
                                "shrinkB": 0})
    legend.add("marker", {"marker": "s", "color": "white", "edge": ROUTE_COLOUR, "size": 5, "text": "2"},
               "Số trang của vùng (Page number)")
    grid_note = _draw_grid(ax, extent, options.grid, layout.k)
    _draw_north_arrow(ax, extent, layout.k)
    _draw_scale_bar(ax, extent, scale, layout.k)
    when = options.printed_at.astimezone(VN_TZ)
    _draw_header(fig, layout, overview.title,
                 [f"Sơ đồ tổng quan: {len(areas)} vùng ưu tiên, mỗi vùng một trang (overview of {len(areas)} areas)",
                  f"Tỷ lệ {scale_text(scale)} — ngày in {when:%d/%m/%Y}"], classification)
    _draw_legend(fig, layout, legend)
    _draw_area_table(fig, layout, areas)
    _draw_footer(fig, layout, options, [grid_note + ".", options.method_note], 1, pages, classification)
    _save(pdf, fig)
    return scale, painter.key_sites_drawn


def _draw_area_table(fig, layout: Layout, areas):
    ax = _box_axes(fig, layout, layout.table)
    k = layout.k
    w, h = ax.get_xlim()[1], ax.get_ylim()[1]
    size = 5.4 * k
    line_h = size * 1.45
    ax.text(0, h - 1, "DANH SÁCH VÙNG (AREAS)", ha="left", va="top", fontsize=6.8 * k, weight="bold")
    heads = ("Trang", "Hạng", "Mã vùng", "Điểm", "Mức ưu tiên", "Sự cố", "Xu hướng", "Điểm KT", "Lộ trình")
    fractions = (0.08, 0.08, 0.17, 0.09, 0.16, 0.09, 0.13, 0.1, 0.1)
    xs = np.concatenate([[0], np.cumsum(fractions)]) * w
    y = h - 6.8 * k * 1.7
    ax.add_patch(Rectangle((0, y - line_h), w, line_h, fc="#e8e8e8", ec="none"))
    for i, head in enumerate(heads):
        ax.text(xs[i] + 1.5, y - line_h / 2, fit_text(head, xs[i + 1] - xs[i] - 3, size, True), ha="left",
                va="center", fontsize=size, weight="bold")
    y -= line_h
    trends = {"emerging": "mới nổi", "persistent": "kéo dài", "fading": "giảm dần", "none": "—"}
    for _, row in areas.iterrows():
        if y - line_h < 2:
            break
        cls = PRIORITY_LABELS.get(row.get("priority_class"), ("—", ""))[0]
        score = row.get("score")
        km = row.get("route_km")
        cells = [row["page"], row.get("rank", ""), row["area_id"],
                 vn_number(float(score), 1) if score is not None and not pd.isna(score) else "—", cls,
                 row.get("incidents", ""), trends.get(row.get("trend"), row.get("trend") or "—"),
                 row.get("checkpoints", ""), f"{vn_number(float(km), 1)} km" if km is not None and not pd.isna(km) else ""]
        for i, cell in enumerate(cells):
            ax.text(xs[i] + 1.5, y - line_h / 2, fit_text(str(cell), xs[i + 1] - xs[i] - 3, size), ha="left",
                    va="center", fontsize=size)
        y -= line_h
        ax.plot([0, w], [y, y], color="#cccccc", lw=0.3 * k)


def render_atlas(overview: OverviewSheet, sheets: list[PatrolSheet], options: PrintOptions, path: str,
                 catalog=None) -> RenderResult:
    """Write an atlas: the overview page, then one patrol sheet per area (in the order given)."""
    from webmap.catalog import load_catalog

    options = options.checked()
    catalog = catalog if catalog is not None else load_catalog()
    all_pages = [overview] + list(sheets)
    classification = options.classification or default_classification(all_pages, options)
    counts = [_pages_for(sheet, options) for sheet in sheets]
    pages = 1 + sum(counts)
    # the overview's table gives each area the page its sheet starts on
    overview = OverviewSheet(overview.title, overview.areas.assign(page=list(np.cumsum([2] + counts[:-1]))),
                             overview.layers)

    def draw(pdf):
        cache: dict = {}
        scale0, sites = _draw_overview(pdf, overview, options, catalog, cache, classification, pages)
        scales, page = [scale0], 2
        checkpoints = 0
        for sheet, count in zip(sheets, counts):
            scale, drawn_sites, _ = _draw_sheet(pdf, sheet, options, catalog, cache, classification, page, pages)
            scales.append(scale)
            sites += drawn_sites
            page += count
            checkpoints += 0 if sheet.route is None else len(sheet.route.stops) - 1
        return RenderResult(pages, tuple(scales), classification, sites, checkpoints)

    return _write(path, _metadata(overview.title, options, classification), draw)
