"""``webmap priority``: priority areas (hot spots, risk, trend, stake) of the stored layers, written to a file.

The format follows the extension (.geojson, .gpkg, .csv, .xlsx); the method and its parameters go into
every file (see webmap/priority_export.py; a CSV gets a ``.method.json`` beside it). The run is written to
the audit log like ``webmap export``. Runs as the operator: every layer (the police view).
"""

from __future__ import annotations

import os

import click

from webmap.errors import BadInput


def _codes(value):
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


def filter_options(command):
    """--types, --status, --since, --until: the incident filters, shared with ``webmap patrol-map``."""
    options = [
        click.option("--types", metavar="A,B", help="Incident types, comma-separated (default: all)."),
        click.option("--status", metavar="A,B", help="Incident statuses, comma-separated (default: all but rejected)."),
        click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
                     help="Incidents from this day on (local time)."),
        click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
                     help="Up to and including this day; also the end of the 90-day trend window."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def register(cli):
    @cli.command("priority")
    @filter_options
    @click.option("--cell-m", type=float, default=500.0, show_default=True,
                  help="Hexagon width or square side, metres (EPSG:5897).")
    @click.option("--shape", type=click.Choice(["hex", "square"]), default="hex", show_default=True)
    @click.option("--permutations", type=int, default=999, show_default=True,
                  help="Permutations of the Gi* inference.")
    @click.option("--units", type=click.Choice(["wards", "districts"]), default=None,
                  help="Administrative units of the unit table (default: wards when loaded, else districts).")
    @click.option("--level", type=click.Choice(["cells", "units"]), default="cells", show_default=True,
                  help="Which table a GeoJSON or CSV holds (GeoPackage and XLSX hold both).")
    @click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True,
                  help="Language of the XLSX headers.")
    @click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
                  help="File to write: .geojson, .gpkg, .csv or .xlsx.")
    def priority_command(types, status, since, until, cell_m, shape, permutations, units, level, lang, output):
        """Compute the priority areas of the city and write them with their method to OUTPUT.

        Getis-Ord Gi* hot spots (999 permutations, Benjamini-Hochberg FDR, 90/95/99 %), exposure-normalised
        risk, 90-day trend against a year earlier and what is at stake, combined in a 0-100 score whose
        components are columns. The first run of a process compiles esda's code (a few seconds to ~25 s).
        """
        from webmap.analysis.priority import PriorityParams
        from webmap.priority_export import format_for_path, write_priority

        fmt = format_for_path(output)  # a bad extension stops here, before any work
        folder = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(folder):
            raise BadInput(f"cannot write {output}: folder {folder} does not exist")
        params = PriorityParams(types=_codes(types), statuses=_codes(status),
                                since=since.date() if since else None, until=until.date() if until else None,
                                cell_m=cell_m, shape=shape, permutations=permutations)

        from webmap import audit
        from webmap.cli import _app
        from webmap.importer import file_sha256
        from webmap.priorities import get_priority

        app = _app()
        store = app.extensions["webmap_store"]
        result = get_priority(store, params, units=units)
        if level == "units" and result.units is None:
            raise BadInput("--level units: no wards or districts layer is loaded")
        written = write_priority(result, fmt, output, level=level, lang=lang)
        counts = result.method["counts"]
        log = audit.for_app(app)
        detail = {"format": fmt, "output": os.path.abspath(output), "sha256": file_sha256(output),
                  "level": level, "cells": counts["cells"], "units": counts["units"],
                  "incidents": counts["incidents_used"], "parameters": params.to_dict(),
                  "layers": result.method.get("layers", {})}
        log.record(audit.cli_actor(), "export", "priority", detail, "cli")
        if result.method.get("layers", {}).get("key_sites"):
            log.record(audit.cli_actor(), "read_key_sites", "priority",
                       {"features": int(result.cells["key_sites"].sum()), "output": os.path.abspath(output)}, "cli")
        hot = counts["hot_cells_by_confidence"]
        click.echo(f"priority: {counts['cells']} cells ({params.shape} {params.cell_m:g} m), "
                   f"{counts['incidents_used']} incidents, hot spots 99/95/90 %: {hot['99']}/{hot['95']}/{hot['90']}")
        top = result.cells.nsmallest(5, "rank")
        for row in top.itertuples():
            click.echo(f"  {row.rank:>3}. {row.area_id}  score {row.score:5.1f}  ({row.priority_class}; "
                       f"{row.incidents} incidents, {row.hotspot} {row.confidence or ''}, {row.trend})".rstrip())
        for path in written:
            click.echo(f"written: {path}")
