#!/usr/bin/env bash
# The main job: from a fresh clone to a finished hyperparameter search in one command.
#   bash scripts/demo.sh
# Creates .venv in the repo root if missing, installs optunapi with its server and examples
# extras (again only when pyproject.toml changed), then runs examples/digits/run.py.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
log="$venv/install.log"

# Run a command with its output in $log, shown only if it fails.
quietly() {
  "$@" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }
}

if [[ ! -x $venv/bin/python ]]; then
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "optunapi needs Python >= 3.10, python3 is $(python3 --version)" >&2; exit 1; }
  echo "Creating $venv"
  python3 -m venv "$venv"
  quietly "$venv/bin/python" -m pip install --upgrade pip
fi

# A copy of the pyproject.toml last installed: when it differs, install again.
stamp="$venv/optunapi-installed.toml"
if ! cmp -s "$root/pyproject.toml" "$stamp"; then
  echo "Installing optunapi[server,examples] into $venv (log: $log)"
  quietly "$venv/bin/python" -m pip install -e "$root[server,examples]"
  cp "$root/pyproject.toml" "$stamp"
fi

exec "$venv/bin/python" "$root/examples/digits/run.py"
