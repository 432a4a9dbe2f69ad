"""``webmap exposure``: the exposure of an enterprise's network (or of every enterprise) to a file."""

from __future__ import annotations

import os

import click

from webmap.errors import BadInput


def register(cli):
    @cli.command("exposure")
    @click.option("--org", help="Enterprise code (owner of cables and stations); without it every enterprise, "
                                "with a comparison table.")
    @click.option("--buffer-m", default="100", show_default=True, metavar="METRES",
                  help="Incidents within this distance of a cable segment or station count.")
    @click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
                  help="First day of the period (default: 364 days before --until).")
    @click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
                  help="Last day of the period, included (default: today in Cần Thơ).")
    @click.option("--priority/--no-priority", default=True, show_default=True,
                  help="Add the share of cable length and stations inside the police priority areas (runs the "
                       "priority analysis, which takes a while the first time).")
    @click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
                  help="File to write: .csv, .xlsx or .geojson.")
    def exposure_command(org, buffer_m, since, until, priority, output):
        """Write the exposure index of cable segments and stations to incidents nearby (severity- and
        recency-weighted incidents per km or per station per year, repeat damage, trend) to OUTPUT.

        CSV holds one table (the ranked segments and stations of --org, or the comparison of every
        enterprise); XLSX every table; GeoJSON the features with the method in its metadata. The method and
        every parameter are written into each file, and the export into the audit log.
        """
        from webmap import audit
        from webmap.access import AccessContext, Principal
        from webmap.analysis.exposure import ExposureParams
        from webmap.app import create_app
        from webmap.catalog import load_catalog
        from webmap.exposures import (ExposureRequest, enterprise_names, format_of, parse_buffer, run_exposure,
                                      write_output)
        from webmap.importer import file_sha256

        fmt = format_of(output)
        folder = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(folder):
            raise BadInput(f"cannot write {output}: folder {folder} does not exist")
        params = ExposureParams(buffer_m=parse_buffer(buffer_m), since=since.date() if since else None,
                                until=until.date() if until else None).resolved()
        app = create_app()
        store = app.extensions["webmap_store"]
        actor = audit.cli_actor()
        # the command line is the operator's: it sees every layer, as `webmap export` does
        who = Principal(actor, "admin")
        catalog = load_catalog()
        context = AccessContext(store, catalog, app.config["INCIDENT_NEAR_ASSETS_M"])
        result, state = run_exposure(store, who, catalog, context, ExposureRequest(org or None, params),
                                     compute_priority=priority)
        if not priority:
            state = "not requested"
            result.method["priority_areas"] = state
        codes = sorted(set(result.owners["owner"]))
        names = enterprise_names(app, codes)
        try:
            rows = write_output(result, output, fmt, org=org or None, names=names, priority_state=state)
        except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
            raise BadInput(f"cannot write {output}: {exc.strerror or exc}") from None
        audit.for_app(app).record(actor, "export", f"exposure:{org or 'all'}", {
            "format": fmt, "output": os.path.abspath(output), "sha256": file_sha256(output), "rows": rows,
            "org": org or None, **{k: v for k, v in params.as_dict().items()
                                   if k in ("buffer_m", "since", "until", "reference_date")}}, "cli")
        counts = result.method.get("counts", {})
        who_text = org or f"{len(codes)} enterprises"
        click.echo(f"exposure of {who_text}, {params.since} to {params.until}, buffer {params.buffer_m:g} m: "
                   f"{len(result.segments)} cable segments, {len(result.stations)} stations, "
                   f"{counts.get('incidents_counted', 0)} incidents counted; written to {output}")
