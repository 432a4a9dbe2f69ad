"""Incident reports: an enterprise reports damage (map, chainage, VN-2000 coordinates), the police verify or
reject it with its history, and the incident is on the police map at once. Bad input is one line, and then
nothing is stored anywhere.

The city is tests/fixtures.py: VTSH's cable C-001 runs east along latitude 10.03 from 105.76 to 105.78
(about 2.19 km); MKN's C-002 runs north along 105.775 from 10.02 to 10.028; VTSH's station S-001 sits at
C-001's east end inside the key site K-001 (the square 105.779..105.781 x 10.029..10.031).
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from pyproj import Geod

import fixtures
from conftest import log_in, make_account
from webmap import reports
from webmap.access import Principal
from webmap.errors import BadInput, NotFound
from webmap.importer import import_layer

YEAR_RE = r"R-\d{4}-"
WHEN = "2026-11-02T08:30"  # a past time, Vietnam time (what a datetime-local field sends)
NEAR_C001 = (105.77, 10.0301)  # 11 m north of C-001's middle


USERS = (("vtsh", "enterprise", "VTSH"), ("mkn", "enterprise", "MKN"), ("police", "police", "CA-CT"),
         ("admin", "admin", None), ("district", "district", "916"))


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory):
    """The accounts of every test, made once (scrypt is slow on purpose) and copied into each instance."""
    import os

    from webmap.accounts import get_accounts
    from webmap.app import create_app

    folder = tmp_path_factory.mktemp("accounts")
    os.environ["WEBMAP_INSTANCE"] = str(folder)
    try:
        app = create_app({"TESTING": True})
    finally:
        del os.environ["WEBMAP_INSTANCE"]
    for name, role, org in USERS:
        make_account(app, f"{name}.user", role, org)
    get_accounts(app).close()
    return folder / "accounts.sqlite"


@pytest.fixture
def city(app, store, tmp_path, accounts_file):
    import shutil

    from webmap.accounts import get_accounts

    assert "webmap_accounts" not in app.extensions  # nothing has opened this instance's accounts yet
    shutil.copyfile(accounts_file, app.instance_path + "/accounts.sqlite")
    for kind in ("districts", "key_sites", "cable_routes", "stations", "incidents"):
        import_layer(store, fixtures.write_geojson(fixtures.FRAMES[kind](), str(tmp_path / f"{kind}.geojson")), kind)
    clients = {}
    for name, _, _ in USERS:
        clients[name] = app.test_client()
        log_in(clients[name], get_accounts(app).get_user(f"{name}.user"))
    clients["public"] = app.test_client()
    return clients


def csrf(client, path="/reports/new"):
    """The session's CSRF token, from a page with a form (the report form; the map's logout form for admins)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).data.decode())
    if found is None:
        found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").data.decode())
    return found.group(1)


def post_form(client, values, token=None):
    return client.post("/reports/new", data={"csrf_token": token or csrf(client, "/reports/new"), **values})


def post_api(client, body):
    return client.post("/api/reports", json=body, headers={"X-CSRFToken": csrf(client)})


def principal(name):
    role, org = {"vtsh": ("enterprise", "VTSH"), "mkn": ("enterprise", "MKN"), "police": ("police", "CA-CT"),
                 "district": ("district", "916")}[name]
    return Principal(f"{name}.user", role, org, "916" if role == "district" else None)


def stored(store, incident_id):
    gdf = store.read_layer("incidents")
    rows = gdf[gdf["id"] == incident_id]
    assert len(rows) == 1, incident_id
    return rows.iloc[0]


def nothing_stored(app, store, versions_before):
    assert [v.version for v in store.list_versions("incidents", active_only=False)] == versions_before
    path = app.instance_path + "/reports.sqlite"
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        if "reports" in tables:
            assert con.execute("SELECT COUNT(*) FROM reports").fetchone()[0] == 0
            assert con.execute("SELECT COUNT(*) FROM history").fetchone()[0] == 0
    finally:
        con.close()


