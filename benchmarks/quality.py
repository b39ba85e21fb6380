"""Search quality in parallel: optunapi's TPE with parallel workers against sequential TPE.

    .venv/bin/python benchmarks/quality.py [--seeds 10] [--trials 200] [--workers 8]
        [--problems branin,hartmann6,mixed10,kernel_ridge] [--variant constant_liar=false]...
        [--batch] [--out results.json] [--plots docs/img]
    .venv/bin/python benchmarks/quality.py --from results.json   # table and plots, no runs

For each problem and seed, three modes search with the same trial budget:

* ``parallel``: ``--workers`` threads, each an ``optunapi.Client``, against a real
  ``optunapi serve`` on a temporary SQLite file, with the server's default sampler (``tpe``
  and the seed). Each ``--variant`` adds a parallel mode whose sampler definition carries those
  options (``--variant multivariate=false,n_startup_trials=20``);
* ``sequential``: Optuna's ``TPESampler(seed=...)`` in process, in memory, one trial at a time;
* ``random``: Optuna's ``RandomSampler(seed=...)`` in process.

``--batch`` adds a diagnostic: TPE in process with the parallel mode's schedule (``--workers``
trials in flight) and no server, which separates the cost of parallelism from the server's.

Prints the criterion and a markdown table; writes one plot per problem
(``quality-<problem>.png``) and, with ``--out``, every run's values as JSON. Exits 1 when a
parallel run's trials were not all told and stored by the server. Method, criterion and
results: ``docs/search-quality.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from search_quality import verdict
from search_quality.inprocess import run_batch, run_random, run_sequential
from search_quality.parallel import run_parallel
from search_quality.plots import plot_problem
from search_quality.problems import PROBLEMS, Problem
from search_quality.report import markdown_table
from search_quality.runs import Run
from search_quality.server import Server, serve
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent


def parse_variant(text: str) -> dict[str, Any]:
    """``constant_liar=false,n_startup_trials=20`` -> sampler options (values read as JSON)."""
    options: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, sep, raw = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r} is not key=value")
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    return options


def variant_name(prefix: str, options: dict[str, Any]) -> str:
    """``parallel`` for the server's default, ``parallel[constant_liar=false]`` otherwise."""
    if not options:
        return prefix
    return f"{prefix}[{','.join(f'{k}={json.dumps(v)}' for k, v in options.items())}]"


def search(server: Server, problem: Problem, seed: int, args: argparse.Namespace) -> list[Run]:
    """Every mode on one problem with one seed."""
    runs = []
    for index, options in enumerate(args.variants):
        mode = variant_name("parallel", options)
        study = f"{problem.name}-s{seed}-v{index}"  # each search a new study: numbers from 0
        runs.append(run_parallel(server.url, study, problem, seed, args.trials, args.workers,
                                 options, mode))  # fmt: skip
        if args.batch:
            run = run_batch(problem, seed, args.trials, args.workers, options)
            run.mode = variant_name("batch", options)
            runs.append(run)
    runs.append(run_sequential(problem, seed, args.trials))
    runs.append(run_random(problem, seed, args.trials))
    return runs


def summarize(problem: Problem, runs: list[Run]) -> dict[str, Any]:
    """Regrets, verdicts and curves of one problem's runs."""
    optimum = min(problem.optimum, *(min(r.values) for r in runs))
    modes = list(dict.fromkeys(r.mode for r in runs))
    by_mode = {m: [r for r in runs if r.mode == m] for m in modes}
    raw = {m: verdict.final_regrets(rs, optimum) for m, rs in by_mode.items()}
    comparisons = [
        verdict.compare(m, raw[m], raw["sequential"], raw["random"], problem.tolerance).to_json()
        for m in modes
        if m not in ("sequential", "random")
    ]
    in_flight = {
        m: statistics.fmean(r.checks["in_flight_mean"] for r in rs)
        for m, rs in by_mode.items()
        if rs[0].checks.get("in_flight_mean") is not None
    }
    return {
        "title": problem.title,
        "optimum": problem.optimum,
        "effective_optimum": optimum,
        "reference_note": problem.reference_note,
        "tolerance": problem.tolerance,
        "median_regret": {
            m: statistics.median(max(x, problem.tolerance) for x in r) for m, r in raw.items()
        },
        "regrets": raw,
        "comparisons": comparisons,
        "in_flight": in_flight,
        "seconds": {m: statistics.fmean(r.seconds for r in rs) for m, rs in by_mode.items()},
        # Plotted below the tolerance too, so that a reader sees what the verdict floors.
        "curves": {
            m: verdict.curve(rs, optimum, problem.tolerance / 1000) for m, rs in by_mode.items()
        },
    }


def told_everything(runs: list[Run], trials: int) -> bool:
    """Whether every parallel run's trials were all told, stored complete, and equal."""
    return all(
        r.checks["told"] == trials
        and r.checks["stored_complete"] == trials
        and r.checks["stored_equals_told"]
        for r in runs
        if r.checks
    )


