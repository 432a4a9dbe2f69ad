"""Print a drawn rectangle as a patrol map (issue 4), in a real browser: headless Debian chromium
(Playwright) against ``webmap serve``. The control is ``WebmapCommon.printRectangleControl`` (static/common.js),
on the main map for signed-in users and on the planners' page. A screenshot of the drawn rectangle with
its panel open is written to ``tests/output/print_rectangle.png``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from browser_conftest import (  # noqa: F401 - fixtures are used by name
    anonymous_session,
    browser,
    save_screenshot,
    server,
    session,
    wait_ready,
)
from test_priority_browser import open_priority, wait_until_warm

pytestmark = pytest.mark.browser


def _drag(page, x0, y0, x1, y1):
    """A real mouse drag in container pixels; returns the lon/lat of its two corners (as Leaflet computes them)."""
    box = page.locator(".leaflet-container").first.bounding_box()
    page.mouse.move(box["x"] + x0, box["y"] + y0)
    page.mouse.down()
    page.mouse.move(box["x"] + (x0 + x1) / 2, box["y"] + (y0 + y1) / 2, steps=4)
    page.mouse.move(box["x"] + x1, box["y"] + y1, steps=4)
    page.mouse.up()
    return page.evaluate("""([a, b]) => { const m = (window.webmapApp || window.priorityApp).map;
        return [a, b].map((p) => { const ll = m.containerPointToLatLng(p); return [ll.lng, ll.lat]; }); }""",
                         [[x0, y0], [x1, y1]])


def test_police_draw_a_rectangle_and_print_it(session):
    page = session.page
    button = page.locator(".wm-print-rect-button")
    assert button.inner_text() == "In bản đồ tuần tra"
    center = page.evaluate("() => window.webmapApp.map.getCenter()")
    button.click()
    assert page.evaluate("() => window.webmapApp.map.dragging.enabled()") is False
    assert page.evaluate("() => window.webmapApp.map.getContainer().style.cursor") == "crosshair"
    # Esc cancels the draw mode: the map drags again, nothing is drawn
    page.keyboard.press("Escape")
    assert page.evaluate("() => window.webmapApp.map.dragging.enabled()") is True
    assert page.locator(".wm-print-rect-panel").is_hidden()
    button.click()
    (w, n), (e, s) = _drag(page, 300, 200, 700, 500)
    # the map did not pan under the drag, the draw mode ended, the panel opened
    assert page.evaluate("() => window.webmapApp.map.getCenter()") == center
    assert page.evaluate("() => window.webmapApp.map.dragging.enabled()") is True
    assert page.locator(".wm-print-rect-panel").is_visible()
    assert page.locator("path.leaflet-interactive, path").count() > 0
    page.select_option(".wm-print-rect-panel select[name=paper]", "A3")
    page.select_option(".wm-print-rect-panel select[name=orientation]", "landscape")
    link = page.locator(".wm-print-rect-link")
    assert link.inner_text() == "In PDF"
    href = link.get_attribute("href")
    url = urlsplit(href)
    assert url.path == "/print/patrol.pdf"
    query = parse_qs(url.query)
    assert query["paper"] == ["A3"] and query["orientation"] == ["landscape"]
    bbox = [float(v) for v in query["bbox"][0].split(",")]
    # the dragged corners, to a pixel (about 1e-4 degree at the demo zoom)
    tolerance = abs(e - w) / 400 * 2
    for got, want in zip(bbox, (w, s, e, n)):
        assert abs(got - want) < tolerance, (bbox, (w, s, e, n))
    assert bbox[0] < bbox[2] and bbox[1] < bbox[3]
    save_screenshot(page, "print_rectangle.png")
    # the same session (cookie) gets the PDF
    answer = page.evaluate("""(u) => fetch(u, {credentials: 'same-origin'}).then(async (r) =>
        ({status: r.status, type: r.headers.get('Content-Type'), head: (await r.text()).slice(0, 5)}))""",
                           session.server.url + href)
    assert answer["status"] == 200, answer
    assert answer["type"].startswith("application/pdf")
    assert answer["head"] == "%PDF-"


def test_visitor_has_no_print_control(anonymous_session):
    page = anonymous_session.open("/")
    assert page.locator(".wm-print-rect").count() == 0


def test_priority_page_prints_a_rectangle_with_its_analysis(session):
    wait_until_warm(session)
    page = open_priority(session, "/priority?cell_m=1000&shape=square")
    page.locator(".wm-print-rect-button").click()
    _drag(page, 200, 150, 400, 350)
    query = parse_qs(urlsplit(page.locator(".wm-print-rect-link").get_attribute("href")).query)
    assert len(query["bbox"][0].split(",")) == 4
    assert query["paper"] == ["A4"] and query["orientation"] == ["portrait"]
    assert query["cell_m"] == ["1000"] and query["shape"] == ["square"]
    assert "area" not in query
