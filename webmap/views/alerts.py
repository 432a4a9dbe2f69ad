"""The alerts page (``/alerts``), acknowledgement, and the count behind the map's live badge.

Who sees which alerts (:func:`webmap.alerts.scope_for`): an enterprise or police user sees its own
organisation's alerts; an admin sees every police duty alert and, below them, the deliveries that failed
or are being retried, with their last error. District users have no alerts: for them, as for anyone who
may not use the page, it answers the same 404 as an unknown URL; a visitor who has not signed in is sent to
the login page. An alert outside the user's scope answers 404 too, also when acknowledged (POST, with the
CSRF token like every form).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, jsonify, make_response, redirect, render_template, request, \
    url_for

from webmap import audit
from webmap.alerts import acknowledge, alert_words, count_open, get_alert_store, list_alerts, scope_for, when_text
from webmap.errors import NotFound
from webmap.i18n import LANGUAGES, current_language, strings
from webmap.views import guard

bp = Blueprint("alerts", __name__)


def _scope():
    """The alerts the signed-in user may see, or the 404 of a page that does not exist."""
    scope = scope_for(guard.principal()) if g.get("user") is not None else None
    if scope is None:
        abort(404)
    return scope


def _lang_args() -> dict:
    return {"lang": request.args["lang"]} if request.args.get("lang") in LANGUAGES else {}


@bp.get("/alerts", endpoint="page")
def alerts_page():
    if g.get("user") is None:
        return redirect(url_for("auth.login", next=request.path))
    scope = _scope()
    lang = current_language()
    text = strings(lang)
    only_open = request.args.get("open") == "1"
    store = get_alert_store(current_app)
    from webmap.catalog import load_catalog

    catalog = load_catalog()
    rows = [{"alert": alert, "words": alert_words(alert, lang, catalog)}
            for alert in list_alerts(store, scope, unacknowledged=only_open)]
    problems = None
    if g.user.role == "admin":
        from webmap.delivery import delivery_problems

        problems = delivery_problems(store)
    other = [code for code in LANGUAGES if code != lang][0]
    links = {
        "open": url_for("alerts.page", open=1, **_lang_args()),
        "all": url_for("alerts.page", **_lang_args()),
        "lang": url_for("alerts.page", lang=other, **({"open": 1} if only_open else {})),
    }
    html = render_template("alerts.html", lang=lang, text=text, rows=rows, problems=problems, only_open=only_open,
                           links=links, police=scope.audience == "police" or g.user.role == "police",
                           when_text=when_text, next_url=request.full_path.rstrip("?"))
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/alerts/<int:alert_id>/ack", endpoint="acknowledge")
def acknowledge_alert(alert_id):
    scope = _scope()
    try:
        alert, changed = acknowledge(get_alert_store(current_app), alert_id, g.user.username, scope)
    except NotFound:
        abort(404)
    if changed:
        audit.for_app(current_app).record(g.user.username, "alert_ack", f"alert:{alert.id}",
                                          {"incident": alert.incident_id, "org": alert.org_code},
                                          audit.request_source())
    flash(strings(current_language())["alerts_acknowledged"].format(id=alert.id))
    target = request.form.get("next") or ""
    if not (target.startswith("/alerts") and not target.startswith("//")):
        target = url_for("alerts.page")
    return redirect(target)


@bp.get("/api/alerts/count", endpoint="count")
def alerts_count():
    """``{"count": N}``: the user's unacknowledged alerts; one indexed COUNT, polled by static/alerts.js."""
    response = jsonify({"count": count_open(get_alert_store(current_app), _scope())})
    response.headers["Cache-Control"] = "no-store"
    return response
