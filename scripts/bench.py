#!/usr/bin/env python
"""Benchmark webmap against the baselines the foundation issue names, side by side in one run.

    .venv/bin/python scripts/bench.py [--incidents 1000000] [--cables 100000] [--requests 200] [--only NAME]

Sections (each prints its numbers and a ratio; targets in brackets):
  import    1,000,000 incidents from a GeoPackage and from a zipped Shapefile through the whole import
            (checks, CRS, schema, store) against a raw pyogrio Arrow read of the same file [within 3x]
  viewport  a 2 km box asking for 1,000 features, p50/p95 over HTTP, on 1,000,000 incidents and on
            100,000 cable segments, against pygeoapi's OGR provider serving the same GeoPackage [2x faster]
  page      map page bytes and time to first features in headless chromium, with the demo data and with
            1,000,000 incidents, against folium with the same data inlined [page under 300 KB]

pygeoapi and the GDAL Python bindings it needs are bench-only and live in their own virtual environment
(``--baseline-venv``, default /work/bench-venv): Debian's gdal-bin and libgdal-dev, then
``pip install GDAL==$(gdal-config --version) pygeoapi waitress`` in that venv. Without it the viewport
section says so and measures webmap alone. Timings are wall-clock on this machine: compare ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "bench", "output")
CITY = (105.23, 9.92, 105.84, 10.32)  # Cần Thơ's extent, lon/lat
TYPES = ["cable_theft", "sabotage", "fire_explosion", "fee_fraud", "postal_smuggling", "cyber_attack",
         "reactionary_material", "other"]
sys.path.insert(0, ROOT)


# -- synthetic data ---------------------------------------------------------------------------------
def make_incidents(n: int, seed: int = 7) -> gpd.GeoDataFrame:
    """``n`` schema-valid incidents over the city, clustered like real ones (vectorised)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(CITY[:2], CITY[2:], size=(200, 2))
    pick = rng.integers(0, len(centres), n)
    xy = centres[pick] + rng.normal(0, 0.01, size=(n, 2))
    xy = np.clip(xy, CITY[:2], CITY[2:])
    start = np.datetime64("2023-12-01T00:00")
    minutes = rng.integers(0, 3 * 365 * 24 * 60, n)
    stamps = np.datetime_as_string(start + minutes.astype("timedelta64[m]"), unit="s")
    return gpd.GeoDataFrame(
        {
            "id": np.char.add("B-", np.arange(n).astype(str)),
            "occurred_at": np.char.add(stamps.astype(str), "+07:00"),
            "type": np.array(TYPES)[rng.integers(0, len(TYPES), n)],
            "status": np.array(["reported", "verified", "resolved"])[rng.integers(0, 3, n)],
            "severity": np.array(["low", "medium", "high", "critical"])[rng.integers(0, 4, n)],
            "damage_vnd": rng.integers(0, 200_000_000, n),
            "source": np.array(["hotline", "police_patrol", "enterprise"])[rng.integers(0, 3, n)],
        },
        geometry=shapely.points(xy),
        crs="EPSG:4326",
    )


