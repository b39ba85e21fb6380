"""The benchmark's objectives: each a search space (in the API's form), a function to minimise,
its optimum and the tolerance below which a regret counts as solved.

Every space is written once, as ``POST /v1/studies`` takes it; the in-process modes sample the
very same space through ``suggest`` so that the three modes search identical domains.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

Params = Mapping[str, Any]


@dataclass(frozen=True)
class Problem:
    """One objective to minimise.

    Attributes:
        name: Short name, used in study names, plot files and tables.
        title: What a person reads in a plot title.
        space: The search space as ``POST /v1/studies`` takes it (``params`` form).
        objective: Params (as the server hands them out) to the value to minimise.
        optimum: The known global minimum, or for a real task a documented reference (see
            ``reference_note``); the benchmark uses ``min(optimum, best value seen)``.
        tolerance: Regrets below this count as this much: the problem is solved to the
            tolerance, and ratios of tiny regrets (noise of the last digits) are not compared.
            One rule for every problem: 0.1% of the objective's typical gap, the median over
            uniformly random points of ``f - optimum`` (20,000 points; 400 for the real task).
        reference_note: How ``optimum`` was obtained, when it is not known in closed form.
    """

    name: str
    title: str
    space: dict[str, dict[str, Any]]
    objective: Callable[[Params], float]
    optimum: float
    tolerance: float
    reference_note: str = ""


# -- Branin ------------------------------------------------------------------------------------


def branin(p: Params) -> float:
    """Branin-Hoo on [-5, 10] x [0, 15]; three global minima of 0.397887."""
    x1, x2 = float(p["x1"]), float(p["x2"])
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


# -- Hartmann-6 --------------------------------------------------------------------------------

_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(p: Params) -> float:
    """Hartmann-6 on [0, 1]^6; global minimum -3.32237 near (0.2017, 0.1500, 0.4769, 0.2753,
    0.3117, 0.6573)."""
    x = np.array([p[f"x{i}"] for i in range(1, 7)])
    return float(-_H6_ALPHA @ np.exp(-(_H6_A * (x - _H6_P) ** 2).sum(axis=1)))


# -- a 10-dimensional mixed space --------------------------------------------------------------

# Each activation moves the optimum of (x1, x2) and adds an offset: the categorical interacts
# with the floats, and "silu" is a near-optimal decoy at another place.
_ACTIVATIONS = {"relu": (1.0, -2.0, 0.3), "tanh": (-3.0, 3.0, 1.0), "gelu": (2.0, 1.0, 0.0),
                "silu": (0.0, 0.0, 0.1)}  # fmt: skip


def mixed10(p: Params) -> float:
    """A synthetic training run's loss over 10 mixed parameters; minimum 0 at act=gelu, x1=2,
    x2=1, x3=0.5, x4=-0.5, lr=1e-2, width=32, dropout=0.15, layers=6, heads=4.

    Interactions, so that the space is not separable: (x1, x2) a correlated quadratic around a
    point that depends on ``act``; (x3, x4) a narrow diagonal valley; the best ``lr`` moves with
    ``width`` (as learning rates do with model width); the best ``heads`` with ``layers``.
    """
    a, b, offset = _ACTIVATIONS[p["act"]]
    u, v = float(p["x1"]) - a, float(p["x2"]) - b
    log_width = math.log2(p["width"])
    return float(
        u * u + v * v + u * v
        + 2.0 * (p["x3"] - p["x4"] - 1.0) ** 2 + 0.1 * (p["x3"] + p["x4"]) ** 2
        + (math.log10(p["lr"]) + 2.0 + 0.25 * (log_width - 5.0)) ** 2
        + 0.1 * (log_width - 5.0) ** 2
        + 4.0 * (p["dropout"] - 0.15) ** 2
        + 0.05 * (p["layers"] - 6) ** 2 + 0.2 * (p["heads"] - p["layers"] + 2) ** 2
        + offset
    )  # fmt: skip


# -- a real scikit-learn task ------------------------------------------------------------------

_KR_FOLDS = 5


@cache
def _diabetes() -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The diabetes data, standardised, and fixed folds: the objective is deterministic."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import KFold

    x, y = load_diabetes(return_X_y=True, scaled=False)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    folds = list(KFold(_KR_FOLDS, shuffle=True, random_state=0).split(x))
    return x, y, folds


def kernel_ridge_cv(p: Params) -> float:
    """5-fold cross-validated mean squared error of kernel ridge regression on scikit-learn's
    diabetes data (442 patients, 10 features), about 25 ms on one core."""
    from sklearn.kernel_ridge import KernelRidge

    x, y, folds = _diabetes()
    errors = []
    for train, test in folds:
        model = KernelRidge(
            alpha=p["alpha"], kernel=p["kernel"], gamma=p["gamma"], degree=p["degree"], coef0=1
        )
        model.fit(x[train], y[train])
        errors.append(float(np.mean((model.predict(x[test]) - y[test]) ** 2)))
    return float(np.mean(errors))


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem(
            "branin", "Branin (2 floats)",
            {"x1": {"type": "float", "low": -5.0, "high": 10.0},
             "x2": {"type": "float", "low": 0.0, "high": 15.0}},
            branin, optimum=0.397887, tolerance=0.035,  # typical gap 34.8
        ),
        Problem(
            "hartmann6", "Hartmann-6 (6 floats)",
            {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(1, 7)},
            hartmann6, optimum=-3.32237, tolerance=0.0032,  # typical gap 3.22
        ),
        Problem(
            "mixed10", "10-d mixed space (floats, log, step, ints, categorical)",
            {"x1": {"type": "float", "low": -5.0, "high": 5.0},
             "x2": {"type": "float", "low": -5.0, "high": 5.0},
             "x3": {"type": "float", "low": -3.0, "high": 3.0},
             "x4": {"type": "float", "low": -3.0, "high": 3.0},
             "lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
             "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.05},
             "width": {"type": "int", "low": 8, "high": 1024, "log": True},
             "layers": {"type": "int", "low": 1, "high": 12},
             "heads": {"type": "int", "low": 1, "high": 16},
             "act": {"type": "categorical", "choices": list(_ACTIVATIONS)}},
            mixed10, optimum=0.0, tolerance=0.045,  # typical gap 45.4
        ),
        Problem(
            "kernel_ridge", "scikit-learn: kernel ridge on diabetes, 5-fold CV MSE",
            {"alpha": {"type": "float", "low": 1e-4, "high": 10.0, "log": True},
             "gamma": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
             "kernel": {"type": "categorical", "choices": ["rbf", "laplacian", "polynomial"]},
             "degree": {"type": "int", "low": 2, "high": 4}},
            kernel_ridge_cv, optimum=2888.134575, tolerance=0.51,  # typical gap 513
            reference_note=(
                "the minimum over the box, found by a bounded 1-d search of gamma at "
                "alpha=1e-4 (the best alpha is at its lower bound) for each kernel and degree: "
                "polynomial, degree 2, gamma=2.664e-4 (rbf 2888.329, degree 3 2888.210)"
            ),
        ),
    )
}  # fmt: skip
