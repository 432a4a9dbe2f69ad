#!/usr/bin/env bash
# Create .venv and install webmap into it (editable); with --test, also the test tools and Debian's
# chromium (the browser tests drive it; Playwright never downloads a browser here).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ "$want_test" = 1 ] && { [ ! -x /usr/bin/chromium ] || ! command -v pdftotext >/dev/null; }; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing Debian packages: chromium, poppler-utils, fonts" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium poppler-utils fonts-dejavu-core fonts-liberation >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# constraints.txt pins every package to the versions the tests last passed with, so a new release
# upstream cannot change a build unnoticed; refresh it deliberately (pip freeze) after testing an upgrade.
if [ "$want_test" = 1 ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e .
fi
