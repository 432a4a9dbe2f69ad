"""Administration pages: the audit log (``/admin/audit``), for the admin role only.

Anyone else (visitors, police, districts, enterprises) gets the same 404 page as a route that does not
exist: the directive wants an object a user may not see to answer 404, so the page does not even admit
that it exists. Every view of the page by an admin is itself recorded (``read_audit``).

The page lists entries newest first, 50 a page, filtered by GET parameters, each checked (a mistake is a
400 page with one line): ``actor`` (exact), ``action`` (one of those present in the log), ``since`` and
``until`` (``YYYY-MM-DD``, UTC, both days included), ``target`` (text the target contains, case-sensitive)
and ``page`` (1, 2, ...). Below the list, the hash chain is verified (:meth:`AuditLog.verify`) at each
view of a log up to :data:`AUTO_VERIFY_MAX_ENTRIES` entries; a bigger log (about 100,000 entries a second)
is verified when the admin asks for it (``verify=1``), so paging through a big log stays fast.
"""

from __future__ import annotations

import json
import re
from datetime import date

from flask import Blueprint, abort, current_app, g, make_response, render_template, request, url_for

from webmap import audit
from webmap.i18n import LANGUAGES, current_language, strings

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZE = 50
AUTO_VERIFY_MAX_ENTRIES = 100_000  # about one second of verify(); beyond, the admin starts it
MAX_TEXT = 200  # longest actor or target text accepted as a filter
MAX_PAGE = 1_000_000
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ACTION_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class _Refused(Exception):
    """A filter parameter is wrong: answered with a 400 page of one line."""


def _require_admin():
    """The same 404 as an unknown URL for everyone but an admin (nothing is read before this)."""
    user = g.get("user")
    if user is None or user.role != "admin":
        abort(404)
    return user


def _filters(args, text) -> dict:
    """The checked filters from the query string: only those given, as text."""
    found = {}
    for name, label in (("actor", text["audit_actor"]), ("target", text["audit_target"])):
        value = (args.get(name) or "").strip()
        if len(value) > MAX_TEXT:
            raise _Refused(text["audit_bad_text"].format(field=label, n=MAX_TEXT))
        if value:
            found[name] = value
    action = (args.get("action") or "").strip()
    if action:
        if not _ACTION_RE.match(action):
            raise _Refused(text["audit_bad_action"].format(value=action[:64]))
        found["action"] = action
    days = {}
    for name, label in (("since", text["since"]), ("until", text["until"])):
        value = (args.get(name) or "").strip()
        if not value:
            continue
        try:
            if not _DAY_RE.match(value):
                raise ValueError(value)
            days[name] = date.fromisoformat(value)
        except ValueError:
            raise _Refused(text["audit_bad_date"].format(field=label, value=value[:40])) from None
        found[name] = value
    if "since" in days and "until" in days and days["since"] > days["until"]:
        raise _Refused(text["audit_bad_range"])
    return found


def _page_number(args, text) -> int:
    value = (args.get("page") or "1").strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise _Refused(text["audit_bad_page"].format(n=MAX_PAGE))
    return int(value)


def _row(entry) -> dict:
    return {
        "seq": entry.seq,
        "at": entry.at,
        "when": entry.at[:19].replace("T", " "),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "detail": json.dumps(entry.detail, ensure_ascii=False, sort_keys=True) if entry.detail else "",
        "source": entry.source,
    }


@bp.get("/audit", endpoint="audit")
def audit_page():
    user = _require_admin()
    lang = current_language()
    text = strings(lang)
    try:
        filters = _filters(request.args, text)
        page = _page_number(request.args, text)
    except _Refused as exc:
        return render_template("error.html", status=400, message=str(exc)), 400
    force_verify = request.args.get("verify") == "1"
    log = audit.for_app(current_app)
    log.record(user.username, "read_audit", "audit",
               {**filters, **({"page": page} if page > 1 else {}), **({"verify": True} if force_verify else {})},
               audit.request_source())

    found = log.entries(actor=filters.get("actor"), action=filters.get("action"), since=filters.get("since"),
                        until=filters.get("until"), target_contains=filters.get("target"),
                        limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    has_next = len(found) > PAGE_SIZE
    rows = [_row(e) for e in found[:PAGE_SIZE]]

    last_seq = log.export_anchor()[0]
    verified = log.verify() if force_verify or last_seq <= AUTO_VERIFY_MAX_ENTRIES else None

    keep = {**filters, **({"lang": request.args["lang"]} if request.args.get("lang") in LANGUAGES else {})}
    other = [code for code in LANGUAGES if code != lang][0]
    links = {
        "newer": url_for("admin.audit", **keep, page=page - 1) if page > 1 else None,
        "older": url_for("admin.audit", **keep, page=page + 1) if has_next else None,
        "verify": url_for("admin.audit", **keep, **({"page": page} if page > 1 else {}), verify=1),
        "lang": url_for("admin.audit", **{**keep, "lang": other}, **({"page": page} if page > 1 else {})),
        "reset": url_for("admin.audit", **({"lang": keep["lang"]} if "lang" in keep else {})),
    }
    actions = sorted(set(log.distinct("action")) | ({filters["action"]} if "action" in filters else set()))
    html = render_template(
        "audit.html", lang=lang, text=text, rows=rows, filters=filters, page=page, links=links,
        actions=actions, actors=log.distinct("actor"), verified=verified, last_seq=last_seq,
        anchor=audit.format_anchor(verified.last) if verified is not None and verified.ok else None,
        lang_param=keep.get("lang"), page_size=PAGE_SIZE,
    )
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"  # who did what: not for the browser's or a proxy's cache
    return response
