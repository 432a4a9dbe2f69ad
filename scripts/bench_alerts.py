#!/usr/bin/env python
"""Benchmark the alert fan-out: ``notify_incidents`` for ONE new incident (target: under 50 ms).

    .venv/bin/python scripts/bench_alerts.py [--incidents 200] [--cables 20000] [--orgs 50] [--only demo|big]

Two networks, each on a fresh temporary instance:
  demo  the demo city (data/demo: 313 cable routes, 401 stations, 26 key sites, 4 enterprises + police)
  big   a synthetic city: --cables cable routes (5 vertices, about 1.2 km each), 2,000 stations and 40 key
        sites, owned by --orgs enterprises, plus the police

Every organisation has a webhook configured, so each alert also writes its outbox row (the sending itself is
asynchronous, done by the worker, and not part of the fan-out). Each call is one incident with a new id,
half of them placed 0-80 m from a random cable (so they do alert someone), half anywhere in the city.

Reported per network: the first call (which builds the in-memory STRtrees of the active layer versions),
then p50 / p95 / max of the following calls, the alerts made per incident, and the split between the
spatial match alone (STRtree dwithin, vectorised) and the rest (reading the organisations, one SQLite
transaction with synchronous=FULL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import geopandas as gpd
import numpy as np
import shapely

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
CITY = (105.23, 9.92, 105.84, 10.32)  # Cần Thơ's extent, lon/lat
NOW = None


def make_app(folder):
    os.environ["WEBMAP_INSTANCE"] = os.path.join(folder, "instance")
    from webmap.app import create_app

    return create_app({"TESTING": True})


def recent_iso() -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat(timespec="seconds")


def incidents_near(cables, n, rng, start_id):
    """``n`` one-row incident frames: even ones 0-80 m from a random cable vertex, odd ones anywhere."""
    coords = shapely.get_coordinates(np.asarray(cables.geometry.array, dtype=object))
    frames = []
    for i in range(n):
        if i % 2 == 0:
            lon, lat = coords[rng.integers(0, len(coords))]
            angle, metres = rng.uniform(0, 2 * np.pi), rng.uniform(0, 80)
            lon, lat = lon + metres * np.cos(angle) / 109_600, lat + metres * np.sin(angle) / 110_574
        else:
            lon, lat = rng.uniform(CITY[:2], CITY[2:])
        frames.append(gpd.GeoDataFrame(
            {"id": [f"BENCH-{start_id + i}"], "occurred_at": [recent_iso()], "type": ["cable_theft"],
             "status": ["reported"], "severity": ["high"], "source": ["hotline"]},
            geometry=[shapely.Point(lon, lat)], crs="EPSG:4326"))
    return frames


def big_network(folder, n_cables, n_orgs, rng):
    """Synthetic cables, stations and key sites written as GeoJSON for the ordinary import."""
    owners = np.array([f"ENT{i:02d}" for i in range(n_orgs)])
    start = rng.uniform(CITY[:2], CITY[2:], size=(n_cables, 1, 2))
    steps = rng.normal(0, 0.002, size=(n_cables, 4, 2))
    coords = np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1)
    cables = gpd.GeoDataFrame(
        {"id": np.char.add("CAB-", np.arange(n_cables).astype(str)), "name": "Tuyến thử",
         "owner": owners[rng.integers(0, n_orgs, n_cables)], "medium": "fibre", "placement": "aerial",
         "criticality": "medium"},
        geometry=shapely.linestrings(coords), crs="EPSG:4326")
    n_stations = 2000
    stations = gpd.GeoDataFrame(
        {"id": np.char.add("ST-", np.arange(n_stations).astype(str)), "name": "Trạm thử",
         "owner": owners[rng.integers(0, n_orgs, n_stations)], "kind": "bts", "criticality": "medium"},
        geometry=shapely.points(rng.uniform(CITY[:2], CITY[2:], size=(n_stations, 2))), crs="EPSG:4326")
    centres = rng.uniform(CITY[:2], CITY[2:], size=(40, 2))
    sites = gpd.GeoDataFrame(
        {"id": np.char.add("KS-", np.arange(40).astype(str)), "name": "[BENCH] Mục tiêu", "category": "government",
         "protection_level": "level_1"},
        geometry=shapely.box(centres[:, 0], centres[:, 1], centres[:, 0] + 0.002, centres[:, 1] + 0.002),
        crs="EPSG:4326")
    paths = {}
    for kind, gdf in (("cable_routes", cables), ("stations", stations), ("key_sites", sites)):
        paths[kind] = os.path.join(folder, f"{kind}.geojson")
        gdf.to_file(paths[kind], driver="GeoJSON")
    return paths, list(owners)


def load(app, paths, orgs):
    from webmap.accounts import get_accounts
    from webmap.delivery import configure_org
    from webmap.importer import import_layer

    store = app.extensions["webmap_store"]
    for kind, path in paths.items():
        import_layer(store, path, kind)
    accounts = get_accounts(app)
    for code, kind in orgs:
        accounts.add_org(code, f"Đơn vị {code}", kind)
        configure_org(app, code, webhook_url=f"http://127.0.0.1:9/{code}", webhook_secret="bench-secret-0123456789")


def measure(name, app, frames):
    from webmap import alerts

    t0 = time.perf_counter()
    made = [alerts.notify_incidents(app, frames[0], "recorded")]
    cold_ms = (time.perf_counter() - t0) * 1000
    times = []
    for frame in frames[1:]:
        t0 = time.perf_counter()
        made.append(alerts.notify_incidents(app, frame, "recorded"))
        times.append((time.perf_counter() - t0) * 1000)
    # the spatial match alone, on the warm index
    from webmap.crs import lonlat_to_metric

    index = alerts.asset_index(app)
    enterprises, police, settings = alerts._orgs(app)
    distance_by_org = {code: alerts.org_distance_m(app.config, settings.get(code)) for code in enterprises}
    match = []
    for frame in frames[1:]:
        t0 = time.perf_counter()
        point = frame.geometry.iloc[0]
        x, y = lonlat_to_metric([point.x], [point.y])
        points_m = shapely.points(x, y)
        alerts.match_assets(index, points_m, distance_by_org)
        alerts.match_sites(index, points_m, float(app.config["KEY_SITE_ZONE_M"]))
        match.append((time.perf_counter() - t0) * 1000)
    ordered = sorted(times)
    p50, p95 = statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]
    counts = [len(m) for m in made]
    print(f"{name}: {len(index.asset_geoms):,} assets ({len(index.site_geoms)} key sites), "
          f"{len(enterprises)} enterprises + {len(police)} police")
    print(f"  first call (builds the index): {cold_ms:8.1f} ms")
    print(f"  per incident, warm:  p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   max {ordered[-1]:6.1f} ms"
          f"   (target < 50 ms: {'met' if p95 < 50 else 'NOT met'})")
    alerting = [t for t, m in zip(times, made[1:]) if m]
    quiet = [t for t, m in zip(times, made[1:]) if not m]
    if alerting and quiet:
        print(f"  p50 of incidents that alert someone {statistics.median(alerting):6.1f} ms (one SQLite commit, "
              f"fsync'd), of those that alert nobody {statistics.median(quiet):6.1f} ms")
    print(f"  of which spatial match: p50 {statistics.median(match):5.2f} ms; the rest is organisations + SQLite")
    print(f"  alerts per incident: mean {np.mean(counts):.2f}, max {max(counts)}; incidents alerting someone: "
          f"{sum(1 for c in counts if c)}/{len(counts)}")
    return {"cold_ms": cold_ms, "p50_ms": p50, "p95_ms": p95, "max_ms": ordered[-1]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=200, help="incidents timed per network (default 200)")
    parser.add_argument("--cables", type=int, default=20_000)
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--only", choices=["demo", "big"])
    args = parser.parse_args(argv)
    rng = np.random.default_rng(20261130)

    if args.only in (None, "demo"):
        with tempfile.TemporaryDirectory() as folder:
            from webmap.demo import DEMO_DIR, demo_orgs

            app = make_app(folder)
            paths = {kind: os.path.join(DEMO_DIR, name) for kind, name in
                     (("districts", "districts.geojson"), ("key_sites", "key_sites.geojson"),
                      ("cable_routes", "cable_routes.zip"), ("stations", "stations.geojson"))}
            load(app, paths, [(code, kind) for code, _, kind, _ in demo_orgs() if kind != "district"])
            cables = app.extensions["webmap_store"].read_layer("cable_routes")
            measure("demo city", app, incidents_near(cables, args.incidents, rng, 0))
            app.extensions["webmap_alerts"].close()
            app.extensions["webmap_store"].close()
    if args.only in (None, "big"):
        with tempfile.TemporaryDirectory() as folder:
            app = make_app(folder)
            t0 = time.perf_counter()
            paths, owners = big_network(folder, args.cables, args.orgs, rng)
            demo_districts = os.path.join(ROOT, "data", "demo", "districts.geojson")
            if os.path.exists(demo_districts):
                paths = {"districts": demo_districts, **paths}
            load(app, paths, [(code, "enterprise") for code in owners] + [("CA-CT", "police")])
            print(f"(synthetic network made and imported in {time.perf_counter() - t0:.1f} s)")
            cables = app.extensions["webmap_store"].read_layer("cable_routes")
            measure(f"synthetic, {args.cables:,} cables, {args.orgs} enterprises", app,
                    incidents_near(cables, args.incidents, rng, 10_000))
            app.extensions["webmap_alerts"].close()
            app.extensions["webmap_store"].close()


if __name__ == "__main__":
    main()