def make_cables(n: int, seed: int = 8) -> gpd.GeoDataFrame:
    """``n`` short cable segments (two vertices each, about 200 m) over the city."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(CITY[:2], CITY[2:], size=(n, 2))
    b = a + rng.normal(0, 0.0015, size=(n, 2))
    coords = np.stack([a, b], axis=1)
    return gpd.GeoDataFrame(
        {
            "id": np.char.add("SEG-", np.arange(n).astype(str)),
            "owner": np.array(["VTSH", "MKN", "TCT"])[rng.integers(0, 3, n)],
            "medium": "fibre",
            "placement": np.array(["aerial", "underground"])[rng.integers(0, 2, n)],
            "criticality": np.array(["low", "medium", "high"])[rng.integers(0, 3, n)],
        },
        geometry=shapely.linestrings(coords),
        crs="EPSG:4326",
    )


def write_inputs(gdf, name):
    gpkg = os.path.join(OUT, f"{name}.gpkg")
    if not os.path.exists(gpkg):
        pyogrio.write_dataframe(gdf, gpkg, layer=name, driver="GPKG", use_arrow=True)
    shp_zip = os.path.join(OUT, f"{name}.zip")
    if not os.path.exists(shp_zip):
        folder = tempfile.mkdtemp()
        pyogrio.write_dataframe(gdf, os.path.join(folder, f"{name}.shp"), encoding="UTF-8", use_arrow=True)
        with zipfile.ZipFile(shp_zip, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in sorted(os.listdir(folder)):
                archive.write(os.path.join(folder, member), member)
        shutil.rmtree(folder)
    return gpkg, shp_zip


# -- helpers --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path="/", timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            con.request("GET", path)
            con.getresponse().read()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"no server on port {port}")


def percentiles(samples):
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.95) - 1]


def timed_gets(port, paths, cookie=None):
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": cookie} if cookie else {}
    times, sizes = [], []
    for path in paths:
        t0 = time.perf_counter()
        con.request("GET", path, headers=headers)
        response = con.getresponse()
        body = response.read()
        times.append((time.perf_counter() - t0) * 1000)
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status} {body[:200]!r}")
        sizes.append(len(json.loads(body)["features"]))
    return times, sizes


def boxes_2km(gdf, count, seed=3):
    """2 km boxes around random features of ``gdf`` (so every box holds data)."""
    rng = np.random.default_rng(seed)
    centres = shapely.centroid(gdf.geometry.values[rng.integers(0, len(gdf), count)])
    half_lon, half_lat = 1000 / 109_500, 1000 / 110_574
    return [(p.x - half_lon, p.y - half_lat, p.x + half_lon, p.y + half_lat) for p in centres]


# -- sections -------------------------------------------------------------------------------------
def bench_import(args, incidents):
    """Raw read and whole import of the same file, alternated ``args.rounds`` times: medians and their ratio
    (one run on a shared 2-core machine varies by 20 %; alternating keeps both sides in the same weather)."""
    from webmap.importer import import_layer
    from webmap.store.embedded import EmbeddedStore

    gpkg, shp_zip = write_inputs(incidents, "incidents")
    print(f"\n== import: {len(incidents):,} incidents, median of {args.rounds} alternated rounds ==")
    for label, path in (("GeoPackage", gpkg), ("zipped Shapefile", shp_zip)):
        raw_times, our_times = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            raw = pyogrio.read_dataframe(path, use_arrow=True)
            raw_times.append(time.perf_counter() - t0)
            count = len(raw)
            del raw
            folder = tempfile.mkdtemp(dir=OUT)
            store = EmbeddedStore(folder)
            t0 = time.perf_counter()
            report = import_layer(store, path, "incidents")
            our_times.append(time.perf_counter() - t0)
            assert report.features_kept == count == len(incidents)
            store.close()
            shutil.rmtree(folder)
        raw_s, ours_s = statistics.median(raw_times), statistics.median(our_times)
        print(f"{label:>17}: raw pyogrio Arrow read {raw_s:6.2f} s ({count / raw_s:>10,.0f} features/s); "
              f"webmap import {ours_s:6.2f} s ({count / ours_s:>10,.0f} features/s); "
              f"ratio {ours_s / raw_s:4.2f}x [target <= 3x] "
              f"(rounds: raw {', '.join(f'{t:.2f}' for t in raw_times)}; "
              f"import {', '.join(f'{t:.2f}' for t in our_times)})")


BENCH_USER = "bench.police"
BENCH_PASSWORD = "Bench-Police-2026-kiem-tra"


def ensure_bench_user(instance):
    """A police account (who sees every layer) in the benchmark's instance, its first password changed."""
    from webmap.accounts import AccountStore, accounts_path
    from webmap.errors import WebmapError

    accounts = AccountStore(accounts_path(instance))
    try:
        try:
            accounts.get_org("CA-CT")
        except WebmapError:
            accounts.add_org("CA-CT", "Công an thành phố (benchmark)", "police")
        try:
            accounts.get_user(BENCH_USER)
        except WebmapError:
            _, initial = accounts.add_user(BENCH_USER, "police", "CA-CT")
            accounts.change_password(BENCH_USER, initial, BENCH_PASSWORD)
    finally:
        accounts.close()


