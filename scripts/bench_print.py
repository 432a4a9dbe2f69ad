#!/usr/bin/env python
"""Benchmark of printed patrol maps on the demo city: an A3 patrol PDF (target under 5 s) and the atlas of
the top 10 priority areas (target under 30 s).

    .venv/bin/python scripts/bench_print.py [--repeat 3] [--keep FOLDER]

What it does:

1. loads the demo into a temporary instance (``WEBMAP_INSTANCE``, ``webmap demo`` as a user would run it);
2. in one process, as the server does: compiles esda's numba code (``warm_up``, paid once at start-up by
   the server, never by a print) and computes the default priority analysis once (cached afterwards: the
   server computes it for the priority page before anyone prints);
3. times ``webmap.patrol.make_patrol_pdf`` for the police user, each case ``--repeat`` times: an A3 map of
   the top priority area, an A3 map of a district (Ninh Kiều, every layer, priority cells), and the A4 and
   A3 atlases of the top 10 areas (11 pages);
4. times the command line end to end (a fresh process: imports, store, numba's on-disk cache, priority,
   drawing), for the record: that is what an operator waits for at a terminal.

Wall-clock times are given with the CPU time of this process (the machine may be shared).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _timed(fn, repeat: int):
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, walls, cpus


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (default 3)")
    parser.add_argument("--keep", help="write the PDFs into this folder and keep them")
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="webmap-bench-print-")
    out = args.keep or os.path.join(work, "pdf")
    os.makedirs(out, exist_ok=True)
    instance = os.path.join(work, "instance")
    env = {**os.environ, "WEBMAP_INSTANCE": instance}
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "webmap.cli", "demo"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        print(f"demo loaded into {instance} in {time.perf_counter() - started:.1f} s")
        os.environ["WEBMAP_INSTANCE"] = instance

        from webmap.access import AccessContext, Principal
        from webmap.analysis.hotspots import warm_up
        from webmap.app import create_app
        from webmap.catalog import load_catalog
        from webmap.patrol import make_patrol_pdf, parse_request
        from webmap.priorities import get_priority

        app = create_app()
        store = app.extensions["webmap_store"]
        catalog = load_catalog()
        context = AccessContext(store, catalog, app.config["INCIDENT_NEAR_ASSETS_M"])
        police = Principal("police.demo", "police", "CA-CT")

        started = time.perf_counter()
        warm_up()
        print(f"esda/numba warm-up (server start-up, once): {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        result = get_priority(store)
        print(f"priority analysis, 999 permutations (computed once, then cached): {time.perf_counter() - started:.1f} s; "
              f"{len(result.cells)} cells")
        top_area = result.cells.sort_values("rank").iloc[0]["area_id"]

        cases = [
            (f"A3 patrol PDF, top area {top_area}", {"area": top_area, "paper": "A3"}, 5.0),
            ("A3 patrol PDF, district Ninh Kiều", {"district": "Ninh Kiều", "paper": "A3"}, 5.0),
            ("A3 landscape, district Ninh Kiều at 1:25,000, degrees grid",
             {"district": "Ninh Kiều", "paper": "A3", "orientation": "landscape", "scale": "25000", "grid": "degrees"}, 5.0),
            ("atlas, top 10 areas, A4 (11 pages)", {"top": "10"}, 30.0),
            ("atlas, top 10 areas, A3 (11 pages)", {"top": "10", "paper": "A3"}, 30.0),
        ]
        rows = []
        for index, (name, values, target) in enumerate(cases):
            request = parse_request(values)
            path = os.path.join(out, f"case{index + 1}.pdf")
            summary, walls, cpus = _timed(lambda: make_patrol_pdf(store, police, catalog, context, request, path,
                                                                  printed_by="police.demo"), args.repeat)
            best, median = min(walls), statistics.median(walls)
            rows.append((name, summary.pages, os.path.getsize(path), best, median, min(cpus), target))
            print(f"{name}: {summary.pages} page(s), {os.path.getsize(path) / 1024:.0f} KB, wall best {best:.2f} s, "
                  f"median {median:.2f} s, cpu {min(cpus):.2f} s (target < {target:g} s)")

        cli = []
        for name, extra in (("CLI, A3 district, no priority cells", ["--district", "Ninh Kiều", "--paper", "A3",
                                                                      "--no-cells"]),
                            ("CLI, atlas top 10 (priority computed in the process)", ["--top", "10"])):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "webmap.cli", "patrol-map", *extra, "-o",
                            os.path.join(out, "cli.pdf")], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            cli.append((name, time.perf_counter() - started))
            print(f"{name}: {cli[-1][1]:.1f} s end to end")

        print()
        print("| print | pages | size | wall (best / median) | cpu | target |")
        print("|---|---|---|---|---|---|")
        for name, pages, size, best, median, cpu, target in rows:
            met = "met" if best < target else "**not met**"
            print(f"| {name} | {pages} | {size / 1024:.0f} KB | {best:.2f} s / {median:.2f} s | {cpu:.2f} s | "
                  f"< {target:g} s: {met} |")
        for name, seconds in cli:
            print(f"| {name} | | | {seconds:.1f} s end to end | | (for the record) |")
        load = os.getloadavg() if hasattr(os, "getloadavg") else None
        if load:
            print(f"\nload average at the end: {load[0]:.2f} ({os.cpu_count()} cores)")
        if args.keep:
            print(f"PDFs kept in {out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
