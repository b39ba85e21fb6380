"""optunapi against its peers, in one run, interleaved, on the same workloads: a table of ratios.

    .venv/bin/python benchmarks/compare.py                  # the issue's matrix, ~15 min
    .venv/bin/python benchmarks/compare.py --quick          # a smoke run, ~15 s
    .venv/bin/python benchmarks/compare.py --out benchmarks/results/matrix.json
    .venv/bin/python benchmarks/compare.py --sweep --out benchmarks/results/sweep.json  # ~6 min
    .venv/bin/python benchmarks/plots.py benchmarks/results/sweep.json   # docs/img/*.png

The method, the systems and what the default skips are described in docs/benchmarks.md.

Systems (``--systems``): ``optunapi`` (``optunapi serve`` on SQLite), ``floor`` (a trivial
FastAPI endpoint: the HTTP floor), ``original`` (the original optunapi's design, which loads the
study from SQLite on every request), ``grpc-sqlite`` and ``grpc-journal`` (Optuna's gRPC
storage proxy with Python clients), ``sqlite-shared`` (client processes sharing one SQLite file).

Each client loops ask -> tell(objective) -> ask. Each run starts its server as a subprocess on
port 0 on a fresh copy of the study, in a temporary directory. Within a workload, every round
runs every system, in an order rotated from round to round; the table shows the median over the
rounds. Progress goes to stderr; the table (markdown) to stdout; ``--out`` writes every run and
the summary as JSON, which ``plots.py`` reads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable from the repo
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna

from benchmarks.loadgen import ClientPool
from benchmarks.plan import plan, skip_reason
from benchmarks.report import (
    jsonable,
    loadgen_check,
    markdown_table,
    run_row,
    skipped_notes,
    summarize,
    workload_fields,
)
from benchmarks.systems import DEFAULT_SYSTEMS, SYSTEMS, System
from benchmarks.templates import Templates
from benchmarks.workloads import SAMPLERS, SPACES, Workload


def say(message: str) -> None:
    """Progress, on stderr so that stdout holds only the table."""
    print(message, file=sys.stderr, flush=True)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--quick`` only changes defaults that were not given."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: one workload, short windows"
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="run the plots' sweeps (clients, study size) instead of the matrix",
    )
    parser.add_argument(
        "--systems",
        type=_names,
        default=DEFAULT_SYSTEMS,
        help=f"comma-separated, from {', '.join(SYSTEMS)} ({', '.join(DEFAULT_SYSTEMS)})",
    )
    parser.add_argument("--spaces", type=_names, default=None, help="2-param,6-param")
    parser.add_argument("--samplers", type=_names, default=None, help="random,tpe")
    parser.add_argument("--clients", type=_ints, default=None, help="8,64")
    parser.add_argument("--trials", type=_ints, default=None, help="study sizes: 0,10000")
    parser.add_argument(
        "--seconds", type=float, default=None, help="measured window per run (2; --quick 0.5)"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="rounds per workload (2; --quick 1)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed cycles per client process before the clients start (1)",
    )
    parser.add_argument(
        "--ramp",
        type=float,
        default=None,
        help="seconds the clients run before the window opens (0.3)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=None,
        help="how long cycles in flight at the window's end may still take (30; --quick 5)",
    )
    parser.add_argument("--sweep-clients", type=_ints, default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--sweep-sizes", type=_ints, default=[0, 1000, 5000, 10000])
    parser.add_argument("--procs", type=int, default=8, help="client processes for Python clients")
    parser.add_argument(
        "--http-procs", type=int, default=1, help="client processes for HTTP clients"
    )
    parser.add_argument(
        "--no-skip", action="store_true", help="run the combinations skipped by default"
    )
    parser.add_argument("--out", type=Path, help="write every run and the summary as JSON here")
    parser.add_argument("--workdir", type=Path, help="keep databases and server logs here")
    args = parser.parse_args(argv)
    for given, known, what in (
        (args.systems, SYSTEMS, "systems"),
        (args.spaces or [], SPACES, "spaces"),
        (args.samplers or [], SAMPLERS, "samplers"),
    ):
        if unknown := set(given) - set(known):
            parser.error(f"unknown {what} {sorted(unknown)}; known: {', '.join(known)}")
    quick = args.quick
    defaults = {
        "spaces": ["6-param"] if quick else list(SPACES),
        "samplers": ["random"] if quick else list(SAMPLERS),
        "clients": [2] if quick else [8, 64],
        "trials": [0] if quick else [0, 10000],
        "seconds": 0.5 if quick else 2.0,
        "rounds": 1 if quick else 2,
        "grace": 5.0 if quick else 30.0,
        "ramp": 0.1 if quick else 0.3,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def run_round(
    sweep: str,
    workload: Workload,
    systems: list[System],
    round_: int,
    args: argparse.Namespace,
    pool: ClientPool,
    templates: Templates,
    work: Path,
) -> list[dict[str, Any]]:
    """Start every system of the round at once, then measure them one after the other."""
    for system in systems:
        w = workload
        tag = f"{sweep}-{w.space}-{w.sampler}-{w.clients}-{w.trials}-r{round_}"
        run_dir = work / tag / system.name
        system.prepare(workload, run_dir, templates)
    launched = time.monotonic()
    for system in systems:
        system.launch()
    rows = []
    try:
        for system in systems:
            system.ready()
        say(f"    servers up in {time.monotonic() - launched:.1f} s")
        for system in systems:
            cap = None if args.no_skip else system.clients_cap(workload)
            clients = cap[0] if cap else workload.clients
            outcome = pool.run(
                system.driver(), clients, args.seconds,
                warmup=args.warmup if system.warmup_cycles is None else system.warmup_cycles,
                ramp=args.ramp, grace=args.grace, seed=1000 * round_, server_pid=system.pid,
            )  # fmt: skip
            system.stop()  # before the next system's run: the log is complete, the CPU free
            tracebacks = system.server_errors()
            row = run_row(sweep, workload, system.name, round_, outcome, len(tracebacks))
            row["clients_run"], row["capped"] = clients, cap[1] if cap else None
            if tracebacks:
                row["first_traceback"] = tracebacks[0][-3000:]
            rows.append(row)
            say(_progress(row))
    finally:
        for system in systems:
            system.stop()
    return rows


def _progress(row: dict[str, Any]) -> str:
    if row["failure"]:
        return f"    {row['system']:14} FAILED: {row['failure'].strip().splitlines()[-1][:200]}"
    text = (
        f"    {row['system']:14} {row['trials_per_s']:9.1f} trials/s"
        f"  ask p50 {row['ask_p50_ms']:.1f} p99 {row['ask_p99_ms']:.1f} ms"
        f"  tell p50 {row['tell_p50_ms']:.1f} p99 {row['tell_p99_ms']:.1f} ms"
        f"  errors {row['errors']}  wrong ids {row['wrong_ids']}"
    )
    text += f"  (setup {row['setup_s']:.1f} s, run {row['elapsed_s']:.1f} s)"
    if row["capped"]:
        text += f"  capped at {row['clients_run']} clients: {row['capped']}"
    if row["server_tracebacks"]:
        text += f"  SERVER TRACEBACKS {row['server_tracebacks']}"
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the plan, print the table, write the JSON."""
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.monotonic()
    pool = ClientPool(args.procs, args.http_procs)  # fork before any thread starts
    work = args.workdir or Path(tempfile.mkdtemp(prefix="optunapi-bench-"))
    templates = Templates(work / "templates", say)
    runs: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    todo = plan(args)
    try:
        for index, (sweep, workload, names) in enumerate(todo):
            say(f"[{index + 1}/{len(todo)}] {workload.label} ({sweep})")
            active = []
            for name in names:
                reason = skip_reason(SYSTEMS[name](), workload, args.no_skip)
                if reason:
                    skipped.append(
                        {
                            "sweep": sweep,
                            **workload_fields(workload),
                            "system": name,
                            "reason": reason,
                        }
                    )
                    say(f"    {name:14} skipped: {reason}")
                else:
                    active.append(name)
            for round_ in range(args.rounds):
                shift = (round_ + index) % max(1, len(active))
                order = active[shift:] + active[:shift]
                say(f"  round {round_ + 1}: {', '.join(order)}")
                systems = [SYSTEMS[name]() for name in order]
                runs += run_round(sweep, workload, systems, round_, args, pool, templates, work)
                if args.workdir is None:  # the databases of a finished round are not needed
                    for path in work.iterdir():
                        if path.name != "templates":
                            shutil.rmtree(path, ignore_errors=True)
    finally:
        pool.close()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    summary = summarize(runs)
    elapsed = time.monotonic() - started
    table = markdown_table(summary, list(SYSTEMS))
    print(table)
    print()
    print(
        f"Median of {args.rounds} rounds of {args.seconds:g} s per system and workload; "
        f"ratios are the figure over optunapi's in the same workload. Took {elapsed:.0f} s."
    )
    shown = [name for name in SYSTEMS if any(r["system"] == name for r in summary)]
    print("\nSystems:\n" + "\n".join(f"- {n}: {SYSTEMS[n]().description}" for n in shown))
    check = loadgen_check(summary, args.http_procs)
    if check:
        print("\nLoad generator check (floor server):")
        print("\n".join(check))
    capped = {f"- {r['system']}: {r['capped']}" for r in summary if r["capped"]}
    if capped:
        print("\nCapped (--no-skip runs every client):\n" + "\n".join(sorted(capped)))
    if skipped:
        planned = [workload for _, workload, _ in plan(args)]
        print("\nSkipped (--no-skip runs them):\n" + "\n".join(skipped_notes(skipped, planned)))
    bad = [
        r
        for r in summary
        if r["system"] == "optunapi" and (r["wrong_ids"] or r["server_tracebacks"])
    ]
    for row in bad:
        print(
            f"\nFAILED: optunapi, {row['clients']} clients: {row['wrong_ids']} wrong ids, "
            f"{row['server_tracebacks']} server tracebacks (see --out)"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "argv": sys.argv, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
            "python": platform.python_version(), "optuna": optuna.__version__,
            "optunapi": _optunapi_version(), "seconds": args.seconds, "rounds": args.rounds,
            "elapsed_s": elapsed, "http_procs": args.http_procs, "procs": args.procs,
        }  # fmt: skip
        document = {"meta": meta, "summary": summary, "skipped": skipped, "runs": runs,
                    "loadgen_check": check, "table": table}  # fmt: skip
        args.out.write_text(json.dumps(jsonable(document), indent=1, default=str))
        say(f"wrote {args.out}")
    return 1 if bad else 0  # optunapi handed out a trial twice, or logged a traceback


def _optunapi_version() -> str:
    try:
        from optunapi import __version__

        return __version__
    except ImportError:
        return "?"


if __name__ == "__main__":
    raise SystemExit(main())
