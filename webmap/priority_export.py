"""Write a priority result to GeoJSON, GeoPackage, CSV or XLSX, always with its method and parameters.

Used by ``webmap priority -o FILE`` and by the planners' page downloads. Where the method goes:

| format | the areas | the method and parameters |
|---|---|---|
| GeoJSON | a FeatureCollection (RFC 7946) | top-level ``metadata`` member (``{"method": ...}``) |
| GeoPackage | layer ``priority_cells`` (and ``priority_units``) | table ``priority_method`` (key, value) and each layer's metadata (``DESCRIPTION``, ``webmap_method``) |
| CSV | one row per area, no geometry (centroid lon/lat columns) | sidecar ``<name>.method.json`` next to it (``#`` lines at the top would break Excel) |
| XLSX | sheet "Khu vực - Areas" (and "Đơn vị - Units") with Vietnamese or English headers | sheet "Phương pháp - Method": text, every parameter, counts, columns |

Text cells that a spreadsheet would run as a formula are defused (CSV and XLSX) with
:func:`webmap.export.defuse_formula`.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd

from webmap.errors import BadInput

__all__ = ["FORMATS", "EXTENSIONS", "COLUMN_LABELS", "format_for_path", "write_priority", "sidecar_path"]

FORMATS = ("geojson", "gpkg", "csv", "xlsx")
EXTENSIONS = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".csv": "csv", ".xlsx": "xlsx"}
LEVELS = ("cells", "units")
LAYER_NAMES = {"cells": "priority_cells", "units": "priority_units"}
METHOD_TABLE = "priority_method"
COORDINATE_DECIMALS = 7

#: column -> (Vietnamese, English) header, for the spreadsheet and for pages that show the table
COLUMN_LABELS = {
    "area_id": ("Mã khu vực", "Area ID"),
    "code": ("Mã đơn vị", "Unit code"),
    "name": ("Tên đơn vị", "Unit name"),
    "rank": ("Hạng", "Rank"),
    "score": ("Điểm ưu tiên (0-100)", "Priority score (0-100)"),
    "priority_class": ("Mức ưu tiên", "Priority class"),
    "score_hotspot": ("Điểm: điểm nóng (tối đa 40)", "Points: hot spot (max 40)"),
    "score_trend": ("Điểm: xu hướng (tối đa 20)", "Points: trend (max 20)"),
    "score_risk": ("Điểm: rủi ro (tối đa 20)", "Points: risk (max 20)"),
    "score_stake": ("Điểm: giá trị bảo vệ (tối đa 20)", "Points: stake (max 20)"),
    "incidents": ("Số vụ việc", "Incidents"),
    "hotspot": ("Điểm nóng/lạnh", "Hot/cold spot"),
    "confidence": ("Độ tin cậy (%)", "Confidence (%)"),
    "gi_z": ("Gi* (z)", "Gi* (z)"),
    "p_value": ("Giá trị p", "p-value"),
    "q_value": ("Giá trị q (sau hiệu chỉnh FDR)", "q-value (FDR-adjusted)"),
    "hot_cells": ("Số ô điểm nóng", "Hot cells"),
    "cold_cells": ("Số ô điểm lạnh", "Cold cells"),
    "hot_share": ("Tỷ lệ vụ việc trong ô điểm nóng", "Share of incidents in hot cells"),
    "cable_km": ("Cáp (km)", "Cable (km)"),
    "stations": ("Số trạm", "Stations"),
    "per_cable_km": ("Vụ việc / km cáp", "Incidents per cable km"),
    "per_station": ("Vụ việc / trạm", "Incidents per station"),
    "expected": ("Số vụ dự kiến theo hạ tầng", "Expected from infrastructure"),
    "risk": ("Rủi ro (1 = như dự kiến)", "Risk (1 = as expected)"),
    "recent": ("Vụ việc 90 ngày gần nhất", "Incidents, last 90 days"),
    "previous": ("Vụ việc cùng kỳ năm trước", "Incidents, same 90 days a year earlier"),
    "trend": ("Xu hướng", "Trend"),
    "key_sites": ("Mục tiêu trọng điểm", "Key sites"),
    "critical_stations": ("Trạm quan trọng", "Critical stations"),
    "trunk_km": ("Cáp trục (km)", "Trunk cable (km)"),
    "centroid_lon": ("Kinh độ tâm", "Centroid longitude"),
    "centroid_lat": ("Vĩ độ tâm", "Centroid latitude"),
}
#: coded values shown in words in the spreadsheet
VALUE_LABELS = {
    "hotspot": {"hot": ("Điểm nóng", "Hot spot"), "cold": ("Điểm lạnh", "Cold spot"), "none": ("Không", "None")},
    "trend": {"emerging": ("Mới nổi", "Emerging"), "persistent": ("Kéo dài", "Persistent"),
              "fading": ("Giảm dần", "Fading"), "none": ("Không rõ", "None")},
    "priority_class": {"very_high": ("Rất cao", "Very high"), "high": ("Cao", "High"),
                       "medium": ("Trung bình", "Medium"), "low": ("Thấp", "Low")},
}
#: the order of columns in tables (others follow)
COLUMN_ORDER = ("area_id", "code", "name", "rank", "score", "priority_class", "score_hotspot", "score_trend",
                "score_risk", "score_stake", "incidents", "hotspot", "confidence", "gi_z", "p_value", "q_value",
                "hot_cells", "cold_cells", "hot_share", "risk", "expected", "per_cable_km", "per_station",
                "cable_km", "stations", "recent", "previous", "trend", "key_sites", "critical_stations",
                "trunk_km", "centroid_lon", "centroid_lat")


def format_for_path(path: str) -> str:
    """The format an output file's extension asks for (BadInput when unknown)."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in EXTENSIONS:
        raise BadInput(f"cannot tell the format of {os.path.basename(str(path))!r}: use .geojson, .gpkg, .csv or .xlsx")
    return EXTENSIONS[ext]


