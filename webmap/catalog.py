"""Layer definitions read from ``layers/*.yaml``: schema, labels, style and sensitivity.

Adding a layer kind is adding a YAML file; nothing else in the code names the kinds, except the
demo loader and the access rules, which read the ``sensitivity`` word.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from webmap.errors import BadInput, NotFound

DEFAULT_LAYERS_DIR = Path(__file__).resolve().parent.parent / "layers"

FIELD_TYPES = {"string", "integer", "number", "boolean", "date", "datetime"}
GEOMETRY_TYPES = {"point", "line", "polygon", "any"}
SENSITIVITIES = {"public", "owner", "police", "incident"}


def fold(text) -> str:
    """Lower-case ``text`` and strip Vietnamese diacritics, so that "ninh kieu" matches "Ninh Kiều".

    >>> fold("Quận Ninh Kiều, Cờ Đỏ")
    'quan ninh kieu, co do'
    """
    if text is None:
        return ""
    decomposed = unicodedata.normalize("NFD", str(text))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return stripped.replace("đ", "d").replace("Đ", "D").lower()


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str = "string"
    required: bool = False
    allowed: tuple | None = None
    label: dict = field(default_factory=dict)
    value_labels: dict = field(default_factory=dict)
    aliases: tuple = ()
    visible_to: tuple | None = None  # roles that may see this field; None: whoever sees the layer

    def label_for(self, lang: str) -> str:
        return self.label.get(lang) or self.label.get("vi") or self.name


ROLES = ("admin", "police", "district", "enterprise", "public")


@dataclass(frozen=True)
class LayerDef:
    kind: str
    label: dict
    geometry: str
    sensitivity: str
    fields: tuple
    style: dict
    id_field: str = "id"
    name_field: str | None = None
    owner_field: str | None = None
    time_field: str | None = None
    search_fields: tuple = ()
    order: int = 100
    cluster: bool = False
    source: str = ""

    def label_for(self, lang: str) -> str:
        return self.label.get(lang) or self.label.get("vi") or self.kind

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def get_field(self, name: str) -> FieldDef:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_client(self, lang: str, hidden_fields=frozenset()) -> dict:
        """What the map page needs to draw, label and filter this layer (no data), less hidden fields."""
        return {
            "kind": self.kind,
            "label": self.label_for(lang),
            "geometry": self.geometry,
            "style": self.style,
            "cluster": self.cluster,
            "id_field": self.id_field,
            "name_field": self.name_field,
            "time_field": self.time_field,
            "fields": [
                {
                    "name": f.name,
                    "label": f.label_for(lang),
                    "type": f.type,
                    "values": {k: (v.get(lang) or v.get("vi")) for k, v in f.value_labels.items()},
                }
                for f in self.fields
                if f.name not in hidden_fields
            ],
        }


def _parse_field(kind: str, raw: dict) -> FieldDef:
    name = raw.get("name")
    if not name:
        raise BadInput(f"layer {kind}: a field has no name")
    ftype = raw.get("type", "string")
    if ftype not in FIELD_TYPES:
        raise BadInput(f"layer {kind}: field {name} has type {ftype!r}; expected one of {sorted(FIELD_TYPES)}")
    allowed = raw.get("allowed")
    visible_to = raw.get("visible_to")
    if visible_to is not None:
        unknown = [r for r in visible_to if r not in ROLES]
        if unknown:
            raise BadInput(f"layer {kind}: field {name} visible_to names unknown role(s) {unknown}; roles: {list(ROLES)}")
    return FieldDef(
        name=name,
        type=ftype,
        required=bool(raw.get("required", False)),
        allowed=tuple(allowed) if allowed else None,
        label=dict(raw.get("label") or {}),
        value_labels={str(k): dict(v) for k, v in (raw.get("value_labels") or {}).items()},
        aliases=tuple(a.lower() for a in raw.get("aliases") or ()),
        visible_to=tuple(visible_to) if visible_to is not None else None,
    )


def parse_layer(raw: dict, source: str = "") -> LayerDef:
    """Validate one definition; the message names the file and the offending key."""
    kind = raw.get("kind")
    if not kind or not str(kind).replace("_", "").isalnum() or not str(kind).islower():
        raise BadInput(f"{source}: 'kind' must be a lower-case snake_case name, got {kind!r}")
    geometry = raw.get("geometry")
    if geometry not in GEOMETRY_TYPES:
        raise BadInput(f"{source}: 'geometry' must be one of {sorted(GEOMETRY_TYPES)}, got {geometry!r}")
    sensitivity = raw.get("sensitivity")
    if sensitivity not in SENSITIVITIES:
        raise BadInput(f"{source}: 'sensitivity' must be one of {sorted(SENSITIVITIES)}, got {sensitivity!r}")
    fields = tuple(_parse_field(kind, f) for f in raw.get("fields") or ())
    names = [f.name for f in fields]
    for key in ("id_field", "name_field", "owner_field", "time_field"):
        if raw.get(key) and raw[key] not in names:
            raise BadInput(f"{source}: {key} {raw[key]!r} is not one of the fields {names}")
    restricted = {f.name for f in fields if f.visible_to is not None}
    for key in ("id_field", "name_field", "owner_field", "time_field"):
        if raw.get(key) in restricted:
            raise BadInput(f"{source}: {key} {raw[key]!r} cannot be restricted with visible_to")
    if restricted & set(raw.get("search_fields") or ()):
        raise BadInput(f"{source}: search_fields must not include restricted fields {sorted(restricted)} (search would reveal them)")
    return LayerDef(
        kind=kind,
        label=dict(raw.get("label") or {}),
        geometry=geometry,
        sensitivity=sensitivity,
        fields=fields,
        style=dict(raw.get("style") or {}),
        id_field=raw.get("id_field", "id"),
        name_field=raw.get("name_field"),
        owner_field=raw.get("owner_field"),
        time_field=raw.get("time_field"),
        search_fields=tuple(raw.get("search_fields") or ()),
        order=int(raw.get("order", 100)),
        cluster=bool(raw.get("cluster", False)),
        source=source,
    )


# libyaml's safe loader when PyYAML was built with it (ten times faster), else the pure-Python one
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@lru_cache(maxsize=8)
def _load(layers_dir: str) -> dict:
    directory = Path(layers_dir)
    if not directory.is_dir():
        raise BadInput(f"layer definitions folder not found: {directory}")
    layers = {}
    for path in sorted(directory.glob("*.yaml")):
        with open(path, encoding="utf-8") as fh:
            layer = parse_layer(yaml.load(fh, Loader=_YAML_LOADER) or {}, source=path.name)
        layers[layer.kind] = layer
    return dict(sorted(layers.items(), key=lambda kv: kv[1].order))


def layers_dir() -> str:
    return os.environ.get("WEBMAP_LAYERS_DIR") or str(DEFAULT_LAYERS_DIR)


def load_catalog(directory: str | None = None) -> dict:
    """All layer definitions, keyed by kind, in drawing order."""
    return _load(directory or layers_dir())


def get_layer(kind: str, directory: str | None = None) -> LayerDef:
    catalog = load_catalog(directory)
    if kind not in catalog:
        raise NotFound(f"unknown layer {kind!r}; known layers: {', '.join(catalog)}")
    return catalog[kind]