def run_all(args: argparse.Namespace) -> tuple[dict[str, list[Run]], str]:
    """Every problem, seed and mode against one fresh server; returns the runs by problem and
    what the server wrote to stderr."""
    # One BLAS thread: eight workers and a server are already more threads than a small
    # machine's cores, and oversubscribed BLAS made a 25 ms fit take 300 ms. The variables
    # reach the server and the libraries loaded later (scikit-learn's); threadpool_limits
    # reaches those already loaded (numpy's).
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    by_problem: dict[str, list[Run]] = {}
    with (
        threadpool_limits(limits=1),
        tempfile.TemporaryDirectory() as tmp,
        serve(Path(tmp)) as server,
    ):
        for name in args.names:
            by_problem[name] = []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                by_problem[name] += search(server, PROBLEMS[name], seed, args)
                print(f"{name} seed {seed}: {time.perf_counter() - t0:.1f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
        return by_problem, server.log_text()


def load_runs(path: Path, args: argparse.Namespace) -> tuple[dict[str, list[Run]], str, float]:
    """The runs of an earlier ``--out`` file, and its settings into ``args``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    config = data["config"]
    args.seeds, args.trials, args.workers = config["seeds"], config["trials"], config["workers"]
    args.variants, args.batch = config["variants"], config["batch"]
    args.names = [n for n in config["problems"] if n in args.names]
    by_problem = {n: [Run(**r) for r in data["problems"][n]["runs"]] for n in args.names}
    return by_problem, data["server_log"], data["seconds"]


def report(
    args: argparse.Namespace, by_problem: dict[str, list[Run]], server_log: str, seconds: float
) -> int:
    """Summarize, plot, write ``--out``, print the table; the exit status."""
    results: dict[str, Any] = {"problems": {}}
    for name, runs in by_problem.items():
        problem = PROBLEMS[name]
        summary = summarize(problem, runs)
        results["problems"][name] = {**summary, "runs": [r.to_json() for r in runs]}
        if args.plots and str(args.plots):
            plot_problem(args.plots / f"quality-{name}.png", problem.title, summary["curves"],
                         problem.tolerance, args.workers, args.seeds)  # fmt: skip
    complete = told_everything([r for rs in by_problem.values() for r in rs], args.trials)
    results.update({
        "config": {"seeds": args.seeds, "trials": args.trials, "workers": args.workers,
                   "problems": args.names, "variants": args.variants, "batch": args.batch},
        "criterion": verdict.CRITERION,
        "all_trials_told_and_stored": complete,
        "server_log": server_log[-20_000:],
        "seconds": seconds,
    })  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")

    print(f"\nCriterion: {verdict.CRITERION}.")
    for name in args.names:
        p = results["problems"][name]
        note = f" ({p['reference_note']})" if p["reference_note"] else ""
        print(f"  {name}: optimum {p['effective_optimum']:.6g}{note}, "
              f"tolerance {p['tolerance']:g}")  # fmt: skip
    print()
    print(markdown_table(results["problems"]))
    print(f"\n{args.seeds} seeds x {args.trials} trials, {args.workers} workers; "
          f"every parallel trial told and stored: {complete}; {seconds:.0f} s")  # fmt: skip
    if "Traceback" in server_log:
        print("The server logged tracebacks: see server_log in the JSON.", file=sys.stderr)
    return 0 if complete else 1


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or re-report an earlier one); see the module docstring."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (10)")
    parser.add_argument("--trials", type=int, default=200, help="trials per search (200)")
    parser.add_argument("--workers", type=int, default=8, help="parallel workers (8)")
    parser.add_argument("--problems", default=",".join(PROBLEMS),
                        help=f"comma-separated, of {', '.join(PROBLEMS)}")  # fmt: skip
    parser.add_argument("--variant", action="append", type=parse_variant, default=[],
                        help="another parallel mode with these sampler options, "
                             "e.g. constant_liar=false (repeatable)")  # fmt: skip
    parser.add_argument("--batch", action="store_true",
                        help="also run TPE in process with the parallel schedule")  # fmt: skip
    parser.add_argument("--out", type=Path, help="write every run and the summary as JSON")
    parser.add_argument("--plots", type=Path, default=ROOT / "docs" / "img",
                        help="directory for quality-<problem>.png (docs/img)")  # fmt: skip
    parser.add_argument("--from", dest="source", type=Path,
                        help="re-report (table, plots, --out) the runs of an earlier --out "
                             "file instead of running")  # fmt: skip
    args = parser.parse_args(argv)
    args.variants = [{}, *args.variant]
    if len({variant_name("", v) for v in args.variants}) < len(args.variants):
        parser.error("a --variant repeats another (or is empty, the server's default)")
    args.names = [n.strip() for n in args.problems.split(",") if n.strip()]
    unknown = [n for n in args.names if n not in PROBLEMS]
    if unknown:
        parser.error(f"unknown problems {unknown}; known: {', '.join(PROBLEMS)}")

    if args.source:
        by_problem, server_log, seconds = load_runs(args.source, args)
    else:
        started = time.perf_counter()
        by_problem, server_log = run_all(args)
        seconds = time.perf_counter() - started
    return report(args, by_problem, server_log, seconds)


if __name__ == "__main__":
    sys.exit(main())
