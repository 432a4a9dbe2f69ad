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
from conftest import app_in, clients_by_name
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
    "exposure.page": "enterprise: own org only; police/admin any; district, visitor 404 (test_exposure_*)",
    "exposure.api": "as exposure.page; another org is the 404 of an unknown one (test_exposure_*)",
    "exposure.export": "as exposure.page: CSV/XLSX/GeoJSON hold only the org's own assets (test_exposure_outputs_*)",
    "exposure.summary_pdf": "as exposure.page; pdftotext checked (test_exposure_outputs_hold_only_*)",
    "reports.new_report": "enterprise, district, police; admin 404, visitor to login (test_report_pages_by_role)",
    "reports.api_submit": "as new_report; visitor 401 (test_report_pages_by_role; tests/test_reports.py)",
    "reports.list_reports": "own organisation's reports; police and admin all (test_reports_of_another_enterprise_never_show)",
    "reports.api_list": "as list_reports (test_reports_of_another_enterprise_never_show)",
    "reports.verify": "police and admin only, 404 for every other role (test_report_pages_by_role)",
    "reports.reject": "police and admin only, 404 for every other role (test_report_pages_by_role)",
    "reports.sharing": "enterprise only, its own flag; 404 for every other role (test_report_pages_by_role)",
    "alerts.page": "own organisation's alerts; admin: police alerts; district 404, visitor to login "
                   "(test_alerts_show_each_role_only_its_own; tests/test_alerts.py)",
    "alerts.acknowledge": "404 outside the user's own alerts (test_alerts_cannot_be_acknowledged_by_another_org)",
    "alerts.count": "own unacknowledged count; district and visitor 404 (test_alerts_show_each_role_only_its_own)",
    "prints.patrol_pdf": "every role's PDF holds only what it may see; areas staff only (test_patrol_print_*)",
    "priority.page": "admin and police only, the 404 of an unknown URL for every other role (test_priority_is_for_staff_only)",
    "priority.api_priority": "as priority.page (test_priority_is_for_staff_only; tests/test_priority_page.py)",
    "priority.export": "as priority.page; every format (test_priority_is_for_staff_only; tests/test_priority_page.py)",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One app and store for the whole matrix, with a logged-in client per role."""
    folder = tmp_path_factory.mktemp("access")
    app = app_in(folder)
    frames = import_dataset(app, folder)
    return app, frames, clients_by_name(app, ACCOUNTS, "user")


def import_dataset(app, folder):
    """Write the matrix's layers (``dataset``) into ``folder`` and import them into the app's store."""
    frames, paths = dataset(folder)
    for kind, path in paths.items():
        import_layer(app.extensions["webmap_store"], path, kind)
    return frames


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
    assert set(layers) - {"wards", "roads"} == set(EXPECTED[name])  # wards, roads: public, empty in this dataset
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
    assert kinds - {"wards", "roads"} == set(EXPECTED[name])
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


# -- alerts (webmap/alerts.py, webmap/views/alerts.py) --------------------------------------------------------
ALERT_SITE_INCIDENT = "I-KEYSITE"  # inside K-001, and 78 m from VTSH's S-001 at C-001's east end
# the duty officer (police; the admin sees police alerts) is told of every incident within ALERT_DISTANCE_M
# (100 m) of any enterprise's asset, as the owner is, and of the one inside the key site
ALERTED = {"vtsh": {"I-050", ALERT_SITE_INCIDENT}, "mkn": {"I-FAR"}, "police": {"I-050", "I-FAR", ALERT_SITE_INCIDENT},
           "admin": {"I-050", "I-FAR", ALERT_SITE_INCIDENT}}


def _alerts_made(app, frames):
    """The matrix's incidents (and one inside the key site) alerted; notify_incidents is idempotent."""
    from webmap.alerts import notify_incidents

    extra = frames["incidents"].iloc[[0]].copy()
    extra["id"], extra["geometry"] = [ALERT_SITE_INCIDENT], [Point(105.7805, 10.0305)]
    notify_incidents(app, gpd.GeoDataFrame(gpd.pd.concat([frames["incidents"], extra], ignore_index=True),
                                           crs="EPSG:4326"), "recorded")


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_alerts_show_each_role_only_its_own(world, name):
    """An enterprise's alerts name only its own assets: never a key site, another enterprise's asset or an
    incident it may not see; the police and the admin see the key-site duty alerts; others have no page."""
    app, frames, clients = world
    _alerts_made(app, frames)
    client = clients[name]
    page, count = client.get("/alerts"), client.get("/api/alerts/count")
    if name == "public":
        assert page.status_code == 302 and "/login" in page.headers["Location"]
        assert count.status_code == 404
        return
    if name == "district":
        assert page.status_code == 404 and page.data == client.get("/no-such-page").data
        assert count.status_code == 404 and count.get_json()["status"] == 404
        return
    body = page.data.decode()
    assert page.status_code == 200
    every = {"I-050", "I-150", "I-2000", "I-FAR", ALERT_SITE_INCIDENT}
    shown = {ident for ident in every if f"<td>{ident} <small>" in body}
    assert shown == ALERTED[name]
    assert count.get_json() == {"count": len(ALERTED[name])}
    assert_hides(body, hidden_words(frames, name))
    if name in ("vtsh", "mkn"):
        assert_hides(body, {"K-001", "[DEMO] Trung tâm điều hành", "Nguyễn Văn Báo", "Trần Thị Gọi", "Mất cáp gần trạm"})
        assert "delivery-problems" not in body


