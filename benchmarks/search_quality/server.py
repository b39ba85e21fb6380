"""A real ``optunapi serve`` subprocess on 127.0.0.1, port 0, on a SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Server:
    """A running server: its URL and the file its stderr goes to."""

    url: str
    log: Path

    def log_text(self) -> str:
        """What the server wrote to stderr so far (tracebacks, warnings)."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@contextmanager
def serve(root: Path) -> Iterator[Server]:
    """Start ``optunapi serve`` on ``root/optunapi.db``; stop it on exit.

    The server prints one stdout line once its socket listens, so reading that line is the
    readiness check: no polling, no sleeps, no fixed port.

    Raises:
        RuntimeError: the server exited or printed something else instead.
    """
    root.mkdir(parents=True, exist_ok=True)
    log = root / "server.log"
    command = [
        sys.executable, "-m", "optunapi.cli", "serve", "--port", "0",
        "--storage", f"sqlite:///{root / 'optunapi.db'}", "--config-dir", str(root / "config"),
        "--log-level", "warning",
    ]  # fmt: skip
    with open(log, "a", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "serving on " not in line:
            raise RuntimeError(
                f"optunapi serve did not start: {line!r}\n{log.read_text(errors='replace')}"
            )
        yield Server(line.split("serving on ")[1].split()[0], log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
