"""Delivery of alerts by webhook and e-mail: a durable outbox, sent at least once, each with one stable id.

The outbox is the ``deliveries`` table of ``instance/alerts.sqlite`` (see webmap/alerts.py): one row per
(alert, channel), written in the same transaction as its alert, with a ``delivery_id`` (a random UUID)
that never changes. A worker -- a daemon thread of ``webmap serve``, or ``webmap alerts deliver`` from cron
or a service -- takes one row at a time:

1. **claim** (one ``BEGIN IMMEDIATE`` transaction): a due ``pending`` row, or a ``sending`` row whose claim
   ran out, becomes ``sending`` with ``claimed_by`` (this worker), ``claimed_until`` (now +
   ``DELIVERY_LEASE_S``) and ``attempts + 1``, and a ``delivery_attempts`` row records the attempt as begun.
   Only one worker can hold a row: another sees it claimed until the lease runs out.
2. **send**: webhook = HTTP POST of JSON, signed ``X-Webmap-Signature: sha256=<HMAC-SHA256 hex of the body
   with the organisation's secret>``, with ``X-Webmap-Delivery: <delivery_id>``; e-mail = one message to the
   organisation's addresses whose ``Message-ID`` is ``<delivery_id@webmap>``. Each bounded by
   ``DELIVERY_TIMEOUT_S``; redirects are not followed; only http and https.
3. **record** (one transaction, ``synchronous=FULL``): a 2xx (or the SMTP server's acceptance) makes the row
   ``delivered``; a failure makes it ``pending`` again after a back-off of ``DELIVERY_BACKOFF_S`` x 2^(n-1)
   (at most an hour), or ``failed`` after ``DELIVERY_MAX_ATTEMPTS`` attempts, or at once when retrying
   cannot help (a 4xx other than 408/425/429, a redirect, a refused recipient, no channel configured any
   more). Failed rows are shown to the admin (``/alerts``, ``webmap alerts failures``) and sent again with
   ``webmap alerts redeliver``.

What is guaranteed, also across a crash or a restart of the app at any moment:

- **No loss.** An alert exists only together with its outbox rows; a row stays ``pending``/``sending``
  until an answer is recorded, so a worker that dies mid-send leaves it to the next worker (after its lease
  runs out), which sends it again. A row ends ``failed`` only when its attempts are used up, and then the
  admin sees it.
- **Never re-sent once confirmed.** A row recorded ``delivered`` is never picked up by a worker again (only
  an explicit ``redeliver`` sends it again).
- **The one case of a second copy**, inherent to any sender that cannot commit together with the receiver:
  the receiver accepted the request but our record of it was not written -- the worker was killed between
  the receiver's 2xx and our commit, or the answer was lost on the way (a timeout after the receiver did its
  work). The row is then sent again, and every copy carries **the same** ``X-Webmap-Delivery`` id (and the
  same body and signature; for e-mail the same ``Message-ID``). A receiver that remembers the ids it has
  processed therefore acts on each alert exactly once; one that does not may see it twice, never more
  often per such crash. ``delivery_attempts`` shows each interrupted attempt as ``interrupted``.
- A send outlasting its lease (which config requires to be at least 3 x the timeout) could overlap with
  another worker's resend of the same row: again the same id, and the row is recorded ``delivered`` once.

The signature covers the body, which holds the delivery id: a receiver that checks it and keeps the ids it
has processed also turns away a captured request played back later. The secret is kept with the
organisation in ``instance/accounts.sqlite`` (readable by its owner only) and shown once, when made.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from webmap.alerts import AlertStore, alert_subject, alert_text, channels_of, get_alert, get_alert_store, now_iso
from webmap.errors import BadInput, NotFound, WebmapError

POLL_S = 5.0  # how often the worker thread looks for due retries (new alerts wake it at once)
MAX_BACKOFF_S = 3600
RESPONSE_LIMIT = 64 * 1024  # read (and ignore) at most this much of a receiver's answer
SIGNATURE_HEADER = "X-Webmap-Signature"
DELIVERY_HEADER = "X-Webmap-Delivery"
MIN_SECRET_LENGTH = 16
RETRYABLE_HTTP = {408, 425, 429}
_EMAIL_RE = re.compile(r"[^@\s,;<>\"']{1,64}@[^@\s,;<>\"']{1,190}")
_UNSET = object()


class SendError(Exception):
    """A send that did not succeed; ``permanent`` when retrying cannot help (fix, then redeliver)."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class DeliveryTestFailed(WebmapError):
    """``webmap alerts test``: a channel did not take the test message (exit 2, after the per-channel lines)."""

    http_status = 400
    exit_code = 2


