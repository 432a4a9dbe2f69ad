"""Delivery of alerts: a webhook receiver (http.server on 127.0.0.1, in a thread) and an SMTP server
(aiosmtpd) started by the tests; the signature checked here with hmac/hashlib; retries with back-off on a
clock the test moves; a worker process killed while the receiver holds its request, then new workers: no
delivery lost, none sent twice except the one whose answer was never recorded, and that one with the same id.

Every receiver, SMTP server and worker thread a test starts is stopped before it ends (checked).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT
from test_alerts import GEOD, NORTH_50, SECRET_WORDS, city, close_alerts, incidents, notify  # noqa: F401 - city

SECRET = "shared-secret-of-VTSH-2026"


# -- a webhook receiver and an SMTP server, both local and stopped after each test ---------------------------
class Receiver:
    """``http.server`` on 127.0.0.1 in a thread. ``answers``: status of request 1, 2, ... (200 after them) or
    ``{path: status}``; ``hold_at``: the n-th request waits (its request read and recorded) until ``release``."""

    def __init__(self, answers=(), hold_at=None):
        self.answers = answers
        self.hold_at = hold_at
        self.requests: list[dict] = []
        self.held = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    n = len(receiver.requests)
                    if isinstance(receiver.answers, dict):
                        status = receiver.answers.get(self.path, 200)
                    else:
                        status = receiver.answers[n - 1] if n <= len(receiver.answers) else 200
                if n == receiver.hold_at:
                    receiver.held.set()
                    receiver.release.wait(60)
                try:
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", receiver.url + "/elsewhere")
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender is gone (killed): nothing to answer
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="test-receiver", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.release.set()
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(5)
        self.server.server_close()

    def ids(self) -> list[str]:
        return [r["headers"]["X-Webmap-Delivery"] for r in self.requests]


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpSink:
    """What the local SMTP server received; ``nobody@...`` recipients are refused (550)."""

    def __init__(self):
        self.messages = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "message": email.message_from_bytes(envelope.content, policy=email.policy.default)})
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def nothing_left_running():
    """No test leaves a thread behind (receivers, SMTP servers, delivery workers)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left:
            return
        time.sleep(0.05)
    pytest.fail(f"threads left running: {[t.name for t in left]}")


