"""The dashboard in a real browser (headless Chromium) against a real server."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from optunapi import Client

from .conftest import ServerProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran (fetching the study list from the server)."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=15000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="no chromium here (scripts/test.sh installs it when run as root)",
)
def test_the_dashboard_lists_the_servers_studies(
    server: ServerProcess, client: Client, study_name: str, tmp_path: Path
) -> None:
    client.create_study(study_name, {"x": {"type": "float", "low": 0, "high": 1}})
    client.optimize(study_name, lambda p: p["x"], n_trials=3)
    dom = render(f"{server.url}/dashboard", tmp_path / "profile")
    assert study_name in dom  # rendered by the page's script from the dashboard's API
