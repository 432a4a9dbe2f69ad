"""Log in, log out, change a password; who the current user is (``g.user``) on every request.

Sessions are Flask's signed cookies (HttpOnly, SameSite, Secure behind HTTPS: see config). Logging in
starts a fresh session (no fixation); a session remembers when its user's password last changed, so a
reset or a change ends every other session of that user. Failed logins are throttled per account and per
address and, like every login and logout, written to the audit log. A user whose password must change
can do nothing else until it has.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, session, url_for

from webmap import audit
from webmap.accounts import get_accounts
from webmap.errors import BadInput, NotFound
from webmap.i18n import current_language, strings
from webmap.throttle import LoginThrottle

bp = Blueprint("auth", __name__)

# endpoints a user who must change a password may still reach
_OPEN_WHILE_CHANGING = {"auth.change_password", "auth.logout", "static", "vendor.asset"}


def _throttle() -> LoginThrottle:
    throttle = current_app.extensions.get("webmap_throttle")
    if throttle is None:
        from webmap.accounts import accounts_path

        throttle = current_app.extensions["webmap_throttle"] = LoginThrottle(accounts_path(current_app.instance_path))
    return throttle


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute URL (open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("pages.index")


@bp.before_app_request
def load_user():
    g.user = None
    username = session.get("user")
    if not username:
        return None
    try:
        user = get_accounts().get_user(username)
    except NotFound:
        user = None
    if user is None or user.disabled or session.get("pwc") != user.password_changed_at:
        session.clear()
        return None
    g.user = user
    if user.must_change_password and request.endpoint not in _OPEN_WHILE_CHANGING:
        if request.path.startswith("/api/"):
            response = jsonify({"status": 403, "error": "change your password first"})
            response.status_code = 403
            return response
        return redirect(url_for("auth.change_password"))
    return None


@bp.app_context_processor
def inject_user():
    return {"current_user": g.get("user")}


def _render(template, **context):
    lang = current_language()
    return render_template(template, lang=lang, text=strings(lang), **context)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return _render("login.html", next=request.args.get("next", ""))
    username = (request.form.get("username") or "").strip().lower()[:64]
    password = request.form.get("password") or ""
    source = audit.request_source()
    log = audit.for_app(current_app)
    text = strings(current_language())
    wait = _throttle().retry_after(username, source)
    if wait:
        log.record(username or "anonymous", "login_throttled", username, {"retry_after_s": wait}, source)
        return _render("login.html", error=text["login_throttled"].format(minutes=(wait + 59) // 60),
                       next=request.form.get("next", "")), 429
    user = get_accounts().authenticate(username, password)
    if user is None:
        _throttle().failed(username, source)
        log.record(username or "anonymous", "login_failed", username, None, source)
        return _render("login.html", error=text["login_failed"], next=request.form.get("next", "")), 401
    _throttle().succeeded(username, source)
    session.clear()  # a fresh session: nothing set before login survives it
    session["user"] = user.username
    session["pwc"] = user.password_changed_at
    session.permanent = False
    log.record(user.username, "login", user.username, {"role": user.role, "org": user.org_code}, source)
    if user.must_change_password:
        return redirect(url_for("auth.change_password"))
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    if g.user is not None:
        audit.for_app(current_app).record(g.user.username, "logout", g.user.username, None, audit.request_source())
    session.clear()
    return redirect(url_for("pages.index"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    if g.user is None:
        return redirect(url_for("auth.login", next=request.path))
    if request.method == "GET":
        return _render("password.html")
    text = strings(current_language())
    new = request.form.get("new_password") or ""
    if new != (request.form.get("confirm_password") or ""):
        return _render("password.html", error=text["password_mismatch"]), 400
    try:
        user = get_accounts().change_password(g.user.username, request.form.get("old_password") or "", new)
    except BadInput as exc:
        return _render("password.html", error=exc.localized(current_language())), 400
    audit.for_app(current_app).record(user.username, "password_changed", user.username, None, audit.request_source())
    session["pwc"] = user.password_changed_at  # this session stays; every other one of this user ends
    flash(text["password_changed"])
    return redirect(url_for("pages.index"))