# -- organisations' settings ----------------------------------------------------------------------------------
def check_webhook_url(url) -> str:
    value = str(url or "").strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"webhook URL must be http:// or https:// with a host, got {value[:100]!r}")
    if parts.username or parts.password:
        raise BadInput("webhook URL must not hold a user name or password: the signature authenticates webmap")
    if parts.fragment or len(value) > 2000:
        raise BadInput("webhook URL must have no #fragment and at most 2000 characters")
    return value


def check_email(address) -> str:
    value = str(address or "").strip()
    if not _EMAIL_RE.fullmatch(value):
        raise BadInput(f"not an e-mail address: {value[:100]!r}")
    return value


def configure_org(app, code, *, webhook_url=_UNSET, webhook_secret=_UNSET, new_secret=False, emails=_UNSET,
                  distance_m=_UNSET):
    """Change an organisation's alert channels; ``(AlertSettings, secret made now or None)``.

    ``webhook_url=None`` removes the webhook (and its secret); a URL without a secret gets a generated one,
    as does ``new_secret``. ``emails`` replaces the list (``[]`` removes e-mail). ``distance_m`` (enterprises
    only; ``None``: back to ALERT_DISTANCE_M) may not exceed INCIDENT_NEAR_ASSETS_M.
    """
    from webmap.accounts import get_accounts

    accounts = get_accounts(app)
    org = accounts.get_org(code)
    if org.kind not in ("enterprise", "police"):
        raise BadInput(f"organisation {org.code} is a {org.kind}: only enterprises and the police receive alerts")
    current = accounts.get_alert_settings(org.code)
    changes, made = {}, None
    if webhook_url is not _UNSET:
        changes["webhook_url"] = check_webhook_url(webhook_url) if webhook_url else None
        if not webhook_url:
            changes["webhook_secret"] = None
    if webhook_secret is not _UNSET and webhook_secret is not None:
        if len(str(webhook_secret)) < MIN_SECRET_LENGTH:
            raise BadInput(f"webhook secret must hold at least {MIN_SECRET_LENGTH} characters")
        changes["webhook_secret"] = str(webhook_secret)
    url = changes.get("webhook_url", current.webhook_url)
    if url and (new_secret or not changes.get("webhook_secret", current.webhook_secret)):
        made = changes["webhook_secret"] = secrets.token_urlsafe(32)
    elif new_secret:
        raise BadInput(f"organisation {org.code} has no webhook URL: set one with --webhook-url")
    if emails is not _UNSET:
        changes["emails"] = list(dict.fromkeys(check_email(e) for e in (emails or [])))
    if distance_m is not _UNSET:
        if distance_m is not None:
            if org.kind != "enterprise":
                raise BadInput("an alert distance is for enterprises: the police are alerted within KEY_SITE_ZONE_M")
            limit = float(app.config["INCIDENT_NEAR_ASSETS_M"])
            if not 1 <= float(distance_m) <= limit:
                raise BadInput(f"alert distance must be between 1 and {limit:g} m (INCIDENT_NEAR_ASSETS_M: an "
                               f"enterprise is never told of an incident its map does not show), got {distance_m:g}")
            distance_m = float(distance_m)
        changes["distance_m"] = distance_m
    return accounts.set_alert_settings(org.code, **changes), made


# -- the messages ---------------------------------------------------------------------------------------------
def alert_payload(alert, delivery_id: str) -> dict:
    """The JSON a webhook receives: the alert's own fields and its text in Vietnamese and English."""
    place = "key_site" if alert.audience == "police" else "asset"
    return {
        "type": "webmap.alert",
        "version": 1,
        "delivery_id": delivery_id,
        "alert": {
            "id": alert.id,
            "event": alert.event,
            "organisation": alert.org_code,
            "audience": alert.audience,
            "created_at": alert.created_at,
            "incident": {"id": alert.incident_id, "type": alert.incident_type, "occurred_at": alert.occurred_at,
                         "lon": alert.lon, "lat": alert.lat, "place": alert.place},
            place: {"kind": alert.asset_kind, "id": alert.asset_id, "name": alert.asset_name,
                    "distance_m": alert.distance_m},
            "text": {"vi": alert_text(alert, "vi"), "en": alert_text(alert, "en")},
        },
    }