# -- helpers ----------------------------------------------------------------------------------------------------
def signature(body: bytes, secret=SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def outbox(app):
    from webmap.alerts import get_alert_store

    rows = get_alert_store(app).connection().execute(
        "SELECT d.*, a.org_code, a.incident_id FROM deliveries d JOIN alerts a ON a.id = d.alert_id ORDER BY d.id")
    return [dict(r) for r in rows]


def attempts_of(app, delivery_id):
    from webmap.alerts import get_alert_store

    rows = get_alert_store(app).connection().execute(
        "SELECT t.attempt, t.outcome, t.detail FROM delivery_attempts t JOIN deliveries d ON d.id = t.delivery"
        " WHERE d.delivery_id = ? ORDER BY t.attempt", (delivery_id,))
    return [tuple(r) for r in rows]


def deliver(app, at=None):
    from webmap.delivery import deliver_pending

    return deliver_pending(app, clock=(lambda: at) if at is not None else time.time)


def webhook(app, org="VTSH", url=None, secret=SECRET):
    from webmap.delivery import configure_org

    return configure_org(app, org, webhook_url=url, webhook_secret=secret)


# -- webhook ------------------------------------------------------------------------------------------------------
def test_a_webhook_is_posted_signed_with_a_stable_delivery_id(city, receiver):
    webhook(city, url=receiver.url + "/hook")
    [alert_id] = notify(city, incidents(("I-050", *NORTH_50)))
    result = deliver(city)
    assert (result.delivered, result.retrying, result.failed) == (1, 0, 0)
    [request] = receiver.requests
    [row] = outbox(city)
    assert request["path"] == "/hook"
    assert request["headers"]["X-Webmap-Delivery"] == row["delivery_id"]
    assert request["headers"]["X-Webmap-Signature"] == signature(request["body"])
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    payload = json.loads(request["body"])
    assert payload["type"] == "webmap.alert" and payload["delivery_id"] == row["delivery_id"]
    alert = payload["alert"]
    assert (alert["id"], alert["organisation"], alert["event"]) == (alert_id, "VTSH", "recorded")
    assert alert["incident"]["id"] == "I-050" and alert["incident"]["type"] == "cable_theft"
    assert alert["asset"] == {"kind": "cable_routes", "id": "C-001", "name": "Tuyến trục Ninh Kiều – Cái Răng",
                              "distance_m": 50.0}
    assert "Trộm cắp cáp" in alert["text"]["vi"] and "Cable theft" in alert["text"]["en"]
    assert not [w for w in SECRET_WORDS if w in request["body"].decode("utf-8")]
    assert (row["state"], row["attempts"], row["claimed_by"]) == ("delivered", 1, None) and row["delivered_at"]
    assert attempts_of(city, row["delivery_id"]) == [(1, "delivered", "HTTP 200")]
    assert deliver(city).delivered == 0 and len(receiver.requests) == 1  # delivered: never sent again


def test_a_receiver_that_fails_twice_then_succeeds(city):
    from webmap.delivery import backoff_s

    assert [backoff_s(n, 30) for n in (1, 2, 3, 7, 8)] == [30, 60, 120, 1920, 3600]  # doubling, capped at 1 h
    t0 = time.time() + 10
    with Receiver(answers=[503, 500]) as receiver:
        webhook(city, url=receiver.url + "/hook")
        notify(city, incidents(("I-050", *NORTH_50)))
        assert deliver(city, t0).retrying == 1
        [row] = outbox(city)
        assert (row["state"], row["attempts"], row["next_attempt_at"]) == ("pending", 1, t0 + 30)
        assert row["last_error"] == "HTTP 503"
        assert deliver(city, t0 + 29.9).retrying == 0 and len(receiver.requests) == 1  # not yet due
        assert deliver(city, t0 + 30).retrying == 1
        [row] = outbox(city)
        assert (row["attempts"], row["next_attempt_at"], row["last_error"]) == (2, t0 + 30 + 60, "HTTP 500")
        assert deliver(city, t0 + 89.9).delivered == 0
        assert deliver(city, t0 + 90).delivered == 1
    [row] = outbox(city)
    assert (row["state"], row["attempts"], row["last_error"]) == ("delivered", 3, None)
    assert receiver.ids() == [row["delivery_id"]] * 3
    assert len({r["body"] for r in receiver.requests}) == 1  # the same bytes each time
    assert all(r["headers"]["X-Webmap-Signature"] == signature(r["body"]) for r in receiver.requests)
    assert attempts_of(city, row["delivery_id"]) == [(1, "failed", "HTTP 503"), (2, "failed", "HTTP 500"),
                                                     (3, "delivered", "HTTP 200")]


def test_attempts_run_out_then_the_admin_sees_it_and_redelivers(city, run_cli, client_as):
    from webmap import audit
    from webmap.alerts import get_alert_store
    from webmap.delivery import delivery_problems

    city.config["DELIVERY_MAX_ATTEMPTS"] = 3
    t0 = time.time() + 10
    with Receiver(answers=[503, 503, 503]) as receiver:
        webhook(city, url=receiver.url + "/hook")
        [alert_id] = notify(city, incidents(("I-050", *NORTH_50)))
        for at in (t0, t0 + 30, t0 + 90):
            deliver(city, at)
        [row] = outbox(city)
        assert (row["state"], row["attempts"], row["last_error"]) == ("failed", 3, "HTTP 503")
        assert deliver(city, t0 + 10_000).failed == 0 and len(receiver.requests) == 3  # failed: left alone
        [problem] = delivery_problems(get_alert_store(city))
        assert (problem.alert_id, problem.org_code, problem.state, problem.attempts) == (alert_id, "VTSH", "failed", 3)
        page = client_as("admin").get("/alerts").data.decode()
        assert f'data-delivery="{row["delivery_id"]}"' in page and "HTTP 503" in page
        code, out, err = run_cli("alerts", "failures")
        assert code == 0 and "VTSH" in out and "HTTP 503" in out and "failed" in out, err
        code, out, err = run_cli("alerts", "redeliver", "--failed")
        assert code == 0 and out.startswith("1 delivery queued again"), err
        code, out, err = run_cli("alerts", "deliver")
        assert code == 0 and out.strip() == "delivered 1, to retry later 0, failed 0", err
    [row] = outbox(city)
    assert (row["state"], row["attempts"]) == ("delivered", 1)
    assert receiver.ids() == [row["delivery_id"]] * 4
    code, out, _ = run_cli("alerts", "failures")
    assert out.strip() == "no delivery failures"
    assert audit.for_app(city).entries(action="alert_redeliver", limit=1)[0].target == "failed"


def test_refusals_and_redirects_are_not_retried_and_busy_receivers_are(city):
    from webmap.accounts import get_accounts

    mkn_point = GEOD.fwd(105.775, 10.024, 90, 20)[:2]  # 20 m east of MKN's C-002
    bdtm_point = GEOD.fwd(105.772, 10.025, 90, 20)[:2]  # 20 m east of BDTM's S-003
    with Receiver(answers={"/vtsh": 404, "/mkn": 302, "/bdtm": 429}) as receiver:
        for org in ("VTSH", "MKN", "BDTM"):
            webhook(city, org, receiver.url + "/" + org.lower())
        notify(city, incidents(("I-050", *NORTH_50), ("M", *mkn_point), ("B", *bdtm_point)))
        result = deliver(city)
    assert (result.delivered, result.retrying, result.failed) == (0, 1, 2)
    rows = {r["org_code"]: r for r in outbox(city)}
    assert (rows["VTSH"]["state"], rows["VTSH"]["last_error"]) == ("failed", "HTTP 404 (refused: not retried)")
    assert rows["MKN"]["state"] == "failed" and "redirects are not followed" in rows["MKN"]["last_error"]
    assert (rows["BDTM"]["state"], rows["BDTM"]["last_error"]) == ("pending", "HTTP 429")
    assert sorted(r["path"] for r in receiver.requests) == ["/bdtm", "/mkn", "/vtsh"]  # /elsewhere never asked
    # a channel removed after the alert: failed at once, saying why
    get_accounts(city).set_alert_settings("BDTM", webhook_url=None, webhook_secret=None)
    deliver(city, time.time() + 3600)
    assert {r["org_code"]: r for r in outbox(city)}["BDTM"]["last_error"] == "BDTM has no webhook URL and secret any more"


def test_webhook_settings_are_checked(city):
    from webmap.delivery import configure_org
    from webmap.errors import BadInput, NotFound

    for url in ("ftp://127.0.0.1/x", "file:///etc/passwd", "http://user:pw@127.0.0.1/x", "127.0.0.1:8080/x",
                "http:///nohost"):
        with pytest.raises(BadInput):
            configure_org(city, "VTSH", webhook_url=url)
    with pytest.raises(BadInput, match="at least 16"):
        configure_org(city, "VTSH", webhook_url="https://noc.vtsh.example/hook", webhook_secret="short")
    with pytest.raises(BadInput, match="only enterprises and the police"):
        configure_org(city, "916", emails=["a@b.example"])
    with pytest.raises(NotFound):
        configure_org(city, "NOPE", emails=["a@b.example"])
    with pytest.raises(BadInput, match="not an e-mail"):
        configure_org(city, "VTSH", emails=["not an address"])
    settings, made = configure_org(city, "VTSH", webhook_url="https://noc.vtsh.example/hook")
    assert made and len(made) >= 40 and settings.webhook_secret == made  # generated when none was given
    settings, again = configure_org(city, "VTSH", emails=["a@vtsh.example"])
    assert again is None and settings.webhook_secret == made  # kept
    settings, _ = configure_org(city, "VTSH", webhook_url=None)
    assert settings.webhook_url is None and settings.webhook_secret is None


def test_config_refuses_a_lease_shorter_than_three_timeouts(instance):
    from webmap.app import create_app
    from webmap.errors import BadInput

    with pytest.raises(BadInput, match="DELIVERY_LEASE_S"):
        create_app({"TESTING": True, "DELIVERY_TIMEOUT_S": 10, "DELIVERY_LEASE_S": 29})


# -- e-mail ---------------------------------------------------------------------------------------------------------
def test_an_alert_is_emailed_through_a_local_smtp_server(city, smtp):
    from webmap.delivery import configure_org

    city.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, SMTP_FROM="canh-bao@webmap.cantho.example")
    configure_org(city, "VTSH", emails=["duty@vtsh.example", "noc@vtsh.example"])
    notify(city, incidents(("I-050", *NORTH_50)))
    assert deliver(city).delivered == 1
    [row] = outbox(city)
    assert attempts_of(city, row["delivery_id"]) == [(1, "delivered", "SMTP accepted for 2 recipient(s)")]
    [got] = smtp.messages
    assert got["from"] == "canh-bao@webmap.cantho.example"
    assert got["to"] == ["duty@vtsh.example", "noc@vtsh.example"]
    message = got["message"]
    assert message["Message-ID"] == f"<{row['delivery_id']}@webmap>"
    assert message["X-Webmap-Delivery"] == row["delivery_id"]
    assert "C-001" in message["Subject"] and "Trộm cắp cáp" in message["Subject"]
    body = message.get_content()
    assert "I-050" in body and "50 m" in body and "Cable theft" in body
    assert not [w for w in SECRET_WORDS if w in body + message["Subject"]]


