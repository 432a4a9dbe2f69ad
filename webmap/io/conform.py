"""Map a file's attributes onto a layer definition: find the columns, convert types, check values.

Columns are matched by name, then by the definition's aliases (including Shapefile's 10-character
truncations), then by an explicit ``mapping`` given by the user, all compared without case or diacritics.
Values of coded fields may be the code itself or its Vietnamese or English label ("Cáp quang" -> fibre).
Columns the definition does not know are kept as extra properties.
"""

from __future__ import annotations

import json
from datetime import timezone, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from webmap.catalog import FieldDef, LayerDef, fold
from webmap.errors import SchemaError

LOCAL_TZ = timezone(timedelta(hours=7))  # Asia/Ho_Chi_Minh has had no DST since 1975
TRUE_WORDS = {"1", "true", "t", "yes", "y", "co", "x"}
FALSE_WORDS = {"0", "false", "f", "no", "n", "khong", ""}
MAX_LISTED = 5
_DATETIME_RE = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+07:00"
_DATE_RE = r"\d{4}-\d{2}-\d{2}"


def _rows(index) -> str:
    shown = ", ".join(str(i + 1) for i in list(index)[:MAX_LISTED])
    more = len(index) - MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def match_columns(layer: LayerDef, columns: list[str], mapping: dict | None = None) -> dict:
    """Return ``{field name: source column}`` for the fields found in ``columns``."""
    by_fold = {}
    for column in columns:
        by_fold.setdefault(fold(column).strip().replace(" ", "_"), column)
    found = {}
    for column, target in (mapping or {}).items():  # source column -> field
        target = target.strip()
        source_key = fold(column).strip().replace(" ", "_")  # compared as the file's columns are
        if target not in layer.field_names:
            raise SchemaError(f"--map names field {target!r}, which layer {layer.kind} does not have ({', '.join(layer.field_names)})")
        if source_key not in by_fold:
            raise SchemaError(f"--map names column {column.strip()!r}, which the file does not have ({', '.join(columns)})")
        found[target] = by_fold[source_key]
    for f in layer.fields:
        if f.name in found:
            continue
        for candidate in (f.name, *f.aliases):
            key = fold(candidate).replace(" ", "_")
            if key in by_fold and by_fold[key] not in found.values():
                found[f.name] = by_fold[key]
                break
    return found