def probe_payload(org_code: str, delivery_id: str) -> dict:
    from webmap.i18n import strings

    return {"type": "webmap.test", "version": 1, "delivery_id": delivery_id, "organisation": org_code,
            "text": {lang: strings(lang)["alert_test_text"].format(org=org_code) for lang in ("vi", "en")}}


def encode(payload: dict) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8): the same alert always makes the same bytes."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body bytes with the organisation's shared secret."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (shown here for receivers written in Python): compare in constant time."""
    return hmac.compare_digest(sign(secret, body), str(header or ""))


def email_message(config, recipients, subject: str, text: str, delivery_id: str):
    from email.message import EmailMessage
    from email.utils import formatdate

    message = EmailMessage()
    message["From"] = config["SMTP_FROM"]
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{delivery_id}@webmap>"  # the same on every resend: clients can drop copies
    message[DELIVERY_HEADER] = delivery_id
    message.set_content(text)
    return message


def alert_email(config, alert, recipients, delivery_id):
    text = "\n\n".join((alert_text(alert, "vi"), alert_text(alert, "en"),
                        f"{DELIVERY_HEADER}: {delivery_id}"))
    return email_message(config, recipients, alert_subject(alert, "vi"), text, delivery_id)


# -- sending --------------------------------------------------------------------------------------------------
def _opener():
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # a 3xx comes back as an HTTPError: never followed
            return None

    # no proxies from the environment: the receivers are on the intranet, and the body must go only there
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)


def send_webhook(url: str, secret: str, body: bytes, delivery_id: str, timeout_s: float) -> str:
    """POST ``body``; return "HTTP <status>" on a 2xx, else raise SendError."""
    import http.client
    import urllib.error
    import urllib.request

    from webmap import __version__

    check_webhook_url(url)
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8",
        SIGNATURE_HEADER: sign(secret, body),
        DELIVERY_HEADER: delivery_id,
        "User-Agent": f"webmap/{__version__}",
    })
    try:
        with _opener().open(request, timeout=timeout_s) as response:
            status = response.status
            response.read(RESPONSE_LIMIT)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SendError(f"{type(reason).__name__}: {reason}"[:300]) from None
    if 200 <= status < 300:
        return f"HTTP {status}"
    if 300 <= status < 400:
        raise SendError(f"HTTP {status}: redirects are not followed (set the final URL)", permanent=True)
    retry = status >= 500 or status in RETRYABLE_HTTP
    raise SendError(f"HTTP {status}" + ("" if retry else " (refused: not retried)"), permanent=not retry)


def send_email(config, message, recipients, timeout_s: float) -> str:
    """Hand ``message`` to the SMTP server of the settings; return what it accepted, else raise SendError."""
    import smtplib
    import ssl

    if not config["SMTP_HOST"]:
        raise SendError("SMTP_HOST is not set: e-mail cannot be sent", permanent=True)
    try:
        with smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=timeout_s) as smtp:
            smtp.ehlo()
            if config["SMTP_STARTTLS"]:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if config["SMTP_USER"]:
                smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
            refused = smtp.send_message(message, to_addrs=list(recipients))
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendError(f"every recipient refused: {', '.join(exc.recipients)}", permanent=True) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(f"SMTP login refused ({exc.smtp_code}): check SMTP_USER and SMTP_PASSWORD",
                        permanent=True) from None
    except smtplib.SMTPResponseException as exc:
        detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        raise SendError(f"SMTP {exc.smtp_code}: {detail}"[:300], permanent=500 <= exc.smtp_code < 600) from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}"[:300]) from None
    accepted = len(recipients) - len(refused)
    note = f"; refused: {', '.join(sorted(refused))}" if refused else ""
    return f"SMTP accepted for {accepted} recipient(s){note}"


def _send(app, claim) -> str:
    """Build and send one outbox row from the alert and the organisation's settings as they are now."""
    from webmap.accounts import get_accounts

    try:
        alert = get_alert(get_alert_store(app), claim.alert_id)
        settings = get_accounts(app).get_alert_settings(alert.org_code)
    except NotFound as exc:
        raise SendError(str(exc), permanent=True) from None
    timeout = float(app.config["DELIVERY_TIMEOUT_S"])
    if claim.channel == "webhook":
        if not settings.webhook_url or not settings.webhook_secret:
            raise SendError(f"{alert.org_code} has no webhook URL and secret any more", permanent=True)
        body = encode(alert_payload(alert, claim.delivery_id))
        return send_webhook(settings.webhook_url, settings.webhook_secret, body, claim.delivery_id, timeout)
    if not settings.emails:
        raise SendError(f"{alert.org_code} has no e-mail address any more", permanent=True)
    message = alert_email(app.config, alert, settings.emails, claim.delivery_id)
    return send_email(app.config, message, settings.emails, timeout)


