"""What the benchmark asks of every system: search spaces, samplers, clients and study sizes.

A workload is one point of the issue's matrix: a space (2 or 6 parameters), a sampler (random or
TPE), a number of concurrent clients, each looping ask -> tell, and the number of finished trials
the study holds before the clock starts. Every system gets the same trials, the same objective
and the same sampler settings, so that their numbers differ only by how they serve them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Protocol

import optuna

STUDY = "bench"
"""The study's name in every system."""

Space = dict[str, dict[str, Any]]

SPACES: dict[str, Space] = {
    # The original optunapi's test case (a paraboloid), as in the field cases' paraboloid.yaml.
    "2-param": {
        "x": {"type": "float", "low": -10.0, "high": 10.0},
        "y": {"type": "float", "low": -10.0, "high": 10.0},
    },
    # The "6-parameter mixed space": log and linear floats, a stepped int, categoricals.
    "6-param": {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "layers": {"type": "int", "low": 1, "high": 8},
        "units": {"type": "int", "low": 16, "high": 512, "step": 16},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "rmsprop"]},
        "activation": {"type": "categorical", "choices": ["relu", "tanh", "gelu"]},
    },
}

SAMPLERS = ("random", "tpe")


@dataclass(frozen=True)
class Workload:
    """One cell of the matrix."""

    space: str
    sampler: str
    clients: int
    trials: int
    """Finished trials in the study before the measurement starts."""

    @property
    def label(self) -> str:
        """A short human name, e.g. ``6-param random, 8 clients, 10k trials``."""
        size = f"{self.trials // 1000}k" if self.trials >= 1000 else str(self.trials)
        clients = f"{self.clients} client{'s' if self.clients != 1 else ''}"
        return f"{self.space} {self.sampler}, {clients}, {size} trials"


def matrix(
    spaces: list[str], samplers: list[str], clients: list[int], trials: list[int]
) -> list[Workload]:
    """Every combination, ordered so that the cheap workloads run (and fail) first."""
    return [
        Workload(space, sampler, n, size)
        for size in trials
        for sampler in samplers
        for space in spaces
        for n in clients
    ]


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The sampler every Python-side system uses for ``name``.

    TPE runs with the constant liar, as optunapi's does, so that trials in flight count.
    """
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    raise ValueError(f"unknown sampler {name!r}")


class Suggester(Protocol):
    """The part of ``optuna.Trial`` that define-by-run suggestions use."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


def suggest(trial: Suggester, space: Space) -> dict[str, Any]:
    """Ask an Optuna trial for every parameter of ``space`` (what a Python trainer does)."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "float":
            params[name] = trial.suggest_float(
                name, spec["low"], spec["high"], step=spec.get("step"), log=spec.get("log", False)
            )
        elif kind == "int":
            params[name] = trial.suggest_int(
                name,
                spec["low"],
                spec["high"],
                step=spec.get("step", 1),
                log=spec.get("log", False),
            )
        else:
            params[name] = trial.suggest_categorical(name, spec["choices"])
    return params


def distributions(space: Space) -> dict[str, optuna.distributions.BaseDistribution]:
    """Optuna's distributions for ``space``, for trials written without a sampler."""
    result: dict[str, optuna.distributions.BaseDistribution] = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "float":
            result[name] = optuna.distributions.FloatDistribution(
                spec["low"], spec["high"], step=spec.get("step"), log=spec.get("log", False)
            )
        elif kind == "int":
            result[name] = optuna.distributions.IntDistribution(
                spec["low"], spec["high"], step=spec.get("step", 1), log=spec.get("log", False)
            )
        else:
            result[name] = optuna.distributions.CategoricalDistribution(spec["choices"])
    return result


def random_point(space: Space, rng: random.Random) -> dict[str, Any]:
    """A uniformly drawn point of ``space`` (log-uniform where ``log``), for prefilled trials."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            params[name] = rng.choice(spec["choices"])
            continue
        low, high = spec["low"], spec["high"]
        if spec["type"] == "int":
            step = spec.get("step", 1)
            params[name] = low + step * rng.randint(0, (high - low) // step)
        elif spec.get("log"):
            params[name] = math.exp(rng.uniform(math.log(low), math.log(high)))
        else:
            params[name] = rng.uniform(low, high)
    return params


def objective(space: Space, params: dict[str, Any]) -> float:
    """A cheap deterministic objective with one minimum, the same for every system.

    Each numeric parameter adds its squared distance from 30% of its (log) range; each
    categorical adds its choice's index over the number of choices.
    """
    total = 0.0
    for name, spec in space.items():
        value = params[name]
        if spec["type"] == "categorical":
            total += spec["choices"].index(value) / len(spec["choices"])
            continue
        low, high = float(spec["low"]), float(spec["high"])
        if spec.get("log"):
            value, low, high = math.log(value), math.log(low), math.log(high)
        total += ((value - low) / (high - low) - 0.3) ** 2
    return total
