"""Layer definitions: every file parses, every label has both languages, adding a kind is adding a file."""

import pytest
import yaml

from webmap.catalog import load_catalog, parse_layer
from webmap.errors import BadInput


def test_every_definition_is_complete():
    catalog = load_catalog()
    assert set(catalog) >= {"districts", "wards", "cable_routes", "stations", "key_sites", "incidents"}
    for layer in catalog.values():
        assert set(layer.label) == {"vi", "en"}, layer.kind
        for f in layer.fields:
            assert set(f.label) == {"vi", "en"}, (layer.kind, f.name)
            if f.allowed:
                assert set(f.value_labels) == set(f.allowed), (layer.kind, f.name)
                for code, labels in f.value_labels.items():
                    assert set(labels) == {"vi", "en"} and all(labels.values()), (layer.kind, f.name, code)


def test_a_new_kind_is_a_new_file(tmp_path):
    (tmp_path / "patrol_posts.yaml").write_text(
        "kind: patrol_posts\nlabel: {vi: Chốt tuần tra, en: Patrol posts}\ngeometry: point\nsensitivity: police\n"
        "fields:\n  - {name: id, type: string, required: true, label: {vi: Mã, en: ID}}\nstyle: {kind: point}\n",
        encoding="utf-8",
    )
    catalog = load_catalog(str(tmp_path))
    assert list(catalog) == ["patrol_posts"] and catalog["patrol_posts"].label_for("vi") == "Chốt tuần tra"


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ({"kind": "Bad Kind", "geometry": "point", "sensitivity": "public"}, "snake_case"),
        ({"kind": "x", "geometry": "raster", "sensitivity": "public"}, "geometry"),
        ({"kind": "x", "geometry": "point", "sensitivity": "secret"}, "sensitivity"),
        ({"kind": "x", "geometry": "point", "sensitivity": "public", "fields": [{"name": "a", "type": "blob"}]}, "type"),
        ({"kind": "x", "geometry": "point", "sensitivity": "public", "id_field": "nope"}, "id_field"),
    ],
)
def test_bad_definitions_are_refused_with_the_key_named(raw, fragment):
    with pytest.raises(BadInput, match=fragment):
        parse_layer(raw, source="x.yaml")
