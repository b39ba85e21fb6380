"""Plots for the docs, from the JSON that ``compare.py --out`` writes.

    .venv/bin/python benchmarks/compare.py --sweep --out benchmarks/results/sweep.json
    .venv/bin/python benchmarks/plots.py benchmarks/results/sweep.json [--outdir docs/img]

Writes ``throughput-vs-clients.png`` (every system, 6-param random, empty study, by number of
clients) and ``ask-latency-vs-study-size.png`` (optunapi's ask p50 and p99, 6-param random,
8 clients, by trials in the study). Rows of the ``--sweep`` run are used when the files hold
them; otherwise the matrix's 6-param random rows, which have fewer points.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt

TARGET_TRIALS_PER_S = 1000
TARGET_ASK_P99_MS = 10
STYLE = {  # optunapi stands out; the floor is a bound, not a competitor
    "optunapi": {"color": "tab:blue", "linewidth": 2.5, "marker": "o"},
    "floor": {"color": "grey", "linestyle": "--", "marker": "."},
    "original": {"color": "tab:red", "marker": "s"},
    "grpc-sqlite": {"color": "tab:orange", "marker": "^"},
    "grpc-journal": {"color": "tab:green", "marker": "v"},
    "sqlite-shared": {"color": "tab:purple", "marker": "D"},
}


def load_summary(paths: list[Path]) -> list[dict[str, Any]]:
    """The summary rows of every file, in order."""
    rows: list[dict[str, Any]] = []
    for path in paths:
        rows += json.loads(path.read_text())["summary"]
    return rows


def _pick(rows: list[dict[str, Any]], sweep: str, **fields: Any) -> list[dict[str, Any]]:
    """Rows of ``sweep`` if any, else the matrix's, matching ``fields`` and measured."""
    for name in (sweep, "matrix"):
        chosen = [
            r
            for r in rows
            if r["sweep"] == name and r["rounds"] and all(r[k] == v for k, v in fields.items())
        ]
        if chosen:
            return chosen
    return []


def throughput_vs_clients(rows: list[dict[str, Any]], out: Path) -> bool:
    """Trials/s against clients, one line per system; False when there is nothing to plot."""
    rows = _pick(rows, "clients", space="6-param", sampler="random", study_trials=0)
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    for system in dict.fromkeys(r["system"] for r in rows):
        points = sorted((r["clients"], r["trials_per_s"]) for r in rows if r["system"] == system)
        points = [(x, y) for x, y in points if y is not None and not math.isnan(y) and y > 0]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, label=system, **STYLE.get(system, {}))  # type: ignore[arg-type]
    ax.axhline(TARGET_TRIALS_PER_S, color="tab:blue", linestyle=":", linewidth=1)
    ax.annotate(
        f"target {TARGET_TRIALS_PER_S:,} trials/s (8 clients)",
        (1, TARGET_TRIALS_PER_S),
        textcoords="offset points",
        xytext=(2, 4),
        fontsize=8,
        color="tab:blue",
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    clients = sorted({r["clients"] for r in rows})
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(clients))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FixedFormatter([str(c) for c in clients]))
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("concurrent clients (each: ask, tell, ask, ...)")
    ax.set_ylabel("trials per second")
    ax.set_title("Throughput, 6-parameter space, random sampler, empty study")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def ask_latency_vs_study_size(rows: list[dict[str, Any]], out: Path) -> bool:
    """optunapi's ask p50 and p99 against trials in the study; False when nothing to plot."""
    rows = _pick(rows, "study-size", system="optunapi", space="6-param", sampler="random")
    rows = [r for r in rows if r["clients"] == 8] or rows
    if not rows:
        return False
    rows = sorted(rows, key=lambda r: r["study_trials"])
    sizes = [r["study_trials"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(sizes, [r["ask_p50_ms"] for r in rows], marker="o", label="ask p50")
    ax.plot(sizes, [r["ask_p99_ms"] for r in rows], marker="s", label="ask p99")
    ax.axhline(TARGET_ASK_P99_MS, color="tab:red", linestyle=":", linewidth=1)
    ax.annotate(
        f"target: p99 < {TARGET_ASK_P99_MS} ms",
        (sizes[0], TARGET_ASK_P99_MS),
        textcoords="offset points",
        xytext=(2, 4),
        fontsize=8,
        color="tab:red",
    )
    ax.set_xlabel("finished trials in the study before the run")
    ax.set_ylabel("ask latency (ms)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"optunapi ask latency, 6-parameter space, random, {rows[0]['clients']} clients")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    """Read the JSON files, write the PNGs, say which."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="JSON from compare.py --out")
    parser.add_argument("--outdir", type=Path, default=Path(__file__).parents[1] / "docs" / "img")
    args = parser.parse_args(argv)
    rows = load_summary(args.results)
    args.outdir.mkdir(parents=True, exist_ok=True)
    wrote = 0
    for name, plot in (
        ("throughput-vs-clients.png", throughput_vs_clients),
        ("ask-latency-vs-study-size.png", ask_latency_vs_study_size),
    ):
        path = args.outdir / name
        if plot(rows, path):
            print(f"wrote {path}")
            wrote += 1
        else:
            print(f"no rows for {name} in {', '.join(map(str, args.results))}", file=sys.stderr)
    return 0 if wrote else 1


if __name__ == "__main__":
    raise SystemExit(main())
