"""The isolation matrix: every role x every route x every layer, generated from the expectations below.

A denied cell must not contain any hidden feature's id or name anywhere in the body (lists, counts,
extents, search hits, errors). A route the app gains without an entry in ROUTES fails
``test_every_route_declares_its_rule``: a new output is not done until it is in this matrix.
"""

from __future__ import annotations

import json

import geopandas as gpd
import pytest
from shapely.geometry import Point, box

import fixtures
from conftest import log_in, make_account
from webmap.importer import import_layer

# Extra features outside district 916, owned by MKN, and an incident next to them only.
FAR = (105.65, 10.12)


def dataset(tmp_path):
    districts = gpd.GeoDataFrame(
        {"code": ["916", "917"], "name": ["Ninh Kiều", "Ô Môn"], "type": ["Quận", "Quận"], "parent": ["92", "92"]},
        geometry=[box(105.74, 10.0, 105.80, 10.06), box(105.60, 10.10, 105.70, 10.15)], crs="EPSG:4326")
    stations = fixtures.stations()
    far_station = gpd.GeoDataFrame({"id": ["S-MKN-9"], "name": ["Trạm BTS Thới Long 09"], "owner": ["MKN"],
                                    "kind": ["bts"], "criticality": ["high"], "address": ["Ô Môn"]},
                                   geometry=[Point(*FAR)], crs="EPSG:4326")
    incidents = fixtures.incidents()
    incidents["reporter_name"] = ["Nguyễn Văn Báo", None, None]
    incidents["reporter_contact"] = ["0909000111", None, None]
    far_incident = gpd.GeoDataFrame({"id": ["I-FAR"], "occurred_at": ["2026-06-01T08:00:00+07:00"],
                                     "type": ["cable_theft"], "status": ["reported"], "severity": ["low"],
                                     "damage_vnd": [1_000_000], "source": ["hotline"], "asset_id": ["S-MKN-9"],
                                     "description": ["Mất cáp gần trạm"], "reporter_name": ["Trần Thị Gọi"],
                                     "reporter_contact": ["0911222333"]},
                                    geometry=[Point(FAR[0], FAR[1] + 0.0005)], crs="EPSG:4326")
    frames = {
        "districts": districts,
        "cable_routes": fixtures.cable_routes(),
        "stations": gpd.GeoDataFrame(gpd.pd.concat([stations, far_station], ignore_index=True), crs="EPSG:4326"),
        "key_sites": fixtures.key_sites(),
        "incidents": gpd.GeoDataFrame(gpd.pd.concat([incidents, far_incident], ignore_index=True), crs="EPSG:4326"),
    }
    paths = {}
    for kind, frame in frames.items():
        paths[kind] = fixtures.write_geojson(frame, str(tmp_path / f"{kind}.geojson"))
    return frames, paths


# What each role may see, by feature id (worked out by hand from the fixture geometry and the rules):
# C-001 (VTSH) and C-002 (MKN) lie in 916; S-001, S-002 (VTSH) and S-003 (BDTM) in 916; S-MKN-9 in 917.
# I-050 and I-150 are 50 m and 150 m from C-001 (and about 610 m and 660 m from C-002's north end, beyond
# the 500 m an enterprise sees); I-2000 is 2 km from C-001 and 1.5 km from S-002; I-FAR is 55 m from S-MKN-9.
ALL = {
    "districts": {"916", "917"},
    "cable_routes": {"C-001", "C-002"},
    "stations": {"S-001", "S-002", "S-003", "S-MKN-9"},
    "key_sites": {"K-001"},
    "incidents": {"I-050", "I-150", "I-2000", "I-FAR"},
}
EXPECTED = {
    "public": {"districts": ALL["districts"]},
    "admin": ALL,
    "police": ALL,
    "district": {"districts": ALL["districts"], "cable_routes": {"C-001", "C-002"},
                 "stations": {"S-001", "S-002", "S-003"}, "incidents": {"I-050", "I-150", "I-2000"}},
    "vtsh": {"districts": ALL["districts"], "cable_routes": {"C-001"}, "stations": {"S-001", "S-002"},
             "incidents": {"I-050", "I-150"}},
    "mkn": {"districts": ALL["districts"], "cable_routes": {"C-002"}, "stations": {"S-MKN-9"},
            "incidents": {"I-FAR"}},
}
ACCOUNTS = {"public": ("public", None), "admin": ("admin", None), "police": ("police", "CA-CT"),
            "district": ("district", "916"), "vtsh": ("enterprise", "VTSH"), "mkn": ("enterprise", "MKN")}
