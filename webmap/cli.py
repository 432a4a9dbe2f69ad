"""The ``webmap`` command: demo, import, layers, export, serve.

Exit codes: 0 success; 2 bad input or usage (one clear line on stderr, no traceback); 1 internal error.
Set WEBMAP_DEBUG=1 to see the traceback of an internal error.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import click

from webmap.errors import BadInput, WebmapError

DEMO_DIR = Path(__file__).resolve().parent.parent / "data" / "demo"
# (layer, file) in the order the demo loads them; owners are in the files themselves
DEMO_FILES = [
    ("districts", "districts.geojson"),
    ("key_sites", "key_sites.geojson"),
    ("cable_routes", "cable_routes.zip"),
    ("stations", "stations.geojson"),
    ("incidents", "incidents.zip"),
]


def _app():
    from webmap.app import create_app

    return create_app()


def _store():
    app = _app()
    return app.extensions["webmap_store"]


def _parse_mapping(values) -> dict:
    mapping = {}
    for value in values:
        if "=" not in value:
            raise BadInput(f"--map takes COLUMN=FIELD, got {value!r}")
        column, field = value.split("=", 1)
        mapping[column.strip()] = field.strip()
    return mapping


class _Progress:
    """A progress bar on stderr over the import's steps, shown for big files only (and only on a terminal,
    unless forced with WEBMAP_PROGRESS=1), so scripts and small imports stay quiet."""

    STEPS = ("read", "geometry", "crs", "attributes", "write")
    BIG_FILE_BYTES = 20 * 1024 * 1024

    def __init__(self, path, dry_run):
        self.bar = None
        size = os.path.getsize(path) if os.path.isfile(path) else 0
        wanted = sys.stderr.isatty() or os.environ.get("WEBMAP_PROGRESS") == "1"
        if wanted and size >= self.BIG_FILE_BYTES:
            from tqdm import tqdm

            total = len(self.STEPS) - (1 if dry_run else 0)
            self.bar = tqdm(total=total, unit=" steps", file=sys.stderr, bar_format="{desc:<22}{bar}| {n}/{total} [{elapsed}]")

    def __call__(self, step):
        if self.bar is not None:
            if self.bar.n or step != self.STEPS[0]:
                self.bar.update(1)
            self.bar.set_description_str(f"import: {step}")

    def close(self):
        if self.bar is not None:
            self.bar.update(self.bar.total - self.bar.n)
            self.bar.close()


@click.group(help="webmap: protect Cần Thơ's postal, telecom and IT infrastructure on an offline map.")
@click.version_option(package_name="webmap")
def cli():
    pass


@cli.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--layer", "kind", required=True, help="Layer kind: districts, wards, cable_routes, stations, key_sites, incidents.")
@click.option("--owner", help="Enterprise code that owns every feature (cables, stations).")
@click.option("--crs", help="CRS of the file when it has no .prj, or to override it (EPSG:5897, EPSG:4326, WKT...).")
@click.option("--encoding", help="Text encoding: utf-8, cp1258, tcvn3, vni (default: .cpg, charset, or detected).")
@click.option("--member", help="Which layer or file to read from a .gpkg or .zip that holds several.")
@click.option("--map", "mapping", multiple=True, metavar="COLUMN=FIELD", help="Read FIELD from COLUMN (repeatable).")
@click.option("--dry-run", is_flag=True, help="Check and report, store nothing.")
def import_command(path, kind, owner, crs, encoding, member, mapping, dry_run):
    """Import PATH as the new version of a layer (all or nothing) and print the import report."""
    from webmap.importer import prepare_layer, provenance_of

    progress = _Progress(path, dry_run)
    try:
        gdf, report = prepare_layer(path, kind, owner=owner, crs=crs, encoding=encoding, member=member,
                                    mapping=_parse_mapping(mapping), progress=progress)
        if not dry_run:
            version = _store().replace_layer(kind, gdf, provenance_of(report), progress=progress)
            report.version = version.version
    finally:
        progress.close()
    for line in report.lines():
        click.echo(line)


@cli.command("demo")
@click.option("--data-dir", type=click.Path(file_okay=False, exists=True), default=str(DEMO_DIR), show_default=True,
              help="Folder with the demo files (made by scripts/make_demo_data.py).")
def demo_command(data_dir):
    """Load the demo city (Cần Thơ with fictional enterprises) through the ordinary import path."""
    from webmap.importer import import_layer

    store = _store()
    for kind, name in DEMO_FILES:
        path = os.path.join(data_dir, name)
        if not os.path.exists(path):
            raise BadInput(f"demo file missing: {path} (run scripts/make_demo_data.py)")
        report = import_layer(store, path, kind)
        click.echo(f"{kind}: {report.features_kept} features from {name} (version {report.version})")
    click.echo("demo loaded: run `webmap serve` and open http://127.0.0.1:5000/")


@cli.command("layers")
@click.option("--history", is_flag=True, help="Show every kept version, not only the active ones.")
def layers_command(history):
    """List the stored layers with their version, size and provenance."""
    from webmap.catalog import load_catalog

    store = _store()
    versions = store.list_versions(active_only=not history)
    catalog = load_catalog()
    if not versions:
        click.echo("no layers yet: run `webmap demo` or `webmap import`")
        return
    click.echo(f"{'layer':<14} {'ver':>4} {'features':>9}  {'imported (UTC)':<25} {'source':<28} sha256")
    for v in versions:
        mark = "" if v.active else " (old)"
        label = catalog[v.kind].label_for("vi") if v.kind in catalog else v.kind
        click.echo(f"{v.kind:<14} {v.version:>4} {v.feature_count:>9}  {v.created_at:<25} {v.source_name[:28]:<28} "
                   f"{v.sha256[:12]}{mark}  {label}")


@cli.command("export")
@click.argument("kind")
@click.option("--format", "fmt", type=click.Choice(["geojson", "gpkg", "shp", "csv"]), required=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write.")
def export_command(kind, fmt, output):
    """Write the active version of layer KIND to a file (Shapefile is zipped, with a UTF-8 .cpg)."""
    from webmap.catalog import get_layer
    from webmap.export import export_layer

    get_layer(kind)
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise BadInput(f"cannot write {output}: folder {folder} does not exist")
    store = _store()
    gdf = store.read_layer(kind)
    try:
        export_layer(gdf, kind, fmt, output)
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        raise BadInput(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"{kind}: {len(gdf)} features written to {output}")


@cli.command("serve")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1: this machine only).")
@click.option("--port", default=None, type=int, help="Port (default 5000).")
def serve_command(host, port):
    """Serve the map with waitress (a production WSGI server; no debug mode)."""
    from waitress import serve

    app = _app()
    host = host or app.config["HOST"]
    port = port or app.config["PORT"]
    click.echo(f"webmap on http://{host}:{port}/ (store: {app.config['STORE_URL']})")
    serve(app, host=host, port=port, threads=8, ident="webmap")


# click >= 8.2 raises this for a group called without a command (older versions print the help themselves)
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main(argv=None):
    """Entry point: turn foreseen errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="webmap", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("aborted", err=True)
        sys.exit(1)
    except _NO_ARGS_IS_HELP as exc:  # `webmap` alone: the help, as with --help
        click.echo(exc.format_message())
        sys.exit(0)
    except click.ClickException as exc:
        # one line, like every other bad input (click's own usage text spans several)
        message = " ".join(exc.format_message().split())
        if isinstance(exc, click.UsageError):
            command = exc.ctx.command_path if exc.ctx is not None else "webmap"
            message += f" (see {command} --help)"
        click.echo(f"webmap: error: {message}", err=True)
        sys.exit(exc.exit_code)
    except WebmapError as exc:
        message = " ".join(str(exc.message).split())  # always one line
        click.echo(f"webmap: error: {message}", err=True)
        sys.exit(exc.exit_code)
    except Exception:  # noqa: BLE001 - the one place that catches everything
        if os.environ.get("WEBMAP_DEBUG"):
            traceback.print_exc()
        click.echo("webmap: internal error (set WEBMAP_DEBUG=1 for details)", err=True)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