# -- the outbox -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    row: int
    delivery_id: str
    alert_id: int
    channel: str
    attempt: int
    attempt_row: int


def backoff_s(attempt: int, base_s: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...): base, 2 x base, 4 x base ... at most 1 h."""
    return min(float(base_s) * 2 ** (attempt - 1), MAX_BACKOFF_S)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def claim_next(store: AlertStore, worker: str, now: float, lease_s: float, max_attempts: int) -> Claim | None:
    """Take the next due row for ``worker`` (see the module docstring, step 1); None when nothing is due."""
    at = now_iso()
    with store.transaction() as con:
        while True:
            row = con.execute(
                "SELECT * FROM deliveries WHERE (state = 'pending' AND next_attempt_at <= ?)"
                " OR (state = 'sending' AND claimed_until <= ?) ORDER BY next_attempt_at, id LIMIT 1",
                (now, now)).fetchone()
            if row is None:
                return None
            if row["state"] == "sending":
                # its worker stopped (or overran its lease) before recording an answer: the receiver may or may
                # not have it, so it is sent again with the same delivery id
                con.execute("UPDATE delivery_attempts SET outcome = 'interrupted', finished_at = ?, detail = ?"
                            " WHERE delivery = ? AND outcome IS NULL",
                            (at, f"no answer recorded by {row['claimed_by']} before its claim ran out", row["id"]))
                if row["attempts"] >= max_attempts:
                    con.execute("UPDATE deliveries SET state = 'failed', claimed_by = NULL, claimed_until = NULL,"
                                " last_error = ?, updated_at = ? WHERE id = ?",
                                (f"attempt {row['attempts']} interrupted and no attempt left", at, row["id"]))
                    continue
            attempt = row["attempts"] + 1
            con.execute("UPDATE deliveries SET state = 'sending', attempts = ?, claimed_by = ?, claimed_until = ?,"
                        " updated_at = ? WHERE id = ?", (attempt, worker, now + lease_s, at, row["id"]))
            cursor = con.execute("INSERT INTO delivery_attempts (delivery, attempt, worker, started_at)"
                                 " VALUES (?, ?, ?, ?)", (row["id"], attempt, worker, at))
            return Claim(row["id"], row["delivery_id"], row["alert_id"], row["channel"], attempt, cursor.lastrowid)


def record_delivered(store: AlertStore, claim: Claim, detail: str) -> None:
    """The receiver took it: ``delivered`` for good, whoever holds the claim now (a 2xx is a fact)."""
    at = now_iso()
    with store.transaction() as con:
        con.execute("UPDATE delivery_attempts SET outcome = 'delivered', finished_at = ?, detail = ? WHERE id = ?",
                    (at, detail, claim.attempt_row))
        con.execute("UPDATE deliveries SET state = 'delivered', delivered_at = ?, claimed_by = NULL,"
                    " claimed_until = NULL, last_error = NULL, updated_at = ? WHERE id = ? AND state != 'delivered'",
                    (at, at, claim.row))


def record_failed(store: AlertStore, claim: Claim, worker: str, error: str, permanent: bool, now: float,
                  max_attempts: int, base_s: float) -> str:
    """A failed attempt: retry later, or ``failed``. Only while this worker still holds the claim (another
    worker that took over an expired claim decides from then on). Returns the row's new state."""
    at = now_iso()
    final = permanent or claim.attempt >= max_attempts
    state = "failed" if final else "pending"
    with store.transaction() as con:
        con.execute("UPDATE delivery_attempts SET outcome = 'failed', finished_at = ?, detail = ? WHERE id = ?",
                    (at, error, claim.attempt_row))
        con.execute("UPDATE deliveries SET state = ?, next_attempt_at = ?, claimed_by = NULL, claimed_until = NULL,"
                    " last_error = ?, updated_at = ? WHERE id = ? AND state = 'sending' AND claimed_by = ?",
                    (state, now if final else now + backoff_s(claim.attempt, base_s), error, at, claim.row, worker))
    return state