def test_alerts_cannot_be_acknowledged_by_another_org(world):
    import re

    from webmap.alerts import get_alert_store, list_alerts

    app, frames, clients = world
    _alerts_made(app, frames)
    alerts = {(a.org_code, a.incident_id): a for a in list_alerts(get_alert_store(app))}
    target = alerts["VTSH", "I-050"]
    for name in ("mkn", "police", "district", "admin"):
        token = re.search(r'name="csrf_token" value="([^"]+)"', clients[name].get("/").data.decode()).group(1)
        answer = clients[name].post(f"/alerts/{target.id}/ack", data={"csrf_token": token})
        assert answer.status_code == 404, name
    assert clients["public"].post(f"/alerts/{target.id}/ack").status_code in (400, 404)  # no session, no token
    assert {(a.org_code, a.incident_id): a for a in list_alerts(get_alert_store(app))}[
        "VTSH", "I-050"].acknowledged_at is None



# -- incident reports and sharing between enterprises (webmap/reports.py, webmap/views/reports.py) ----------------
# Three reports near both VTSH's C-001 and MKN's C-002 (worked by hand: 0.001° of latitude is 110.6 m here):
# MKN's at (105.775, 10.029), 111 m north of C-002's end and 111 m south of C-001; VTSH's at (105.7745, 10.0295),
# 55 m south of C-001 and 175 m from C-002's end; the police's at (105.776, 10.0285), 110 m from C-002 and 166 m
# from C-001. All within the 500 m each enterprise sees, all inside district 916.
MKN_SECRET = {"description": "Đứt cáp MKN mật 42", "damage_vnd": 7_777_777}
SHARE_REPORTS = {
    "mkn": {"type": "cable_theft", "occurred_at": "2026-11-03T21:40", "asset_id": "C-002", "lon": 105.775,
            "lat": 10.029, **MKN_SECRET},
    "vtsh": {"type": "sabotage", "occurred_at": "2026-11-04T02:10", "asset_id": "C-001", "lon": 105.7745,
             "lat": 10.0295, "description": "Hộp cáp VTSH bị phá", "damage_vnd": 3_333_333},
    "police": {"type": "other", "occurred_at": "2026-11-05T10:00", "lon": 105.776, "lat": 10.0285,
               "description": "Tuần tra phát hiện"},
}


@pytest.fixture(scope="module")
def sharing_world(tmp_path_factory):
    """A world of its own (the matrix's stays as EXPECTED says), with one report by MKN, VTSH and the police."""
    from webmap import reports
    from webmap.access import Principal

    folder = tmp_path_factory.mktemp("sharing")
    app = app_in(folder)
    frames = import_dataset(app, folder)
    clients, ids = clients_by_name(app, ACCOUNTS, "user"), {}
    for name, data in SHARE_REPORTS.items():
        role, org = ACCOUNTS[name]
        ids[name] = reports.submit_report(app, Principal(f"{name}.user", role, org), dict(data))
    return app, frames, clients, ids


def _token(client, path="/"):
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).data.decode()).group(1)


def _set_sharing(app, org, on):
    from webmap.accounts import get_accounts

    get_accounts(app).set_share_incidents(org, on)


