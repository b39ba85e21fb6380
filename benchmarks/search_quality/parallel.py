"""The mode under test: parallel workers, each an ``optunapi.Client`` in its own thread, asking
a real server for params and telling it scores.

Every worker finishes its trials in the order they were asked, each once the next
``workers - 1`` asks have been answered: as if every training took the same time. So every ask
after the first ``workers`` finds exactly ``workers - 1`` trials running, whatever the speed of
the machine, the objective or the server. Free-running threads with an objective of
microseconds would rarely have more than one trial in flight, and would measure nothing.
"""

from __future__ import annotations

import statistics
import threading
import time
from datetime import datetime, timezone
from typing import Any

from optunapi import Client
from optunapi.schemas import TrialRead

from .problems import Problem
from .runs import Run


class _Turns:
    """Hands out the trial budget and tells each worker when it may tell."""

    def __init__(self, budget: int, workers: int) -> None:
        self._budget = budget
        self._workers = workers
        self._claimed = 0
        self._answered = 0
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    def claim(self) -> bool:
        """Take one trial of the budget; False once it is spent or another worker failed."""
        with self._cond:
            if self._claimed >= self._budget or self._error is not None:
                return False
            self._claimed += 1
            return True

    def answered(self) -> None:
        """Count an ask whose answer came back."""
        with self._cond:
            self._answered += 1
            self._cond.notify_all()

    def wait_turn(self, number: int) -> None:
        """Block until trial ``number`` (0-based, in a fresh study) may be told: once trials
        up to ``number + workers - 1`` were handed out, or every trial of the budget was.

        Raises:
            RuntimeError: another worker failed, so the awaited asks will never come.
        """
        due = min(self._budget, number + self._workers)
        with self._cond:
            self._cond.wait_for(lambda: self._answered >= due or self._error is not None)
            if self._error is not None:
                raise RuntimeError("another worker failed") from self._error

    def fail(self, error: BaseException) -> None:
        """Record a worker's failure and wake the others, so that they stop."""
        with self._cond:
            self._error = self._error or error
            self._cond.notify_all()

    @property
    def error(self) -> BaseException | None:
        """The first worker failure, if any."""
        return self._error


def run_parallel(
    url: str,
    study: str,
    problem: Problem,
    seed: int,
    trials: int,
    workers: int,
    options: dict[str, Any],
    mode: str = "parallel",
) -> Run:
    """Search ``problem`` with ``workers`` threads through the server at ``url``.

    The study is created with the server's TPE (``options`` added to its sampler definition)
    and must be new. After the search, every trial is read back from the server and checked:
    ``checks`` says how many the workers told, how many the server stored as complete with
    exactly the told value, and how many trials were in flight at each ask (from the server's
    timestamps).

    Raises:
        RuntimeError: a worker failed (its exception is the cause).
    """
    with Client(url) as client:
        created = client.create_study(
            study, problem.space, sampler={"type": "tpe", "seed": seed, **options}
        )
        if sum(created.counts.model_dump().values()) != 0:
            raise RuntimeError(f"study {study} is not new: trial numbers would not start at 0")
    turns = _Turns(trials, workers)
    told: dict[int, float] = {}
    ask_seconds: list[float] = []

    def work(name: str) -> None:
        try:
            with Client(url) as client:
                while turns.claim():
                    started = time.perf_counter()
                    # Named, so that a retried ask (after a lost answer) gets the same trial.
                    trial = client.ask(study, worker=name)
                    ask_seconds.append(time.perf_counter() - started)
                    turns.answered()
                    value = problem.objective(trial.params)
                    turns.wait_turn(trial.number)
                    client.tell(study, trial.number, value)
                    told[trial.number] = value
        except BaseException as exc:
            turns.fail(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(workers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if turns.error is not None:
        raise RuntimeError(f"a worker of {study} failed: {turns.error!r}") from turns.error
    with Client(url) as client:
        stored = client.trials(study)
    values = [t.value for t in stored if t.state == "complete" and t.value is not None]
    checks = {
        "study": study,
        "sampler": {"type": "tpe", "seed": seed, **options},
        "workers": workers,
        "told": len(told),
        "stored": len(stored),
        "stored_complete": len(values),
        "stored_equals_told": len(stored) == len(told)
        and all(t.state == "complete" and t.value == told.get(t.number) for t in stored),
        "ask_ms_median": 1000 * statistics.median(ask_seconds) if ask_seconds else None,
        **_in_flight(stored, workers),
    }
    return Run(mode, seed, values, seconds, checks)


def _in_flight(trials: list[TrialRead], workers: int) -> dict[str, Any]:
    """How many other trials were running when each trial was asked, by the server's clock."""
    never = datetime.max.replace(tzinfo=timezone.utc)  # still running when read back
    spans = [
        (t.datetime_start, t.datetime_complete or never)
        for t in trials
        if t.datetime_start is not None
    ]
    counts = [
        sum(1 for j, (s, c) in enumerate(spans) if j != i and s <= start < c)
        for i, (start, _) in enumerate(spans)
    ]
    steady = counts[workers:]  # the first asks find the study filling up
    return {
        "in_flight_mean": statistics.fmean(steady) if steady else None,
        "in_flight_max": max(counts, default=0),
        "asks_with_all_others_running": sum(1 for c in steady if c == workers - 1),
        "steady_asks": len(steady),
    }
