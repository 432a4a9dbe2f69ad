"""``webmap patrol-map``: print a patrol map (PDF) of a priority area, a district, a rectangle or the top N.

The command runs for the person at the terminal as staff (the police role: every layer, priority areas);
each print is written to the audit log (action ``print``, actor ``cli:<os user>``) with the file's SHA-256,
as ``webmap export`` records exports. ``--types``, ``--status``, ``--since``, ``--until`` (as in
``webmap priority``) and ``--cell-m``/``--shape`` choose the analysis the priority areas come from.
"""

from __future__ import annotations

import os

import click

from webmap.commands.priority import filter_options
from webmap.errors import BadInput


def register(cli):
    @cli.command("patrol-map")
    @click.option("--area", help="Priority area id(s), comma separated (H500-0123, U-916); several make an atlas.")
    @click.option("--district", help="District name or GSO code (\"Ninh Kiều\", 916).")
    @click.option("--bbox", metavar="W,S,E,N", help="Rectangle in lon/lat degrees.")
    @click.option("--top", metavar="N", help="Atlas of the N highest priority areas, with an overview page.")
    @click.option("--paper", type=click.Choice(["A4", "A3"], case_sensitive=False), default="A4", show_default=True)
    @click.option("--orientation", type=click.Choice(["portrait", "landscape"], case_sensitive=False),
                  default="portrait", show_default=True)
    @click.option("--scale", metavar="N", help="Scale 1:N, from 2000 to 50000 (default: fitted to the area).")
    @click.option("--grid", type=click.Choice(["tm3", "degrees"], case_sensitive=False), default="tm3",
                  show_default=True, help="Coordinate grid: VN-2000 / TM-3 metres or WGS 84 degrees.")
    @click.option("--start", metavar="ID|LON,LAT",
                  help="Start and end of the route: a station or key site id, or lon,lat (default: the nearest station).")
    @click.option("--classification", metavar="TEXT",
                  help="Marking top and bottom (default: \"MẬT\" with key sites, else \"LƯU HÀNH NỘI BỘ\").")
    @click.option("--cells/--no-cells", default=True, show_default=True,
                  help="Draw the priority cells (computing them the first time takes a while).")
    @click.option("--recent-days", default=90, show_default=True, type=click.IntRange(1, 3660),
                  help="Incidents of this many days before the print are drawn.")
    @filter_options
    @click.option("--cell-m", type=float, default=None,
                  help="Grid of the priority areas, metres (default: the area id's grid, else 500).")
    @click.option("--shape", type=click.Choice(["hex", "square"]), default=None,
                  help="Cell shape of the priority areas (default: the area id's, else hex).")
    @click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PDF file to write.")
    def patrol_map_command(area, district, bbox, top, paper, orientation, scale, grid, start, classification,
                           cells, recent_days, types, status, since, until, cell_m, shape, output):
        """Print a patrol map: the map at a true scale, checkpoints, the route and its length (PDF)."""
        from webmap import audit
        from webmap.access import AccessContext, Principal
        from webmap.app import create_app
        from webmap.catalog import load_catalog
        from webmap.patrol import audit_detail, key_sites_read, make_patrol_pdf, parse_request

        request = parse_request({"area": area, "district": district, "bbox": bbox, "top": top, "paper": paper,
                                 "orientation": orientation, "scale": scale, "grid": grid, "start": start,
                                 "classification": classification, "cells": cells,
                                 "recent_days": str(recent_days),
                                 # the analysis, as `webmap priority` and the planners' page ask it
                                 "types": types, "status": status,
                                 "since": since.date().isoformat() if since else None,
                                 "until": until.date().isoformat() if until else None,
                                 "cell_m": f"{cell_m:g}" if cell_m is not None else None, "shape": shape})
        folder = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(folder):
            raise BadInput(f"cannot write {output}: folder {folder} does not exist")
        app = create_app()
        store = app.extensions["webmap_store"]
        actor = audit.cli_actor()
        principal = Principal(actor, "police")  # the person at the terminal runs as staff
        catalog = load_catalog()
        context = AccessContext(store, catalog, app.config["INCIDENT_NEAR_ASSETS_M"])
        try:
            summary = make_patrol_pdf(store, principal, catalog, context, request, output, printed_by=actor)
        except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            raise BadInput(f"cannot write {output}: {exc.strerror or exc}") from None
        log = audit.for_app(app)
        log.record(actor, "print", request.target, audit_detail(request, summary, os.path.abspath(output)), "cli")
        read = key_sites_read(summary)
        if read:
            log.record(actor, "read_key_sites", request.target, read, "cli")
        scales = ", ".join(f"1:{s:,}" for s in summary.scales)
        click.echo(f"patrol map written to {output}: {summary.pages} page(s), scale {scales}, "
                   f"marked {summary.classification}")
        for row in summary.areas:
            click.echo(f"  {row['area']}: {row['checkpoints']} checkpoint(s), route {row['route_m'] / 1000:.2f} km"
                       + (f" ({row['on_roads']}/{row['legs']} legs along roads)" if row["on_roads"] else ""))
