"""Trials per second: optunapi over HTTP against Optuna in process, in the same run.

    .venv/bin/python benchmarks/throughput.py [--seconds 10] [--clients 8]

Workload: the 6-parameter mixed space, random sampler, objective free. Variants, interleaved:
optunapi (a real `optunapi serve` on SQLite) with N client processes and with one; Optuna in
process on a SQLite file (the relational storage optunapi uses); Optuna in memory (no
durability: the ceiling). Prints trials/s, p50/p99 ask and tell latency, and ratios.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import optuna

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "layers": {"type": "int", "low": 1, "high": 8},
    "units": {"type": "int", "low": 16, "high": 512, "step": 16},
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "rmsprop"]},
    "activation": {"type": "categorical", "choices": ["relu", "tanh", "gelu"]},
}


def http_client(url: str, study: str, seconds: float, out: mp.Queue) -> None:
    asks, tells = [], []
    with httpx.Client(base_url=url, timeout=60) as http:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            number = http.post(f"/v1/studies/{study}/trials").json()["number"]
            t1 = time.perf_counter()
            http.post(f"/v1/studies/{study}/trials/{number}/tell", json={"value": t1 - t0})
            asks.append(t1 - t0)
            tells.append(time.perf_counter() - t1)
    out.put((asks, tells))


def run_optunapi(clients: int, seconds: float, root: Path) -> dict[str, float]:
    db = root / f"server-{clients}.db"
    server = subprocess.Popen(
        [sys.executable, "-m", "optunapi.cli", "serve", "--port", "0",
         "--storage", f"sqlite:///{db}", "--log-level", "warning"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split("serving on ")[1].split()[0]
        httpx.post(f"{url}/v1/studies", json={"name": "b", "space": SPACE, "sampler": "random"})
        out: mp.Queue = mp.Queue()
        procs = [
            mp.Process(target=http_client, args=(url, "b", seconds, out)) for _ in range(clients)
        ]
        start = time.perf_counter()
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait()
    asks = [a for r in results for a in r[0]]
    tells = [t for r in results for t in r[1]]
    return _summary(len(asks), elapsed, asks, tells)


def run_in_process(storage: str | None, seconds: float) -> dict[str, float]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler())
    asks, tells = [], []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        trial = study.ask()
        trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        trial.suggest_float("dropout", 0.0, 0.5)
        trial.suggest_int("layers", 1, 8)
        trial.suggest_int("units", 16, 512, step=16)
        trial.suggest_categorical("optimizer", ["sgd", "adam", "rmsprop"])
        trial.suggest_categorical("activation", ["relu", "tanh", "gelu"])
        t1 = time.perf_counter()
        study.tell(trial, t1 - t0)
        asks.append(t1 - t0)
        tells.append(time.perf_counter() - t1)
    return _summary(len(asks), time.perf_counter() - start, asks, tells)


def _summary(n: int, elapsed: float, asks: list[float], tells: list[float]) -> dict[str, float]:
    def pct(xs: list[float], q: int) -> float:
        return statistics.quantiles(xs, n=100)[q - 1] * 1000 if len(xs) > 1 else float("nan")

    return {
        "trials/s": n / elapsed,
        "ask p50 ms": pct(asks, 50), "ask p99 ms": pct(asks, 99),
        "tell p50 ms": pct(tells, 50), "tell p99 ms": pct(tells, 99),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = {
            f"optunapi, {args.clients} clients": run_optunapi(args.clients, args.seconds, root),
            "Optuna in process, SQLite": run_in_process(f"sqlite:///{root / 'inproc.db'}",
                                                        args.seconds),
            "optunapi, 1 client": run_optunapi(1, args.seconds, root),
            "Optuna in process, memory": run_in_process(None, args.seconds),
        }  # fmt: skip
    base = next(iter(rows.values()))["trials/s"]
    print(f"{'variant':32} {'trials/s':>9} {'ratio':>7} {'ask p50':>8} {'ask p99':>8} "
          f"{'tell p50':>9} {'tell p99':>9}  (ms)")  # fmt: skip
    for name, r in rows.items():
        print(f"{name:32} {r['trials/s']:9.1f} {r['trials/s'] / base:7.2f} "
              f"{r['ask p50 ms']:8.1f} {r['ask p99 ms']:8.1f} "
              f"{r['tell p50 ms']:9.1f} {r['tell p99 ms']:9.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