def test_email_failures_that_retrying_cannot_fix(city, smtp):
    from webmap.delivery import configure_org

    configure_org(city, "VTSH", emails=["nobody@vtsh.example"])
    notify(city, incidents(("I-050", *NORTH_50)))
    city.config.update(SMTP_HOST="")
    assert deliver(city).failed == 1
    assert outbox(city)[0]["last_error"] == "SMTP_HOST is not set: e-mail cannot be sent"
    city.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port)
    from webmap.delivery import redeliver

    assert redeliver(city, failed=True) == 1
    assert deliver(city).failed == 1
    assert outbox(city)[0]["last_error"] == "every recipient refused: nobody@vtsh.example"
    assert smtp.messages == []


# -- the CLI: test, configure ------------------------------------------------------------------------------------
def test_cli_configure_and_test(city, run_cli, smtp):
    with Receiver() as receiver:
        code, out, err = run_cli("alerts", "configure", "VTSH", "--webhook-url", receiver.url + "/hook",
                                 "--email", "duty@vtsh.example", "--distance-m", "150")
        assert code == 0, err
        secret = [line for line in out.splitlines() if line.startswith("webhook secret: ")][0].split(": ", 1)[1]
        assert "alert distance: 150 m (its own)" in out and "duty@vtsh.example" in out
        env = {"WEBMAP_SMTP_HOST": "127.0.0.1", "WEBMAP_SMTP_PORT": str(smtp.port)}
        code, out, err = run_cli("alerts", "test", "VTSH", env=env)
        assert code == 0, err
        assert f"webhook {receiver.url}/hook: ok: HTTP 200" in out
        assert "email duty@vtsh.example: ok: SMTP accepted for 1 recipient(s)" in out
        [request] = receiver.requests
        assert request["headers"]["X-Webmap-Signature"] == signature(request["body"], secret)
        payload = json.loads(request["body"])
        assert payload["type"] == "webmap.test" and payload["organisation"] == "VTSH"
        assert request["headers"]["X-Webmap-Delivery"] == payload["delivery_id"]
        assert smtp.messages[0]["message"]["Subject"] == "[webmap] Thư thử kênh cảnh báo"
    code, out, err = run_cli("alerts", "test", "VTSH", env=env)  # the receiver is gone now
    assert code == 2
    assert "FAILED" in out and "ok: SMTP accepted" in out
    assert err.strip() == "webmap: error: test failed on 1 of 2 channel(s)"
    code, out, err = run_cli("alerts", "test", "MKN")
    assert code == 2 and "has no alert channel" in err
    code, out, err = run_cli("alerts", "configure", "916", "--email", "a@b.example")
    assert code == 2 and "only enterprises and the police" in err
    code, out, err = run_cli("alerts", "configure", "VTSH", "--no-webhook", "--default-distance")
    assert code == 0 and "webhook: -" in out and "alert distance: 100 m (ALERT_DISTANCE_M)" in out
    code, out, err = run_cli("alerts", "redeliver")
    assert code == 2 and "name one alert ID or --failed" in err


