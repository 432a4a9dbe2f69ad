"""Alerts: who is alerted to which incident (distances checked against pyproj's geodesic, worked out
independently of the EPSG:5897 projection the app measures in), what an alert may say, idempotency, the
import hook, the /alerts page, acknowledgement, the badge count, and the badge in a real browser.

The fixture city (tests/fixtures.py): VTSH's cable C-001 runs east-west along latitude 10.03 from 105.76 to
105.78; MKN's cable C-002 runs north-south at 105.775 from 10.02 to 10.028; VTSH's stations S-001 (east end
of C-001) and S-002; BDTM's station S-003; the key site K-001, a square 105.779-105.781 x 10.029-10.031.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta, timezone

import geopandas as gpd
import pytest
from pyproj import Geod
from shapely.geometry import Point

import fixtures
from conftest import ORGANISATIONS
from webmap.importer import import_layer

GEOD = Geod(ellps="WGS84")
MID_LON, MID_LAT = fixtures.MID
NORTH_50 = (MID_LON, MID_LAT + 50 * fixtures.METRE_LAT)  # I-050 of the fixtures: 50 m north of C-001
SECRET_WORDS = ("K-001", "Trung tâm điều hành", "Đội bảo vệ", "MKN", "C-002", "Tuyến vượt sông", "BDTM", "S-003",
                "Bưu cục Cờ Đỏ", "Nguyễn Văn Báo", "0909000111", "Mô tả bí mật", "reporter")


def recent(hours=1) -> str:
    return (datetime.now(timezone.utc) - timedelta(hours=hours)).astimezone(timezone(timedelta(hours=7))).isoformat(
        timespec="seconds")


def incidents(*rows) -> gpd.GeoDataFrame:
    """rows: (id, lon, lat) or (id, lon, lat, {field: value})."""
    records, points = [], []
    for row in rows:
        ident, lon, lat = row[:3]
        extra = row[3] if len(row) > 3 else {}
        records.append({"id": ident, "occurred_at": recent(), "type": "cable_theft", "status": "reported",
                        "severity": "high", "damage_vnd": 1, "source": "hotline", "asset_id": "C-002",
                        "description": "Mô tả bí mật", "reporter_name": "Nguyễn Văn Báo",
                        "reporter_contact": "0909000111", **extra})
        points.append(Point(lon, lat))
    return gpd.GeoDataFrame(records, geometry=points, crs="EPSG:4326")


def east_of(lon, lat, metres):
    x, y, _ = GEOD.fwd(lon, lat, 90, metres)
    return x, y


def load_city(app, folder, kinds=("districts", "cable_routes", "stations", "key_sites")):
    from webmap.accounts import get_accounts

    store = app.extensions["webmap_store"]
    for kind in kinds:
        import_layer(store, fixtures.write_geojson(fixtures.FRAMES[kind](), str(folder / f"{kind}.geojson")), kind)
    accounts = get_accounts(app)
    for code, name, kind, district in ORGANISATIONS:
        accounts.add_org(code, name, kind, district)


def close_alerts(app):
    store = app.extensions.pop("webmap_alerts", None)
    if store is not None:
        store.close()


@pytest.fixture
def city(app, tmp_path, monkeypatch):
    """The fixture city; the duty officer's alerts on assets are off here (the tests below count the
    enterprises' alerts) and tested on their own in test_the_duty_officer_is_alerted_for_every_asset."""
    monkeypatch.setenv("WEBMAP_ALERT_DUTY_ASSETS", "0")  # for the commands the tests run
    app.config["ALERT_DUTY_ASSETS"] = False
    load_city(app, tmp_path)
    yield app
    close_alerts(app)


def notify(app, gdf, event="recorded"):
    from webmap.alerts import notify_incidents

    return notify_incidents(app, gdf, event)


def all_alerts(app):
    from webmap.alerts import get_alert_store, list_alerts

    return list_alerts(get_alert_store(app))


def by_org(app):
    return {(a.org_code, a.incident_id): a for a in all_alerts(app)}


