"""Fixtures for the browser tests: a real ``webmap serve`` on a temporary instance loaded with the demo
city (plus one station whose name is an HTML injection), and headless Debian chromium through Playwright.

Imported by ``test_browser.py`` only (``tests/conftest.py`` belongs to everyone and stays lean).
Chromium is ``/usr/bin/chromium``; ``playwright install`` is never needed. When it is missing the tests
are skipped, except under CI (env ``CI`` set), where they fail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# WEBMAP_TEST_DEMO_DIR=/nonexistent runs the tests on the small fixture city instead of the demo
DEMO_DIR = os.environ.get("WEBMAP_TEST_DEMO_DIR") or os.path.join(ROOT, "data", "demo")
OUTPUT_DIR = os.path.join(ROOT, "tests", "output")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1366, "height": 768}

# An isolated spot in Vĩnh Thạnh / Thới Lai, kilometres from any demo feature, so a click hits this station.
XSS_NAME = "<img src=x onerror=window.__xss=1>"
XSS_ID = "XSS-1"
XSS_POINT = (105.41, 10.04)


def _unavailable(message):
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: the browser tests must run)")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(instance, *args):
    proc = subprocess.run([sys.executable, "-m", "webmap.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "WEBMAP_INSTANCE": str(instance)}, timeout=180)
    assert proc.returncode == 0, f"webmap {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _load_fixture_city(instance, folder):
    """Without data/demo: the small hand-made dataset of tests/fixtures.py, through `webmap import`."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from fixtures import FRAMES, write_geojson

    for kind in ("districts", "key_sites", "cable_routes", "stations", "incidents"):
        path = write_geojson(FRAMES[kind](), os.path.join(folder, f"{kind}.geojson"))
        _cli(instance, "import", path, "--layer", kind)
    # the same demo accounts `webmap demo` makes, for the organisations of the fixture city
    from webmap.accounts import AccountStore, accounts_path
    from webmap.demo import ensure_demo_accounts

    accounts = AccountStore(accounts_path(str(instance)))
    ensure_demo_accounts(accounts, [("CA-CT", "Công an thành phố (thử)", "police", None),
                                    ("916", "UBND quận Ninh Kiều (thử)", "district", "916"),
                                    ("VTSH", "Viễn thông Sông Hậu (thử)", "enterprise", None),
                                    ("MKN", "Mạng Kết Nối (thử)", "enterprise", None)])
    accounts.close()


