#!/usr/bin/env bash
# The README's second command: set up .venv (first run only) and run the whole test suite.
# .ci/run calls exactly this script. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# The dashboard's test drives a real browser: Debian's Chromium, installed when we may.
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing chromium for the dashboard test (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
        >/tmp/optunapi-apt.log 2>&1 || echo "chromium install failed: see /tmp/optunapi-apt.log"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[server,dev,bench]'

.venv/bin/ruff check src tests examples benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