# -- who is alerted -----------------------------------------------------------------------------------------
def test_an_incident_50_m_from_a_cable_alerts_its_owner_only(city):
    ids = notify(city, incidents(("I-050", *NORTH_50), ("I-150", MID_LON, MID_LAT + 150 * fixtures.METRE_LAT),
                                 ("I-2000", MID_LON, MID_LAT + 2000 * fixtures.METRE_LAT)))
    found = by_org(city)
    assert set(found) == {("VTSH", "I-050")} and len(ids) == 1  # 150 m and 2 km are beyond ALERT_DISTANCE_M (100)
    alert = found["VTSH", "I-050"]
    assert (alert.audience, alert.asset_kind, alert.asset_id, alert.event) == ("enterprise", "cable_routes", "C-001",
                                                                              "recorded")
    geodesic = GEOD.inv(*NORTH_50, MID_LON, MID_LAT)[2]  # 50.02 m
    assert alert.distance_m == pytest.approx(geodesic, abs=0.5)
    assert alert.place == "Ninh Kiều"
    assert (alert.lon, alert.lat) == pytest.approx(NORTH_50, abs=1e-7)


def test_the_nearest_own_asset_is_named(city):
    # 30 m south of S-001 (C-001's east end, where the cable ends too): both at 30 m; 60 m west of S-002
    lon, lat = 105.78, 10.03 - 30 * fixtures.METRE_LAT
    west = GEOD.fwd(105.765, 10.035, 270, 60)[:2]
    notify(city, incidents(("A", lon, lat), ("B", *west)))
    found = by_org(city)
    assert found["VTSH", "A"].distance_m == pytest.approx(30, abs=0.5)
    assert found["VTSH", "A"].asset_id in ("S-001", "C-001")
    assert (found["VTSH", "B"].asset_id, found["VTSH", "B"].asset_kind) == ("S-002", "stations")
    assert found["VTSH", "B"].distance_m == pytest.approx(60, abs=0.5)


def test_an_organisation_distance_overrides_the_default_within_the_visibility_limit(city):
    from webmap.accounts import get_accounts
    from webmap.delivery import configure_org
    from webmap.errors import BadInput

    configure_org(city, "VTSH", distance_m=200)
    notify(city, incidents(("I-150", MID_LON, MID_LAT + 150 * fixtures.METRE_LAT)))
    assert by_org(city)["VTSH", "I-150"].distance_m == pytest.approx(150, abs=0.5)
    # MKN's cable C-002 ends 611.6 m (geodesic) from I-050: never alerted beyond INCIDENT_NEAR_ASSETS_M (500 m),
    # whatever its own distance says, because its map would not show that incident
    with pytest.raises(BadInput, match="between 1 and 500"):
        configure_org(city, "MKN", distance_m=700)
    get_accounts(city).set_alert_settings("MKN", distance_m=700.0)  # past the check: still clamped
    notify(city, incidents(("I-050", *NORTH_50)))
    assert ("MKN", "I-050") not in by_org(city)
    city.config["INCIDENT_NEAR_ASSETS_M"] = 1000
    notify(city, incidents(("I-050", *NORTH_50)), "verified")
    alert = by_org(city)["MKN", "I-050"]
    assert alert.asset_id == "C-002" and alert.event == "verified"
    assert alert.distance_m == pytest.approx(GEOD.inv(*NORTH_50, 105.775, 10.028)[2], abs=1.0)


def test_key_site_zones_alert_the_police_only(city):
    inside = (105.7805, 10.0305)  # inside K-001, about 78 m from VTSH's S-001
    zone_150 = east_of(105.781, 10.03, 150)  # 150 m east of K-001's east edge: in the 200 m zone
    beyond = east_of(105.781, 10.03, 250)
    notify(city, incidents(("IN", *inside), ("Z150", *zone_150), ("FAR", *beyond)))
    found = by_org(city)
    assert set(found) == {("CA-CT", "IN"), ("CA-CT", "Z150"), ("VTSH", "IN")}
    assert found["CA-CT", "IN"].distance_m == 0 and found["CA-CT", "IN"].asset_id == "K-001"
    assert found["CA-CT", "Z150"].distance_m == pytest.approx(150, abs=0.5)
    assert found["CA-CT", "Z150"].asset_name == "[DEMO] Trung tâm điều hành"
    vtsh = found["VTSH", "IN"]  # S-001 sits on C-001's east end: both are nearest, and both VTSH's
    assert vtsh.asset_id in ("S-001", "C-001")
    assert vtsh.distance_m == pytest.approx(GEOD.inv(*inside, 105.78, 10.03)[2], abs=0.5)


