"""An incident report in a real browser: vtsh.demo clicks its own cable on the form's map and sends the
report; police.demo verifies it on the reports page. Headless Debian chromium (Playwright) against
``webmap serve`` on the demo city (fixtures in ``browser_conftest.py``). Screenshots: the filled form in
``tests/output/report.png``, the police's list after verification in ``tests/output/report_verified.png``.
"""

from __future__ import annotations

import re

import pytest

from browser_conftest import (  # noqa: F401 - fixtures are used by name
    _close_session,
    _open_session,
    browser,
    save_screenshot,
    server,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def sessions(browser, server):
    opened = []

    def open_as(username):
        session = _open_session(browser, server)
        session.log_in(username)
        opened.append(session)
        return session

    yield open_as
    for session in opened:
        _close_session(session)


def _click_own_cable(page):
    """A real click on one of the enterprise's cables on the form's map, zoomed in on it (zoom 17: a pixel is
    about a metre) at a point where no other of its cables runs within a few pixels; returns the cable's id
    and the point aimed at."""
    target = page.evaluate("""() => {
        const state = window.webmapReport, map = state.map;
        const candidates = [];
        state.assets.forEach((group) => group.eachLayer((layer) => {
          if (!layer.getLatLngs || !layer.feature) return;
          let line = layer.getLatLngs();
          while (Array.isArray(line[0])) line = line[0];
          if (line.length < 2) return;
          const i = Math.max(0, Math.floor((line.length - 2) / 2));
          candidates.push({layer: layer, at: L.latLng((line[i].lat + line[i + 1].lat) / 2, (line[i].lng + line[i + 1].lng) / 2)});
        }));
        for (const c of candidates) {
          map.setView(c.at, 17, {animate: false});
          const p = map.latLngToContainerPoint(c.at);
          const around = [[0, 0], [6, 0], [-6, 0], [0, 6], [0, -6]].map(([dx, dy]) =>
            state.nearestAsset(map.containerPointToLatLng(L.point(p.x + dx, p.y + dy))));
          if (around.every((n) => n && n.feature === c.layer.feature)) {
            const box = map.getContainer().getBoundingClientRect();
            return {id: String(c.layer.feature.id), x: box.left + p.x, y: box.top + p.y, lon: c.at.lng, lat: c.at.lat};
          }
        }
        return null;
    }""")
    assert target, "no VTSH cable on the form's map"
    page.mouse.click(target["x"], target["y"])
    return target


def test_report_by_map_click_then_police_verify(sessions, server):
    vtsh = sessions("vtsh.demo")
    page = vtsh.page
    page.goto(server.url + "/reports/new")
    page.wait_for_selector("#wm-report-map[data-state=ready]")
    assert page.locator("#wm-report-map path").count() > 10  # the district outlines and VTSH's own network
    # only the map's way of giving the location shows; the others are one click away
    assert page.locator(".wm-method[data-method=map]").is_visible()
    assert not page.locator(".wm-method[data-method=chainage]").is_visible()
    page.select_option("#wm-report-type", "cable_theft")
    page.select_option("#wm-report-severity", "high")
    page.fill("#wm-report-time", "2026-11-02T08:30")
    page.fill("#wm-report-damage", "12.500.000")
    page.fill("#wm-report-description", "Mất khoảng 40 m cáp quang treo")
    cable = _click_own_cable(page)
    assert page.input_value("#wm-report-asset") == cable["id"]
    lon, lat = float(page.input_value("#wm-report-lon")), float(page.input_value("#wm-report-lat"))
    assert (lon, lat) == pytest.approx((cable["lon"], cable["lat"]), abs=5e-5)  # 5 m: a few pixels at zoom 17
    assert cable["id"] in page.inner_text("#wm-report-nearest")
    assert page.locator(".wm-report-marker").count() == 1
    page.wait_for_timeout(300)  # tiles of vector paths settle before the picture
    save_screenshot(page, "report.png")
    page.click("#wm-report-submit")
    page.wait_for_url(server.url + "/reports")
    flash = page.inner_text(".wm-flash")
    incident_id = re.search(r"R-\d{4}-\d{6}", flash).group(0)
    row = page.locator(f"tr[data-id='{incident_id}']")
    assert "Mới tiếp nhận" in row.inner_text() and cable["id"] in row.inner_text()
    assert "12.500.000" in row.inner_text()

    police = sessions("police.demo")
    ppage = police.page
    ppage.goto(server.url + "/reports")
    prow = ppage.locator(f"#wm-reports-awaiting tr[data-id='{incident_id}']")
    assert "VTSH" in prow.inner_text() and "vtsh.demo" in prow.inner_text()
    box = f"{lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}"
    features = police.get_json(f"/api/layers/incidents/features?bbox={box}")["features"]
    (feature,) = [f for f in features if f["id"] == incident_id]
    assert (feature["properties"]["status"], feature["properties"]["source"]) == ("reported", "enterprise")
    prow.locator("input[name=note]").fill("Đã kiểm tra hiện trường")
    prow.locator("button.wm-verify").click()
    ppage.wait_for_url(server.url + "/reports")
    assert incident_id in ppage.inner_text(".wm-flash")
    done = ppage.locator(f"#wm-reports-decided tr[data-id='{incident_id}']")
    assert "Đã xác minh" in done.inner_text() and "Đã kiểm tra hiện trường" in done.inner_text()
    assert done.locator(".wm-history li").count() == 2
    save_screenshot(ppage, "report_verified.png")
    features = police.get_json(f"/api/layers/incidents/features?bbox={box}")["features"]
    assert [f["properties"]["status"] for f in features if f["id"] == incident_id] == ["verified"]
    # and the enterprise reads the outcome on its own page, without the officer's name
    page.goto(server.url + "/reports")
    mine = page.locator(f"tr[data-id='{incident_id}']").inner_text()
    assert "Đã xác minh" in mine and "police.demo" not in mine and "Công an" in mine
