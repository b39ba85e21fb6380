"""The client stays light: importing it pulls in no server dependency."""

from __future__ import annotations

import subprocess
import sys

SERVER_ONLY = ("fastapi", "optuna", "sqlalchemy", "uvicorn", "starlette", "numpy")


def test_bare_import_loads_no_server_dependency() -> None:
    code = (
        "import sys, optunapi, optunapi.client, optunapi.space, optunapi.schemas;"
        f"print(','.join(m for m in {SERVER_ONLY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == ""