# -- submitting ------------------------------------------------------------------------------------------------
def test_submit_on_the_map_through_the_form(app, store, city):
    response = post_form(city["vtsh"], {"type": "cable_theft", "severity": "high", "occurred_at": WHEN,
                                        "damage_vnd": "15.000.000", "asset_id": "C-001", "method": "map",
                                        "lon": str(NEAR_C001[0]), "lat": str(NEAR_C001[1]),
                                        "description": "Mất 30 m cáp quang"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/reports")
    page = city["vtsh"].get("/reports").data.decode()
    (incident_id,) = re.findall(YEAR_RE + r"\d{6}", page)[:1]
    assert incident_id.endswith("-000001")
    assert f"{incident_id}" in page and "Mới tiếp nhận" in page  # the status, in Vietnamese
    row = stored(store, incident_id)
    assert (row["status"], row["source"], row["reported_by_org"], row["asset_id"]) == ("reported", "enterprise", "VTSH",
                                                                                      "C-001")
    assert row["occurred_at"] == "2026-11-02T08:30:00+07:00"
    assert int(row["damage_vnd"]) == 15_000_000 and row["type"] == "cable_theft" and row["severity"] == "high"
    assert (row.geometry.x, row.geometry.y) == pytest.approx(NEAR_C001)
    assert row["reporter_name"] == "vtsh.user"
    version = store.list_versions("incidents")[0]
    assert version.version == 2 and version.report["operation"] == "append"
    assert version.source_name == f"report {incident_id} (vtsh.user)"
    steps = reports.history(app, incident_id)
    assert [(s["action"], s["actor"], s["actor_org"]) for s in steps] == [("submitted", "vtsh.user", "VTSH")]
    assert steps[0]["details"]["method"] == "map"


def test_submit_by_chainage_through_the_api(app, store, city):
    response = post_api(city["vtsh"], {"type": "sabotage", "occurred_at": "2026-11-01T22:00:00+07:00",
                                       "route_id": "C-001", "chainage_m": 1000})
    assert response.status_code == 201, response.data
    body = response.get_json()
    assert body["status"] == "reported" and re.fullmatch(YEAR_RE + r"000001", body["id"])
    row = stored(store, body["id"])
    assert row["asset_id"] == "C-001" and row["chainage_m"] == pytest.approx(1000.0)
    # 1000 m east of the route's start (105.76, 10.03) along the parallel: a geodesic kilometre, give or take
    # the grid's scale (about 2 cm per km here)
    _, _, metres = Geod(ellps="WGS84").inv(105.76, 10.03, row.geometry.x, row.geometry.y)
    assert metres == pytest.approx(1000.0, abs=1.0)
    assert row.geometry.y == pytest.approx(10.03, abs=1e-6)
    assert (body["location"]["lon"], body["location"]["lat"]) == pytest.approx((row.geometry.x, row.geometry.y))
    # km in the form, metres in the API: the same place
    token = csrf(city["vtsh"], "/reports/new")
    post_form(city["vtsh"], {"type": "sabotage", "occurred_at": WHEN, "method": "chainage", "route_id": "C-001",
                             "chainage_km": "1,0"}, token)
    second = stored(store, body["id"][:-6] + "000002")
    assert second.geometry.distance(row.geometry) < 1e-7


def test_submit_by_vn2000_tm3_coordinates(app, store, city):
    from webmap.crs import lonlat_to_metric

    x, y = (float(v[0]) for v in lonlat_to_metric([NEAR_C001[0]], [NEAR_C001[1]]))
    # worked by hand: 0.77° east of the 105° meridian at 10° N is about 84 km east of the 500 km false easting;
    # 10.03° of latitude is about 1 109 km north of the equator
    assert 584_000 < x < 585_000 and 1_108_500 < y < 1_109_500
    response = post_form(city["vtsh"], {"type": "fire_explosion", "occurred_at": WHEN, "asset_id": "C-001",
                                        "method": "coordinates", "crs": "EPSG:5897", "x": f"{x:.3f}", "y": f"{y:.3f}"})
    assert response.status_code == 303, response.data.decode()
    incident_id = reports.list_reports(app, principal("vtsh"))[0]["id"]
    row = stored(store, incident_id)
    assert (row.geometry.x, row.geometry.y) == pytest.approx(NEAR_C001, abs=1e-7)  # 1e-7° is about 1 cm
    assert reports.history(app, incident_id)[0]["details"]["crs"] == "EPSG:5897"
    # lon/lat typed as coordinates (WGS 84) land on the same spot
    assert post_api(city["vtsh"], {"type": "fire_explosion", "occurred_at": WHEN, "asset_id": "C-001",
                                   "method": "coordinates", "crs": "EPSG:4326", "x": NEAR_C001[0],
                                   "y": NEAR_C001[1]}).status_code == 201


def test_police_and_district_record_too(app, store, city):
    assert post_api(city["police"], {"type": "other", "occurred_at": WHEN, "lon": 105.765,
                                     "lat": 10.045}).status_code == 201
    assert post_api(city["district"], {"type": "other", "occurred_at": WHEN, "lon": 105.765,
                                       "lat": 10.045}).status_code == 201
    sources = dict(store.read_layer("incidents")[["reported_by_org", "source"]].dropna().values)
    assert sources == {"CA-CT": "police_patrol", "916": "district"}
    # outside its district a district reports nothing (the square of district 916 ends at 10.06)
    outside = post_api(city["district"], {"type": "other", "occurred_at": WHEN, "lon": 105.765, "lat": 10.07})
    assert outside.status_code == 400 and "outside your district" in outside.get_json()["error"]
    # admins and visitors do not report
    assert post_api(city["admin"], {"type": "other", "occurred_at": WHEN, "lon": 105.765, "lat": 10.045}).status_code == 404
    assert city["admin"].get("/reports/new").status_code == 404
    assert city["public"].post("/api/reports", json={}).status_code in (400, 401)  # no CSRF token, no session
    assert city["public"].get("/reports/new").headers["Location"].startswith("/login")


BAD = [
    ({"type": "theft"}, "type 'theft' is not one of"),
    ({"occurred_at": "2099-01-01T00:00"}, "is in the future"),
    ({"occurred_at": "hôm qua"}, "occurred_at: not a date"),
    ({"damage_vnd": "-5000"}, "must not be negative"),
    ({"damage_vnd": "12.5"}, "whole number"),
    ({"asset_id": "C-002"}, "unknown asset 'C-002'"),  # MKN's: the same answer as an unknown one
    ({"asset_id": "C-999"}, "unknown asset 'C-999'"),
    ({"asset_id": ""}, "asset_id is required"),
    ({"lat": "10.04"}, "a report must lie within 500 m"),  # 1.1 km north of C-001
    ({"lon": "", "lat": "", "method": "map"}, "lon is required"),
    ({"method": "chainage", "route_id": "C-001", "chainage_km": "5"}, "outside the route: it must lie between 0 and 2.19"),
    ({"method": "chainage", "route_id": "C-002", "chainage_km": "0.1", "asset_id": ""}, "unknown cable route 'C-002'"),
    ({"method": "chainage", "route_id": "C-001", "chainage_km": "0.1", "asset_id": "S-001"}, "concerns its route"),
    ({"method": "coordinates", "x": "abc", "y": "1109000"}, "x: expected a number"),
    ({"method": "coordinates", "crs": "EPSG:4326", "x": "10.0301", "y": "105.77"}, "swapped"),
    ({"method": "teleport"}, "method 'teleport' is not one of"),
]


@pytest.mark.parametrize("change, message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_one_line_and_stores_nothing(app, store, city, change, message):
    values = {"type": "cable_theft", "occurred_at": WHEN, "asset_id": "C-001", "method": "map",
              "lon": str(NEAR_C001[0]), "lat": str(NEAR_C001[1]), **change}
    before = [v.version for v in store.list_versions("incidents", active_only=False)]
    page = post_form(city["vtsh"], values)  # in Vietnamese, the page's default: one line too
    shown_vi = re.search(r'<p class="wm-error" role="alert">(.*?)</p>', page.data.decode(), re.S).group(1)
    assert page.status_code == 400 and shown_vi.strip() and "\n" not in shown_vi and message not in shown_vi
    city["vtsh"].set_cookie("lang", "en")
    page = post_form(city["vtsh"], values)
    assert page.status_code == 400
    shown = re.search(r'<p class="wm-error" role="alert">(.*?)</p>', page.data.decode(), re.S).group(1)
    assert message in shown.replace("&#39;", "'") and "\n" not in shown
    # the form keeps what was typed
    assert 'value="C-001"' in page.data.decode() or values["asset_id"] != "C-001"
    api = post_api(city["vtsh"], values)
    assert api.status_code == 400 and api.get_json()["error"].count("\n") == 0
    assert message in api.get_json()["error"]
    nothing_stored(app, store, before)


def test_unknown_and_foreign_assets_answer_alike(app, city):
    def error(asset):
        return post_api(city["vtsh"], {"type": "other", "occurred_at": WHEN, "asset_id": asset,
                                       "lon": NEAR_C001[0], "lat": NEAR_C001[1]}).get_json()["error"].replace(asset, "X")

    assert error("C-002") == error("NO-SUCH-ASSET") == error("S-003")  # MKN's cable, nothing, BDTM's station


def test_no_csrf_no_report(app, store, city):
    before = [v.version for v in store.list_versions("incidents", active_only=False)]
    response = city["vtsh"].post("/api/reports", json={"type": "other", "occurred_at": WHEN, "asset_id": "C-001",
                                                       "lon": NEAR_C001[0], "lat": NEAR_C001[1]})
    assert response.status_code == 400
    form = city["vtsh"].post("/reports/new", data={"type": "other", "occurred_at": WHEN, "asset_id": "C-001",
                                                   "lon": NEAR_C001[0], "lat": NEAR_C001[1]})
    assert form.status_code == 400
    nothing_stored(app, store, before)


def test_parsers_by_hand():
    assert reports.parse_damage("15.000.000") == reports.parse_damage("15,000,000") == 15_000_000
    assert reports.parse_damage("15 000 000 đ") == reports.parse_damage(15_000_000) == 15_000_000
    assert reports.parse_damage("") is None and reports.parse_damage(0) == 0
    with pytest.raises(BadInput):
        reports.parse_damage("1.50")
    assert reports.parse_time("2026-11-02T08:30") == "2026-11-02T08:30:00+07:00"
    assert reports.parse_time("2026-11-02T01:30:00Z") == "2026-11-02T08:30:00+07:00"
    with pytest.raises(BadInput, match="before 1990"):
        reports.parse_time("1975-04-30T11:30")


# -- verification ------------------------------------------------------------------------------------------------
def submit(app, who="vtsh", **values):
    data = {"type": "cable_theft", "occurred_at": WHEN, "asset_id": "C-001", "lon": NEAR_C001[0],
            "lat": NEAR_C001[1], **values}
    return reports.submit_report(app, principal(who), data)


def test_verify_and_reject_with_history(app, store, city):
    first, second = submit(app), submit(app, damage_vnd=1_000_000)
    page = city["police"].get("/reports").data.decode()
    assert page.count('class="wm-verify"') == 2 and first in page and second in page
    token = csrf(city["police"])
    response = city["police"].post(f"/reports/{first}/verify", data={"csrf_token": token, "note": "Đã kiểm tra hiện trường"})
    assert response.status_code == 303
    assert stored(store, first)["status"] == "verified"
    assert stored(store, second)["status"] == "reported"
    response = city["police"].post(f"/reports/{second}/reject", data={"csrf_token": token, "reason": ""})
    assert stored(store, second)["status"] == "reported"  # a rejection needs its reason
    city["police"].post(f"/reports/{second}/reject", data={"csrf_token": token, "reason": "Trùng với vụ I-050"})
    assert stored(store, second)["status"] == "rejected"
    # deciding twice is refused, and changes nothing
    versions = len(store.list_versions("incidents", active_only=False))
    with pytest.raises(BadInput, match="already verified"):
        reports.verify(app, principal("police"), first)
    assert len(store.list_versions("incidents", active_only=False)) == versions
    assert [(s["action"], s["actor"]) for s in reports.history(app, first)] == [
        ("submitted", "vtsh.user"), ("verified", "police.user")]
    assert reports.history(app, first)[1]["details"] == {"note": "Đã kiểm tra hiện trường"}
    assert reports.history(app, second)[1]["details"] == {"reason": "Trùng với vụ I-050"}
    # the enterprise sees its reports, their status and history, but not the officer's name
    mine = {r["id"]: r for r in city["vtsh"].get("/api/reports").get_json()["reports"]}
    assert (mine[first]["status"], mine[second]["status"]) == ("verified", "rejected")
    assert [s["actor"] for s in mine[first]["history"]] == ["vtsh.user", None]
    assert mine[first]["history"][1]["actor_role"] == "police"
    page = city["vtsh"].get("/reports").data.decode()
    assert "police.user" not in page and "Đã xác minh" in page and "Trùng với vụ I-050" in page
    assert 'class="wm-verify"' not in page


def test_only_the_police_and_admins_decide(app, store, city):
    first = submit(app)
    for name in ("vtsh", "mkn", "district"):
        token = csrf(city[name])
        assert city[name].post(f"/reports/{first}/verify", data={"csrf_token": token}).status_code == 404
        with pytest.raises(NotFound):
            reports.verify(app, principal(name), first)
    assert stored(store, first)["status"] == "reported"
    token = csrf(city["admin"])
    assert city["admin"].post(f"/reports/{first}/verify", data={"csrf_token": token}).status_code == 303
    assert stored(store, first)["status"] == "verified"
    assert city["police"].post("/reports/R-2026-999999/verify", data={"csrf_token": csrf(city["police"])}).status_code == 404


def test_the_report_is_on_the_police_map_at_once(app, store, city):
    incident_id = submit(app)
    box = f"{NEAR_C001[0] - 0.001},{NEAR_C001[1] - 0.001},{NEAR_C001[0] + 0.001},{NEAR_C001[1] + 0.001}"
    features = city["police"].get(f"/api/layers/incidents/features?bbox={box}").get_json()["features"]
    (feature,) = [f for f in features if f["id"] == incident_id]
    props = feature["properties"]
    assert (props["status"], props["source"], props["reported_by_org"]) == ("reported", "enterprise", "VTSH")
    assert feature["geometry"]["coordinates"] == pytest.approx(list(NEAR_C001))
    # the reporting enterprise sees its incident too, but never the field naming the reporting organisation
    (own,) = [f for f in city["vtsh"].get(f"/api/layers/incidents/features?bbox={box}").get_json()["features"]
              if f["id"] == incident_id]
    assert own["properties"]["asset_id"] == "C-001" and "reported_by_org" not in own["properties"]
    # verified, it says so on the map
    reports.verify(app, principal("police"), incident_id)
    (feature,) = [f for f in city["police"].get(f"/api/layers/incidents/features?bbox={box}").get_json()["features"]
                  if f["id"] == incident_id]
    assert feature["properties"]["status"] == "verified"


def test_alerts_are_raised_for_recorded_and_verified(app, store, city, monkeypatch):
    """The real alerts module is called: S-001 lies in the key site K-001, so the duty officer is alerted."""
    import webmap.alerts as alerts

    calls = []
    real = alerts.notify_incidents

    def spy(app_, gdf, event):
        calls.append((event, list(gdf["id"])))
        return real(app_, gdf, event)

    monkeypatch.setattr(alerts, "notify_incidents", spy)
    incident_id = submit(app, asset_id="S-001", lon=105.7801, lat=10.0301)
    reports.verify(app, principal("police"), incident_id)
    assert calls == [("recorded", [incident_id]), ("verified", [incident_id])]
    duty = alerts.list_alerts(alerts.get_alert_store(app), alerts.Scope(org_code="CA-CT"))
    assert sorted((a.incident_id, a.event) for a in duty) == [(incident_id, "recorded"), (incident_id, "verified")]


def test_a_failing_alert_does_not_undo_the_report(app, store, city, monkeypatch):
    import webmap.alerts as alerts

    def broken(*args):
        raise RuntimeError("alerts down (injected)")

    monkeypatch.setattr(alerts, "notify_incidents", broken)
    incident_id = submit(app)
    assert stored(store, incident_id)["status"] == "reported"


def test_a_failing_store_leaves_no_report(app, store, city, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(store, "append_features", disk_full)
    before = [v.version for v in store.list_versions("incidents", active_only=False)]
    with pytest.raises(OSError):
        submit(app)
    nothing_stored(app, store, before)
    monkeypatch.undo()
    assert submit(app).endswith("-000001")  # the number was not used up


def test_audit_log_records_each_step(app, store, city):
    from webmap import audit

    incident_id = submit(app)
    reports.reject(app, principal("police"), incident_id, "Không có thiệt hại")
    actions = [(e.action, e.target) for e in audit.for_app(app).entries(limit=10)]
    assert ("report_submitted", incident_id) in actions and ("report_rejected", incident_id) in actions


# -- sharing -------------------------------------------------------------------------------------------------------
def test_sharing_toggle_on_the_reports_page_and_the_cli(app, city, run_cli):
    from webmap.accounts import get_accounts

    page = city["vtsh"].get("/reports").data.decode()
    assert 'data-shares="0"' in page and "Bật chia sẻ" in page
    response = city["vtsh"].post("/reports/sharing", data={"csrf_token": csrf(city["vtsh"]), "share": "1"})
    assert response.status_code == 303
    assert get_accounts(app).shares_incidents("VTSH") is True
    assert 'data-shares="1"' in city["vtsh"].get("/reports").data.decode()
    for name in ("police", "district", "admin"):
        assert city[name].post("/reports/sharing", data={"csrf_token": csrf(city[name]), "share": "1"}).status_code == 404
    code, out, err = run_cli("orgs", "share", "VTSH", "--off")
    assert code == 0 and "VTSH does not share" in out
    assert get_accounts(app).shares_incidents("VTSH") is False
    code, _, err = run_cli("orgs", "share", "CA-CT", "--on")
    assert code == 2 and err.count("\n") == 1 and "only an enterprise" in err
    code, _, err = run_cli("orgs", "share", "NOPE", "--on")
    assert code == 2 and "does not exist" in err


def test_reports_sqlite_history_table(app, city):
    """The contract: instance/reports.sqlite holds history (incident_id, at, actor, action, details)."""
    incident_id = submit(app)
    con = sqlite3.connect(app.instance_path + "/reports.sqlite")
    try:
        row = con.execute("SELECT incident_id, at, actor, action, details FROM history").fetchone()
    finally:
        con.close()
    assert row[0] == incident_id and row[2] == "vtsh.user" and row[3] == "submitted"
    assert json.loads(row[4])["method"] == "map"


def test_form_errors_speak_the_page_language(city):
    """The report form shows its refusals in Vietnamese (field labels as the form names them), in English when
    the page is English; the API keeps English for the programs that call it."""
    values = {"type": "không-có", "occurred_at": WHEN, "asset_id": "C-001", "lon": "105.7701", "lat": "10.0301"}
    page = post_form(city["vtsh"], values).data.decode()
    assert "Loại vụ việc: giá trị &#39;không-có&#39; không hợp lệ; chọn một trong: Trộm cắp cáp" in page
    page = post_form(city["vtsh"], {**values, "type": "other", "occurred_at": "2031-01-01T08:00"}).data.decode()
    assert "Thời điểm xảy ra 08:00 01/01/2031 ở tương lai" in page
    page = post_form(city["vtsh"], {**values, "type": "other", "damage_vnd": "mười triệu"}).data.decode()
    assert "Thiệt hại (đồng): nhập số đồng nguyên" in page
    city["vtsh"].set_cookie("lang", "en")
    page = post_form(city["vtsh"], values).data.decode()
    assert "type &#39;không-có&#39; is not one of" in page
    assert post_api(city["vtsh"], {**values, "type": "x"}).get_json()["error"].startswith("type 'x' is not one of")