def _arrow_text(series: pd.Series):
    """The column as Arrow text, without copying when pandas already holds it in Arrow (as pyogrio gives it)."""
    try:
        values = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):  # mixed Python objects
        values = pa.array([None if pd.isna(v) else str(v) for v in series], type=pa.large_string())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        try:
            values = pc.cast(values, pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return values


def _text_series(values, index) -> pd.Series:
    """Arrow text back as a pandas "string" column (no copy)."""
    return pd.Series(pd.arrays.ArrowStringArray(values), index=index)


def _label_lookup(f: FieldDef) -> dict:
    lookup = {fold(v): v for v in f.allowed or ()}
    for code, labels in f.value_labels.items():
        for text in labels.values():
            lookup.setdefault(fold(text), code)
    return lookup


def _convert(f: FieldDef, series: pd.Series, layer: LayerDef) -> pd.Series:
    name = f"{layer.kind}.{f.name}"
    if f.type == "string":
        fast = _convert_text(f, series, name)
        if fast is not None:
            return fast
    textual = series.dtype == object or pd.api.types.is_string_dtype(series)
    blank = series.isna() | (series.astype("string").str.strip() == "") if textual else series.isna()
    if f.type == "string":
        out = series.astype("string").str.strip()
        if f.allowed:
            # map each distinct value once: coded columns hold a handful of values in a million rows
            lookup = _label_lookup(f)
            codes, uniques = pd.factorize(out)  # NA -> code -1
            targets = np.array([lookup.get(fold(value)) for value in uniques] + [None], dtype=object)
            mapped = pd.Series(targets[codes], index=out.index, dtype=object)
            bad = ~blank & mapped.isna()
            if bad.any():
                _refuse_values(f, name, series, bad)
            out = mapped.astype("string")
        return out.where(~blank, None)
    if f.type in ("integer", "number"):
        text = series.astype("string").str.strip().str.replace(",", "", regex=False) if series.dtype == object else series
        numbers = pd.to_numeric(text, errors="coerce")
        bad = ~blank & numbers.isna()
        if bad.any():
            raise SchemaError(f"{name}: not a number in rows {_rows(series.index[bad])} (e.g. {series[bad].iloc[0]!r})")
        if f.type == "integer":
            if ((numbers.dropna() % 1) != 0).any():
                raise SchemaError(f"{name}: expected whole numbers, found fractions")
            return numbers.astype("Int64")
        return numbers.astype("Float64")
    if f.type == "boolean":
        folded = series.map(lambda v: fold(v).strip() if isinstance(v, str) else ("1" if v is True or v == 1 else ("0" if v is False or v == 0 else None)))
        out = folded.map(lambda v: True if v in TRUE_WORDS - {""} else (False if v in FALSE_WORDS else None))
        bad = ~blank & out.isna()
        if bad.any():
            raise SchemaError(f"{name}: expected yes/no values, rows {_rows(series.index[bad])}")
        return out.astype("boolean")
    if f.type in ("date", "datetime"):
        return _convert_time(f, series, blank, name)
    raise SchemaError(f"{name}: unsupported field type {f.type}")


def _refuse_values(f, name, series, bad):
    values = sorted({str(v) for v in series[bad]})[:MAX_LISTED]
    raise SchemaError(
        f"{name}: value(s) {', '.join(repr(v) for v in values)} not allowed (rows {_rows(series.index[bad])}); "
        f"allowed: {', '.join(f.allowed)}"
    )


def _convert_text(f: FieldDef, series: pd.Series, name: str):
    """A text field the Arrow way (a million rows in tens of milliseconds): trimmed, blanks empty, and coded
    values mapped from their distinct values only. None when the column cannot be read as text."""
    values = _arrow_text(series)
    if values is None:
        return None
    trimmed = pc.utf8_trim_whitespace(values)
    blank = pc.fill_null(pc.equal(trimmed, ""), True)
    if not f.allowed:
        return _text_series(pc.if_else(blank, pa.scalar(None, type=trimmed.type), trimmed), series.index)
    encoded = pc.dictionary_encode(trimmed)
    lookup = _label_lookup(f)
    targets = pa.array([lookup.get(fold(value)) if value else None for value in encoded.dictionary.to_pylist()],
                       type=trimmed.type)
    mapped = pc.take(targets, encoded.indices)
    bad = pc.and_(pc.invert(blank), pc.is_null(mapped)).to_numpy(zero_copy_only=False)
    if bad.any():
        _refuse_values(f, name, series, bad)
    return _text_series(pc.if_else(blank, pa.scalar(None, type=trimmed.type), mapped), series.index)


def _canonical_times(f, series):
    """The column as it is when every value is already canonical text (ISO 8601, +07:00) of a real date: the
    usual case for files this product wrote, checked in Arrow; None otherwise (then parsed by pandas)."""
    if not (series.dtype == object or pd.api.types.is_string_dtype(series)):
        return None
    values = _arrow_text(series)
    if values is None:
        return None
    trimmed = pc.utf8_trim_whitespace(values)
    blank = pc.fill_null(pc.equal(trimmed, ""), True)
    pattern = "^" + (_DATE_RE if f.type == "date" else _DATETIME_RE) + "$"
    canonical = pc.fill_null(pc.match_substring_regex(trimmed, pattern), False)
    if not pc.all(pc.or_(blank, canonical)).as_py():
        return None
    width, fmt = (10, "%Y-%m-%d") if f.type == "date" else (19, "%Y-%m-%dT%H:%M:%S")
    parsed = pc.strptime(pc.utf8_slice_codeunits(trimmed, 0, width), format=fmt, unit="s", error_is_null=True)
    if not pc.all(pc.or_(blank, pc.is_valid(parsed))).as_py():  # 2024-02-30 looks canonical: let pandas say why
        return None
    return _text_series(pc.if_else(blank, pa.scalar(None, type=trimmed.type), trimmed), series.index)


def _convert_time(f, series, blank, name):
    fast = _canonical_times(f, series)
    if fast is not None:
        return fast
    if pd.api.types.is_datetime64_any_dtype(series):
        parsed = series
    else:
        text = series.astype("string").str.strip()
        parsed = pd.to_datetime(text, errors="coerce", format="ISO8601", utc=False)
        if parsed.isna().sum() > blank.sum():
            parsed = pd.to_datetime(text, errors="coerce", dayfirst=True, format="mixed")
    if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_any_dtype(parsed):
            parsed = parsed.dt.tz_localize(LOCAL_TZ)
        else:  # mixed offsets come back as objects: go through UTC
            parsed = pd.to_datetime(parsed, utc=True, errors="coerce")
    parsed = parsed.dt.tz_convert(LOCAL_TZ)
    bad = ~blank & parsed.isna()
    if bad.any():
        raise SchemaError(
            f"{name}: not a date/time in rows {_rows(series.index[bad])} (e.g. {series[bad].iloc[0]!r}); use ISO 8601 such as 2024-03-14T02:35:00+07:00"
        )
    fmt = "%Y-%m-%d" if f.type == "date" else "%Y-%m-%dT%H:%M:%S+07:00"
    canonical = _DATE_RE if f.type == "date" else _DATETIME_RE
    if series.dtype != object and not pd.api.types.is_string_dtype(series):
        return parsed.dt.strftime(fmt).astype("string").where(~blank, None)
    text = series.astype("string").str.strip()
    already = text.str.fullmatch(canonical).fillna(False).astype(bool)
    if already.all():  # the common case, and strftime is slow on a million rows
        return text.where(~blank, None)
    out = text.copy()
    out[~already] = parsed[~already].dt.strftime(fmt)
    return out.astype("string").where(~blank, None)


def conform_attributes(layer: LayerDef, frame: pd.DataFrame, *, mapping=None, owner=None, warnings=None):
    """Return a frame with the layer's fields (converted), ``extra`` (JSON) and ``_search`` columns."""
    warnings = warnings if warnings is not None else []
    columns = [c for c in frame.columns if c != "geometry"]
    found = match_columns(layer, columns, mapping)
    out = pd.DataFrame(index=frame.index)
    for f in layer.fields:
        if f.name == layer.owner_field and owner:
            if f.name in found:
                differing = frame[found[f.name]].astype("string").str.strip()
                if (differing.notna() & (differing != owner)).any():
                    warnings.append(f"{f.name} column replaced by --owner {owner}")
            out[f.name] = pd.Series(owner, index=frame.index, dtype="string")
            continue
        if f.name not in found:
            if f.required:
                raise SchemaError(
                    f"{layer.kind}: required column {f.name!r} not found; the file has {', '.join(columns) or 'no columns'}"
                    f" (name it with --map COLUMN={f.name}{' or give --owner' if f.name == layer.owner_field else ''})"
                )
            out[f.name] = pd.Series(None, index=frame.index, dtype=_empty_dtype(f))
            continue
        converted = _convert(f, frame[found[f.name]], layer)
        if f.required:
            missing = converted.isna()
            if missing.any():
                raise SchemaError(f"{layer.kind}.{f.name} is required but empty in rows {_rows(frame.index[missing])}")
        out[f.name] = converted
    ids = out[layer.id_field]
    present = ids.dropna()
    unique = len(pc.unique(pa.array(present, from_pandas=True))) if len(present) else 0  # 3x count_distinct
    duplicated = ids[ids.notna() & ids.duplicated(keep=False)] if unique != len(present) else ids.iloc[:0]
    if len(duplicated):
        values = sorted(set(duplicated.astype(str)))[:MAX_LISTED]
        raise SchemaError(f"{layer.kind}.{layer.id_field} must be unique; repeated: {', '.join(values)}")
    used = set(found.values())
    extras = [c for c in columns if c not in used]
    if extras:
        warnings.append(f"columns kept as extra properties: {', '.join(map(str, extras))}")
        out["extra"] = _extra_json(frame[extras])
    else:
        out["extra"] = pd.Series(None, index=frame.index, dtype="string")
    out["_search"] = _search_text(layer, out)
    return out


def _empty_dtype(f: FieldDef) -> str:
    return {"integer": "Int64", "number": "Float64", "boolean": "boolean"}.get(f.type, "string")


def _extra_json(frame: pd.DataFrame) -> pd.Series:
    """One JSON object per row (nulls for missing values), built by pandas' C encoder: no per-row Python
    on the bulk path (``iterrows`` took ~100 s per million rows)."""
    try:
        text = frame.to_json(orient="records", lines=True, force_ascii=False, double_precision=15,
                             date_format="iso", default_handler=str)
        lines = text.split("\n")[: len(frame)]  # string values have their newlines escaped
        if len(lines) == len(frame):
            return pd.Series(lines, index=frame.index, dtype="string")
    except (ValueError, TypeError, OverflowError):  # duplicate column names, exotic objects
        pass
    return _extra_json_rows(frame)


def _extra_json_rows(frame: pd.DataFrame) -> pd.Series:
    def to_json(row):
        values = {str(k): (None if pd.isna(v) else (v.item() if isinstance(v, np.generic) else v)) for k, v in row.items()}
        values = {k: (v if isinstance(v, (str, int, float, bool)) or v is None else str(v)) for k, v in values.items()}
        return json.dumps(values, ensure_ascii=False)

    return pd.Series([to_json(row) for _, row in frame.iterrows()], index=frame.index, dtype="string")


def _search_text(layer: LayerDef, out: pd.DataFrame) -> pd.Series:
    """Folded text that search matches against (vectorised: this runs on every row of big imports)."""
    fields = [f for f in layer.search_fields if f in out]
    if not fields:
        return pd.Series("", index=out.index, dtype="string")
    joined = out[fields[0]].astype("string").fillna("")
    for name in fields[1:]:
        joined = joined + " " + out[name].astype("string").fillna("")
    joined = joined.str.strip()
    ascii_mask = joined.str.isascii().fillna(True).astype(bool)
    folded = joined.str.lower()
    if (~ascii_mask).any():
        folded[~ascii_mask] = joined[~ascii_mask].map(fold)
    return folded.astype("string")
