"""``webmap alerts``: list alerts, set an organisation's channels, test them, deliver and redeliver.

The web server sends alerts by itself (a worker thread of ``webmap serve``); ``webmap alerts deliver`` is
one pass of the same worker, for cron or when the server runs with DELIVERY_WORKER=0 (``--watch`` keeps
going, as a service of its own).
"""

from __future__ import annotations

import click

from webmap.errors import BadInput


def _app():
    from webmap.app import create_app

    return create_app()


def _record(app, action, target, detail):
    from webmap import audit

    audit.for_app(app).record(audit.cli_actor(), action, target, detail, "cli")


def _deliveries(alert) -> str:
    return " ".join(f"{d.channel}:{d.state}" + (f"({d.attempts})" if d.state != "delivered" and d.attempts else "")
                    for d in alert.deliveries) or "-"


def register(cli):
    @cli.group("alerts")
    def alerts_group():
        """Alerts to enterprises (incidents near their assets) and to the police (key-site zones)."""

    @alerts_group.command("list")
    @click.option("--org", "org_code", help="Only this organisation's alerts.")
    @click.option("--unacknowledged", is_flag=True, help="Only alerts nobody has acknowledged yet.")
    @click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Most alerts, newest first.")
    def list_command(org_code, unacknowledged, limit):
        """List alerts, newest first, with the state of their deliveries (channel:state(attempts))."""
        from webmap.accounts import get_accounts
        from webmap.alerts import Scope, get_alert_store, list_alerts, when_text

        app = _app()
        if org_code:
            org_code = get_accounts(app).get_org(org_code).code
        found = list_alerts(get_alert_store(app), Scope(org_code=org_code), unacknowledged=unacknowledged, limit=limit)
        if not found:
            click.echo("no alerts" + (" match" if org_code or unacknowledged else " yet"))
            return
        click.echo(f"{'id':>6}  {'created (UTC)':<17} {'org':<10} {'incident':<16} {'event':<9} {'type':<16} "
                   f"{'asset':<22} {'m':>6}  {'acknowledged':<20} deliveries")
        for a in found:
            ack = a.acknowledged_by or "-"
            click.echo(f"{a.id:>6}  {when_text(a.created_at)[:16]:<17} {a.org_code:<10} {a.incident_id[:16]:<16} "
                       f"{a.event:<9} {a.incident_type[:16]:<16} {(a.asset_kind[:1] + ':' + a.asset_id)[:22]:<22} "
                       f"{a.distance_m:>6.0f}  {ack[:20]:<20} {_deliveries(a)}")

    @alerts_group.command("configure")
    @click.argument("org_code", metavar="ORG")
    @click.option("--webhook-url", help="POST alerts as signed JSON to this http(s) URL.")
    @click.option("--no-webhook", is_flag=True, help="Stop sending to a webhook (forgets URL and secret).")
    @click.option("--webhook-secret", help="The shared secret for the signature (16+ characters; by default one is "
                                           "generated and printed once; this option is seen in the shell history).")
    @click.option("--new-secret", is_flag=True, help="Generate a new shared secret and print it once.")
    @click.option("--email", "emails", multiple=True, metavar="ADDRESS", help="Send alerts to this address "
                                                                             "(repeatable; replaces the list).")
    @click.option("--no-email", is_flag=True, help="Stop sending e-mail.")
    @click.option("--distance-m", type=float, help="Alert this enterprise within this many metres of its assets "
                                                   "(at most INCIDENT_NEAR_ASSETS_M).")
    @click.option("--default-distance", is_flag=True, help="Back to ALERT_DISTANCE_M.")
    def configure_command(org_code, webhook_url, no_webhook, webhook_secret, new_secret, emails, no_email, distance_m,
                          default_distance):
        """Show or change where ORG's alerts go (webhook, e-mail) and, for an enterprise, its alert distance."""
        from webmap.delivery import configure_org

        if webhook_url and no_webhook:
            raise BadInput("--webhook-url and --no-webhook exclude each other")
        if emails and no_email:
            raise BadInput("--email and --no-email exclude each other")
        if distance_m is not None and default_distance:
            raise BadInput("--distance-m and --default-distance exclude each other")
        changes = {}
        if webhook_url or no_webhook:
            changes["webhook_url"] = webhook_url or None
        if webhook_secret is not None:
            changes["webhook_secret"] = webhook_secret
        if emails or no_email:
            changes["emails"] = list(emails)
        if distance_m is not None or default_distance:
            changes["distance_m"] = distance_m
        app = _app()
        settings, secret = configure_org(app, org_code, new_secret=new_secret, **changes)
        if changes or new_secret:
            _record(app, "alert_settings", settings.org_code, {
                "webhook_url": settings.webhook_url, "secret_changed": bool(secret or webhook_secret),
                "emails": list(settings.emails), "distance_m": settings.distance_m})
        from webmap.alerts import org_distance_m

        click.echo(f"organisation {settings.org_code}:")
        click.echo(f"  webhook: {settings.webhook_url or '-'}" + (", signed with a shared secret"
                                                                   if settings.webhook_secret else ""))
        click.echo(f"  e-mail: {', '.join(settings.emails) or '-'}")
        click.echo(f"  alert distance: {org_distance_m(app.config, settings):g} m"
                   + (" (its own)" if settings.distance_m is not None else " (ALERT_DISTANCE_M)"))
        if secret:
            click.echo(f"webhook secret: {secret}")
            click.echo("It is shown only this once: give it to the receiver, which checks X-Webmap-Signature with it.")

    @alerts_group.command("test")
    @click.argument("org_code", metavar="ORG")
    def test_command(org_code):
        """Send a test message through each of ORG's channels now, and say what happened (nothing is stored)."""
        from webmap.delivery import DeliveryTestFailed, send_test_messages

        app = _app()
        results = send_test_messages(app, org_code)
        if not results:
            raise BadInput(f"organisation {org_code.upper()} has no alert channel: set one with "
                           f"webmap alerts configure {org_code.upper()} --webhook-url URL or --email ADDRESS")
        for r in results:
            click.echo(f"{r.channel} {r.target}: {'ok' if r.ok else 'FAILED'}: {r.detail}")
        failed = [r for r in results if not r.ok]
        if failed:
            raise DeliveryTestFailed(f"test failed on {len(failed)} of {len(results)} channel(s)")

    @alerts_group.command("redeliver")
    @click.argument("alert_id", type=int, required=False, metavar="[ID]")
    @click.option("--failed", is_flag=True, help="Every delivery that failed.")
    def redeliver_command(alert_id, failed):
        """Send alert ID again through its organisation's channels (or every failed delivery with --failed).

        The same delivery id goes with it, so a receiver that already has it can tell."""
        from webmap.delivery import redeliver

        if (alert_id is None) == (not failed):
            raise BadInput("name one alert ID or --failed")
        app = _app()
        count = redeliver(app, alert_id=alert_id, failed=failed)
        _record(app, "alert_redeliver", f"alert:{alert_id}" if alert_id is not None else "failed", {"deliveries": count})
        click.echo(f"{count} deliver{'y' if count == 1 else 'ies'} queued again; the worker of webmap serve sends "
                   f"them, or run webmap alerts deliver")

    @alerts_group.command("deliver")
    @click.option("--watch", is_flag=True, help="Keep delivering (every few seconds) until stopped with Ctrl-C.")
    def deliver_command(watch):
        """Send the alerts that are due now: one pass of the delivery worker (for cron), or --watch."""
        import time

        from webmap.delivery import POLL_S, deliver_pending

        app = _app()
        while True:
            result = deliver_pending(app)
            if not watch or result.delivered or result.retrying or result.failed:
                click.echo(result.line())
            if not watch:
                return
            time.sleep(POLL_S)

    @alerts_group.command("failures")
    @click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
    def failures_command(limit):
        """Deliveries that failed, are being retried, or were interrupted, with their last error."""
        from webmap.alerts import get_alert_store, when_text
        from webmap.delivery import delivery_problems

        problems = delivery_problems(get_alert_store(_app()), limit=limit)
        if not problems:
            click.echo("no delivery failures")
            return
        click.echo(f"{'alert':>6}  {'org':<10} {'channel':<8} {'state':<9} {'tries':>5}  {'updated (UTC)':<17} last error")
        for p in problems:
            click.echo(f"{p.alert_id:>6}  {p.org_code:<10} {p.channel:<8} {p.state:<9} {p.attempts:>5}  "
                       f"{when_text(p.updated_at)[:16]:<17} {p.last_error or ''}")