def test_an_enterprise_alert_never_names_key_sites_other_enterprises_or_reporters(city):
    from webmap.alerts import alert_subject, alert_text
    from webmap.delivery import alert_email, alert_payload, encode

    notify(city, incidents(("IN", 105.7805, 10.0305, {"asset_id": "S-003"}), ("I-050", *NORTH_50)))
    enterprise = [a for a in all_alerts(city) if a.audience == "enterprise"]
    assert {a.org_code for a in enterprise} == {"VTSH"} and len(enterprise) == 2
    for alert in enterprise:
        outputs = [alert_text(alert, "vi"), alert_text(alert, "en"), alert_subject(alert, "vi"),
                   encode(alert_payload(alert, "d-1")).decode("utf-8"),
                   alert_email(city.config, alert, ["a@vtsh.example"], "d-1").as_string()]
        for text in outputs:
            assert not [w for w in SECRET_WORDS if w in text], text
        assert "C-001" in outputs[0] or "S-001" in outputs[0]
    police = by_org(city)["CA-CT", "IN"]
    assert "K-001" in alert_text(police, "vi") and "Nguyễn Văn Báo" not in alert_text(police, "vi")


def test_the_database_refuses_an_enterprise_alert_about_a_key_site(city):
    from webmap.alerts import get_alert_store

    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        with get_alert_store(city).transaction() as con:
            con.execute("INSERT INTO alerts (org_code, audience, incident_id, event, incident_type, occurred_at, lon,"
                        " lat, asset_kind, asset_id, distance_m, created_at) VALUES ('VTSH', 'enterprise', 'X',"
                        " 'recorded', 'other', '', 105.7, 10.0, 'key_sites', 'K-001', 1, '')")


def test_the_same_incident_event_and_organisation_never_make_two_alerts(city):
    from webmap.alerts import get_alert_store

    gdf = incidents(("I-050", *NORTH_50))
    first = notify(city, gdf)
    assert len(first) == 1
    assert notify(city, gdf) == [] and notify(city, gdf.iloc[:1]) == []
    assert len(all_alerts(city)) == 1
    assert len(notify(city, gdf, "verified")) == 1  # a new event is a new alert
    assert notify(city, gdf, "verified") == []
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        with get_alert_store(city).transaction() as con:
            con.execute("INSERT INTO alerts (org_code, audience, incident_id, event, incident_type, occurred_at, lon,"
                        " lat, asset_kind, asset_id, distance_m, created_at) VALUES ('VTSH', 'enterprise', 'I-050',"
                        " 'recorded', 'other', '', 105.7, 10.0, 'cable_routes', 'C-001', 1, '')")
    with pytest.raises(ValueError, match="recorded, verified"):
        notify(city, gdf, "deleted")


def test_rejected_incidents_and_an_enterprise_own_report_alert_nobody(city):
    notify(city, incidents(("R", *NORTH_50, {"status": "rejected"}),
                           ("OWN", *NORTH_50, {"reported_by_org": "VTSH", "source": "enterprise"})))
    assert all_alerts(city) == []
    notify(city, incidents(("OWN", *NORTH_50, {"reported_by_org": "VTSH"})), "verified")  # told when verified
    assert set(by_org(city)) == {("VTSH", "OWN")}


def test_the_duty_officer_is_alerted_for_every_asset(city):
    """With ALERT_DUTY_ASSETS (the default), tampering near any enterprise's work alerts its owner and the
    police duty officer, once per incident, naming the nearest asset; in a key site's zone the police alert
    names the key site instead."""
    city.config["ALERT_DUTY_ASSETS"] = True
    inside = (105.7805, 10.0305)  # inside K-001, about 78 m from VTSH's S-001
    notify(city, incidents(("I-050", *NORTH_50), ("IN", *inside),
                           ("I-2000", MID_LON, MID_LAT + 2000 * fixtures.METRE_LAT)))
    found = by_org(city)
    assert set(found) == {("VTSH", "I-050"), ("CA-CT", "I-050"), ("VTSH", "IN"), ("CA-CT", "IN")}
    duty = found["CA-CT", "I-050"]
    assert (duty.audience, duty.asset_kind, duty.asset_id) == ("police", "cable_routes", "C-001")
    assert duty.distance_m == pytest.approx(found["VTSH", "I-050"].distance_m)
    assert (found["CA-CT", "IN"].asset_kind, found["CA-CT", "IN"].asset_id) == ("key_sites", "K-001")
    from webmap.alerts import alert_text

    assert "C-001" in alert_text(duty, "vi") and "mục tiêu" not in alert_text(duty, "vi")