def _cookie(response, name="session"):
    for header, value in response.getheaders():
        if header.lower() == "set-cookie" and value.startswith(name + "="):
            return value.split(";", 1)[0]
    return None


def login_cookie(port):
    """Sign in through the real form (CSRF token included) and return the session cookie."""
    import re
    from urllib.parse import urlencode

    con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    con.request("GET", "/login")
    response = con.getresponse()
    token = re.search(r'name="csrf_token" value="([^"]+)"', response.read().decode()).group(1)
    cookie = _cookie(response)
    form = urlencode({"csrf_token": token, "username": BENCH_USER, "password": BENCH_PASSWORD})
    con.request("POST", "/login", body=form, headers={"Cookie": cookie,
                                                      "Content-Type": "application/x-www-form-urlencoded"})
    response = con.getresponse()
    response.read()
    if response.status != 302:
        raise RuntimeError(f"bench login failed: HTTP {response.status}")
    return _cookie(response)


def start_webmap(instance):
    """``webmap serve`` on the instance, and the session cookie of a police user."""
    ensure_bench_user(instance)
    port = free_port()
    env = {**os.environ, "WEBMAP_INSTANCE": instance, "WEBMAP_MAX_FEATURES": "5000"}
    proc = subprocess.Popen([sys.executable, "-m", "webmap.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(port, "/api/layers")
    return proc, port, login_cookie(port)


def start_pygeoapi(venv, sources, workdir):
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        return None, None, f"no baseline venv at {venv}"
    port = free_port()
    resources = {}
    for name, (path, id_field, layer) in sources.items():
        resources[name] = {
            "type": "collection", "title": name, "description": name, "keywords": [name],
            "extents": {"spatial": {"bbox": list(CITY), "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
            "providers": [{
                "type": "feature", "name": "OGR",
                "data": {"source_type": "GPKG", "source": path, "source_capabilities": {"paging": True},
                         "source_options": {}, "gdal_ogr_options": {}},
                "id_field": id_field, "layer": layer,
            }],
        }
    config = {
        "server": {"bind": {"host": "127.0.0.1", "port": port}, "url": f"http://127.0.0.1:{port}",
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "language": "en-US",
                   "limits": {"default_items": 1000, "max_items": 5000}, "map": {"url": "", "attribution": ""},
                   "pretty_print": False, "cors": False},
        "logging": {"level": "ERROR"},
        "metadata": {"identification": {"title": "bench", "description": "bench", "keywords": ["bench"],
                                        "keywords_type": "theme", "terms_of_service": "", "url": ""},
                     "license": {"name": "GPL", "url": ""}, "provider": {"name": "bench", "url": ""},
                     "contact": {"name": "bench"}},
        "resources": resources,
    }
    import yaml

    config_path = os.path.join(workdir, "pygeoapi.yml")
    openapi_path = os.path.join(workdir, "openapi.yml")
    with open(config_path, "w") as fh:
        yaml.safe_dump(config, fh)
    env = {**os.environ, "PYGEOAPI_CONFIG": config_path, "PYGEOAPI_OPENAPI": openapi_path}
    subprocess.run([os.path.join(venv, "bin", "pygeoapi"), "openapi", "generate", config_path,
                    "--output-file", openapi_path], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([os.path.join(venv, "bin", "waitress-serve"), "--listen", f"127.0.0.1:{port}",
                             "--threads", "8", "pygeoapi.flask_app:APP"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(port, "/collections")
    return proc, port, None


def bench_viewport(args, incidents, cables):
    from webmap.importer import import_layer
    from webmap.store.embedded import EmbeddedStore

    print(f"\n== viewport: 2 km box, limit 1,000, {args.requests} requests each ==")
    inc_gpkg, _ = write_inputs(incidents, "incidents")
    cab_gpkg, _ = write_inputs(cables, "cable_routes")
    instance = tempfile.mkdtemp(dir=OUT)
    store = EmbeddedStore(os.path.join(instance, "store"))
    import_layer(store, inc_gpkg, "incidents")
    import_layer(store, cab_gpkg, "cable_routes")
    # pygeoapi serves the very GeoPackages webmap imported (its own store holds Arrow files, which its OGR
    # provider cannot open: GDAL's Arrow driver is not in the Debian GDAL it runs on)
    sources = {"incidents": (inc_gpkg, "id", "incidents"), "cable_routes": (cab_gpkg, "id", "cable_routes")}
    ours, port, cookie = start_webmap(instance)
    base, base_port, why = start_pygeoapi(args.baseline_venv, sources, instance)
    try:
        for kind, gdf in (("incidents", incidents), ("cable_routes", cables)):
            boxes = boxes_2km(gdf, args.requests)
            paths = [f"/api/layers/{kind}/features?bbox={w:.6f},{s:.6f},{e:.6f},{n:.6f}&limit=1000" for w, s, e, n in boxes]
            timed_gets(port, paths[:10], cookie)  # warm-up
            times, sizes = timed_gets(port, paths, cookie)
            p50, p95 = percentiles(times)
            line = f"{kind:>13}: webmap p50 {p50:6.1f} ms p95 {p95:6.1f} ms (mean {statistics.mean(sizes):.0f} features)"
            if base:
                bpaths = [f"/collections/{kind}/items?bbox={w:.6f},{s:.6f},{e:.6f},{n:.6f}&limit=1000&f=json"
                          for w, s, e, n in boxes]
                timed_gets(base_port, bpaths[:10])
                btimes, bsizes = timed_gets(base_port, bpaths)
                b50, b95 = percentiles(btimes)
                line += (f"; pygeoapi OGR p50 {b50:6.1f} ms p95 {b95:6.1f} ms (mean {statistics.mean(bsizes):.0f}); "
                         f"p95 speed-up {b95 / p95:4.1f}x [target >= 2x]")
            else:
                line += f"; pygeoapi not measured: {why}"
            print(line)
    finally:
        ours.terminate()
        if base:
            base.terminate()
    return instance


def time_to_first_features(url, wait_js, login_base=None):
    """Seconds from asking for ``url`` to the first drawn feature; signs in first when ``login_base``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        if login_base:
            page.goto(login_base + "/login")
            page.fill("input[name=username]", BENCH_USER)
            page.fill("input[name=password]", BENCH_PASSWORD)
            page.click("form.wm-form button[type=submit]")
            page.wait_for_url(login_base + "/")
            page.goto("about:blank")
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=600_000)
        page.wait_for_function(wait_js, timeout=600_000, polling=50)
        elapsed = time.perf_counter() - t0
        browser.close()
    return elapsed


# webmap draws several layers; what is timed is the incidents (the layer that grows), drawn or clustered
INCIDENTS_DRAWN_JS = ("() => window.webmapApp && window.webmapApp.counts && "
                      "(window.webmapApp.counts.incidents || 0) > 0")
FIRST_FEATURE_JS = ("() => document.querySelectorAll('.leaflet-overlay-pane path, .leaflet-marker-icon, "
                    ".leaflet-marker-pane > *').length > 0")


def folium_inline_page(gdf, path):
    """folium's own way: the data inlined in the page. Its CDN assets are swapped for local copies of the
    same Leaflet, since this machine (like the intranet) reaches no CDN."""
    import folium
    import xstatic.pkg.leaflet as leaflet

    vendor = os.path.join(os.path.dirname(path), "vendor")
    os.makedirs(vendor, exist_ok=True)
    for name in ("leaflet.js", "leaflet.css"):
        shutil.copy(os.path.join(leaflet.BASE_DIR, name), vendor)
    t0 = time.perf_counter()
    fmap = folium.Map(location=[10.06, 105.62], zoom_start=11, tiles=None)
    fmap.default_js = [("leaflet", "vendor/leaflet.js")]
    fmap.default_css = [("leaflet_css", "vendor/leaflet.css")]
    folium.GeoJson(gdf[["id", "type", "geometry"]], name="incidents",
                   marker=folium.CircleMarker(radius=4)).add_to(fmap)
    fmap.save(path)
    return time.perf_counter() - t0, os.path.getsize(path)


def bench_page(args, incidents):
    print("\n== page: bytes and time to first features in chromium ==")
    from webmap.cli import DEMO_DIR
    from webmap.importer import import_layer
    from webmap.store.embedded import EmbeddedStore

    demo_instance = tempfile.mkdtemp(dir=OUT)
    subprocess.run([sys.executable, "-m", "webmap.cli", "demo"], check=True, capture_output=True,
                   env={**os.environ, "WEBMAP_INSTANCE": demo_instance})
    big_instance = tempfile.mkdtemp(dir=OUT)
    store = EmbeddedStore(os.path.join(big_instance, "store"))
    for kind, name in (("districts", "districts.geojson"),):
        import_layer(store, os.path.join(DEMO_DIR, name), kind)
    inc_gpkg, _ = write_inputs(incidents, "incidents")
    import_layer(store, inc_gpkg, "incidents")
    demo_incidents = pyogrio.read_dataframe(os.path.join(DEMO_DIR, "incidents.geojson"))
    for label, instance, data in (("demo", demo_instance, demo_incidents),
                                  (f"{len(incidents):,} incidents", big_instance, incidents)):
        proc, port, cookie = start_webmap(instance)
        try:
            con = http.client.HTTPConnection("127.0.0.1", port)
            t0 = time.perf_counter()
            con.request("GET", "/", headers={"Cookie": cookie})
            body = con.getresponse().read()
            gen = time.perf_counter() - t0
            first = time_to_first_features(f"http://127.0.0.1:{port}/", INCIDENTS_DRAWN_JS,
                                           login_base=f"http://127.0.0.1:{port}")
        finally:
            proc.terminate()
        line = (f"{label:>20}: webmap page {len(body) / 1024:7.1f} KB (made in {gen * 1000:.0f} ms), first features "
                f"after {first:5.2f} s [page < 300 KB: {'yes' if len(body) < 300_000 else 'NO'}]")
        inline_n = min(len(data), args.folium_max)
        folium_path = os.path.join(OUT, f"folium_{inline_n}.html")
        gen_s, size = folium_inline_page(data.iloc[:inline_n], folium_path)
        srv = subprocess.Popen([sys.executable, "-m", "http.server", str(free_port_holder := free_port()),
                                "--bind", "127.0.0.1", "--directory", OUT],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(free_port_holder, "/")
            ffirst = time_to_first_features(f"http://127.0.0.1:{free_port_holder}/{os.path.basename(folium_path)}",
                                            FIRST_FEATURE_JS)
        finally:
            srv.terminate()
        scale = "" if inline_n == len(data) else f" (folium inlines only the first {inline_n:,} of {len(data):,}: --folium-max; a million would not fit a tab)"
        line += (f"; folium inline {size / 1024 / 1024:7.1f} MB made in {gen_s:5.1f} s, first features after "
                 f"{ffirst:5.2f} s{scale}; page size ratio {size / len(body):,.0f}x")
        print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--cables", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--folium-max", type=int, default=100_000, help="most points folium inlines")
    parser.add_argument("--baseline-venv", default="/work/bench-venv")
    parser.add_argument("--only", choices=["import", "viewport", "page"], action="append")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds of each import measure (medians)")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    sections = args.only or ["import", "viewport", "page"]
    t0 = time.perf_counter()
    incidents = make_incidents(args.incidents)
    cables = make_cables(args.cables)
    print(f"synthetic data: {len(incidents):,} incidents, {len(cables):,} cable segments "
          f"({time.perf_counter() - t0:.1f} s)")
    if "import" in sections:
        bench_import(args, incidents)
    if "viewport" in sections:
        bench_viewport(args, incidents, cables)
    if "page" in sections:
        bench_page(args, incidents)


if __name__ == "__main__":
    main()
