"""The ``webmap`` command: demo, import, layers, export, serve; setup, users, orgs (accounts).

Exit codes: 0 success; 2 bad input or usage (one clear line on stderr, no traceback); 1 internal error.
Set WEBMAP_DEBUG=1 to see the traceback of an internal error.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from webmap.demo import DEMO_DIR, DEMO_FILES  # noqa: F401 - kept importable here (scripts/bench.py)
from webmap.errors import BadInput, WebmapError


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
    alerted = None
    try:
        prepared = prepare_layer(path, kind, owner=owner, crs=crs, encoding=encoding, member=member,
                                 mapping=_parse_mapping(mapping), progress=progress)
        gdf, report = prepared.gdf, prepared.report
        if not dry_run:
            from webmap import audit
            from webmap.alerts import incident_ids, notify_imported

            app = _app()
            previous = (incident_ids(app.extensions["webmap_store"]) or set()) if kind == "incidents" else None
            version = app.extensions["webmap_store"].replace_layer(kind, gdf, provenance_of(report), progress=progress,
                                                                   **prepared.store_options())
            report.version = version.version
            audit.for_app(app).record(audit.cli_actor(), "import", kind, {
                "source": report.source, "sha256": report.sha256, "format": report.format,
                "features": report.features_kept, "version": version.version}, "cli")
            if previous is not None:  # alerts for the incidents this version adds (recent ones only)
                alerted = notify_imported(app, gdf, previous)
                alerted = "alerts: could not be created (see the log)" if alerted is None else f"alerts: {len(alerted)} created"
    finally:
        progress.close()
    for line in report.lines():
        click.echo(line)
    if alerted:
        click.echo(alerted)


@cli.command("demo")
@click.option("--data-dir", type=click.Path(file_okay=False, exists=True), default=str(DEMO_DIR), show_default=True,
              help="Folder with the demo files (made by scripts/make_demo_data.py).")
def demo_command(data_dir):
    """Load the demo city (Cần Thơ with fictional enterprises) through the ordinary import path, and create one
    demo account per role with the published demo password (demo only).

    Runs on an empty store (which it marks as a demo store) or again on a demo store; refused (exit 2, nothing
    changed) on a store that holds real data or an instance that already has accounts.
    """
    from webmap.accounts import get_accounts
    from webmap.demo import account_table, load_demo

    app = _app()
    from webmap import audit

    demo_accounts = load_demo(app.extensions["webmap_store"], get_accounts(app), data_dir, echo=click.echo,
                              audit_log=audit.for_app(app))
    for line in account_table(demo_accounts):
        click.echo(line)
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
    from webmap import audit
    from webmap.importer import file_sha256

    app = _app()
    store = app.extensions["webmap_store"]
    gdf = store.read_layer(kind)
    try:
        export_layer(gdf, kind, fmt, output)
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        raise BadInput(f"cannot write {output}: {exc.strerror or exc}") from None
    active = store.list_versions(kind)
    audit.for_app(app).record(audit.cli_actor(), "export", kind, {
        "format": fmt, "output": os.path.abspath(output), "sha256": file_sha256(output), "features": len(gdf),
        "version": active[0].version if active else None}, "cli")
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
    from webmap.delivery import start_worker, stop_worker  # alerts: sent by a daemon thread while serving

    if app.config["DELIVERY_WORKER"]:
        start_worker(app)
    try:
        serve(app, host=host, port=port, threads=8, ident="webmap")
    finally:
        stop_worker(app, timeout_s=5)


@cli.command("audit")
@click.option("--actor", help="Only entries by this actor (username, anonymous, cli:<user>).")
@click.option("--action", help="Only this action: login, login_failed, logout, import, export, print, "
                                "read_key_sites, user_admin...")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="From this day on (UTC).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="YYYY-MM-DD",
              help="Up to and including this day (UTC).")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True,
              help="Most entries to show, newest first.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, with the hashes.")
@click.option("--verify", is_flag=True, help="Recompute the hash chain of the whole log instead of listing it.")
@click.option("--anchor", metavar="SEQ:HASH",
              help="With --verify: check that this entry (as an earlier --verify printed it) is unchanged.")
def audit_command(actor, action, since, until, limit, as_json, verify, anchor):
    """List the audit log (who, when, what, from where), or prove it unaltered with --verify.

    --verify exits 0 when the chain holds, 2 with one line naming the first altered entry when not.
    """
    import json

    from webmap.audit import FILENAME, AuditLog, AuditLogAltered, format_anchor, parse_anchor

    if anchor is not None and not verify:
        raise BadInput("--anchor goes with --verify")
    if verify and (actor or action or since or until or as_json):
        raise BadInput("--verify checks the whole log: it takes no filters and no --json")
    if verify:
        anchor = parse_anchor(anchor) if anchor is not None else None
    log = AuditLog(os.path.join(_app().instance_path, FILENAME))
    try:
        if verify:
            result = log.verify(anchor=anchor)
            if not result.ok:
                if result.first_bad_seq is None:
                    raise AuditLogAltered(f"audit log cannot be verified: {result.reason}")
                raise AuditLogAltered(f"audit log altered at entry {result.first_bad_seq}: {result.reason}")
            click.echo(f"audit log intact: {result.checked} entries, last hash {result.last[1]}")
            click.echo(f"anchor to keep elsewhere: {format_anchor(result.last)}")
            return
        found = log.entries(actor=actor, action=action, since=since.date() if since else None,
                            until=until.date() if until else None, limit=limit)
    finally:
        log.close()
    if as_json:
        for entry in found:
            click.echo(json.dumps(entry.to_dict(), ensure_ascii=False, sort_keys=True))
        return
    if not found:
        click.echo("no audit entries" + (" match" if actor or action or since or until else " yet"))
        return
    click.echo(f"{'seq':>7}  {'at (UTC)':<19}  {'actor':<16} {'action':<14} {'source':<15} {'target':<20} detail")
    for e in found:
        detail = json.dumps(e.detail, ensure_ascii=False, sort_keys=True) if e.detail else ""
        click.echo(f"{e.seq:>7}  {e.at[:19].replace('T', ' '):<19}  {e.actor:<16} {e.action:<14} {e.source:<15} "
                   f"{e.target:<20} {detail}".rstrip())


def _accounts():
    from webmap.accounts import get_accounts

    return get_accounts(_app())


def _echo_one_time_password(password):
    click.echo(f"one-time password: {password}")
    click.echo("It is shown only this once and must be changed at first login.")


@cli.command("setup")
@click.option("--username", default="admin", show_default=True, help="Username of the first admin.")
def setup_command(username):
    """Create the first admin account and print its one-time password (refused once an admin exists)."""
    user, password = _accounts().setup_admin(username)
    click.echo(f"admin account {user.username} created")
    _echo_one_time_password(password)


@cli.group("orgs")
def orgs_group():
    """Organisations: the police, districts (by GSO code) and enterprises (by owner code)."""


@orgs_group.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Full name, e.g. \"Viễn thông Sông Hậu\".")
@click.option("--kind", required=True, type=click.Choice(["police", "district", "enterprise"]))
@click.option("--district-code", help="GSO code of a district organisation's district (default: CODE if it is one).")
def orgs_add_command(code, name, kind, district_code):
    """Add organisation CODE (an enterprise's owner code such as VTSH, a district's GSO code such as 916)."""
    org = _accounts().add_org(code, name, kind, district_code)
    where = f", GSO {org.district_code}" if org.district_code else ""
    click.echo(f"organisation {org.code} added: {org.name} ({org.kind}{where})")


@orgs_group.command("list")
def orgs_list_command():
    """List the organisations with their number of users."""
    accounts = _accounts()
    orgs = accounts.list_orgs()
    if not orgs:
        click.echo("no organisations yet: add one with `webmap orgs add`")
        return
    counts = {}
    for user in accounts.list_users():
        counts[user.org_code] = counts.get(user.org_code, 0) + 1
    click.echo(f"{'code':<12} {'kind':<11} {'district':<9} {'users':>5}  name")
    for org in orgs:
        click.echo(f"{org.code:<12} {org.kind:<11} {org.district_code or '':<9} {counts.get(org.code, 0):>5}  {org.name}")


@orgs_group.command("share")
@click.argument("code")
@click.option("--on/--off", "on", required=True, help="Share the enterprise's incident reports with other enterprises, or stop.")
def orgs_share_command(code, on):
    """Let enterprise CODE's incident reports be seen by other enterprises near them (location, time and type
    only), or stop (the default: only the police see them)."""
    from webmap import audit

    app = _app()
    from webmap.accounts import get_accounts

    shares = get_accounts(app).set_share_incidents(code, on, changed_by=audit.cli_actor())
    org = get_accounts(app).get_org(code)
    audit.for_app(app).record(audit.cli_actor(), "sharing_changed", org.code, {"share_incidents": shares}, "cli")
    click.echo(f"organisation {org.code} {'shares' if shares else 'does not share'} its incident reports "
               "with other enterprises")


@cli.group("users")
def users_group():
    """User accounts: admin, police, district and enterprise roles."""


@users_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["admin", "police", "district", "enterprise"]))
@click.option("--org", "org_code", help="Organisation code (required for police, district and enterprise).")
def users_add_command(username, role, org_code):
    """Add USERNAME and print a one-time password (shown once, to be changed at first login)."""
    user, password = _accounts().add_user(username, role, org_code)
    org = f", organisation {user.org_code}" if user.org_code else ""
    click.echo(f"user {user.username} added: {user.role}{org}")
    _echo_one_time_password(password)


@users_group.command("list")
@click.option("--org", "org_code", help="Only the users of this organisation.")
def users_list_command(org_code):
    """List the users (never their passwords or hashes)."""
    accounts = _accounts()
    if org_code:
        accounts.get_org(org_code)
    users = accounts.list_users(org_code)
    if not users:
        click.echo("no users yet: run `webmap setup`, then `webmap users add`")
        return
    click.echo(f"{'username':<20} {'role':<10} {'org':<12} {'status':<24} {'created (UTC)':<25} password changed (UTC)")
    for user in users:
        status = "disabled" if user.disabled else "active"
        if user.must_change_password:
            status += ", must change pw"
        click.echo(f"{user.username:<20} {user.role:<10} {user.org_code or '-':<12} {status:<24} "
                   f"{user.created_at:<25} {user.password_changed_at}")


@users_group.command("disable")
@click.argument("username")
def users_disable_command(username):
    """Disable USERNAME: it can no longer sign in (nothing is deleted)."""
    user = _accounts().disable_user(username)
    click.echo(f"user {user.username} disabled")


@users_group.command("enable")
@click.argument("username")
def users_enable_command(username):
    """Enable USERNAME again."""
    user = _accounts().enable_user(username)
    click.echo(f"user {user.username} enabled")


@users_group.command("reset-password")
@click.argument("username")
def users_reset_password_command(username):
    """Give USERNAME a new one-time password and print it (shown once, to be changed at first login)."""
    accounts = _accounts()
    password = accounts.reset_password(username)
    click.echo(f"password of {accounts.get_user(username).username} reset")
    _echo_one_time_password(password)


# Analysis, print and alert commands live in webmap/commands/, one module each with a ``register(cli)``.
COMMAND_MODULES = ("alerts", "patrol", "exposure", "priority")

for _name in COMMAND_MODULES:
    __import__(f"webmap.commands.{_name}", fromlist=["register"]).register(cli)


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