def sidecar_path(path: str) -> str:
    """``areas.csv`` -> ``areas.method.json``: where a CSV's method goes."""
    return os.path.splitext(str(path))[0] + ".method.json"


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not math.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def method_json(method: dict, **extra) -> str:
    return json.dumps({**method, **extra}, ensure_ascii=False, indent=2, default=_json_default)


def _ordered(frame):
    geometry = frame.geometry.name if hasattr(frame, "geometry") else None
    first = [c for c in COLUMN_ORDER if c in frame.columns]
    rest = [c for c in frame.columns if c not in first and c != geometry]
    return first + rest


def _table(result, level: str):
    if level not in LEVELS:
        raise BadInput(f"level must be cells or units, got {level!r}")
    if level == "units":
        if result.units is None:
            raise BadInput("there is no unit table: load the wards or districts layer")
        frame = result.units
    else:
        frame = result.cells
    return frame.sort_values("rank", kind="stable") if "rank" in frame else frame


def write_priority(result, fmt: str | None, path: str, *, level: str = "cells", lang: str = "vi") -> list[str]:
    """Write ``result`` to ``path`` as ``fmt`` (None: from the extension); returns the files written.

    Parameters
    ----------
    result : PriorityResult
    fmt : {"geojson", "gpkg", "csv", "xlsx"} or None
    path : str
    level : {"cells", "units"}
        Which table GeoJSON and CSV hold (GeoPackage and XLSX hold both when there are units).
    lang : {"vi", "en"}
        Headers and coded values of the XLSX sheets.

    Every file appears whole or not at all (written beside and renamed).
    """
    if fmt in EXTENSIONS.values() or fmt is None:
        pass
    elif path in FORMATS:  # called as (result, path, fmt): accept it
        fmt, path = path, fmt
    fmt = fmt or format_for_path(path)
    if fmt not in FORMATS:
        raise BadInput(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if lang not in ("vi", "en"):
        raise BadInput(f"lang must be vi or en, got {lang!r}")
    table = _table(result, level)  # checks level
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise BadInput(f"cannot write {path}: folder {folder} does not exist")
    tmp = f"{path}.part{os.path.splitext(path)[1]}"
    if os.path.exists(tmp):
        os.remove(tmp)
    written = [path]
    try:
        if fmt == "geojson":
            _write_geojson(result, table, level, tmp)
        elif fmt == "gpkg":
            _write_gpkg(result, tmp)
        elif fmt == "csv":
            _write_csv(table, tmp)
            side = sidecar_path(path)
            with open(side + ".part", "w", encoding="utf-8") as fh:
                fh.write(method_json(result.method, level=level, data_file=os.path.basename(path)))
            os.replace(side + ".part", side)
            written.append(side)
        else:
            _write_xlsx(result, tmp, lang)
        os.replace(tmp, path)
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        raise BadInput(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return written


# -- GeoJSON ------------------------------------------------------------------------------------------

def plain_value(value, digits: int | None = None):
    """A numpy scalar as the Python value JSON and openpyxl take; NaN and infinity as None; floats to
    ``digits`` significant digits when given (the API's answers; files keep full precision)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return None
        return float(f"{float(value):.{digits}g}") if digits else float(value)
    return value


def geojson_dict(result, level: str = "cells") -> dict:
    """RFC 7946 FeatureCollection of the areas (lon/lat, 7 decimals), the method in ``metadata``."""
    import shapely

    table = _table(result, level)
    geoms = shapely.transform(np.asarray(table.geometry.values, dtype=object),
                              lambda xy: np.round(xy, COORDINATE_DECIMALS))
    columns = _ordered(table)
    features = []
    for record, geometry in zip(table[columns].to_dict("records"), geoms):
        props = {k: plain_value(v) for k, v in record.items()}
        features.append({"type": "Feature", "id": props.get("area_id"), "properties": props,
                         "geometry": json.loads(shapely.to_geojson(geometry)) if geometry is not None else None})
    return {"type": "FeatureCollection", "metadata": {"level": level, "method": result.method}, "features": features}


def _write_geojson(result, table, level, path):
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(geojson_dict(result, level), fh, ensure_ascii=False, separators=(",", ":"), default=_json_default)


# -- GeoPackage ------------------------------------------------------------------------------------------

def _method_rows(method: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Flatten the method into (key, value) rows: nested keys joined with dots, lists as JSON."""
    rows = []
    for key, value in method.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows.extend(_method_rows(value, name + "."))
        elif isinstance(value, (list, tuple)):
            rows.append((name, json.dumps(value, ensure_ascii=False, default=_json_default)))
        else:
            rows.append((name, "" if value is None else str(_json_default(value) if not isinstance(value, str) else value)))
    return rows


def _write_gpkg(result, path):
    import pyogrio

    meta = {"DESCRIPTION": result.method["text"]["en"], "DESCRIPTION_VI": result.method["text"]["vi"],
            "webmap_method": method_json(result.method)}
    for level in LEVELS:
        if level == "units" and result.units is None:
            continue
        table = _table(result, level)
        frame = table[_ordered(table) + [table.geometry.name]]
        pyogrio.write_dataframe(frame, path, driver="GPKG", layer=LAYER_NAMES[level], promote_to_multi=True,
                                layer_metadata=meta, append=level == "units")
    rows = _method_rows(result.method)
    method_frame = pd.DataFrame({"key": [k for k, _ in rows], "value": [v for _, v in rows]})
    pyogrio.write_dataframe(method_frame, path, driver="GPKG", layer=METHOD_TABLE, append=True)


# -- CSV -------------------------------------------------------------------------------------------------

def _write_csv(table, path):
    from webmap.export import defused

    frame = pd.DataFrame(table[_ordered(table)])
    defused(frame).to_csv(path, index=False, encoding="utf-8-sig")  # the BOM makes Excel read UTF-8


# -- XLSX ------------------------------------------------------------------------------------------------

SHEET_AREAS = "Khu vực - Areas"
SHEET_UNITS = "Đơn vị - Units"
SHEET_METHOD = "Phương pháp - Method"


def _cell_value(value):
    from webmap.export import defuse_formula

    value = plain_value(value)
    if isinstance(value, str):
        return defuse_formula(value)
    return value


def _write_sheet(sheet, table, lang: str):
    from openpyxl.styles import Font

    index = 0 if lang == "vi" else 1
    columns = _ordered(table)
    sheet.append([COLUMN_LABELS.get(c, (c, c))[index] for c in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    coded = {c: VALUE_LABELS[c] for c in columns if c in VALUE_LABELS}
    for record in table[columns].itertuples(index=False, name=None):
        row = []
        for column, value in zip(columns, record):
            if column in coded and value in coded[column]:
                value = coded[column][value][index]
            row.append(_cell_value(value))
        sheet.append(row)
    sheet.freeze_panes = "B2"
    sheet.auto_filter.ref = sheet.dimensions
    for i, column in enumerate(columns, start=1):
        width = min(28, max(8, len(str(COLUMN_LABELS.get(column, (column, column))[index])) // 2 + 4))
        sheet.column_dimensions[sheet.cell(row=1, column=i).column_letter].width = width


def _write_xlsx(result, path, lang: str):
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    areas = book.active
    areas.title = SHEET_AREAS
    _write_sheet(areas, _table(result, "cells"), lang)
    if result.units is not None:
        _write_sheet(book.create_sheet(SHEET_UNITS), _table(result, "units"), lang)
    sheet = book.create_sheet(SHEET_METHOD)
    sheet.append(["Phương pháp / Method"])
    sheet["A1"].font = Font(bold=True, size=13)
    for lang_code, title in (("vi", "Tiếng Việt"), ("en", "English")):
        sheet.append([title, _cell_value(result.method["text"][lang_code])])
        sheet.cell(row=sheet.max_row, column=2).alignment = Alignment(wrap_text=True, vertical="top")
    sheet.append([])
    sheet.append(["Tham số / Parameter", "Giá trị / Value"])
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for key, value in _method_rows({k: v for k, v in result.method.items() if k != "text"}):
        sheet.append([key, _cell_value(value)])
    sheet.append([])
    sheet.append(["Cột / Column", "Tiếng Việt", "English"])
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for key, (vi, en) in COLUMN_LABELS.items():
        sheet.append([key, vi, en])
    sheet.column_dimensions["A"].width = 34
    sheet.column_dimensions["B"].width = 110
    sheet.column_dimensions["C"].width = 40
    book.save(path)
