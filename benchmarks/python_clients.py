"""Python clients in one load-generator process: the trainer's own Optuna code, in threads.

Python-client systems (Optuna on a shared storage, or through its gRPC proxy) run
``study.ask()`` + suggestions and ``study.tell``, one thread per client; the threads of a
process share one ``Study``, as ``study.optimize(n_jobs=...)`` does, so that a process loads a
large study once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from benchmarks.drivers import ClientLog, Progress, PythonDriver, Window
from benchmarks.workloads import STUDY, make_sampler, objective, suggest


class PythonLoad:
    """Clients of one Python-API system in one process: threads sharing one ``Study``."""

    def __init__(self, driver: PythonDriver, seeds: list[int]) -> None:
        """Prepare one client per seed; the first seeds the process's sampler."""
        self._driver = driver
        self._clients = len(seeds)
        self._seed = seeds[0]
        # A study in memory is the process's own: its numbers are told apart by process, so
        # that only a number handed out twice within one study counts as a wrong id.
        self._number_base = (self._seed + 1) << 32 if driver.storage == "memory" else 0
        self._study: Any = None
        self._warm_numbers: list[int] = []
        self._threads: list[threading.Thread] = []

    def warm_up(self, cycles: int) -> None:
        """Open the study and run ``cycles`` untimed cycles: the first loads Optuna's caches."""
        self._study = _load_study(self._driver, self._seed)
        log = ClientLog()
        for _ in range(cycles):
            self._cycle(log, None, Progress())
        if log.errors:
            raise RuntimeError(f"warm-up failed: {dict(log.errors)}")
        self._warm_numbers = log.numbers

    def measure(self, window: Window) -> ClientLog:
        """Run the clients' threads through the window and return their merged log."""
        logs = [ClientLog() for _ in range(self._clients)]
        progress = [Progress() for _ in range(self._clients)]
        cpu = time.process_time()
        self._threads = [
            threading.Thread(target=self._loop, args=(log, window, p), daemon=True)
            for log, p in zip(logs, progress, strict=True)
        ]
        for thread in self._threads:
            thread.start()
        for thread in self._threads:
            thread.join(timeout=max(0.0, window.end + window.grace - time.monotonic()))
        total = ClientLog(numbers=list(self._warm_numbers))
        for log in logs:
            total.merge(log)
        total.rates = [p.rate() for p in progress]
        if stuck := sum(t.is_alive() for t in self._threads):
            total.errors["timeout"] += stuck
        total.cpu = time.process_time() - cpu
        return total

    def stuck(self) -> bool:
        """Whether a client thread outlived the grace period: the process must not be reused."""
        return any(t.is_alive() for t in self._threads)

    def _loop(self, log: ClientLog, window: Window, progress: Progress) -> None:
        while time.monotonic() < window.end:
            self._cycle(log, window, progress)

    def _cycle(self, log: ClientLog, window: Window | None, progress: Progress) -> None:
        space, study = self._driver.space, self._study

        def counts(started: float) -> bool:  # warm-up errors count too: they fail the warm-up
            return window is None or window.overlaps(started, time.monotonic())

        started = time.monotonic()
        try:
            trial = study.ask()
            params = suggest(trial, space)
        except Exception as exc:
            if counts(started):
                log.errors[f"ask {type(exc).__name__}"] += 1
            return
        asked = time.monotonic()
        log.numbers.append(self._number_base + trial.number)
        try:
            frozen = study.tell(trial, objective(space, params))
        except Exception as exc:
            if counts(asked):
                log.errors[f"tell {type(exc).__name__}"] += 1
            return
        told = time.monotonic()
        if frozen.number != trial.number:
            log.wrong_tells += 1
        if window is None:
            return
        log.cycles += 1
        if window.overlaps(started, told):
            progress.add(started, told)
            log.asks.append(asked - started)
            log.tells.append(told - asked)
        if window.start <= told <= window.end:
            log.in_window += 1


def _load_study(driver: PythonDriver, seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage: Any = driver.storage
    sampler = make_sampler(driver.sampler, seed)
    if storage == "memory":
        return optuna.create_study(study_name=STUDY, sampler=sampler)
    if storage.startswith("grpc://"):
        import warnings

        from optuna.storages import GrpcStorageProxy

        host, _, port = storage.removeprefix("grpc://").rpartition(":")
        with warnings.catch_warnings():  # "GrpcStorageProxy is experimental"
            warnings.simplefilter("ignore")
            storage = GrpcStorageProxy(host=host, port=int(port))
    return optuna.load_study(study_name=STUDY, storage=storage, sampler=sampler)
