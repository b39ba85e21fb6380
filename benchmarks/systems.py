"""The systems under comparison: how each one is started on a fresh copy of its study, and driven.

A run goes ``prepare`` (copy the prefilled file), ``launch`` (start the process), ``ready``
(read its URL, create the study where needed), then the load generator uses ``driver()``, then
``stop``. Launching is split from waiting so that a round starts every server at once.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

import yaml

from benchmarks.drivers import Driver, HttpDriver, PythonDriver
from benchmarks.templates import Templates, copy_database, optunapi_command, study_body
from benchmarks.wire import Connection
from benchmarks.workloads import SPACES, STUDY, Workload

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 120.0
"""Seconds a server may take to print its URL (imports on a busy 2-core machine included)."""
TRACEBACK = "Traceback (most recent call last)"


class System:
    """One system under test; subclasses say what to start and how to drive it."""

    name = ""
    description = ""
    warmup_cycles: int | None = None
    """Untimed cycles before the clients start; None takes the harness's ``--warmup``."""

    def __init__(self) -> None:
        """Nothing runs until ``launch``."""
        self.workload: Workload | None = None
        self.run_dir = Path()
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self._log: IO[str] | None = None

    def skip_reason(self, workload: Workload) -> str | None:
        """Why this system sits out ``workload``, or None when it runs it."""
        return None

    def clients_cap(self, workload: Workload) -> tuple[int, str] | None:
        """Fewer clients than the workload's, and why, when running them all would take minutes."""
        return None

    def prepare(self, workload: Workload, run_dir: Path, templates: Templates) -> None:
        """Put a fresh copy of the study's starting state in ``run_dir``."""
        self.workload, self.run_dir = workload, run_dir
        run_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str] | None:
        """The server's command line, or None when the system has no server."""
        return None

    def launch(self) -> None:
        """Start the server, if any, without waiting for it."""
        command = self.command()
        if command is None:
            return
        self._log = open(self.run_dir / f"{self.name}.log", "w")  # noqa: SIM115 - closed in stop
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env, cwd=self.run_dir
        )

    def ready(self) -> None:
        """Wait for the server's ``serving on URL`` line.

        Raises:
            RuntimeError: The server exited instead; its log says why.
        """
        if self.proc is None:
            return
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:  # readline alone would wait forever on a hang
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            waited = sel.select(timeout=START_TIMEOUT)
        line = self.proc.stdout.readline() if waited else "(nothing)"  # once the socket listens
        if "serving on " not in line:
            self.stop()
            log = (self.run_dir / f"{self.name}.log").read_text()[-2000:]
            raise RuntimeError(f"{self.name} did not start: {line!r}\n{log}")
        self.url = line.split("serving on ")[1].split()[0]

    def driver(self) -> Driver:
        """How the load generator talks to this system."""
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """The server's process id, whose CPU time is reported."""
        return self.proc.pid if self.proc is not None else None

    def stop(self) -> None:
        """Stop the server and wait for it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def server_errors(self) -> list[str]:
        """Tracebacks the server logged (read after ``stop``), each with what follows it."""
        path = self.run_dir / f"{self.name}.log"
        text = path.read_text() if path.exists() else ""
        return [TRACEBACK + part for part in text.split(TRACEBACK)[1:]]

    @property
    def _w(self) -> Workload:
        assert self.workload is not None, "prepare() first"
        return self.workload


class Optunapi(System):
    """``optunapi serve`` on SQLite, the v1 routes."""

    name = "optunapi"
    description = "`optunapi serve` on a SQLite file, v1 ask and tell"

    def prepare(self, workload: Workload, run_dir: Path, templates: Templates) -> None:
        """Copy the prefilled optunapi study, if the workload has trials."""
        super().prepare(workload, run_dir, templates)
        self.db = run_dir / "optunapi.db"
        if workload.trials:
            template = templates.optunapi(workload.space, workload.sampler, workload.trials)
            copy_database(template, self.db)

    def command(self) -> list[str]:
        """``optunapi serve --port 0`` on the run's file."""
        (self.run_dir / "config").mkdir(exist_ok=True)
        return optunapi_command(self.db, self.run_dir / "config")

    def ready(self) -> None:
        """Wait for the server, then create the study (200 when the copy already holds it)."""
        super().ready()
        body = study_body(self._w.space, self._w.sampler)
        status, answer = Connection(self.url).request("POST", "/v1/studies", body)
        if status not in (200, 201):
            raise RuntimeError(f"optunapi: creating the study answered {status}: {answer[:300]!r}")
        complete = json.loads(answer)["counts"]["complete"]
        if complete != self._w.trials:  # the copy of the prefilled file lost something
            raise RuntimeError(f"optunapi: the study holds {complete} trials, not {self._w.trials}")

    def driver(self) -> Driver:
        """The v1 routes."""
        return HttpDriver(self.url, "v1", SPACES[self._w.space])


class Floor(System):
    """The trivial FastAPI endpoint (``peers/floor.py``)."""

    name = "floor"
    description = "FastAPI under uvicorn answering ask and tell with constants: the HTTP floor"

    def skip_reason(self, workload: Workload) -> str | None:
        """It keeps no study: a prefilled one would change nothing."""
        if workload.trials:
            return "keeps no study: its figures are those of the same clients at 0 trials"
        return None

    def command(self) -> list[str]:
        """``python -m benchmarks.peers.floor``."""
        return [sys.executable, "-m", "benchmarks.peers.floor"]

    def driver(self) -> Driver:
        """v1-shaped routes with placeholder params (hence no objective)."""
        return HttpDriver(self.url, "v1", {})


