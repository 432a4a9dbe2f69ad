#!/usr/bin/env bash
# Fresh machine to running map: install, load the demo city into the embedded store, serve on 127.0.0.1:5000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/webmap demo
exec .venv/bin/webmap serve "$@"