def _incident_features(client, **params):
    response = client.get("/api/layers/incidents/features", query_string=params)
    assert response.status_code == 200
    return response.data.decode(), response.get_json()["features"]


def _mkn_words(ids):
    return {ids["mkn"], MKN_SECRET["description"], "7777777", "C-002"}


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_report_pages_by_role(sharing_world, name):
    """Who may use each reports endpoint: the same 404 as an unknown URL for the others, login for visitors."""
    app, _, clients, ids = sharing_world
    client = clients[name]
    role = ACCOUNTS[name][0]
    new, listing, api_list = client.get("/reports/new"), client.get("/reports"), client.get("/api/reports")
    if name == "public":
        assert "/login" in new.headers["Location"] and "/login" in listing.headers["Location"]
        assert api_list.status_code == 401
        for path in (f"/reports/{ids['mkn']}/verify", f"/reports/{ids['mkn']}/reject", "/reports/sharing", "/api/reports"):
            assert client.post(path).status_code in (400, 401, 302)  # no token, no session: nothing happens
        return
    assert new.status_code == (404 if role == "admin" else 200)
    if role == "admin":
        assert new.data == client.get("/reports/no-such-page").data
    assert listing.status_code == 200 and api_list.status_code == 200
    token = _token(client)
    decide = client.post(f"/reports/{ids['police']}/verify", data={"csrf_token": token})
    reject = client.post(f"/reports/{ids['police']}/reject", data={"csrf_token": token, "reason": "x"})
    if role in ("admin", "police"):
        assert decide.status_code == 303 and reject.status_code == 303  # verified once; the rejection is refused
        from webmap.reports import history

        assert [s["action"] for s in history(app, ids["police"])] == ["submitted", "verified"]
    else:
        assert decide.status_code == reject.status_code == 404
    sharing = client.post("/reports/sharing", data={"csrf_token": token, "share": "0"})
    assert sharing.status_code == (303 if role == "enterprise" else 404)


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_reports_of_another_enterprise_never_show(sharing_world, name):
    """Reports lists: an enterprise or a district its own organisation's; the police and admin every one."""
    _, _, clients, ids = sharing_world
    if name == "public":
        return
    page = clients[name].get("/reports").data.decode()
    listed = {r["id"] for r in clients[name].get("/api/reports").get_json()["reports"]}
    expected = {"vtsh": {ids["vtsh"]}, "mkn": {ids["mkn"]}, "district": set(),
                "police": set(ids.values()), "admin": set(ids.values())}[name]
    assert listed == expected
    assert {i for i in ids.values() if i in page} == expected
    if name == "vtsh":
        assert_hides(page, _mkn_words(ids) | {"police.user", "Tuần tra phát hiện"})


