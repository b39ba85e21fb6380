"""``benchmarks/quality.py`` runs end to end, tiny: every mode reports, and the parallel mode's
trials all went through a real server. Behaviour only: no timing, no search-quality assertion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRIALS, WORKERS = 16, 2


def test_quality_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "quality.json"
    done = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "quality.py"),
            "--seeds", "1", "--trials", str(TRIALS), "--workers", str(WORKERS),
            "--problems", "branin,mixed10", "--variant", "constant_liar=false",
            "--out", str(out), "--plots", str(tmp_path / "img"),
        ],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    results = json.loads(out.read_text())
    assert results["all_trials_told_and_stored"] is True
    assert "Traceback" not in results["server_log"], results["server_log"]
    modes = {"parallel", "parallel[constant_liar=false]", "sequential", "random"}
    for name in ("branin", "mixed10"):
        problem = results["problems"][name]
        assert {r["mode"] for r in problem["runs"]} == modes
        assert all(len(r["values"]) == TRIALS for r in problem["runs"])
        assert {c["mode"] for c in problem["comparisons"]} == modes - {"sequential", "random"}
        for run in problem["runs"]:
            if not run["mode"].startswith("parallel"):
                continue
            checks = run["checks"]
            # Every trial was told by a worker, and the server holds it complete with that value.
            assert checks["told"] == checks["stored"] == checks["stored_complete"] == TRIALS
            assert checks["stored_equals_told"] is True
            # The workers really overlapped: after the first asks, each ask found all the other
            # workers' trials running (the server's own timestamps).
            assert checks["in_flight_max"] == WORKERS - 1
            assert checks["asks_with_all_others_running"] == checks["steady_asks"] > 0
        assert (tmp_path / "img" / f"quality-{name}.png").stat().st_size > 0
        assert f"| {name} | parallel |" in done.stdout
    assert "Criterion:" in done.stdout