def test_reports_of_another_enterprise_alert_only_when_it_shares_and_then_without_its_id(city):
    """The sharing rule of webmap.access holds for alerts too: MKN's report near VTSH's cable tells VTSH
    nothing while MKN does not share; once it shares, VTSH's alert has the place, time and type under an
    opaque id, never MKN's report id."""
    from webmap.accounts import get_accounts

    report = incidents(("R-2026-000777", *NORTH_50, {"reported_by_org": "MKN", "source": "enterprise"}))
    notify(city, report, "verified")
    assert all_alerts(city) == []
    get_accounts(city).set_share_incidents("MKN", True)
    notify(city, report, "verified")
    alerts = all_alerts(city)
    assert [a.org_code for a in alerts] == ["VTSH"]
    assert alerts[0].incident_id.startswith("SHARED-") and "R-2026-000777" not in alerts[0].incident_id
    notify(city, report, "verified")  # still one alert: the alias is stable
    assert len(all_alerts(city)) == 1


def test_an_alert_gets_one_outbox_row_per_channel_in_the_same_transaction(city):
    from webmap.alerts import get_alert_store
    from webmap.delivery import configure_org

    configure_org(city, "VTSH", webhook_url="http://127.0.0.1:9/hook", emails=["duty@vtsh.example"])
    ids = notify(city, incidents(("I-050", *NORTH_50), ("IN", 105.7805, 10.0305)))
    rows = get_alert_store(city).connection().execute(
        "SELECT a.org_code, d.channel, d.state, d.attempts, length(d.delivery_id) FROM deliveries d"
        " JOIN alerts a ON a.id = d.alert_id ORDER BY a.id, d.channel").fetchall()
    assert [tuple(r) for r in rows] == [("VTSH", "email", "pending", 0, 32), ("VTSH", "webhook", "pending", 0, 32)] * 2
    assert len(ids) == 3  # and the police alert, whose organisation has no channel: on the page only


# -- the import hook ----------------------------------------------------------------------------------------
def test_an_import_alerts_only_for_new_recent_incidents(city, run_cli, tmp_path):
    old = fixtures.incidents()  # 2025-2026 incidents, I-050 among them: history, no alert
    path = fixtures.write_geojson(old, str(tmp_path / "v1.geojson"))
    code, out, err = run_cli("import", path, "--layer", "incidents")
    assert code == 0, err
    assert "alerts: 0 created" in out
    fresh = incidents(("NEW-1", *NORTH_50), ("NEW-OLD", *NORTH_50, {"occurred_at": recent(hours=24 * 8)}))
    again = incidents(("I-050", *NORTH_50))  # already in v1, now dated today: not new, no alert
    v2 = gpd.GeoDataFrame(gpd.pd.concat([old[old["id"] != "I-050"], again, fresh], ignore_index=True), crs="EPSG:4326")
    path = fixtures.write_geojson(v2[[c for c in v2.columns if not c.startswith("reporter")]],
                                  str(tmp_path / "v2.geojson"))
    code, out, err = run_cli("import", path, "--layer", "incidents")
    assert code == 0, err
    assert "alerts: 1 created" in out  # NEW-1 only (NEW-OLD is 8 days old: ALERT_MAX_AGE_DAYS is 7)
    close_alerts(city)
    assert set(by_org(city)) == {("VTSH", "NEW-1")}
    # the upload path (import_layer with notify_app) does the same
    v3 = incidents(("NEW-2", *NORTH_50))
    import_layer(city.extensions["webmap_store"], fixtures.write_geojson(v3, str(tmp_path / "v3.geojson")), "incidents",
                 notify_app=city)
    assert set(by_org(city)) == {("VTSH", "NEW-1"), ("VTSH", "NEW-2")}
    # a dry run alerts nobody
    code, out, err = run_cli("import", path, "--layer", "incidents", "--dry-run")
    assert code == 0 and "alerts" not in out


def test_recent_new_incidents_by_hand():
    from webmap.alerts import recent_new_incidents

    now = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    gdf = incidents(("A", 105.7, 10.0, {"occurred_at": "2026-11-23T19:00:01+07:00"}),  # 6 d 23 h 59 m 59 s before
                    ("B", 105.7, 10.0, {"occurred_at": "2026-11-23T18:59:59+07:00"}),  # 7 days and 1 s before
                    ("C", 105.7, 10.0, {"occurred_at": "2026-11-30T10:00:00Z"}),
                    ("D", 105.7, 10.0, {"occurred_at": "not a date"}))
    assert list(recent_new_incidents(gdf, {"C"}, 7, now=now)["id"]) == ["A"]
    assert list(recent_new_incidents(gdf, set(), 7, now=now)["id"]) == ["A", "C"]