class Original(System):
    """The original optunapi's design (``peers/original.py``), the legacy routes."""

    name = "original"
    description = (
        "the original optunapi's design: legacy GET routes, optuna.load_study from SQLite on"
        " every request, one request at a time"
    )
    # It keeps nothing between requests, so there is nothing to warm; at 10k trials a warm-up
    # cycle would cost seconds.
    warmup_cycles = 0

    def skip_reason(self, workload: Workload) -> str | None:
        """It serves one request at a time: more clients only queue longer."""
        if workload.clients > 8:
            return "serves one request at a time (async routes): more clients only queue longer"
        return None

    def clients_cap(self, workload: Workload) -> tuple[int, str] | None:
        """With a large study each request takes seconds, one at a time: one client says it all."""
        if workload.trials >= 1000 and workload.clients > 1:
            return 1, "each request reloads every trial: seconds per request, served one at a time"
        return None

    def prepare(self, workload: Workload, run_dir: Path, templates: Templates) -> None:
        """Copy the Optuna study and write ``bench.yaml`` in the original's format."""
        super().prepare(workload, run_dir, templates)
        self.db = run_dir / "original.db"
        copy_database(templates.rdb(workload.space, workload.trials), self.db)
        config = run_dir / "config"
        config.mkdir(exist_ok=True)
        space = {name: {"name": name, **spec} for name, spec in SPACES[workload.space].items()}
        # safe_dump writes 1e-5 as 1.0e-05: YAML 1.1 (PyYAML) reads "1e-05" as a string.
        (config / f"{STUDY}.yaml").write_text(yaml.safe_dump(space))

    def command(self) -> list[str]:
        """``python -m benchmarks.peers.original`` on the run's file."""
        return [
            sys.executable, "-m", "benchmarks.peers.original", "--storage", f"sqlite:///{self.db}",
            "--config-dir", str(self.run_dir / "config"), "--sampler", self._w.sampler,
        ]  # fmt: skip

    def driver(self) -> Driver:
        """The legacy routes."""
        return HttpDriver(self.url, "legacy", SPACES[self._w.space])


class GrpcProxy(System):
    """Optuna's gRPC storage proxy (``peers/grpc_proxy.py``), ``GrpcStorageProxy`` clients."""

    def __init__(self, backend: str) -> None:
        """``backend`` is ``sqlite`` (RDB storage) or ``journal`` (``JournalFileBackend``)."""
        super().__init__()
        self.backend = backend
        self.name = f"grpc-{backend}"
        store = "SQLite (get_storage)" if backend == "sqlite" else "a JournalFileBackend file"
        self.description = (
            f"Optuna's gRPC storage proxy on {store}; clients: GrpcStorageProxy, study.ask/tell"
        )

    def prepare(self, workload: Workload, run_dir: Path, templates: Templates) -> None:
        """Copy the Optuna study in the backend's format."""
        super().prepare(workload, run_dir, templates)
        if self.backend == "sqlite":
            self.path = run_dir / "grpc.db"
            copy_database(templates.rdb(workload.space, workload.trials), self.path)
        else:
            self.path = run_dir / "grpc.journal"
            copy_database(templates.journal(workload.space, workload.trials), self.path)

    def command(self) -> list[str]:
        """``python -m benchmarks.peers.grpc_proxy`` on the run's file."""
        flag = (
            ["--storage", f"sqlite:///{self.path}"]
            if self.backend == "sqlite"
            else ["--journal", str(self.path)]
        )
        return [sys.executable, "-m", "benchmarks.peers.grpc_proxy", *flag]

    def driver(self) -> Driver:
        """Python clients through the proxy."""
        return PythonDriver(self.url, self._w.sampler, SPACES[self._w.space])


class SharedSQLite(System):
    """Trainer processes that share one SQLite file through ``optuna.load_study``."""

    name = "sqlite-shared"
    description = "clients running study.ask/tell on one SQLite file (optuna.load_study)"

    def prepare(self, workload: Workload, run_dir: Path, templates: Templates) -> None:
        """Copy the Optuna study."""
        super().prepare(workload, run_dir, templates)
        self.db = run_dir / "shared.db"
        copy_database(templates.rdb(workload.space, workload.trials), self.db)

    def driver(self) -> Driver:
        """Python clients on the file itself."""
        return PythonDriver(f"sqlite:///{self.db}", self._w.sampler, SPACES[self._w.space])


class InMemory(System):
    """Optuna in each client process, in memory: no server, no durability, no shared study.

    Not a peer (each process has a study of its own): the ceiling of Optuna's ask and tell on
    this machine, as the issue quotes it. Opt-in: ``--systems optunapi,optuna-memory``.
    """

    name = "optuna-memory"
    description = "Optuna in process, in memory (a study per client process): the ceiling"

    def skip_reason(self, workload: Workload) -> str | None:
        """Its studies start empty."""
        return "in-memory studies start empty" if workload.trials else None

    def driver(self) -> Driver:
        """A study of the process's own."""
        return PythonDriver("memory", self._w.sampler, SPACES[self._w.space])


SYSTEMS: dict[str, Callable[[], System]] = {
    "optunapi": Optunapi,
    "floor": Floor,
    "original": Original,
    "grpc-sqlite": lambda: GrpcProxy("sqlite"),
    "grpc-journal": lambda: GrpcProxy("journal"),
    "sqlite-shared": SharedSQLite,
    "optuna-memory": InMemory,
}
"""Every system by name, optunapi first (the reference of every ratio); one instance per run."""

DEFAULT_SYSTEMS = [name for name in SYSTEMS if name != "optuna-memory"]
"""optunapi and the issue's four peers."""
