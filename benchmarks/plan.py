"""What a run measures: the workloads in order, each with its systems, and what is left out.

The default matrix must fit in about 15 minutes on 2 cores. Some combinations would take far
longer than all the others together while teaching little more; they are skipped (or capped to
fewer clients) with a reason the output prints, and ``--no-skip`` runs them anyway.
"""

from __future__ import annotations

import argparse

from benchmarks.systems import System
from benchmarks.workloads import Workload, matrix

PYTHON_CLIENTS = {"grpc-sqlite", "grpc-journal", "sqlite-shared"}
"""Systems whose clients run Optuna themselves, sampler included, each over every trial."""


def skip_reason(system: System, workload: Workload, no_skip: bool) -> str | None:
    """Why a combination is not run: the system's own reason, or the matrix's time budget."""
    if no_skip:
        return None
    if (reason := system.skip_reason(workload)) is not None:
        return reason
    big = workload.trials >= 10000
    if system.name in PYTHON_CLIENTS and big and workload.sampler == "tpe":
        return "each client runs TPE over 10k trials, ~0.5 s of CPU per ask: over the time budget"
    if system.name == "original" and big and workload.sampler == "tpe":
        return "reloads the 10k trials per request, TPE or not: see its random row"
    if system.name in PYTHON_CLIENTS and big and workload.clients > 8:
        return (
            "each client process first loads the 10k trials (tens of seconds for 8 on 2 cores);"
            " 64 clients are 8 processes again, with 8 threads each: over the time budget"
        )
    return None


def plan(args: argparse.Namespace) -> list[tuple[str, Workload, list[str]]]:
    """What to run: ``(sweep, workload, systems)`` in order."""
    if not args.sweep:
        return [
            ("matrix", w, args.systems)
            for w in matrix(args.spaces, args.samplers, args.clients, args.trials)
        ]
    runs = [
        ("clients", Workload("6-param", "random", n, 0), args.systems) for n in args.sweep_clients
    ]
    runs += [
        ("study-size", Workload("6-param", "random", 8, size), ["optunapi"])
        for size in args.sweep_sizes
    ]
    return runs
