"""One printable A4 page summarising an enterprise's exposure (matplotlib, PDF).

Key numbers, a small map of its network coloured by exposure class with the counted incidents, the ten
most exposed segments and stations, the share inside police priority areas, the method and its
parameters, who printed it and when. Drawn from an :class:`~webmap.analysis.exposure.ExposureResult`
already cut to the enterprise, plus the public district boundaries for orientation: nothing else.
"""

from __future__ import annotations

import io
import math
import textwrap

import numpy as np

#: Colours of the exposure classes (ColorBrewer YlOrRd, grey for "none"): the page and the PDF share them.
CLASS_COLOURS = {"none": "#b0b4b9", "low": "#fecc5c", "medium": "#fd8d3c", "high": "#e31a1c", "very_high": "#800026"}
A4_PORTRAIT_IN = (8.27, 11.69)


def _short(value, width) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_number(value, decimals=0, lang="vi") -> str:
    """1234.5 -> "1.234,5" in Vietnamese, "1,234.5" in English; "–" for nothing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = f"{value:,.{decimals}f}"
    if lang == "vi":  # 1.234,5 as Vietnamese officials write it
        text = text.replace(",", "\u2009").replace(".", ",").replace("\u2009", ".")
    return text


def _scale_bar(ax, lat_mid):
    """A scale bar of a round number of km at the lower left of the map (lon/lat axes)."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    km_per_deg = 111.32 * math.cos(math.radians(lat_mid))
    width_km = (x1 - x0) * km_per_deg
    length = next((v for v in (0.5, 1, 2, 5, 10, 20, 50) if v >= width_km / 8), 50)
    start_x, start_y = x0 + (x1 - x0) * 0.04, y0 + (y1 - y0) * 0.05
    ax.plot([start_x, start_x + length / km_per_deg], [start_y, start_y], color="#222", lw=2.5, solid_capstyle="butt")
    ax.text(start_x + length / km_per_deg / 2, start_y + (y1 - y0) * 0.015, f"{length:g} km", ha="center",
            va="bottom", fontsize=7)


def _draw_map(ax, result, districts, text):
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    import shapely

    segments, stations, incidents = result.segments, result.stations, result.incidents
    frames = [f for f in (segments, stations) if f is not None and len(f)]
    if frames:
        bounds = np.array([f.total_bounds for f in frames])
        west, south = bounds[:, 0].min(), bounds[:, 1].min()
        east, north = bounds[:, 2].max(), bounds[:, 3].max()
    else:
        west, south, east, north = 105.22, 9.92, 105.85, 10.33  # Cần Thơ
    pad_x, pad_y = max((east - west) * 0.05, 0.005), max((north - south) * 0.05, 0.005)
    west, east, south, north = west - pad_x, east + pad_x, south - pad_y, north + pad_y
    lat_mid = (south + north) / 2
    if districts is not None and len(districts):
        for geom in districts.geometry:
            for poly in getattr(geom, "geoms", [geom]):
                x, y = poly.exterior.xy
                ax.plot(x, y, color="#9aa3ad", lw=0.5, zorder=1)
    ordered = ["none", "low", "medium", "high", "very_high"]
    if segments is not None and len(segments):
        for cls in ordered:
            part = segments[segments["exposure_class"] == cls]
            if not len(part):
                continue
            lines = [np.asarray(g.coords) for g in shapely.get_parts(part.geometry.array) if not g.is_empty]
            ax.add_collection(LineCollection(lines, colors=CLASS_COLOURS[cls], linewidths=0.8 if cls == "none" else 1.8,
                                             zorder=2 + ordered.index(cls)))
    if stations is not None and len(stations):
        for cls in ordered:
            part = stations[stations["exposure_class"] == cls]
            if len(part):
                ax.scatter(part.geometry.x, part.geometry.y, s=14 if cls == "none" else 22, c=CLASS_COLOURS[cls],
                           edgecolors="#222", linewidths=0.4, zorder=8 + ordered.index(cls))
    if incidents is not None and len(incidents):
        ax.scatter(incidents.geometry.x, incidents.geometry.y, s=3, c="#1f2328", marker="x", linewidths=0.5,
                   zorder=20, alpha=0.7)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(1 / math.cos(math.radians(lat_mid)))
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#9aa3ad")
    _scale_bar(ax, lat_mid)
    handles = [Line2D([0], [0], color=CLASS_COLOURS[c], lw=3, label=text[f"exposure_class_{c}"]) for c in ordered]
    handles.append(Line2D([0], [0], color="#1f2328", marker="x", lw=0, markersize=4, label=text["exposure_map_incidents"]))
    ax.legend(handles=handles, loc="upper right", fontsize=6.5, title=text["exposure_legend"], title_fontsize=7,
              framealpha=0.9)


