"""The map page in a real browser: headless Debian chromium (Playwright) against ``webmap serve``.

Run: ``.venv/bin/pytest tests/test_browser.py -q``. Fixtures and helpers are in ``browser_conftest.py``;
every test page is also checked for console errors and for requests to any host but 127.0.0.1.
A screenshot of the whole map is written to ``tests/output/map.png``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from browser_conftest import (  # noqa: F401 - fixtures are used by name
    XSS_ID,
    anonymous_session,
    XSS_NAME,
    browser,
    click_feature,
    idle_count,
    map_bounds,
    save_screenshot,
    server,
    session,
    wait_idle_after,
    wait_ready,
    wait_request_done,
)

pytestmark = pytest.mark.browser

VI_STATION_LABELS = ["Mã trạm", "Tên trạm", "Doanh nghiệp quản lý", "Loại trạm", "Mức độ quan trọng"]
VI_STATION_KINDS = {"Trạm BTS", "Tổng đài", "Trung tâm dữ liệu", "Bưu cục", "Trạm cổng quốc tế"}


def _feature_requests(session, kind):
    return [u for u in session.requests if f"/api/layers/{kind}/features" in u]


def test_map_renders_layers_labels_legend(session):
    page = session.open()
    layers = {layer["kind"]: layer for layer in session.get_json("/api/layers")["layers"]}
    assert page.locator(".leaflet-container").count() == 1
    # district names, permanent, at the polygon centres
    labels = page.locator(".wm-label-districts")
    assert labels.count() == layers["districts"]["count"]
    assert "Ninh Kiều" in labels.all_inner_texts()
    assert labels.first.is_visible()
    # features drawn: SVG paths for areas, lines and stations; icons (clusters) for incidents
    counts = page.evaluate("() => window.webmapApp.counts")
    for kind in ("districts", "key_sites", "cable_routes", "stations", "incidents"):
        assert counts[kind] > 0, kind
    assert page.locator("path.wm-cable_routes").count() == counts["cable_routes"]
    assert page.locator("path.wm-stations").count() > 0
    assert page.locator(".wm-cluster, .wm-point-icon").count() > 0
    # key sites hatched with an SVG pattern
    assert page.locator("pattern#wm-hatch-key_sites").count() == 1
    assert page.locator("path.wm-key_sites[fill='url(#wm-hatch-key_sites)']").count() > 0
    # cables: width by criticality, dash by placement, colour by owner
    widths = set(page.eval_on_selector_all("path.wm-cable_routes", "els => els.map(e => e.getAttribute('stroke-width'))"))
    assert len(widths) > 1
    colours = set(page.eval_on_selector_all("path.wm-cable_routes", "els => els.map(e => e.getAttribute('stroke'))"))
    assert len(colours) > 1
    # layer control with counts, legend with Vietnamese value labels, scale, coordinates, attribution
    control = page.locator(".wm-layer-control").inner_text()
    assert "Tuyến cáp" in control and f"({layers['cable_routes']['count']})" in control
    legend = page.locator(".wm-legend").inner_text()
    for text in ("Chú giải", "Doanh nghiệp quản lý", "Trạm BTS", "Cáp ngầm", "Trộm cắp cáp"):
        assert text in legend, text
    assert page.locator(".wm-zoom-layer").count() == len([k for k in layers.values() if k["count"]])
    assert page.locator(".leaflet-control-scale").is_visible()
    assert page.locator(".wm-coords").inner_text().startswith("Tọa độ:")
    page.mouse.move(700, 400)
    coords = page.locator(".wm-coords").inner_text().split(":")[1].split(",")
    assert all(len(c.strip().split(".")[1]) == 5 for c in coords)
    assert "gis.chinhphu.vn" in page.locator(".leaflet-control-attribution").inner_text()
    # features come from the API for the view (a bbox), never inlined in the page
    assert page.content().count("FeatureCollection") == 0
    assert any("bbox=" in u for u in _feature_requests(session, "stations"))
    if layers["incidents"]["count"] > page.evaluate("() => window.webmapApp.pageFeatures"):
        assert "2.000" in page.locator(".wm-notice").inner_text()
    page.wait_for_timeout(300)  # let the cluster animation settle before the picture
    path = save_screenshot(page, "map.png")
    assert path.endswith("map.png")


def test_layer_toggles_off_and_on(session):
    page = session.open()
    before = page.locator("path.wm-stations").count()
    assert before > 0
    checkbox = page.locator(".leaflet-control-layers-overlays label", has_text="Trạm viễn thông").locator("input")
    checkbox.uncheck()
    assert page.locator("path.wm-stations").count() == 0
    assert "wm-off" in page.locator(".wm-legend-stations").get_attribute("class")
    checkbox.check()
    page.wait_for_function(f"() => document.querySelectorAll('path.wm-stations').length === {before}")
    wait_ready(page)


def test_zoom_to_layer_button(session):
    page = session.open()
    page.evaluate("() => { window.webmapApp.map.setView([10.5, 106.5], 13, {animate: false}); }")
    wait_ready(page)
    bbox = [k for k in session.get_json("/api/layers")["layers"] if k["kind"] == "key_sites"][0]["bbox"]
    before = idle_count(page)
    page.locator(".wm-zoom-layer[data-kind=key_sites]").click()
    wait_idle_after(page, before)
    b = map_bounds(page)
    assert b["west"] <= bbox[0] and b["south"] <= bbox[1] and b["east"] >= bbox[2] and b["north"] >= bbox[3]


def test_search_lists_and_zooms(session):
    page = session.open()
    zoom_before = page.evaluate("() => window.webmapApp.map.getZoom()")
    page.locator("#wm-search-input").fill("ninh kieu")
    hit = page.locator("#wm-search-results .wm-hit", has_text="Ninh Kiều").first
    hit.wait_for()
    assert "Quận/huyện" in hit.inner_text()
    results = page.evaluate("() => window.webmapApp.search.results")
    district = [r for r in results if r["layer"] == "districts"][0]
    assert district["label"].startswith("Ninh Kiều")
    before = idle_count(page)
    hit.click()
    wait_idle_after(page, before)
    assert page.locator("#wm-search-results").is_hidden()
    b = map_bounds(page)
    w, s, e, n = district["bbox"]
    assert b["west"] <= w and b["south"] <= s and b["east"] >= e and b["north"] >= n
    assert page.evaluate("() => window.webmapApp.map.getZoom()") > zoom_before
    assert page.locator("path.wm-flash").count() == 1  # the district is highlighted for a while

    if not session.server.demo:
        return
    # keyboard: type, arrow down, Enter
    page.locator("#wm-search-input").fill("")
    page.locator("#wm-search-input").type("cai rang")
    page.locator("#wm-search-results .wm-hit", has_text="Cái Răng").first.wait_for()
    before = idle_count(page)
    page.locator("#wm-search-input").press("ArrowDown")
    page.locator("#wm-search-input").press("Enter")
    wait_idle_after(page, before)
    assert "Cái Răng" in page.locator("#wm-search-input").input_value()


def test_popup_shows_vietnamese_labels(session):
    page = session.open("/#map=15/10.0300/105.7700")
    click_feature(page, "stations")
    popup = page.locator(".leaflet-popup-content")
    assert popup.locator(".wm-popup-layer").text_content() == "Trạm viễn thông, bưu chính"
    headers = popup.locator("th").all_inner_texts()
    for label in VI_STATION_LABELS:
        assert label in headers, (label, headers)
    kind_value = popup.locator("tr", has_text="Loại trạm").locator("td").inner_text()
    assert kind_value in VI_STATION_KINDS  # a coded value is shown with its label

    # a cable too: its popup names the placement and medium in Vietnamese
    page.evaluate("() => { window.webmapApp.map.removeLayer(window.webmapApp.layers.stations); }")
    page.evaluate("() => { window.webmapApp.map.removeLayer(window.webmapApp.layers.incidents); }")
    click_feature(page, "cable_routes")
    cable = page.locator(".leaflet-popup-content").inner_text()
    for label in ("Mã tuyến", "Loại cáp", "Hình thức lắp đặt"):
        assert label in cable
    assert any(v in cable for v in ("Cáp quang", "Cáp đồng"))


def test_incident_type_filter(session):
    page = session.open()
    total = page.evaluate("() => window.webmapApp.counts.incidents")
    assert page.locator(".wm-filter-form").is_hidden()  # collapsed until asked for
    page.locator(".wm-filters .wm-panel-toggle").click()
    boxes = page.locator(".wm-filter-form input[name=type]")
    assert boxes.count() == 8
    for i in range(boxes.count()):
        if boxes.nth(i).get_attribute("value") != "cable_theft":
            boxes.nth(i).uncheck()
    wait_request_done(page, "incidents", "q.get('type') === 'cable_theft'")
    assert page.evaluate("() => window.webmapApp.data.incidents.every(f => f.properties.type === 'cable_theft')")
    last = _feature_requests(session, "incidents")[-1]
    params = parse_qs(urlsplit(last).query)
    assert params["type"] == ["cable_theft"]
    assert "bbox" in params
    shown = page.evaluate("() => window.webmapApp.counts.incidents")
    markers = page.evaluate("() => window.webmapApp.parts.incidents.features.getLayers().length")
    assert 0 < shown < total and markers == shown
    assert page.locator(".wm-filter-status").inner_text().startswith(f"{shown:,}".replace(",", "."))
    answer = session.get_json(urlsplit(last).path + "?" + urlsplit(last).query)
    assert answer["numberReturned"] == shown

    # a date range narrows it further and is sent as since/until
    page.locator(".wm-filter-form input[name=since]").fill("2025-01-01")
    page.locator(".wm-filter-form input[name=until]").fill("2025-06-30")
    wait_request_done(page, "incidents", "q.get('until') === '2025-06-30' && q.get('since') === '2025-01-01'")
    params = parse_qs(urlsplit(_feature_requests(session, "incidents")[-1]).query)
    assert params["since"] == ["2025-01-01"] and params["until"] == ["2025-06-30"]
    dated = page.evaluate("() => window.webmapApp.data.incidents.map(f => f.properties.occurred_at)")
    assert all("2025-01-01" <= d[:10] <= "2025-06-30" for d in dated)

    # reset: every type again, no date
    page.locator(".wm-filter-reset").click()
    wait_request_done(page, "incidents", "!q.has('type') && !q.has('since')")
    params = parse_qs(urlsplit(_feature_requests(session, "incidents")[-1]).query)
    assert "type" not in params and "since" not in params
    assert page.evaluate("() => window.webmapApp.counts.incidents") == total


def test_english_switch(session):
    page = session.open()
    with page.expect_navigation():
        page.locator("#wm-lang").click()
    wait_ready(page)
    assert page.locator("html").get_attribute("lang") == "en"
    control = page.locator(".wm-layer-control").inner_text()
    assert "Cable routes" in control and "Stations" in control and "Tuyến cáp" not in control
    legend = page.locator(".wm-legend").inner_text()
    assert "Legend" in legend and "Owner" in legend and "Cable theft" in legend
    assert page.locator("#wm-search-input").get_attribute("placeholder").startswith("Search")
    assert "Coordinates" in page.locator(".wm-coords").inner_text()
    assert page.locator("#wm-lang").inner_text() == "Tiếng Việt"
    # the view is kept across the switch (#map=zoom/lat/lon)
    assert "#map=" in page.url


def test_html_in_data_is_shown_as_text(session):
    page = session.open()
    page.locator("#wm-search-input").fill(XSS_ID)
    hit = page.locator("#wm-search-results .wm-hit").first
    hit.wait_for()
    assert XSS_NAME in hit.inner_text()
    before = idle_count(page)
    hit.click()
    wait_idle_after(page, before)
    click_feature(page, "stations", XSS_ID)
    popup = page.locator(".leaflet-popup-content")
    assert popup.locator(".wm-popup-title").inner_text() == XSS_NAME
    assert "<script>window.__xss=2</script>" in popup.inner_text()
    assert popup.locator("img, script").count() == 0
    assert page.locator("#wm-search-results img").count() == 0
    page.wait_for_timeout(200)
    assert page.evaluate("() => typeof window.__xss") == "undefined"


def test_no_console_errors_and_only_local_requests(session):
    page = session.open()
    before = idle_count(page)
    page.evaluate("() => { window.webmapApp.map.setZoom(13); }")
    wait_idle_after(page, before)
    before = idle_count(page)
    page.evaluate("() => { window.webmapApp.map.panBy([300, 200], {animate: false}); }")
    wait_idle_after(page, before)
    assert session.errors == []
    assert len(session.requests) > 5
    assert session.foreign_requests() == []
    hosts = {urlsplit(u).hostname for u in session.requests if urlsplit(u).scheme in ("http", "https")}
    assert hosts == {"127.0.0.1"}


# -- roles in the browser -----------------------------------------------------------------------------

def forget_expected_404(session):
    """Chromium logs the 404 this test asked for on purpose as a console error; forget that one only."""
    session.errors[:] = [e for e in session.errors if "status of 404" not in e]


OWNERS_DRAWN = """() => Array.from(new Set((window.webmapApp.data.cable_routes || [])
    .map((f) => f.properties.owner))).sort()"""


def test_anonymous_visitor_sees_only_boundaries(anonymous_session):
    page = anonymous_session.open("/")
    kinds = page.evaluate("() => Object.keys(window.webmapApp.layers)")
    assert set(kinds) <= {"districts", "wards", "roads"} and "districts" in kinds
    assert page.locator("#wm-login").is_visible()


def test_enterprise_sees_only_its_own_cables_and_no_key_sites(anonymous_session):
    page = anonymous_session.log_in("vtsh.demo")
    assert page.locator("#wm-user").inner_text() == "vtsh.demo"
    kinds = set(page.evaluate("() => Object.keys(window.webmapApp.layers)"))
    assert "cable_routes" in kinds and "key_sites" not in kinds
    owners = page.evaluate(OWNERS_DRAWN)
    assert owners == ["VTSH"]
    answer = anonymous_session.get_json("/api/layers/key_sites/features")
    assert answer["status"] == 404
    forget_expected_404(anonymous_session)


def test_police_see_key_sites_and_log_out(session):
    page = session.page
    kinds = set(page.evaluate("() => Object.keys(window.webmapApp.layers)"))
    assert {"key_sites", "cable_routes", "stations", "incidents"} <= kinds
    owners = page.evaluate(OWNERS_DRAWN)
    assert len(owners) >= 2
    page.click("#wm-logout")
    page.wait_for_selector("#wm-login")
    assert session.get_json("/api/layers/key_sites/features")["status"] == 404
    forget_expected_404(session)