def test_redeliver_adds_the_channels_an_organisation_gained_since(city, receiver, run_cli):
    [alert_id] = notify(city, incidents(("I-050", *NORTH_50)))
    assert outbox(city) == []  # VTSH had no channel: the alert was on its page only
    webhook(city, url=receiver.url + "/hook")
    code, out, err = run_cli("alerts", "redeliver", str(alert_id))
    assert code == 0 and out.startswith("1 delivery queued again"), err
    assert deliver(city).delivered == 1 and receiver.ids() == [outbox(city)[0]["delivery_id"]]
    code, _, err = run_cli("alerts", "redeliver", "99999")
    assert code == 2 and "alert 99999 does not exist" in err


# -- the worker thread, claims and leases ---------------------------------------------------------------------
def test_the_worker_thread_delivers_when_woken_and_stops_cleanly(city, receiver):
    from webmap.delivery import start_worker, stop_worker

    webhook(city, url=receiver.url + "/hook")
    worker = start_worker(city, poll_s=60)  # a long poll: only the wake-up from notify can send this quickly
    try:
        assert start_worker(city) is worker  # one per app
        notify(city, incidents(("I-050", *NORTH_50)))
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(receiver.requests) == 1
    finally:
        assert stop_worker(city, timeout_s=10)
    assert not worker.alive
    deadline = time.monotonic() + 5
    while outbox(city)[0]["state"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert outbox(city)[0]["state"] == "delivered"


def test_a_live_claim_is_never_taken_and_an_expired_one_is(city):
    from webmap.alerts import get_alert_store
    from webmap.delivery import claim_next, record_delivered, record_failed

    webhook(city, url="http://127.0.0.1:9/hook")
    notify(city, incidents(("I-050", *NORTH_50)))
    store, t0 = get_alert_store(city), time.time() + 10
    a = claim_next(store, "worker-a", t0, 60, 8)
    assert a.attempt == 1 and claim_next(store, "worker-b", t0 + 59.9, 60, 8) is None
    b = claim_next(store, "worker-b", t0 + 60, 60, 8)  # worker-a's lease ran out: its outcome is unknown
    assert (b.row, b.delivery_id, b.attempt) == (a.row, a.delivery_id, 2)
    assert attempts_of(city, a.delivery_id) == [(1, "interrupted", "no answer recorded by worker-a before its claim "
                                                                    "ran out"), (2, None, None)]
    record_failed(store, a, "worker-a", "late failure", False, t0 + 61, 8, 30)  # not worker-a's any more
    row = outbox(city)[0]
    assert (row["state"], row["claimed_by"], row["last_error"]) == ("sending", "worker-b", None)
    record_delivered(store, a, "HTTP 200")  # a late 2xx is still a fact: delivered, once
    record_failed(store, b, "worker-b", "HTTP 503", False, t0 + 62, 8, 30)  # too late: already delivered
    row = outbox(city)[0]
    assert (row["state"], row["last_error"], row["claimed_by"]) == ("delivered", None, None)
    assert claim_next(store, "worker-c", t0 + 10_000, 60, 8) is None


def test_a_claim_interrupted_on_the_last_attempt_ends_failed(city):
    from webmap.alerts import get_alert_store
    from webmap.delivery import claim_next

    webhook(city, url="http://127.0.0.1:9/hook")
    notify(city, incidents(("I-050", *NORTH_50)))
    store, t0 = get_alert_store(city), time.time() + 10
    assert claim_next(store, "w1", t0, 60, 2).attempt == 1
    assert claim_next(store, "w2", t0 + 60, 60, 2).attempt == 2
    assert claim_next(store, "w3", t0 + 120, 60, 2) is None
    row = outbox(city)[0]
    assert (row["state"], row["last_error"]) == ("failed", "attempt 2 interrupted and no attempt left")


# -- a real crash: the worker process killed mid-delivery ------------------------------------------------------
def _worker(instance, env):
    return [sys.executable, "-m", "webmap.cli", "alerts", "deliver"], {**os.environ, "WEBMAP_INSTANCE": instance, **env}


def test_a_worker_killed_mid_delivery_loses_nothing_and_resends_only_the_unconfirmed(city):
    """Five alerts; the receiver answers the first two and holds the third while the worker process (a real
    ``webmap alerts deliver``) is killed with SIGKILL. A new worker at once sends the two not yet tried and
    leaves the claimed one alone (its worker might still be sending it); once the claim has run out, the
    next worker sends it again, with the same delivery id. Each id reaches the receiver; only the one whose
    answer was never recorded twice; every row ends delivered exactly once."""
    instance = city.instance_path
    lease_s = 12
    env = {"WEBMAP_DELIVERY_TIMEOUT_S": "4", "WEBMAP_DELIVERY_LEASE_S": str(lease_s)}
    with Receiver(hold_at=3) as receiver:
        webhook(city, url=receiver.url + "/hook")
        points = [GEOD.fwd(105.761 + 0.003 * i, 10.03, 0, 20)[:2] for i in range(5)]  # 20 m north of C-001
        assert len(notify(city, incidents(*[(f"K-{i}", *p) for i, p in enumerate(points)]))) == 5
        all_ids = [r["delivery_id"] for r in outbox(city)]
        args, full_env = _worker(instance, env)
        first = subprocess.Popen(args, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert receiver.held.wait(60), "the worker never reached the third delivery"
            held = receiver.ids()[2]
            states = {r["delivery_id"]: r for r in outbox(city)}
            assert [states[i]["state"] for i in all_ids] == ["delivered", "delivered", "sending", "pending", "pending"]
            assert held == all_ids[2] and f":{first.pid}:" in states[held]["claimed_by"]
            claimed_until = states[held]["claimed_until"]
        finally:
            first.kill()  # SIGKILL: no clean-up of any kind in the worker
            first.communicate(timeout=10)
        receiver.release.set()

        second = subprocess.run(args, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        if time.time() < claimed_until:  # (on a machine slow enough to pass the lease, the next run does it)
            assert second.stdout.strip() == "delivered 2, to retry later 0, failed 0"
            assert receiver.ids().count(held) == 1
            assert {r["delivery_id"]: r["state"] for r in outbox(city)}[held] == "sending"
        time.sleep(max(0.0, claimed_until - time.time()) + 0.2)
        third = subprocess.run(args, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)
        assert third.returncode == 0, third.stderr

    received = receiver.ids()
    assert set(received) == set(all_ids)  # no loss
    assert {i: received.count(i) for i in all_ids} == {i: 2 if i == held else 1 for i in all_ids}
    copies = [r for r in receiver.requests if r["headers"]["X-Webmap-Delivery"] == held]
    assert copies[0]["body"] == copies[1]["body"]
    assert all(r["headers"]["X-Webmap-Signature"] == signature(r["body"]) for r in receiver.requests)
    close_alerts(city)
    rows = {r["delivery_id"]: r for r in outbox(city)}
    assert all(r["state"] == "delivered" and r["claimed_by"] is None for r in rows.values())
    assert {i: rows[i]["attempts"] for i in all_ids} == {i: 2 if i == held else 1 for i in all_ids}
    assert [a[1] for a in attempts_of(city, held)] == ["interrupted", "delivered"]
    assert all([a[1] for a in attempts_of(city, i)] == ["delivered"] for i in all_ids if i != held)
    con = sqlite3.connect(os.path.join(instance, "alerts.sqlite"))
    try:
        assert con.execute("SELECT COUNT(*), COUNT(DISTINCT alert_id || channel) FROM deliveries"
                           " WHERE state = 'delivered'").fetchone() == (5, 5)
    finally:
        con.close()
