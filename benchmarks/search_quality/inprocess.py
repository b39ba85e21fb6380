"""The baselines, in process and in memory: sequential TPE, random search, and (as a diagnostic)
TPE asked in batches with the same schedule as the parallel workers, without any server."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import optuna
from workloads import suggest  # benchmarks/ is on the path: quality.py runs from there

from .problems import Problem
from .runs import Run

optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_sequential(problem: Problem, seed: int, trials: int) -> Run:
    """Optuna's TPE with its defaults, one trial at a time: the reference to match."""
    return _optimize("sequential", optuna.samplers.TPESampler(seed=seed), problem, seed, trials)


def run_random(problem: Problem, seed: int, trials: int) -> Run:
    """Random search: the floor to beat clearly."""
    return _optimize("random", optuna.samplers.RandomSampler(seed=seed), problem, seed, trials)


def run_batch(
    problem: Problem, seed: int, trials: int, workers: int, options: dict[str, Any]
) -> Run:
    """TPE in process with ``workers`` trials in flight, finished in the order they were asked:
    what the parallel mode does, minus HTTP and the server. The gap between this and the
    parallel mode is the server's; the gap between this and sequential is parallelism's."""
    sampler = optuna.samplers.TPESampler(seed=seed, **options)
    study = optuna.create_study(sampler=sampler)
    start = time.perf_counter()
    in_flight: deque[tuple[optuna.Trial, float]] = deque()
    for _ in range(trials):
        if len(in_flight) == workers:
            study.tell(*in_flight.popleft())
        trial = study.ask()
        in_flight.append((trial, problem.objective(suggest(trial, problem.space))))
    while in_flight:
        study.tell(*in_flight.popleft())
    values = [float(t.value) for t in study.trials if t.value is not None]
    return Run("batch", seed, values, time.perf_counter() - start)


def _optimize(
    mode: str, sampler: optuna.samplers.BaseSampler, problem: Problem, seed: int, trials: int
) -> Run:
    study = optuna.create_study(sampler=sampler)
    start = time.perf_counter()
    study.optimize(lambda t: problem.objective(suggest(t, problem.space)), n_trials=trials)
    values = [float(t.value) for t in study.trials if t.value is not None]
    return Run(mode, seed, values, time.perf_counter() - start)
