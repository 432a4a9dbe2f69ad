"""The planners' page /priority in a real browser: headless Debian chromium (Playwright) against
``webmap serve`` on the demo city, signed in as police.demo.

The server compiles the analysis in the background as it starts (the warm-up); the page is opened only
once /api/priority stops answering 503 (polled from Python with the session's cookie, so the browser
never logs a 503), so the test sees what a planner sees after start-up. A screenshot is written to
``tests/output/priority.png``. Fixtures (server, browser, session) are those of ``browser_conftest.py``,
which also checks every page for console errors and requests to any host but 127.0.0.1.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from browser_conftest import browser, save_screenshot, server, session  # noqa: F401 - fixtures by name

pytestmark = pytest.mark.browser

WARM_TIMEOUT_S = 240  # a first compile on a busy 2-core machine; the numba disk cache makes it seconds after


def wait_until_warm(session):
    """Ask /api/priority as the signed-in user until it stops answering 503 (bounded)."""
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in session.context.cookies())
    deadline = time.monotonic() + WARM_TIMEOUT_S
    statuses = []
    while True:
        request = urllib.request.Request(session.server.url + "/api/priority", headers={"Cookie": cookies})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                statuses.append(response.status)
                body = json.loads(response.read().decode("utf-8"))
                return body, statuses
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)
            if exc.code != 503:
                raise
            assert exc.headers["Retry-After"]
        if time.monotonic() > deadline:
            pytest.fail(f"/api/priority still 503 after {WARM_TIMEOUT_S} s")
        time.sleep(1)


def open_priority(session, path="/priority"):
    page = session.page
    page.goto(session.server.url + path)
    page.wait_for_function("() => document.getElementById('wm-priority-map').getAttribute('data-state') === 'ready'",
                           timeout=120_000)
    page.wait_for_function("() => (window.priorityApp.infra.loaded || 0) > 0")
    return page


def test_priority_page_for_planners(session):
    answer, statuses = wait_until_warm(session)
    assert answer["features"], "the demo city has priority areas"
    page = open_priority(session)
    app = "window.priorityApp"

    # the choropleth: one path per area, filled by class; hot spots outlined
    cells = page.locator("path.wm-cell")
    assert cells.count() == len(answer["features"])
    classes = set(page.eval_on_selector_all("path.wm-cell", "els => els.map(e => e.getAttribute('fill'))"))
    assert len(classes) >= 2
    # hot spots outlined once per cluster and confidence class (merged cells)
    hot = [f for f in answer["spots"]["features"] if f["properties"]["hotspot"] == "hot"]
    assert hot and page.locator("path.wm-spot-hot").count() == len(hot)
    assert sum(f["properties"]["areas"] for f in hot) == sum(
        f["properties"]["hotspot"] == "hot" for f in answer["features"])
    # infrastructure over it, from the features API of the view
    assert page.locator("path.wm-cable").count() > 0
    assert page.locator("path.wm-station").count() > 0
    assert page.locator("path.wm-district").count() > 0
    legend = page.locator(".wm-priority-legend").inner_text()
    for text in ("Mức ưu tiên", "Rất cao", "Thấp", "Nóng", "Lạnh", "99 %", "90 %", "Tuyến cáp", "Trạm"):
        assert text in legend, text

    # the ranked table: ranks in order, components, trend in Vietnamese, a print link per row
    rows = page.locator("#wm-priority-rows tr")
    assert rows.count() == min(200, len(answer["features"]))
    ranks = [int(t) for t in page.eval_on_selector_all("#wm-priority-rows tr td:first-child", "els => els.map(e => e.textContent)")]
    assert ranks == sorted(ranks) and ranks[0] == 1
    first = rows.first
    top = min(answer["features"], key=lambda f: f["properties"]["rank"])
    assert first.get_attribute("data-area") == top["id"]
    assert first.locator(".wm-component").count() == 4
    trends = set(page.eval_on_selector_all("#wm-priority-rows td.wm-trend", "els => els.map(e => e.textContent)"))
    assert trends <= {"Mới nổi", "Kéo dài", "Giảm dần", "–"} and trends - {"–"}
    href = first.locator("a.wm-print").get_attribute("href")
    assert urlsplit(href).path == "/print/patrol.pdf"
    # the print asks the analysis the table shows: its grid (and, below, its filters)
    assert parse_qs(urlsplit(href).query) == {"area": [top["id"]], "paper": ["A4"], "cell_m": ["500"],
                                              "shape": ["hex"]}
    exports = page.eval_on_selector_all(".wm-priority-export", "els => els.map(e => e.getAttribute('href'))")
    assert [urlsplit(u).path for u in exports] == ["/priority/export.geojson", "/priority/export.gpkg",
                                                   "/priority/export.csv", "/priority/export.xlsx"]
    method = page.locator("#wm-priority-method").inner_text()
    assert "Getis" in method

    page.wait_for_timeout(300)
    save_screenshot(page, "priority.png")

    # a click on a row zooms to that area and marks it
    third = rows.nth(2)
    area = third.get_attribute("data-area")
    third.click()
    page.wait_for_function(f"() => {app}.selected === {json.dumps(area)}")
    page.wait_for_timeout(400)  # the fit animation
    inside = page.evaluate(f"""() => {{ const l = {app}.byId[{json.dumps(area)}];
        return {app}.map.getBounds().contains(l.getBounds()) && {app}.map.getZoom() >= 13; }}""")
    assert inside
    assert "wm-selected" in third.get_attribute("class")

    # sorting by a column: by incidents, most first
    page.locator("#wm-priority-table th[data-key=incidents]").click()
    counts = page.eval_on_selector_all("#wm-priority-rows tr td:nth-child(8)",
                                       "els => els.map(e => parseInt(e.textContent.replace(/\\./g, ''), 10))")
    assert counts == sorted(counts, reverse=True)

    # a filter: cable theft only -> a new answer, with fewer incidents, and the address bar and exports follow
    before = page.evaluate(f"() => {app}.loadCount")
    everything = page.evaluate(f"() => {app}.data.metadata.incidents_total")
    for box in page.locator("input[name=types]").all():
        if box.get_attribute("value") != "cable_theft":
            box.uncheck()
    page.wait_for_function(f"""() => {app}.loadCount > {before} + 0 && {app}.state === 'ready'
        && {app}.requests[{app}.requests.length - 1].includes('types=cable_theft')""", timeout=120_000)
    page.wait_for_function(f"() => {app}.state === 'ready' && {app}.data.metadata.query.types"
                           f" && {app}.data.metadata.query.types.join() === 'cable_theft'", timeout=120_000)
    theft = page.evaluate(f"() => {app}.data.metadata.incidents_total")
    assert 0 < theft < everything
    assert "types=cable_theft" in page.url
    assert all("types=cable_theft" in u for u in
               page.eval_on_selector_all(".wm-priority-export", "els => els.map(e => e.getAttribute('href'))"))
    printed = parse_qs(urlsplit(page.locator("#wm-priority-rows tr a.wm-print").first.get_attribute("href")).query)
    assert printed["types"] == ["cable_theft"] and printed["cell_m"] == ["500"] and printed["shape"] == ["hex"]
    assert session.errors == []


def test_priority_page_in_english(session):
    wait_until_warm(session)
    page = open_priority(session, "/priority?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Priority" in page.locator(".wm-priority-legend").inner_text()
    assert "Cable theft" in page.locator("#wm-priority-filters").inner_text()
    trends = set(page.eval_on_selector_all("#wm-priority-rows td.wm-trend", "els => els.map(e => e.textContent)"))
    assert trends <= {"Emerging", "Persistent", "Fading", "–"}
