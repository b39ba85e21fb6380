"""Regrets, and the two verdicts: parallel within 10% of sequential, clearly better than random.

Regret is ``best value found - optimum``. A ratio of regrets is unstable near zero (1e-6 against
2e-6 is "twice as bad" but both are solved), so each problem states a tolerance: a regret below
it counts as the tolerance. Every problem's tolerance follows one rule, 0.1% of the objective's
typical gap (the median of ``f - optimum`` over uniformly random points; see ``problems``), so
the floor is not tuned to any result. With that floor:

* **within 10% of sequential**: the median (over seeds) floored final regret of the parallel
  mode is at most 1.10 times that of sequential TPE;
* **clearly better than random**: the parallel median is at most half the random median, and a
  one-sided Mann-Whitney U test says parallel's regrets are smaller with p <= 0.05.

Medians of 10 seeds are noisy, so each ratio comes with a bootstrap 90% interval (seeds of each
mode resampled independently): a ratio above 1.10 whose interval reaches below 1.10 is, on its
own, no evidence of a worse search; more seeds decide.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu

from .runs import Run

WITHIN = 1.10  # parallel / sequential, on median floored regret
BETTER_THAN_RANDOM = 0.5  # parallel / random, on median floored regret
P_VALUE = 0.05
CRITERION = (
    "regret = best found - optimum, floored at the problem's tolerance (0.1% of the median "
    "random-point gap f - optimum); "
    f"'within 10%': median(parallel) <= {WITHIN:.2f} x median(sequential); "
    f"'clearly better than random': median(parallel) <= {BETTER_THAN_RANDOM} x median(random) "
    f"and one-sided Mann-Whitney U p <= {P_VALUE}; medians over seeds, 90% bootstrap intervals"
)


def final_regrets(runs: Sequence[Run], optimum: float) -> list[float]:
    """Each run's final regret (not floored)."""
    return [min(r.values) - optimum for r in runs]


def curve(runs: Sequence[Run], optimum: float, floor: float) -> dict[str, list[float]]:
    """Median and quartiles over seeds of the best-so-far regret after each trial, at least
    ``floor`` (a log scale cannot show the zero regret of the run that set the optimum)."""
    rows = np.array([[max(v - optimum, floor) for v in r.best_so_far()] for r in runs])
    q25, q50, q75 = np.percentile(rows, [25, 50, 75], axis=0)
    return {"median": q50.tolist(), "q25": q25.tolist(), "q75": q75.tolist()}


@dataclass(frozen=True)
class Comparison:
    """A mode against sequential TPE and against random search, on one problem."""

    mode: str
    median: float
    raw_ratio: float
    ratio_to_sequential: float
    interval: tuple[float, float]
    within: bool
    ratio_to_random: float
    p_value: float
    better_than_random: bool

    def to_json(self) -> dict[str, object]:
        """A plain dict for the results file."""
        return {
            "mode": self.mode, "median_regret": self.median,
            "ratio_to_sequential": self.ratio_to_sequential,
            "raw_ratio_to_sequential": self.raw_ratio,
            "ratio_interval_90": list(self.interval), "within_10_percent": self.within,
            "ratio_to_random": self.ratio_to_random, "p_value_vs_random": self.p_value,
            "clearly_better_than_random": self.better_than_random,
        }  # fmt: skip


def compare(
    mode: str,
    raw: Sequence[float],
    raw_sequential: Sequence[float],
    raw_random: Sequence[float],
    tolerance: float,
) -> Comparison:
    """Judge one mode's final regrets against the two baselines' (same problem, same seeds).

    ``raw_ratio`` is the ratio of unfloored medians, for the record: with regrets far above
    the tolerance it equals the judged ratio; near it, it is the unstable number the floor
    avoids.
    """
    regrets, sequential, random = ([max(r, tolerance) for r in rs]
                                   for rs in (raw, raw_sequential, raw_random))  # fmt: skip
    median = statistics.median(regrets)
    ratio = median / statistics.median(sequential)
    ratio_random = median / statistics.median(random)
    p_value = _p_less(regrets, random)
    seq_raw = statistics.median(raw_sequential)
    return Comparison(
        mode=mode,
        median=median,
        raw_ratio=statistics.median(raw) / seq_raw if seq_raw > 0 else math.inf,
        ratio_to_sequential=ratio,
        interval=_bootstrap_ratio(regrets, sequential),
        within=ratio <= WITHIN,
        ratio_to_random=ratio_random,
        p_value=p_value,
        better_than_random=ratio_random <= BETTER_THAN_RANDOM and p_value <= P_VALUE,
    )


def _p_less(a: Sequence[float], b: Sequence[float]) -> float:
    """One-sided Mann-Whitney U: the probability of regrets this much smaller by chance."""
    if len(set(a) | set(b)) == 1:
        return 1.0  # all equal (every run solved): no evidence either way
    return float(mannwhitneyu(a, b, alternative="less").pvalue)


def _bootstrap_ratio(
    a: Sequence[float], b: Sequence[float], resamples: int = 2000
) -> tuple[float, float]:
    """A 90% percentile interval of median(a) / median(b), seeds resampled with replacement."""
    rng = np.random.default_rng(0)
    xa, xb = np.asarray(a), np.asarray(b)
    ma = np.median(rng.choice(xa, (resamples, len(xa))), axis=1)
    mb = np.median(rng.choice(xb, (resamples, len(xb))), axis=1)
    low, high = np.percentile(ma / mb, [5, 95])
    return (float(low), float(high)) if math.isfinite(low) else (math.nan, math.nan)
