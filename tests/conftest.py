"""Shared fixtures: an app on a temporary instance (its own embedded store), the CLI runner, and
small hand-checkable layer files written by the tests themselves (see tests/fixtures.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from webmap.app import create_app

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def instance(tmp_path, monkeypatch):
    folder = tmp_path / "instance"
    folder.mkdir()
    monkeypatch.setenv("WEBMAP_INSTANCE", str(folder))
    return folder


@pytest.fixture
def app(instance):
    app = create_app({"TESTING": True})
    yield app
    app.extensions["webmap_store"].close()


@pytest.fixture
def store(app):
    return app.extensions["webmap_store"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run_cli(instance):
    """Run ``webmap ARGS`` as a real process on the test instance: returns (exit code, stdout, stderr)."""

    def run(*args, env=None):
        proc = subprocess.run(
            [sys.executable, "-m", "webmap.cli", *map(str, args)],
            capture_output=True, text=True, cwd=ROOT,
            env={**os.environ, "WEBMAP_INSTANCE": str(instance), **(env or {})},
        )
        return proc.returncode, proc.stdout, proc.stderr

    return run


TEST_PASSWORD = "Kiểm-thử-2026-Cần-Thơ"
ORGANISATIONS = [
    ("CA-CT", "Công an thành phố (thử)", "police", None),
    ("VTSH", "Viễn thông Sông Hậu (thử)", "enterprise", None),
    ("MKN", "Mạng Kết Nối (thử)", "enterprise", None),
    ("BDTM", "Bưu điện Tây Miền (thử)", "enterprise", None),
    ("916", "UBND quận Ninh Kiều (thử)", "district", "916"),
]


def make_account(app, username, role, org_code=None):
    """A user whose initial password is already changed (so tests reach the pages directly)."""
    from webmap.accounts import get_accounts
    from webmap.errors import BadInput

    accounts = get_accounts(app)
    for code, name, kind, district in ORGANISATIONS:
        try:
            accounts.add_org(code, name, kind, district)
        except BadInput:
            pass  # already there
    _, initial = accounts.add_user(username, role, org_code)
    return accounts.change_password(username, initial, TEST_PASSWORD)


def log_in(client, user):
    """Put ``user`` in the client's signed session, as the login view does."""
    with client.session_transaction() as session:
        session["user"] = user.username
        session["pwc"] = user.password_changed_at


def app_in(folder):
    """A TESTING app whose instance is ``folder/instance``, for module-scoped fixtures: they cannot use the
    function-scoped ``instance`` fixture (monkeypatch), so WEBMAP_INSTANCE is set only while the app is made."""
    os.environ["WEBMAP_INSTANCE"] = str(folder / "instance")
    try:
        return create_app({"TESTING": True})
    finally:
        del os.environ["WEBMAP_INSTANCE"]


def clients_by_name(app, roles, suffix):
    """``{name: test client}`` for ``roles`` = ``{name: (role, org_code)}``: each logged in as a new user
    ``<name>.<suffix>`` of that role (the suffix keeps the users of different modules apart); "public" stays
    a visitor."""
    clients = {}
    for name, (role, org) in roles.items():
        client = app.test_client()
        if role != "public":
            log_in(client, make_account(app, f"{name}.{suffix}", role, org))
        clients[name] = client
    return clients


@pytest.fixture
def client_as(app):
    """``client_as(role, org)`` -> a test client logged in as a new user of that role."""
    counter = iter(range(1000))

    def make(role, org_code=None):
        client = app.test_client()
        if role != "public":
            user = make_account(app, f"{role}.{next(counter)}", role, org_code)
            log_in(client, user)
        return client

    return make


@pytest.fixture(scope="session")
def warm_esda():
    """esda's numba code compiled once per test session (webmap.analysis.hotspots.warm_up), shared by every Gi* test."""
    from webmap.analysis.hotspots import warm_up

    warm_up()
