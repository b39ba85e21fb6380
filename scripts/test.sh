#!/usr/bin/env bash
# The README's second command: set up .venv (first run only) and run the whole test suite.
# .ci/run calls exactly this script. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[server,dev]'

.venv/bin/ruff check src tests examples
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