def test_sharing_decides_what_another_enterprise_sees(sharing_world):
    """Off: another enterprise's reports do not exist for VTSH (features, counts, search, whole-layer reads);
    on: their location, time and type only; off again: gone again. The police's recording is seen as any
    incident near VTSH's assets; VTSH's own report fully."""
    from webmap.access import AccessContext, Principal, read_visible
    from webmap.catalog import load_catalog

    app, _, clients, ids = sharing_world
    vtsh, mkn = clients["vtsh"], clients["mkn"]
    who = Principal("vtsh.user", "enterprise", "VTSH")

    def whole():
        gdf = read_visible(app.extensions["webmap_store"], who, "incidents", load_catalog(), AccessContext.for_app(app))
        return gdf

    def count():
        layers = {layer["kind"]: layer for layer in vtsh.get("/api/layers").get_json()["layers"]}
        return layers["incidents"]["count"]

    base = EXPECTED["vtsh"]["incidents"] | {ids["vtsh"], ids["police"]}
    for on in (False, True, False):
        _set_sharing(app, "MKN", on)
        body, features = _incident_features(vtsh)
        found = {f["id"] for f in features}
        assert found == base | ({None} if on else set())
        assert count() == len(base) + (1 if on else 0)
        assert_hides(body, _mkn_words(ids))
        if on:
            (shared,) = [f for f in features if f["id"] is None]
            assert shared["geometry"]["coordinates"] == pytest.approx([105.775, 10.029])
            assert {k: v for k, v in shared["properties"].items() if v is not None} == {
                "occurred_at": "2026-11-03T21:40:00+07:00", "type": "cable_theft"}
            # a filter on a field the shared report does not show must not find it; one on its type does
            assert None not in {f["id"] for f in _incident_features(vtsh, status="reported")[1]}
            assert None not in {f["id"] for f in _incident_features(vtsh, severity="medium")[1]}
            assert None in {f["id"] for f in _incident_features(vtsh, type="cable_theft")[1]}
        gdf = whole()
        rows = gdf[gdf["geometry"].x.round(6).eq(105.775) & gdf["geometry"].y.round(6).eq(10.029)]
        assert len(rows) == (1 if on else 0)
        if on:
            assert rows.iloc[0][["id", "asset_id", "description", "damage_vnd", "status", "source"]].isna().all()
            assert "reported_by_org" not in gdf.columns and "reporter_name" not in gdf.columns
        for word in ("mat 42", "Đứt cáp MKN", ids["mkn"], "R-"):
            hits = vtsh.get("/api/search", query_string={"q": word}).get_json()["results"]
            assert ids["mkn"] not in {h["id"] for h in hits} and None not in {h["id"] for h in hits}
        # VTSH's own report in full (less the police-only fields); the police's as any incident near it
        (own,) = [f for f in features if f["id"] == ids["vtsh"]]
        assert own["properties"]["description"] == "Hộp cáp VTSH bị phá" and "reported_by_org" not in own["properties"]
        (police,) = [f for f in features if f["id"] == ids["police"]]
        assert police["properties"]["description"] == "Tuần tra phát hiện"
        # VTSH does not share: MKN never sees VTSH's report, whatever MKN does
        mkn_body, mkn_features = _incident_features(mkn)
        assert ids["vtsh"] not in mkn_body and "Hộp cáp VTSH" not in mkn_body and None not in {f["id"] for f in mkn_features}
    # the police and the district see every report, whoever shares
    police_ids = {f["id"] for f in _incident_features(clients["police"])[1]}
    district_ids = {f["id"] for f in _incident_features(clients["district"])[1]}
    assert set(ids.values()) <= police_ids and set(ids.values()) <= district_ids


def test_sharing_toggle_is_the_enterprise_s_own(sharing_world):
    """An enterprise's toggle changes its own flag only: MKN switching on shares MKN's reports, not VTSH's."""
    from webmap.accounts import get_accounts

    app, _, clients, ids = sharing_world
    accounts = get_accounts(app)
    _set_sharing(app, "VTSH", False)
    mkn = clients["mkn"]
    assert mkn.post("/reports/sharing", data={"csrf_token": _token(mkn, "/reports"), "share": "1"}).status_code == 303
    assert accounts.shares_incidents("MKN") and not accounts.shares_incidents("VTSH")
    body, features = _incident_features(mkn)
    assert ids["vtsh"] not in body and None not in {f["id"] for f in features}
    _set_sharing(app, "MKN", False)


# -- printed patrol maps (webmap/views/prints.py): the PDF holds only what the role may see -----------------

PRINT_BBOX = "105.59,9.99,105.81,10.16"  # both districts, every feature of the matrix


def _pdf_text(data: bytes, tmp_path) -> str:
    import subprocess

    path = tmp_path / "print.pdf"
    path.write_bytes(data)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.split())


def _assert_print_hides(text: str, words):
    # names may be cut with an ellipsis in a narrow column: their first 14 characters must not appear either
    leaked = sorted(w for w in words if w in text or (len(w) > 14 and w[:14] in text))
    assert not leaked, f"leaked: {leaked}"


@pytest.mark.parametrize("name", list(ACCOUNTS))
@pytest.mark.parametrize("what", [f"bbox={PRINT_BBOX}", "district=916", "district=917"])
def test_patrol_print_holds_only_what_the_role_may_see(world, name, what, tmp_path):
    import shutil

    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) not installed")
    app, frames, clients = world
    response = clients[name].get(f"/print/patrol.pdf?{what}&cells=0&paper=A4")
    if name == "public":
        assert response.status_code == 302 and "/login" in response.headers["Location"]
        assert_hides(response.data.decode(), hidden_words(frames, name))
        return
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = _pdf_text(response.data, tmp_path)
    _assert_print_hides(text, hidden_words(frames, name))
    assert "In bởi / Printed by: " + f"{name}.user" in text
    if name in ("admin", "police") and what != "district=917":
        assert "K-001" in text and "MẬT" in text  # key sites on the map and in the checkpoints, marked secret
    else:
        assert "K-001" not in text and "MẬT" not in text and "LƯU HÀNH NỘI BỘ" in text


