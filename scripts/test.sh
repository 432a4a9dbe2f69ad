#!/usr/bin/env bash
# Fresh machine to test results: install (venv, packages, Debian chromium), then run every test,
# the browser tests included. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec .venv/bin/python -m pytest "$@"