# -- the page, acknowledgement and the badge ----------------------------------------------------------------
def csrf_of(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def alerted(city):
    notify(city, incidents(("I-050", *NORTH_50), ("IN", 105.7805, 10.0305)))
    return city


def test_the_alerts_page_shows_an_enterprise_its_own_alerts(alerted, client_as):
    client = client_as("enterprise", "VTSH")
    html = client.get("/alerts").data.decode()
    assert "I-050" in html and "C-001" in html and "<td>IN <small>" in html and "Trộm cắp cáp" in html
    assert not [w for w in SECRET_WORDS if w in html]
    assert client.get("/api/alerts/count").get_json() == {"count": 2}
    other = client_as("enterprise", "MKN")
    html = other.get("/alerts").data.decode()
    assert "I-050" not in html and "C-001" not in html and "wm-alerts-empty" in html
    assert other.get("/api/alerts/count").get_json() == {"count": 0}


def test_acknowledging_an_alert(alerted, client_as, app):
    from webmap import audit

    client = client_as("enterprise", "VTSH")
    alert = by_org(alerted)["VTSH", "I-050"]
    token = csrf_of(client.get("/alerts").data.decode())
    assert client.post(f"/alerts/{alert.id}/ack").status_code == 400  # no CSRF token
    # another enterprise, a district, the police: the same 404 as an alert that does not exist
    for role, org in (("enterprise", "MKN"), ("district", "916"), ("police", "CA-CT")):
        other = client_as(role, org)
        other_token = csrf_of(other.get("/").data.decode())
        answer = other.post(f"/alerts/{alert.id}/ack", data={"csrf_token": other_token})
        assert answer.status_code == 404
        assert answer.data == other.post("/alerts/999999/ack", data={"csrf_token": other_token}).data
    assert client.get("/api/alerts/count").get_json() == {"count": 2}
    response = client.post(f"/alerts/{alert.id}/ack", data={"csrf_token": token, "next": "/alerts?open=1"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/alerts?open=1")
    assert client.get("/api/alerts/count").get_json() == {"count": 1}
    html = client.get("/alerts").data.decode()
    assert "Đã xác nhận cảnh báo" in html and "đã xác nhận lúc" in html
    assert "I-050" not in client.get("/alerts?open=1").data.decode()
    done = by_org(alerted)["VTSH", "I-050"]
    assert done.acknowledged_by.startswith("enterprise.") and done.acknowledged_at
    entry = audit.for_app(app).entries(action="alert_ack", limit=1)[0]
    assert entry.target == f"alert:{alert.id}" and entry.actor == done.acknowledged_by
    # acknowledging again changes nothing and records nothing more
    client.post(f"/alerts/{alert.id}/ack", data={"csrf_token": token})
    assert by_org(alerted)["VTSH", "I-050"].acknowledged_at == done.acknowledged_at
    assert len(audit.for_app(app).entries(action="alert_ack")) == 1
    # an off-site "next" is not followed
    police = client_as("police", "CA-CT")
    site_alert = by_org(alerted)["CA-CT", "IN"]
    answer = police.post(f"/alerts/{site_alert.id}/ack", data={"csrf_token": csrf_of(police.get("/").data.decode()),
                                                               "next": "//evil.example/alerts"})
    assert answer.headers["Location"] == "/alerts"


def test_police_and_admin_see_police_alerts_and_the_admin_sees_failures(alerted, client_as):
    from webmap.alerts import get_alert_store

    police = client_as("police", "CA-CT").get("/alerts").data.decode()
    assert "K-001" in police and "[DEMO] Trung tâm điều hành" in police and "C-001" not in police
    admin_client = client_as("admin")
    admin = admin_client.get("/alerts").data.decode()
    assert "K-001" in admin and "CA-CT" in admin and "wm-delivery-problems-none" in admin
    assert admin_client.get("/api/alerts/count").get_json() == {"count": 1}
    store = get_alert_store(alerted)
    vtsh = by_org(alerted)["VTSH", "I-050"]
    with store.transaction() as con:
        con.execute("INSERT INTO deliveries (delivery_id, alert_id, channel, state, attempts, next_attempt_at,"
                    " last_error, created_at, updated_at) VALUES ('dead-beef', ?, 'webhook', 'failed', 8, 0,"
                    " 'HTTP 503', '2026-11-30T00:00:00+00:00', '2026-11-30T00:00:00+00:00')", (vtsh.id,))
    admin = admin_client.get("/alerts").data.decode()
    assert 'data-delivery="dead-beef"' in admin and "HTTP 503" in admin and "VTSH" in admin
    for role, org in (("police", "CA-CT"), ("enterprise", "VTSH")):
        assert "dead-beef" not in client_as(role, org).get("/alerts").data.decode()


def test_who_may_not_use_the_alerts_page(alerted, client_as):
    public = client_as("public")
    assert public.get("/alerts").status_code == 302 and "/login" in public.get("/alerts").headers["Location"]
    assert public.get("/api/alerts/count").status_code == 404
    district = client_as("district", "916")
    assert district.get("/alerts").status_code == 404
    answer = district.get("/api/alerts/count")
    assert answer.status_code == 404 and answer.get_json()["status"] == 404


def test_the_map_page_carries_the_badge_for_users_with_alerts(alerted, client_as):
    for role, org, has in (("enterprise", "VTSH", True), ("police", "CA-CT", True), ("admin", None, True),
                           ("district", "916", False), ("public", None, False)):
        html = client_as(role, org).get("/").data.decode()
        assert ('id="wm-alerts-link"' in html) == has, role
        assert ("alerts.js" in html) == has, role
    html = client_as("enterprise", "VTSH").get("/").data.decode()
    assert 'data-count-url="/api/alerts/count"' in html and 'href="/alerts"' in html


def test_cli_list(alerted, run_cli):
    code, out, err = run_cli("alerts", "list", "--org", "vtsh")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and all("VTSH" in line for line in lines[1:])
    assert any("I-050" in line and "c:C-001" in line for line in lines)
    code, out, _ = run_cli("alerts", "list", "--unacknowledged")
    assert code == 0 and len(out.splitlines()) == 4 and "CA-CT" in out
    code, _, err = run_cli("alerts", "list", "--org", "NOPE")
    assert code == 2 and "NOPE" in err and len(err.splitlines()) == 1


# -- the badge in a real browser ------------------------------------------------------------------------------
@pytest.mark.browser
def test_the_badge_counts_and_links_to_the_alerts_page(anonymous_session):
    """On the demo city: an incident 10 m from one of VTSH's cables makes VTSH's badge show 1; acknowledging
    it on /alerts takes the badge away."""
    import os

    from webmap.app import create_app

    server = anonymous_session.server
    previous = os.environ.get("WEBMAP_INSTANCE")
    os.environ["WEBMAP_INSTANCE"] = server.instance
    try:
        app = create_app()
    finally:
        if previous is None:
            del os.environ["WEBMAP_INSTANCE"]
        else:
            os.environ["WEBMAP_INSTANCE"] = previous
    try:
        cables = app.extensions["webmap_store"].read_layer("cable_routes")
        cable = cables[cables["owner"] == "VTSH"].iloc[0]
        start = cable.geometry.geoms[0].coords[0] if cable.geometry.geom_type == "MultiLineString" else \
            cable.geometry.coords[0]
        near = GEOD.fwd(start[0], start[1], 0, 10)[:2]
        ident = f"BADGE-{datetime.now(timezone.utc):%H%M%S%f}"
        assert notify(app, incidents((ident, *near)))
    finally:
        close_alerts(app)
        app.extensions["webmap_store"].close()
    page = anonymous_session.log_in("vtsh.demo")
    page.wait_for_selector("#wm-alerts-badge:not([hidden])")
    count = int(page.locator("#wm-alerts-badge").inner_text())
    assert count >= 1
    page.click("#wm-alerts-link")
    page.wait_for_url(server.url + "/alerts")
    row = page.locator(f"tr:has-text('{ident}')")
    row.locator("button").click()
    page.wait_for_selector(".wm-flash")
    page.goto(server.url + "/")
    page.wait_for_function(f"() => document.getElementById('wm-alerts-link').getAttribute('data-count') === '{count - 1}'")
    assert page.locator("#wm-alerts-badge").is_hidden() == (count == 1)


from browser_conftest import anonymous_session, browser, server  # noqa: E402,F401 - fixtures used by name