def _table(ax, title, header, rows, widths):
    ax.axis("off")
    ax.set_title(title, fontsize=8.5, loc="left", fontweight="bold", pad=2)
    if not rows:
        rows = [["–"] * len(header)]
    table = ax.table(cellText=rows, colLabels=header, colWidths=widths, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(6.5)
    table.scale(1, 1.05)
    for (row, _), cell in table.get_celld().items():
        cell.set_edgecolor("#c9ced4")
        cell.set_linewidth(0.4)
        if row == 0:
            cell.set_facecolor("#eef1f4")
            cell.get_text().set_fontweight("bold")


def render_exposure_pdf(result, *, org, org_name, text, lang, printed_by, printed_at, districts=None,
                        priority_state="unavailable") -> bytes:
    """The A4 summary of ``org``'s exposure as PDF bytes (``result`` already cut to ``org``)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    summary = result.summary(org)
    p = result.method.get("parameters", {})
    fig = Figure(figsize=A4_PORTRAIT_IN)
    fig.text(0.05, 0.962, text["exposure_title"], fontsize=13, fontweight="bold", va="top")
    fig.text(0.05, 0.940, f"{org_name} ({org})", fontsize=11, va="top")
    fig.text(0.05, 0.921, text["exposure_period"].format(since=p.get("since"), until=p.get("until"),
                                                         buffer=format_number(p.get("buffer_m"), 0, lang)),
             fontsize=8.5, va="top", color="#444")

    numbers = [
        (text["exposure_cable_km"], format_number(summary["cable_km"], 1, lang)),
        (text["exposure_segments"], format_number(summary["segments"], 0, lang)),
        (text["exposure_stations"], format_number(summary["stations"], 0, lang)),
        (text["exposure_incidents"], format_number(summary["incidents"], 0, lang)),
        (text["exposure_damaging"], format_number(summary["damaging"], 0, lang)),
        (text["exposure_cable_index"], format_number(summary["cable_exposure"], 2, lang)),
        (text["exposure_station_index"], format_number(summary["station_exposure"], 2, lang)),
        (text["exposure_repeat"], f"{summary['repeat_damage_segments']} / {summary['repeat_damage_stations']}"),
        (text["exposure_high"], f"{summary['high_segments']} / {summary['high_stations']}"),
        (text["exposure_trend"], f"{text['exposure_trend_' + str(summary['trend'])]} · "
                                 + text["exposure_trend_line"].format(recent=summary["recent"], previous=summary["previous"])),
    ]
    fig.text(0.05, 0.895, text["exposure_key_numbers"], fontsize=9.5, fontweight="bold", va="top")
    for i, (label, value) in enumerate(numbers):
        y = 0.875 - i * 0.0145
        fig.text(0.05, y, label, fontsize=7.5, va="top")
        fig.text(0.30, y, value, fontsize=7.5, va="top", fontweight="bold")

    fig.text(0.58, 0.895, textwrap.fill(text["exposure_priority"], 44), fontsize=9, fontweight="bold", va="top")
    rows = result.priority[result.priority["owner"] == org] if result.priority is not None else None
    if rows is not None and len(rows):
        fig.text(0.58, 0.875, text["priority_class"] if "priority_class" in text else "", fontsize=7, va="top", color="#444")
        fig.text(0.76, 0.875, text["exposure_cable_share"], fontsize=7, va="top", color="#444")
        fig.text(0.88, 0.875, text["exposure_station_share"].split(" (")[0], fontsize=7, va="top", color="#444")
        for i, row in enumerate(rows.itertuples(index=False)):
            y = 0.860 - i * 0.0145
            cls = row.priority_class
            label = text["exposure_priority_outside"] if cls == "outside" else text.get(f"priority_class_{cls}", cls)
            fig.text(0.58, y, label, fontsize=7.5, va="top")
            fig.text(0.76, y, f"{format_number(row.cable_km, 1, lang)} ({format_number(row.cable_share * 100, 0, lang)} %)",
                     fontsize=7.5, va="top")
            fig.text(0.88, y, f"{row.stations} ({format_number(row.station_share * 100, 0, lang)} %)", fontsize=7.5, va="top")
    else:
        message = text["exposure_priority_pending"] if priority_state == "pending" else text["exposure_priority_unavailable"]
        fig.text(0.58, 0.875, textwrap.fill(message, 50), fontsize=7.5, va="top", color="#444")

    ax = fig.add_axes([0.05, 0.375, 0.90, 0.355])
    _draw_map(ax, result, districts, text)

    seg = result.segments.sort_values(["exposure", "incidents"], ascending=False, kind="mergesort")
    seg = seg[seg["incidents"] > 0].head(10)
    seg_rows = [[str(i + 1), _short(r.segment_id, 18),
                 f"{format_number(r.chainage_from_m / 1000, 2, lang)}–{format_number(r.chainage_to_m / 1000, 2, lang)}",
                 str(r.incidents), format_number(r.exposure, 1, lang), text[f"exposure_class_{r.exposure_class}"]]
                for i, r in enumerate(seg.itertuples(index=False))]
    _table(fig.add_axes([0.05, 0.135, 0.44, 0.215]), text["exposure_top_segments"],
           ["#", text["exposure_segment"], "km", text["exposure_count"], text["exposure_index"], text["exposure_class"]],
           seg_rows, [0.06, 0.34, 0.2, 0.12, 0.12, 0.16])
    st = result.stations.sort_values(["exposure", "incidents"], ascending=False, kind="mergesort")
    st = st[st["incidents"] > 0].head(10)
    st_rows = [[str(i + 1), _short(r.station_id, 16), _short(r.station_name, 22), str(r.incidents),
                format_number(r.exposure, 1, lang), text[f"exposure_class_{r.exposure_class}"]]
               for i, r in enumerate(st.itertuples(index=False))]
    _table(fig.add_axes([0.51, 0.135, 0.44, 0.215]), text["exposure_top_stations"],
           ["#", text["exposure_station"], "", text["exposure_count"], text["exposure_index"], text["exposure_class"]],
           st_rows, [0.06, 0.25, 0.33, 0.12, 0.11, 0.16])

    method = result.method.get("text", {}).get(lang) or result.method.get("text", {}).get("vi", "")
    fig.text(0.05, 0.118, text["exposure_method"], fontsize=8, fontweight="bold", va="top")
    fig.text(0.05, 0.103, textwrap.fill(method, 175), fontsize=6, va="top", color="#333", linespacing=1.35)
    fig.text(0.05, 0.022, text["exposure_printed_by"].format(user=printed_by, at=printed_at + " (UTC+7)"),
             fontsize=7, color="#444")
    fig.text(0.95, 0.022, "webmap", fontsize=7, color="#444", ha="right")

    buffer = io.BytesIO()
    fig.savefig(buffer, format="pdf", metadata={"Title": f"{text['exposure_title']} – {org}", "Creator": "webmap"})
    return buffer.getvalue()
