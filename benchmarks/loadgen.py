"""The load generator: a pool of client processes, forked once, that run one measurement at a time.

Forking the pool once, before the parent starts any thread, keeps process start-up and the
imports of Optuna out of every run (and off the cores while another system is measured). Each
run hands every process its share of the clients, waits until all of them are connected and
warmed up, then opens one window on the machine-wide monotonic clock for all of them.

HTTP clients are spread over ``http_procs`` processes (one is enough to saturate the floor on 2
cores: ``compare.py`` prints the check); Python clients over up to ``size`` processes, as
threads sharing a ``Study`` beyond that, since each process runs Optuna's sampler itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from benchmarks.drivers import ClientLog, Driver, HttpDriver, Window
from benchmarks.http_clients import HttpLoad
from benchmarks.python_clients import PythonLoad

SETUP_TIMEOUT = 600.0
"""Seconds the clients may take to connect and warm up (loading a 10k-trial study included)."""


@dataclass
class RunOutcome:
    """What one run measured, or why it could not."""

    log: ClientLog
    seconds: float
    server_cpu: float | None
    """CPU seconds the server process used from the clients' start until the last one ended."""
    failure: str | None = None
    setup: float = 0.0
    """Seconds the clients took to connect, load the study and warm up."""
    elapsed: float = 0.0
    """Seconds from the clients' start until the last one ended (ramp and grace included)."""


def _worker(conn: Connection) -> None:
    """A client process: run jobs from the parent until told to exit."""
    while True:
        message = conn.recv()
        if message[0] == "exit":
            return
        _, driver, share, warmup = message
        try:
            load: HttpLoad | PythonLoad
            if isinstance(driver, HttpDriver):
                load = HttpLoad(driver, len(share))
            else:
                load = PythonLoad(driver, share)
            load.warm_up(warmup)
        except Exception:
            conn.send(("failed", traceback.format_exc()))
            continue
        conn.send(("ready",))
        message = conn.recv()
        # An aborted run still releases the clients, with a window that is already over.
        window = message[1] if message[0] == "go" else Window(0.0, 0.0, 0.0)
        log = load.measure(window)
        # A thread still inside Optuna would load the next run: the parent replaces the process.
        stuck = isinstance(load, PythonLoad) and load.stuck()
        if message[0] == "go":
            conn.send(("result", log, stuck))
        if stuck:
            return


class ClientPool:
    """Client processes, reused by every run."""

    def __init__(self, size: int, http_procs: int) -> None:
        """Fork ``size`` client processes; call it before the parent starts any thread.

        Args:
            size: Processes for Python clients (more clients than this share them as threads).
            http_procs: Processes for the HTTP clients of a run (at most ``size``).
        """
        self.size, self.http_procs = size, min(http_procs, size)
        self._ctx = mp.get_context("fork")
        self._procs: list[Any] = []
        self._conns: list[Connection] = []
        for _ in range(size):
            self._spawn()

    def _spawn(self, index: int | None = None) -> None:
        # Forking while another thread holds a lock would copy the lock held forever.
        assert threading.active_count() == 1, "fork the client pool before starting threads"
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker, args=(child,), daemon=True)
        proc.start()
        child.close()
        if index is None:
            self._procs.append(proc)
            self._conns.append(parent)
        else:
            self._procs[index], self._conns[index] = proc, parent

    def _respawn(self, index: int) -> None:
        self._procs[index].kill()
        self._procs[index].join()
        self._conns[index].close()
        self._spawn(index)

    def close(self) -> None:
        """Stop every client process."""
        for conn in self._conns:
            with contextlib.suppress(OSError):  # a process that died has nothing to stop
                conn.send(("exit",))
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()

    def run(
        self,
        driver: Driver,
        clients: int,
        seconds: float,
        *,
        warmup: int = 1,
        ramp: float = 0.5,
        grace: float = 30.0,
        seed: int = 0,
        server_pid: int | None = None,
    ) -> RunOutcome:
        """Measure ``clients`` clients of one system for ``seconds``.

        Args:
            driver: The system and how to talk to it.
            clients: Concurrent clients, each looping ask -> tell.
            seconds: The measured window.
            warmup: Untimed ask/tell cycles per client process before the clients start.
            ramp: Seconds the clients run before the window opens.
            grace: How long a cycle in flight at the window's end may still take.
            seed: Python clients seed their samplers with ``seed + client index``.
            server_pid: A process whose CPU time during the window is reported.
        """
        procs = self.http_procs if isinstance(driver, HttpDriver) else self.size
        shares = [list(range(seed + i, seed + clients, procs)) for i in range(procs)]
        busy = [i for i, share in enumerate(shares) if share]
        sent = time.monotonic()
        for i in busy:
            self._conns[i].send(("job", driver, shares[i], warmup))
        failure = self._await_ready(busy)
        setup = time.monotonic() - sent
        if failure is not None:
            return RunOutcome(ClientLog(), 0.0, None, failure, setup)
        cpu_before = _cpu_seconds(server_pid)
        go = time.monotonic()
        window = Window(go + ramp, go + ramp + seconds, grace)
        for i in busy:
            self._conns[i].send(("go", window))
        log = ClientLog()
        missing = self._collect(busy, log, deadline=window.end + grace + 30.0)
        cpu_after = _cpu_seconds(server_pid)
        elapsed = time.monotonic() - go
        server_cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        failure = f"{missing} client processes did not report" if missing else None
        return RunOutcome(log, seconds, server_cpu, failure, setup, elapsed)

    def _await_ready(self, busy: list[int]) -> str | None:
        """Wait until every busy process is warmed up; on a failure, release them all."""
        pending, ready, failures = set(busy), [], []
        deadline = time.monotonic() + SETUP_TIMEOUT
        while pending and (left := deadline - time.monotonic()) > 0:
            for i in self._wait(pending, left):
                pending.discard(i)
                message = self._conns[i].recv()
                if message[0] == "ready":
                    ready.append(i)
                else:
                    failures.append(message[1])
        if not pending and not failures:
            return None
        for i in ready:
            self._conns[i].send(("abort",))
        for i in pending:
            self._respawn(i)
        return str(failures[0]) if failures else f"clients not ready after {SETUP_TIMEOUT:.0f} s"

    def _wait(self, which: set[int], timeout: float) -> list[int]:
        """The processes among ``which`` that have sent something, within ``timeout`` seconds."""
        ready = wait([self._conns[i] for i in which], timeout=timeout)
        return [i for i in which if self._conns[i] in ready]

    def _collect(self, busy: list[int], log: ClientLog, deadline: float) -> int:
        """Merge the busy processes' logs into ``log``; respawn those that do not answer."""
        pending, missing = set(busy), 0
        while pending and (left := deadline - time.monotonic()) > 0:
            for i in self._wait(pending, left):
                pending.discard(i)
                try:
                    _, part, stuck = self._conns[i].recv()
                except EOFError:  # the process died: count it as missing
                    self._respawn(i)
                    missing += 1
                    continue
                log.merge(part)
                if stuck:
                    self._respawn(i)
        for i in pending:
            self._respawn(i)
        return missing + len(pending)


def _cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU seconds of a process so far, or None when it cannot be read."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