@pytest.mark.parametrize("name", ["district", "vtsh", "mkn"])
@pytest.mark.parametrize("query", ["area=H500-0001", "top=3", "area=U-916"])
def test_patrol_print_of_priority_areas_is_for_staff_only(world, name, query):
    """Priority areas do not exist for other roles: the same 404 as any unknown page, nothing printed or logged."""
    from webmap import audit

    app, frames, clients = world
    before = len(audit.for_app(app).entries(action="print", limit=10_000))
    response = clients[name].get(f"/print/patrol.pdf?{query}")
    assert response.status_code == 404
    assert_hides(response.data.decode(), hidden_words(frames, name))
    assert len(audit.for_app(app).entries(action="print", limit=10_000)) == before


def test_patrol_prints_are_audited_with_the_user(world):
    from webmap import audit

    app, _, clients = world
    assert clients["police"].get(f"/print/patrol.pdf?bbox={PRINT_BBOX}&cells=0").status_code == 200
    entry = audit.for_app(app).entries(action="print", limit=1)[0]
    assert entry.actor == "police.user" and entry.target == f"bbox:{PRINT_BBOX.replace(',', ',')}"
    assert entry.detail["key_sites"] == 1 and entry.detail["classification"] == "MẬT" and len(entry.detail["sha256"]) == 64
    assert audit.for_app(app).entries(action="read_key_sites", limit=1)[0].detail == {"features": 1, "print": True}
    assert clients["vtsh"].get(f"/print/patrol.pdf?bbox={PRINT_BBOX}&cells=0").status_code == 200
    entry = audit.for_app(app).entries(action="print", limit=1)[0]
    assert entry.actor == "vtsh.user" and entry.detail["key_sites"] == 0 and "key_sites" not in entry.detail["layers"]


# -- exposure (/exposure, /api/exposure, exports, summary PDF): an enterprise never sees another's assets ----

EXPOSURE_QUERY = "since=2024-12-01&until=2026-11-30&buffer_m=200"
EXPOSURE_SECRETS = ("Nguyễn Văn Báo", "0909000111", "Trần Thị Gọi", "0911222333", "Cắt trộm 30 m cáp",
                    "Phá hoại hộp cáp", "Mất cáp gần trạm", "reporter", "description")


def _exposure_bodies(client, tmp_path, name):
    """Every exposure output of one user as text: API, page, CSV, XLSX (every cell), GeoJSON, PDF (pdftotext)."""
    import subprocess

    import openpyxl

    bodies = {}
    for label, url in (("api", "/api/exposure"), ("page", "/exposure"), ("csv", "/exposure/export.csv"),
                       ("geojson", "/exposure/export.geojson")):
        response = client.get(f"{url}?{EXPOSURE_QUERY}")
        assert response.status_code == 200, (label, response.data[:200])
        bodies[label] = response.data.decode("utf-8-sig")
    xlsx = client.get(f"/exposure/export.xlsx?{EXPOSURE_QUERY}")
    path = tmp_path / f"{name}.xlsx"
    path.write_bytes(xlsx.data)
    book = openpyxl.load_workbook(path)
    bodies["xlsx"] = " ".join(str(c.value) for ws in book for row in ws.iter_rows() for c in row if c.value is not None)
    pdf = client.get(f"/exposure/summary.pdf?{EXPOSURE_QUERY}")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf.data)
    bodies["pdf"] = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return bodies


@pytest.mark.parametrize("name", ["vtsh", "mkn"])
def test_exposure_outputs_hold_only_the_enterprises_own_assets(world, name, tmp_path):
    _, frames, clients = world
    bodies = _exposure_bodies(clients[name], tmp_path, name)
    own = {"vtsh": ("C-001",), "mkn": ("S-MKN-9",)}[name]  # its asset with incidents nearby: in every output
    other_org = {"vtsh": "MKN", "mkn": "VTSH"}[name]
    for label, body in bodies.items():
        assert_hides(body, hidden_words(frames, name) | {"BDTM", other_org, "K-001"})
        for secret in EXPOSURE_SECRETS:
            assert secret not in body, (label, secret)
        if label in ("api", "csv", "geojson", "xlsx", "pdf"):
            assert own[0] in body, (label, own[0])
    # the incidents it sees are there, without their reporter; I-FAR names MKN's station as its asset
    api = json.loads(bodies["api"])
    counted = {f["id"] for f in api["features"] if f["properties"]["layer"] == "incident"}
    assert counted == ({"I-050", "I-150"} if name == "vtsh" else {"I-FAR"})


