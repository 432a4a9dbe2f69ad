"""Shared fixtures: an app on a temporary instance (its own GeoPackage store), the CLI runner, and
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