@dataclass
class PassResult:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    def line(self) -> str:
        return f"delivered {self.delivered}, to retry later {self.retrying}, failed {self.failed}"


def deliver_pending(app, *, worker: str | None = None, clock=time.time, stop=None, limit: int | None = None) -> PassResult:
    """One pass of the worker: send every due row, one at a time, until none is due (or ``stop`` is set)."""
    store = get_alert_store(app)
    worker = worker or worker_name()
    config = app.config
    max_attempts, base_s = int(config["DELIVERY_MAX_ATTEMPTS"]), float(config["DELIVERY_BACKOFF_S"])
    result = PassResult()
    while (stop is None or not stop.is_set()) and (limit is None or result.delivered + result.retrying
                                                   + result.failed < limit):
        claim = claim_next(store, worker, clock(), float(config["DELIVERY_LEASE_S"]), max_attempts)
        if claim is None:
            break
        try:
            detail = _send(app, claim)
        except Exception as exc:  # noqa: BLE001 - SendError, or a bug: neither may stop the worker nor lose the row
            if isinstance(exc, SendError):
                error, permanent = str(exc), exc.permanent
            else:
                app.logger.exception("alert delivery %s failed unexpectedly", claim.delivery_id)
                error, permanent = f"internal error: {type(exc).__name__}", False
            state = record_failed(store, claim, worker, error, permanent, clock(), max_attempts, base_s)
            if state == "failed":
                result.failed += 1
            else:
                result.retrying += 1
            continue
        record_delivered(store, claim, detail)
        result.delivered += 1
    return result


def redeliver(app, alert_id: int | None = None, failed: bool = False) -> int:
    """Send again: one alert's deliveries (creating those of channels its organisation has added since), or
    every ``failed`` row. Rows being sent right now are left alone. Returns the rows made pending."""
    from webmap.accounts import get_accounts

    if (alert_id is None) == (not failed):
        raise BadInput("name one alert ID or --failed")
    store = get_alert_store(app)
    at, now = now_iso(), time.time()
    reset = ("UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL,"
             " delivered_at = NULL, claimed_by = NULL, claimed_until = NULL, updated_at = ?")
    with store.transaction() as con:
        if failed:
            count = con.execute(reset + " WHERE state = 'failed'", (now, at)).rowcount
        else:
            alert = get_alert(store, alert_id)
            count = con.execute(reset + " WHERE alert_id = ? AND state != 'sending'", (now, at, alert.id)).rowcount
            have = {d.channel for d in alert.deliveries}
            for channel in channels_of(get_accounts(app).get_alert_settings(alert.org_code)):
                if channel not in have:
                    con.execute("INSERT INTO deliveries (delivery_id, alert_id, channel, next_attempt_at, created_at,"
                                " updated_at) VALUES (?, ?, ?, ?, ?, ?)", (uuid.uuid4().hex, alert.id, channel, now,
                                                                           at, at))
                    count += 1
    wake_worker(app)
    return count


@dataclass(frozen=True)
class Problem:
    """A delivery the admin should know about: failed, retrying, or stuck in a claim that ran out."""

    row: int
    delivery_id: str
    alert_id: int
    org_code: str
    incident_id: str
    channel: str
    state: str
    attempts: int
    last_error: str | None
    updated_at: str
    next_attempt_at: float