@pytest.mark.parametrize("name", ["vtsh", "mkn"])
def test_exposure_of_another_enterprise_is_not_found(world, name):
    _, frames, clients = world
    other = {"vtsh": "MKN", "mkn": "VTSH"}[name]
    for url in ("/api/exposure", "/exposure", "/exposure/export.csv", "/exposure/export.geojson",
                "/exposure/summary.pdf"):
        response = clients[name].get(f"{url}?org={other}")
        unknown = clients[name].get(f"{url}?org=NO-SUCH-ORG")
        assert response.status_code == unknown.status_code == 404, url
        assert response.data == unknown.data
        assert_hides(response.data.decode(), hidden_words(frames, name))


@pytest.mark.parametrize("name", ["public", "district"])
def test_exposure_does_not_exist_for_visitors_and_districts(world, name):
    _, frames, clients = world
    unknown = clients[name].get("/no-such-page")
    for url in ("/exposure", "/exposure/export.csv", "/exposure/export.xlsx", "/exposure/summary.pdf?org=VTSH"):
        response = clients[name].get(url)
        assert response.status_code == 404 and response.data == unknown.data, url
    response = clients[name].get("/api/exposure?org=VTSH")
    assert response.status_code == 404
    assert_hides(response.data.decode(), hidden_words(frames, name) | {"C-001", "S-001"})


def test_exposure_for_staff_covers_every_enterprise(world):
    _, _, clients = world
    for name in ("police", "admin"):
        api = clients[name].get(f"/api/exposure?{EXPOSURE_QUERY}").get_json()
        owners = {f["properties"]["owner"] for f in api["features"] if f["properties"]["layer"] != "incident"}
        assert owners == {"VTSH", "MKN", "BDTM"}
        assert {row["owner"] for row in api["metadata"]["comparison"]} == {"VTSH", "MKN", "BDTM"}
        text = json.dumps(api, ensure_ascii=False)
        assert "K-001" not in text and "Nguyễn Văn Báo" not in text  # no key sites, no reporters even for staff


# -- the planners' page: priority areas (webmap/views/priority.py) --------------------------------------

PRIORITY_URLS = ("/priority", "/priority?lang=en", "/api/priority", "/api/priority?level=units",
                 "/priority/export.geojson", "/priority/export.gpkg", "/priority/export.csv", "/priority/export.xlsx")


@pytest.mark.parametrize("name", list(ACCOUNTS))
def test_priority_is_for_staff_only(world, warm_esda, name):
    """Cells, scores and key-site counts are for admin and police: for every other role, and for visitors,
    the page, its data and its exports are the 404 of a URL that does not exist, with nothing in it."""
    _, frames, clients = world
    unknown = {"page": clients[name].get("/no-such-page"), "api": clients[name].get("/api/no-such-thing")}
    for url in PRIORITY_URLS:
        response = clients[name].get(url)
        if name in ("admin", "police"):
            assert response.status_code == 200, url
            continue
        assert response.status_code == 404, url
        assert response.data == unknown["api" if url.startswith("/api/") else "page"].data, url
        body = response.data.decode()
        for word in ("score", "hotspot", "key_sites", "H500-", "Getis", "Khu vực ưu tiên"):
            assert word not in body, (url, word)
        assert_hides(body, hidden_words(frames, name))
    if name in ("admin", "police"):
        answer = clients[name].get("/api/priority?all=1").get_json()
        assert sum(f["properties"]["incidents"] for f in answer["features"]) == 4  # I-050, I-150, I-2000, I-FAR
        from shapely.geometry import shape

        site = frames["key_sites"].geometry.iloc[0]  # K-001, counted in every cell it reaches
        with_site = [f for f in answer["features"] if f["properties"]["key_sites"]]
        assert with_site and all(shape(f["geometry"]).intersects(site) for f in with_site)