REPORTER_VISIBLE = {"admin", "police"}

# Every endpoint of the app and how the matrix covers it.
ROUTES = {
    "api.list_layers": "matrix",
    "api.layer_features": "matrix",
    "api.search": "matrix",
    "pages.index": "matrix",
    "auth.login": "no data: a form",
    "auth.logout": "no data: POST ends the session",
    "auth.change_password": "no data: own password only",
    "vendor.asset": "no data: Leaflet files",
    "tiles.tile": "basemap tiles: public by nature",
    "static": "no data: the app's own JS and CSS",
    "upload.upload": "tests/test_upload.py: enterprises own rows only, other roles 404 or login",
    "admin.audit": "admin only, 404 for every other role (test_audit_page_is_for_admins_only; tests/test_admin_audit.py)",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One app and store for the whole matrix, with a logged-in client per role."""
    import os

    from webmap.app import create_app

    folder = tmp_path_factory.mktemp("access")
    os.environ["WEBMAP_INSTANCE"] = str(folder / "instance")
    try:
        app = create_app({"TESTING": True})
    finally:
        del os.environ["WEBMAP_INSTANCE"]
    store = app.extensions["webmap_store"]
    frames, paths = dataset(folder)
    for kind, path in paths.items():
        import_layer(store, path, kind)
    clients = {}
    for name, (role, org) in ACCOUNTS.items():
        client = app.test_client()
        if role != "public":
            log_in(client, make_account(app, f"{name}.user", role, org))
        clients[name] = client
    return app, frames, clients


def hidden_words(frames, name, kind=None):
    """Ids and names of every feature the role may not see (optionally of one layer)."""
    words = set()
    for layer, frame in frames.items():
        if kind and layer != kind:
            continue
        visible = EXPECTED[name].get(layer, set())
        for _, row in frame.iterrows():
            ident = row["code"] if layer == "districts" else row["id"]
            if ident not in visible:
                words.add(ident)
                if isinstance(row.get("name"), str) and row["name"] not in {"Ninh Kiều", "Ô Môn"}:
                    words.add(row["name"])
    return words


def assert_hides(body: str, words):
    leaked = sorted(w for w in words if w in body)
    assert not leaked, f"leaked: {leaked}"


def test_every_route_declares_its_rule(world):
    app, _, _ = world
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints == set(ROUTES), f"undeclared: {sorted(endpoints - set(ROUTES))}; gone: {sorted(set(ROUTES) - endpoints)}"


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_layer_list_counts_and_extents(world, name):
    _, frames, clients = world
    response = clients[name].get("/api/layers")
    assert response.status_code == 200
    layers = {layer["kind"]: layer for layer in response.get_json()["layers"]}
    assert set(layers) - {"wards"} == set(EXPECTED[name])  # wards: public, empty in this dataset
    for kind, ids in EXPECTED[name].items():
        assert layers[kind]["count"] == len(ids), kind
        if ids and kind != "districts":
            frame = frames[kind][frames[kind]["id"].isin(ids)]
            assert layers[kind]["bbox"] == pytest.approx(list(frame.total_bounds)), kind
    assert_hides(response.data.decode(), hidden_words(frames, name))
    fields = {f["name"] for f in layers.get("incidents", {}).get("fields", [])}
    if "incidents" in layers:
        assert ("reporter_name" in fields) == (name in REPORTER_VISIBLE)


@pytest.mark.parametrize("name", list(ACCOUNTS))
@pytest.mark.parametrize("kind", list(ALL))
@pytest.mark.parametrize("bbox", [None, "105.0,9.5,106.0,10.5", "105.769,10.029,105.771,10.0316"])
def test_features(world, name, kind, bbox):
    _, frames, clients = world
    url = f"/api/layers/{kind}/features" + (f"?bbox={bbox}" if bbox else "")
    response = clients[name].get(url)
    body = response.data.decode()
    if kind not in EXPECTED[name]:
        assert response.status_code == 404
        assert kind not in json.loads(body)["error"].split("known layers:")[1]
    else:
        assert response.status_code == 200
        ids = {f["id"] for f in json.loads(body)["features"]}
        assert ids <= EXPECTED[name][kind]
        if bbox is None or bbox.startswith("105.0"):
            assert ids == EXPECTED[name][kind]
    assert_hides(body, hidden_words(frames, name, kind))
    if kind == "incidents" and name not in REPORTER_VISIBLE:
        assert "Nguyễn Văn Báo" not in body and "0909000111" not in body and "reporter" not in body


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_search_never_finds_what_is_hidden(world, name):
    _, frames, clients = world
    for word in sorted(hidden_words(frames, name)):
        response = clients[name].get("/api/search", query_string={"q": word})
        assert response.status_code == 200
        # the answer echoes the user's own query; everything else must hold nothing hidden
        assert_hides(json.dumps(response.get_json()["results"], ensure_ascii=False), hidden_words(frames, name))
    for kind, ids in EXPECTED[name].items():
        if kind in ("districts", "incidents"):
            continue
        for ident in ids:
            hits = clients[name].get("/api/search", query_string={"q": ident}).get_json()["results"]
            assert ident in [h["id"] for h in hits], (kind, ident)


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_map_page_lists_only_visible_layers(world, name):
    _, frames, clients = world
    response = clients[name].get("/")
    assert response.status_code == 200
    html = response.data.decode()
    config = json.loads(html.split("WebMap.start(", 1)[1].split(", ", 1)[1].rsplit(");", 1)[0].split(");\n")[0])
    kinds = {layer["kind"] for layer in config["layers"]}
    assert kinds - {"wards"} == set(EXPECTED[name])
    assert_hides(html, hidden_words(frames, name))


def test_key_site_reads_are_audited(world):
    from webmap import audit

    app, _, clients = world
    clients["police"].get("/api/layers/key_sites/features")
    clients["vtsh"].get("/api/layers/key_sites/features")  # refused: nothing read, nothing to record as a read
    entries = audit.for_app(app).entries(action="read_key_sites", limit=10)
    assert entries and entries[0].actor == "police.user"
    assert all(e.actor != "vtsh.user" for e in entries)


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_audit_page_is_for_admins_only(world, name):
    """The audit log names users, addresses and what they read: admins only; for everyone else the page
    does not exist (the same 404 as an unknown URL, with nothing of the log in it)."""
    from webmap import audit

    app, frames, clients = world
    audit.for_app(app).record("someone.else", "login", "secret-audit-target", {"role": "police"}, "10.9.8.7")
    response = clients[name].get("/admin/audit")
    body = response.data.decode()
    if name == "admin":
        assert response.status_code == 200
        assert "someone.else" in body and "secret-audit-target" in body and "10.9.8.7" in body
        return
    assert response.status_code == 404
    assert response.data == clients[name].get("/admin/no-such-page").data
    for word in ("someone.else", "secret-audit-target", "10.9.8.7", "admin.user", "read_audit", "Nhật ký"):
        assert word not in body, word
    assert_hides(body, hidden_words(frames, name))


@pytest.mark.parametrize("name", list(ACCOUNTS))
@pytest.mark.parametrize("kind", list(ALL))
def test_read_visible_gives_each_role_its_rows_only(world, name, kind):
    """The whole-layer reader that analyses, exports and prints use answers exactly the matrix."""
    from webmap.access import AccessContext, Principal, read_visible
    from webmap.catalog import load_catalog

    app, frames, _ = world
    role, org = ACCOUNTS[name]
    who = Principal(f"{name}.user", role, org, "916" if role == "district" else None)
    context = AccessContext(app.extensions["webmap_store"], load_catalog(), app.config["INCIDENT_NEAR_ASSETS_M"])
    gdf = read_visible(app.extensions["webmap_store"], who, kind, load_catalog(), context)
    if kind not in EXPECTED[name]:
        assert gdf is None
        return
    id_field = "code" if kind == "districts" else "id"
    assert set(gdf[id_field]) == EXPECTED[name][kind]
    if kind == "incidents":
        assert ("reporter_name" in gdf.columns) == (name in REPORTER_VISIBLE)