def delivery_problems(store: AlertStore, limit: int = 200, now: float | None = None) -> list[Problem]:
    now = time.time() if now is None else now
    rows = store.connection().execute(
        "SELECT d.*, a.org_code, a.incident_id FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
        " WHERE d.state = 'failed' OR (d.state = 'pending' AND d.attempts > 0)"
        " OR (d.state = 'sending' AND d.claimed_until <= ?) ORDER BY d.updated_at DESC, d.id DESC LIMIT ?",
        (now, int(limit))).fetchall()
    return [Problem(r["id"], r["delivery_id"], r["alert_id"], r["org_code"], r["incident_id"], r["channel"],
                    r["state"], r["attempts"], r["last_error"], r["updated_at"], r["next_attempt_at"]) for r in rows]


@dataclass(frozen=True)
class ChannelResult:
    channel: str
    target: str
    ok: bool
    detail: str


def send_test_messages(app, code) -> list[ChannelResult]:
    """Send a test message through each of the organisation's channels now (nothing is stored)."""
    from webmap.accounts import get_accounts
    from webmap.i18n import strings

    accounts = get_accounts(app)
    org = accounts.get_org(code)
    settings = accounts.get_alert_settings(org.code)
    timeout = float(app.config["DELIVERY_TIMEOUT_S"])
    results = []
    if settings.webhook_url:
        delivery_id = "test-" + uuid.uuid4().hex
        try:
            detail = send_webhook(settings.webhook_url, settings.webhook_secret or "",
                                  encode(probe_payload(org.code, delivery_id)), delivery_id, timeout)
            results.append(ChannelResult("webhook", settings.webhook_url, True, detail))
        except SendError as exc:
            results.append(ChannelResult("webhook", settings.webhook_url, False, str(exc)))
    if settings.emails:
        delivery_id = "test-" + uuid.uuid4().hex
        text = "\n\n".join(strings(lang)["alert_test_text"].format(org=org.code) for lang in ("vi", "en"))
        message = email_message(app.config, settings.emails, strings("vi")["alert_test_subject"], text, delivery_id)
        try:
            detail = send_email(app.config, message, settings.emails, timeout)
            results.append(ChannelResult("email", ", ".join(settings.emails), True, detail))
        except SendError as exc:
            results.append(ChannelResult("email", ", ".join(settings.emails), False, str(exc)))
    return results


# -- the worker thread ----------------------------------------------------------------------------------------
class DeliveryWorker:
    """A daemon thread that runs :func:`deliver_pending` whenever woken (new alerts) and every ``poll_s``
    (retries falling due). ``stop()`` ends it after the send in progress, if any."""

    def __init__(self, app, poll_s: float = POLL_S):
        self.app = app
        self.poll_s = poll_s
        self.name = worker_name()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webmap-delivery", daemon=True)

    def start(self) -> "DeliveryWorker":
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float | None = None) -> bool:
        """Ask the thread to end and wait up to ``timeout_s``; True if it has ended."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self):
        try:  # build the spatial index of alerts now, not in the first request that creates alerts
            from webmap.alerts import asset_index

            asset_index(self.app)
        except Exception:  # noqa: BLE001 - no layers yet, say: built on first use instead
            self.app.logger.debug("alert index not built at start", exc_info=True)
        while not self._stop.is_set():
            self._wake.clear()
            try:
                deliver_pending(self.app, worker=self.name, stop=self._stop)
            except Exception:  # noqa: BLE001 - e.g. the database locked for too long: try again later
                self.app.logger.exception("alert delivery pass failed")
            self._wake.wait(self.poll_s)


_WORKER_LOCK = threading.Lock()


def start_worker(app, poll_s: float = POLL_S) -> DeliveryWorker:
    """The app's delivery worker, started once (``webmap serve`` calls this)."""
    with _WORKER_LOCK:
        worker = app.extensions.get("webmap_delivery_worker")
        if worker is None or not worker.alive:
            get_alert_store(app)  # the schema exists before the thread starts
            worker = app.extensions["webmap_delivery_worker"] = DeliveryWorker(app, poll_s).start()
    return worker


def stop_worker(app, timeout_s: float | None = None) -> bool:
    with _WORKER_LOCK:
        worker = app.extensions.pop("webmap_delivery_worker", None)
    return worker.stop(timeout_s) if worker is not None else True


def wake_worker(app) -> None:
    """Tell this process's worker (if any) that there is something to send; other processes' workers find
    it within POLL_S."""
    worker = app.extensions.get("webmap_delivery_worker")
    if worker is not None:
        worker.wake()
