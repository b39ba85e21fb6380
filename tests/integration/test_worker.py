"""``optunapi worker`` running shell scripts against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from optunapi import Client

from .conftest import ServerProcess

SPACE = {
    "x": {"type": "float", "low": -5, "high": 5},
    "drop-out": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
    "act": {"type": "categorical", "choices": ["relu", "tanh"]},
}

# Fails on its first run only; checks that the three ways of passing params agree.
FAILS_ONCE = r"""#!/usr/bin/env bash
set -eu
if [ ! -e "$MARKER" ]; then
    touch "$MARKER"
    echo "first run: out of memory" >&2
    exit 7
fi
x_of() { python3 -c "import json, sys; print(json.load(sys.stdin)['x'])"; }
from_json=$(echo "$OPTUNAPI_PARAMS" | x_of)
from_file=$(x_of < "$OPTUNAPI_PARAMS_FILE")
[ "$from_json" = "$X" ] && [ "$from_file" = "$X" ] || { echo "params disagree" >&2; exit 9; }
echo "training with act=$ACT dropout=$DROP_OUT"
echo "optunapi:report 0 1.0"
python3 -c "import os; print(float(os.environ['X']) ** 2, float(os.environ['DROP_OUT']))"
"""

# Reports a terrible value, then would run for a long time unless stopped.
HOPELESS = r"""#!/usr/bin/env bash
echo "optunapi:report 0 1000"
sleep 60
echo "still here" > "$MARKER"
echo 1
"""


def run_worker(
    server: ServerProcess, study: str, script: Path, *extra: str, env: dict | None = None
):
    return subprocess.run(
        [sys.executable, "-m", "optunapi.cli", "worker", "--study", study,
         "--server", server.url, *extra, "--", "bash", str(script)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_worker_runs_a_script_that_fails_once(
    server: ServerProcess, client: Client, study_name: str, tmp_path: Path
) -> None:
    client.create_study(study_name, SPACE, directions=["minimize", "maximize"])
    script = tmp_path / "train.sh"
    script.write_text(FAILS_ONCE)
    env = {**os.environ, "MARKER": str(tmp_path / "ran-once")}
    done = run_worker(server, study_name, script, "--n-trials", "4", env=env)
    assert done.returncode == 0, done.stderr
    trials = client.trials(study_name)
    assert [t.state for t in trials] == ["fail", "complete", "complete", "complete"]
    failed = trials[0]
    assert failed.user_attrs["exit_code"] == 7
    assert "out of memory" in failed.user_attrs["stderr_tail"]
    for t in trials[1:]:
        assert t.values == [t.params["x"] ** 2, t.params["drop-out"]]  # two objectives
        assert t.intermediate_values == {0: 1.0}
        assert t.worker and t.worker == trials[1].worker
    assert "training with act=" in done.stdout  # the script's output is passed through


def test_worker_stops_a_pruned_program_and_tells_pruned(
    server: ServerProcess, client: Client, study_name: str, tmp_path: Path
) -> None:
    client.create_study(study_name, SPACE, pruner={"type": "threshold", "upper": 10.0})
    script = tmp_path / "hopeless.sh"
    script.write_text(HOPELESS)
    marker = tmp_path / "finished"
    env = {**os.environ, "MARKER": str(marker)}
    done = run_worker(server, study_name, script, "--n-trials", "1", env=env)
    assert done.returncode == 0, done.stderr
    (trial,) = client.trials(study_name)
    assert trial.state == "pruned" and trial.intermediate_values == {0: 1000.0}
    assert not marker.exists()  # the program was stopped, not waited for


def test_worker_exits_non_zero_when_it_cannot_work(server: ServerProcess, tmp_path: Path) -> None:
    script = tmp_path / "noop.sh"
    script.write_text("echo 1\n")
    missing = run_worker(server, "no-such-study", script, "--n-trials", "1")
    assert missing.returncode != 0 and "no study named" in missing.stderr
    gone = subprocess.run(
        [sys.executable, "-m", "optunapi.cli", "worker", "--study", "s",
         "--server", "http://127.0.0.1:9", "--", "true"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert gone.returncode == 2 and "Cannot reach" in gone.stderr


def test_client_trial_context_tells_pruned(client: Client, study_name: str) -> None:
    client.create_study(study_name, SPACE, pruner={"type": "threshold", "upper": 10.0})
    with client.trial(study_name) as trial:
        trial.report(0, 1.0)
        trial.report(1, 100.0)  # raises TrialPruned, which the context handles
        raise AssertionError("not reached")
    assert client.trial_info(study_name, trial.number).state == "pruned"


def test_worker_passes_args_and_reads_the_result_file(
    server: ServerProcess, client: Client, study_name: str, tmp_path: Path
) -> None:
    client.create_study(study_name, {"x": {"type": "int", "low": 1, "high": 9}})
    script = tmp_path / "args.sh"
    # Prints a decoy last line; the objective is in the result file: the value after --x.
    script.write_text('[ "$1" = "--x" ] || exit 4\necho "$2" > "$OPTUNAPI_RESULT_FILE"\necho 999\n')
    done = run_worker(server, study_name, script, "--n-trials", "2", "--args")
    assert done.returncode == 0, done.stderr
    for t in client.trials(study_name):
        assert t.state == "complete" and t.value == t.params["x"]


def test_cli_exports_csv_and_json(
    server: ServerProcess, client: Client, study_name: str, tmp_path: Path
) -> None:
    client.create_study(study_name, {"x": {"type": "int", "low": 1, "high": 9}})
    client.optimize(study_name, lambda p: p["x"], n_trials=3)
    out = tmp_path / "trials.json"
    cli = [sys.executable, "-m", "optunapi.cli", "export", study_name, "--server", server.url]
    subprocess.run([*cli, "--format", "json", "-o", str(out)], check=True, timeout=60)
    assert [t["value"] for t in json.loads(out.read_text())["trials"]] == [
        t.value for t in client.trials(study_name)
    ]
    as_csv = subprocess.run(cli, capture_output=True, text=True, check=True, timeout=60).stdout
    assert as_csv.splitlines()[0].startswith("number,state,value,params_x")
    assert len(as_csv.splitlines()) == 4


def test_worker_exits_non_zero_when_its_command_cannot_start(
    server: ServerProcess, client: Client, study_name: str
) -> None:
    client.create_study(study_name, {"x": {"type": "int", "low": 1, "high": 9}})
    done = subprocess.run(
        [sys.executable, "-m", "optunapi.cli", "worker", "--study", study_name,
         "--server", server.url, "--n-trials", "3", "--", "./no-such-program"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "cannot start" in done.stderr
    (trial,) = client.trials(study_name)  # it stopped after the first: it would never start
    assert trial.state == "fail"


def test_worker_starts_a_study_its_space_file_defines_and_reads_any_bytes(
    server: ServerProcess, client: Client, study_name: str, tmp_path: Path
) -> None:
    """The README's flow: a space file in the server's config directory and ``optunapi worker``,
    no study created first. A program printing bytes that are not UTF-8 (a Latin-1 log line)
    still has its last line read as the objective."""
    (server.config_dir / f"{study_name}.yaml").write_text(
        "x: {name: x, type: float, low: 0, high: 1}\n"
    )
    script = tmp_path / "latin1.sh"
    script.write_text("printf 'caf\\351 \\377\\376\\n'\necho 0.25\n")
    done = run_worker(server, study_name, script, "--n-trials", "2")
    assert done.returncode == 0, done.stderr
    trials = client.trials(study_name)
    assert [(t.state, t.value) for t in trials] == [("complete", 0.25), ("complete", 0.25)]
    assert "caf\\xe9" in done.stdout