def _add_xss_station(instance, folder):
    """Import the stations again with one more whose name is HTML: a new version through the import path."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import Point

    demo = os.path.join(DEMO_DIR, "stations.geojson")
    if os.path.exists(demo):
        stations = gpd.read_file(demo)
    else:
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        from fixtures import FRAMES

        stations = FRAMES["stations"]()
    extra = gpd.GeoDataFrame(
        {"id": [XSS_ID], "name": [XSS_NAME], "owner": ["VTSH"], "kind": ["bts"], "criticality": ["high"],
         "address": ["<script>window.__xss=2</script>"]},
        geometry=[Point(*XSS_POINT)], crs="EPSG:4326",
    )
    merged = gpd.GeoDataFrame(
        pd.concat([stations[[c for c in extra.columns if c in stations.columns]], extra], ignore_index=True),
        crs="EPSG:4326",
    )
    path = os.path.join(folder, "stations_xss.geojson")
    merged.to_file(path, driver="GeoJSON")
    _cli(instance, "import", path, "--layer", "stations")


@dataclass
class Server:
    url: str
    instance: str
    demo: bool
    process: subprocess.Popen

    def get_json(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read().decode("utf-8"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    instance = base / "instance"
    instance.mkdir()
    files = base / "files"
    files.mkdir()
    demo = os.path.isdir(DEMO_DIR) and all(
        os.path.exists(os.path.join(DEMO_DIR, name))
        for name in ("districts.geojson", "key_sites.geojson", "cable_routes.zip", "stations.geojson", "incidents.zip")
    )
    if demo:
        _cli(instance, "demo")
    else:
        _load_fixture_city(instance, str(files))
    _add_xss_station(instance, str(files))

    port = _free_port()
    log = open(base / "serve.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "webmap.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env={**os.environ, "WEBMAP_INSTANCE": str(instance)}, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/api/layers", timeout=2) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.seek(0)
            pytest.fail(f"webmap serve did not start:\n{log.read()}")
        time.sleep(0.1)
    yield Server(url=url, instance=str(instance), demo=demo, process=process)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} not found: install Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed (pip install -e .[test])")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Session:
    """One page and what it did: console errors, page errors, every request URL."""

    page: object
    server: Server
    context: object = None
    errors: list = field(default_factory=list)
    requests: list = field(default_factory=list)

    def open(self, path="/"):
        self.page.goto(self.server.url + path)
        wait_ready(self.page)
        return self.page

    def get_json(self, path):
        """An API answer for this page's user (its session cookie), fetched by the page itself."""
        return self.page.evaluate("(u) => fetch(u).then((r) => r.json())", self.server.url + path)

    def log_in(self, username, password=None):
        """Through the real form, as a person would (CSRF token, session cookie and all)."""
        from webmap.demo import DEMO_PASSWORD

        self.page.goto(self.server.url + "/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password or DEMO_PASSWORD)
        self.page.click("form.wm-form button[type=submit]")
        self.page.wait_for_url(self.server.url + "/")
        wait_ready(self.page)
        return self.page

    def foreign_requests(self):
        return [u for u in self.requests if urlsplit(u).scheme not in ("data", "blob")
                and urlsplit(u).hostname != "127.0.0.1"]


@pytest.fixture
def session(browser, server):
    """A page logged in as the police demo user (who sees every layer); see anonymous_session."""
    result = _open_session(browser, server)
    result.log_in("police.demo")
    yield result
    _close_session(result)


@pytest.fixture
def anonymous_session(browser, server):
    result = _open_session(browser, server)
    yield result
    _close_session(result)


def _open_session(browser, server):
    context = browser.new_context(viewport=VIEWPORT, locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(10_000)
    result = Session(page=page, server=server)
    page.on("console", lambda msg: result.errors.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("pageerror", lambda exc: result.errors.append(f"pageerror: {exc}"))
    page.on("request", lambda request: result.requests.append(request.url))
    result.context = context
    return result


def _close_session(result):
    result.context.close()
    # every test page, whatever it tested: no JS error, nothing asked of another host
    assert not result.errors, result.errors
    assert not result.foreign_requests(), result.foreign_requests()


# -- waiting, deterministically, on the page's own state ------------------------------------------

STATE = "document.querySelector('.folium-map').getAttribute('data-state')"


def wait_ready(page):
    page.wait_for_function(f"() => window.webmapApp && {STATE} === 'ready'")


def idle_count(page) -> int:
    return page.evaluate("() => window.webmapApp.idleCount")


def wait_idle_after(page, before: int):
    """Wait until the map has settled again after an action that moves it or reloads a layer."""
    page.wait_for_function(f"() => window.webmapApp.idleCount > {before} && {STATE} === 'ready'")


def wait_loaded_after(page, before: int):
    page.wait_for_function(f"() => window.webmapApp.loadCount > {before} && {STATE} === 'ready'")


def map_bounds(page) -> dict:
    return page.evaluate("""() => { const b = window.webmapApp.map.getBounds();
        return {west: b.getWest(), south: b.getSouth(), east: b.getEast(), north: b.getNorth()}; }""")


def click_feature(page, kind, feature_id=None):
    """Click (a real mouse click) a drawn feature of ``kind`` at a point of it that nothing covers:
    the centre of a marker, the middle of a line's middle segment, the centre of an area's box."""
    page.evaluate("() => { window.webmapApp.map.closePopup(); }")
    page.wait_for_function("() => !document.querySelector('.leaflet-popup')")  # faded out and removed
    point = page.evaluate(
        """([kind, wanted]) => {
            const app = window.webmapApp, map = app.map;
            const box = map.getContainer().getBoundingClientRect();
            const found = [];
            app.parts[kind].features.eachLayer((layer) => {
              if (wanted !== null && String(layer.feature.id) !== wanted) return;
              const node = layer._path || layer._icon;
              if (!node) return;
              let at;
              if (layer.getLatLng) at = layer.getLatLng();
              else if (layer instanceof L.Polygon) at = layer.getBounds().getCenter();
              else {
                let lls = layer.getLatLngs();
                while (Array.isArray(lls[0])) lls = lls[0];
                const i = Math.max(0, Math.floor((lls.length - 2) / 2));
                at = lls.length > 1 ? L.latLng((lls[i].lat + lls[i + 1].lat) / 2, (lls[i].lng + lls[i + 1].lng) / 2) : lls[0];
              }
              const p = map.latLngToContainerPoint(at);
              const x = box.left + p.x, y = box.top + p.y;
              if (x < box.left + 60 || x > box.right - 60 || y < box.top + 60 || y > box.bottom - 60) return;
              const hit = document.elementFromPoint(x, y);
              if (hit && (hit === node || node.contains(hit))) found.push({x, y, id: layer.feature.id});
            });
            return found.length ? found[Math.floor(found.length / 2)] : null;
        }""",
        [kind, feature_id],
    )
    assert point, f"no uncovered {kind} feature {feature_id or ''} on screen"
    page.mouse.click(point["x"], point["y"])
    page.wait_for_selector(".leaflet-popup-content .wm-popup")
    return point


def wait_request_done(page, kind, condition):
    """Wait until the last features request of ``kind`` meets ``condition`` (a JS expression on the
    URLSearchParams ``q`` of that request) and the map is idle, so its answer is drawn."""
    page.wait_for_function(
        f"""() => {{ const url = window.webmapApp.lastUrl[{kind!r}];
                   if (!url) return false;
                   const q = new URL(url, location.href).searchParams;
                   return ({condition}) && {STATE} === 'ready'; }}"""
    )


def save_screenshot(page, name):
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    path = os.path.join(OUTPUT_DIR, name)
    page.screenshot(path=path, full_page=True)
    return path
