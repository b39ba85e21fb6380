"""TPE: the server's ask against Optuna's own, in process on in-memory storage, in one run.

    .venv/bin/python benchmarks/tpe_ask.py [--sizes 1000 5000] [--asks 20]

For each study size, two studies hold the same finished trials of the 6-parameter space: one in
the server (its services over a SQLite file: what a request runs, less HTTP), one in Optuna's
``InMemoryStorage``. Each is then asked ``--asks`` times, interleaved, with the same TPE sampler
and seed, and each ask told at once. Prints the median ask time of both and their ratio (target:
at most 1.1).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import SPACE, services


def distributions() -> dict[str, optuna.distributions.BaseDistribution]:
    """The 6-parameter space as Optuna distributions."""
    from optunapi.server.services.sampling import distribution
    from optunapi.space import build_definition

    return {p.name: distribution(p) for p in build_definition(SPACE).space.params}


def history(n: int, seed: int) -> list[dict[str, object]]:
    """``n`` random points of the space with a value each."""
    rng = random.Random(seed)
    points = []
    for _ in range(n):
        point: dict[str, object] = {
            "lr": 10 ** rng.uniform(-5, -1),
            "dropout": rng.uniform(0, 0.5),
            "layers": rng.randint(1, 8),
            "units": 16 * rng.randint(1, 32),
            "optimizer": rng.choice(["sgd", "adam", "rmsprop"]),
            "activation": rng.choice(["relu", "tanh", "gelu"]),
        }
        point["value"] = float(point["dropout"]) + float(point["lr"]) * 10  # type: ignore[arg-type]
        points.append(point)
    return points


def compare(size: int, asks: int, root: Path) -> tuple[float, float]:
    """Median seconds per ask: (server, Optuna in memory)."""
    from optunapi.schemas import TrialEnqueue, TrialTell
    from optunapi.server.storage import close
    from optunapi.space import build_definition

    points = history(size, seed=size)
    storage, studies, trials = services(root / f"tpe-{size}.db")
    studies.create("tpe", build_definition(SPACE, sampler={"type": "tpe", "seed": 1}))
    for p in points:
        params = {k: v for k, v in p.items() if k != "value"}
        trials.enqueue("tpe", TrialEnqueue(params=params, value=p["value"]))

    dists = distributions()
    # The server runs TPE with constant liar by default: the same here.
    sampler = optuna.samplers.TPESampler(seed=1, constant_liar=True)
    study = optuna.create_study(sampler=sampler)
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={k: v for k, v in p.items() if k != "value"},
                distributions=dists,
                value=float(p["value"]),  # type: ignore[arg-type]
            )
            for p in points
        ]
    )
    served, local = [], []
    told = TrialTell(value=1.0)
    for _ in range(asks):
        t0 = time.perf_counter()
        trial = trials.ask("tpe").trial
        served.append(time.perf_counter() - t0)
        trials.tell("tpe", trial.number, told)
        t0 = time.perf_counter()
        optuna_trial = study.ask(dists)
        local.append(time.perf_counter() - t0)
        study.tell(optuna_trial, 1.0)
    close(storage)
    return statistics.median(served), statistics.median(local)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--asks", type=int, default=20)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print("| trials | server ask (ms) | Optuna in memory (ms) | ratio |")
    print("|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as root:
        for size in args.sizes:
            served, local = compare(size, args.asks, Path(root))
            print(f"| {size} | {served * 1e3:.1f} | {local * 1e3:.1f} | {served / local:.2f} |")


if __name__ == "__main__":
    main()
