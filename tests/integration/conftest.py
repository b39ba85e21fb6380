"""A real ``optunapi serve`` process on 127.0.0.1, port 0, on a real SQLite file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from optunapi import Client


@dataclass
class ServerProcess:
    """One server process; ``restart`` starts a new one on the same storage."""

    root: Path
    storage: str
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    log: list[str] = field(default_factory=list)

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def db_path(self) -> Path:
        return Path(self.storage.removeprefix("sqlite:///"))

    def start(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        stderr = open(self.root / "server.log", "a")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "optunapi.cli",
                "serve",
                "--port",
                "0",
                "--storage",
                self.storage,
                "--config-dir",
                str(self.config_dir),
                "--log-level",
                "warning",
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printed once the socket listens
        if "serving on " not in line:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}\n{self.server_log()}")
        self.url = line.split("serving on ")[1].split()[0]

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def server_log(self) -> str:
        path = self.root / "server.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the session; tests use their own study names."""
    root = tmp_path_factory.mktemp("server")
    srv = ServerProcess(root, f"sqlite:///{root / 'optunapi.db'}")
    srv.start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.server_log(), srv.server_log()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.url) as c:
        yield c
