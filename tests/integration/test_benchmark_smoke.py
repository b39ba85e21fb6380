"""``benchmarks/compare.py --quick`` runs end to end against real servers: every system reports.

Behaviour only: the run finishes, its table has a measured row for every system, and optunapi
handed out no trial number twice and answered no tell for another trial. No timing assertion.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = {"optunapi", "floor", "original", "grpc-sqlite", "grpc-journal", "sqlite-shared"}


def test_quick_comparison_measures_every_system(tmp_path: Path) -> None:
    out = tmp_path / "quick.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # the command works from any directory, not only the repository's
    )
    assert done.returncode == 0, done.stdout + done.stderr

    table = [line.strip("|").split("|") for line in done.stdout.splitlines() if line[:1] == "|"]
    rows = [[cell.strip() for cell in cells] for cells in table[2:]]  # after header, separator
    measured = {cells[1] for cells in rows if not cells[2].startswith("failed")}
    assert measured == SYSTEMS, done.stdout + done.stderr

    summary = {row["system"]: row for row in json.loads(out.read_text())["summary"]}
    optunapi = summary["optunapi"]
    assert optunapi["cycles"] > 0, optunapi["failures"]
    assert optunapi["duplicates"] == 0, "a trial number was handed to two clients"
    assert optunapi["wrong_tells"] == 0, "a tell was answered for another trial"
    assert optunapi["server_tracebacks"] == 0, optunapi
