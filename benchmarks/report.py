"""From measurements to numbers: one row per run, the median over rounds, the markdown table.

Rows are plain dicts so that they go to JSON as they are and ``plots.py`` reads them back.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from typing import Any

from benchmarks.loadgen import RunOutcome
from benchmarks.workloads import Workload

METRICS = ("trials_per_s", "ask_p50_ms", "ask_p99_ms", "tell_p50_ms", "tell_p99_ms")
"""The figures shown with a ratio to optunapi's."""

COUNTS = ("errors", "duplicates", "wrong_tells", "wrong_ids", "server_tracebacks")
"""The figures summed over rounds: one wrong id in any round is one too many."""


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1), NaN without samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def run_row(
    sweep: str, workload: Workload, system: str, round_: int, outcome: RunOutcome, tracebacks: int
) -> dict[str, Any]:
    """One measured run as a row."""
    log = outcome.log
    cycles = log.cycles
    duplicates = len(log.numbers) - len(set(log.numbers))
    row: dict[str, Any] = {
        "sweep": sweep, **workload_fields(workload), "system": system, "round": round_,
        "seconds": outcome.seconds,
        "trials_per_s": sum(log.rates) if outcome.seconds else math.nan,
        "trials_in_window": log.in_window, "cycles": cycles, "asks": len(log.asks),
        "ask_p50_ms": percentile(log.asks, 0.50) * 1e3,
        "ask_p99_ms": percentile(log.asks, 0.99) * 1e3,
        "tell_p50_ms": percentile(log.tells, 0.50) * 1e3,
        "tell_p99_ms": percentile(log.tells, 0.99) * 1e3,
        "errors": sum(log.errors.values()), "error_kinds": dict(log.errors),
        "duplicates": duplicates, "wrong_tells": log.wrong_tells,
        "wrong_ids": duplicates + log.wrong_tells,
        "server_tracebacks": tracebacks,
        # CPU per trial tells whether the load generator or the server runs out of CPU first.
        "client_cpu_ms_per_trial": log.cpu / cycles * 1e3 if cycles else math.nan,
        "server_cpu_ms_per_trial": (
            outcome.server_cpu / cycles * 1e3
            if cycles and outcome.server_cpu is not None
            else math.nan
        ),
        "server_busy": (
            outcome.server_cpu / outcome.elapsed
            if outcome.server_cpu is not None and outcome.elapsed else math.nan
        ),
        "setup_s": outcome.setup,
        "elapsed_s": outcome.elapsed,
        "failure": outcome.failure,
    }  # fmt: skip
    return row


def workload_fields(workload: Workload) -> dict[str, Any]:
    """A workload's fields, as every row repeats them."""
    return {
        "space": workload.space, "sampler": workload.sampler,
        "clients": workload.clients, "study_trials": workload.trials,
    }  # fmt: skip


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["sweep"],
        row["space"],
        row["sampler"],
        row["clients"],
        row["study_trials"],
        row["system"],
    )


def summarize(runs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The median over rounds of each figure, per sweep, workload and system, in first-run order.

    Failed runs count in ``failures`` and nowhere else; counts are summed.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in runs:
        groups.setdefault(_key(row), []).append(row)
    summary = []
    for rows in groups.values():
        good = [r for r in rows if not r["failure"]]
        first = rows[0]
        out: dict[str, Any] = {
            k: first[k] for k in ("sweep", "space", "sampler", "clients", "study_trials", "system")
        }
        out["clients_run"] = first.get("clients_run", first["clients"])
        out["capped"] = first.get("capped")
        out["rounds"] = len(good)
        out["failures"] = [r["failure"] for r in rows if r["failure"]]
        for name in (*METRICS, "server_busy", "client_cpu_ms_per_trial", "server_cpu_ms_per_trial"):
            values = [r[name] for r in good if not math.isnan(r[name])]
            out[name] = statistics.median(values) if values else math.nan
        for name in (*COUNTS, "cycles"):
            out[name] = sum(r[name] for r in good)
        kinds: Counter[str] = Counter()
        for r in good:
            kinds.update(r["error_kinds"])
        out["error_kinds"] = dict(kinds)
        summary.append(out)
    return summary


def ratio(value: float, reference: float) -> str:
    """``value / reference`` for a table cell; below 0.1 as a fraction (``1/160x``)."""
    r = value / reference
    if r >= 10:
        return f"{r:,.0f}x"
    if r >= 1:
        return f"{r:.1f}x"
    if r >= 0.1:
        return f"{r:.2f}x"
    return f"1/{1 / r:,.0f}x" if r > 0 else "0x"


def _cell(value: float, reference: float | None) -> str:
    if math.isnan(value):
        return "n/a"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    text = f"{value:,.{digits}f}"
    if reference is None or math.isnan(reference) or reference == 0:
        return text
    return f"{text} ({ratio(value, reference)})"


def markdown_table(summary: list[dict[str, Any]], order: list[str]) -> str:
    """One markdown table: a row per workload and system, each figure with its ratio to optunapi.

    A ratio is the system's figure over optunapi's in the same workload: above 1 is more
    trials per second, or a slower answer. Systems appear in ``order``, whatever the rounds ran.
    """
    lines = [
        "| workload | system | trials/s | ask p50 ms | ask p99 ms | tell p50 ms | tell p99 ms "
        "| errors | wrong ids |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_workload: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in summary:
        by_workload.setdefault(_key(row)[:-1], []).append(row)
    rank = {name: i for i, name in enumerate(order)}
    for key, rows in by_workload.items():
        label = Workload(key[1], key[2], key[3], key[4]).label
        if key[0] != "matrix":
            label = f"{label} [{key[0]} sweep]"
        rows = sorted(rows, key=lambda r: rank.get(r["system"], len(rank)))
        reference = next((r for r in rows if r["system"] == "optunapi" and r["rounds"]), None)
        for row in rows:
            system = row["system"]
            if row.get("capped"):
                n = row["clients_run"]
                system += f" ({n} client{'s' if n > 1 else ''}, capped)"
            if not row["rounds"]:
                failure = _one_line(row["failures"][0])
                lines.append(f"| {label} | {system} | failed: {failure} |||||||")
                continue
            cells = []
            for name in METRICS:
                ref = None if reference is None or row is reference else reference[name]
                cells.append(_cell(row[name], ref))
            errors = str(row["errors"])
            if row["error_kinds"]:
                top = ", ".join(f"{k}: {v}" for k, v in Counter(row["error_kinds"]).most_common(2))
                errors += f" ({top})"
            cells += [errors, str(row["wrong_ids"])]
            lines.append(f"| {label} | {system} | {' | '.join(cells)} |")
    return "\n".join(lines)


def skipped_notes(skipped: list[dict[str, Any]], planned: list[Workload]) -> list[str]:
    """One line per reason: which systems sat out which workloads, and why.

    The workloads are named by what they share (``every workload with 64 clients``) when the
    group is all of the planned workloads that share it, else listed.
    """
    groups: dict[str, tuple[dict[str, None], dict[Workload, None]]] = {}
    for row in skipped:
        systems, workloads = groups.setdefault(row["reason"], ({}, {}))
        systems[row["system"]] = None
        workloads[Workload(row["space"], row["sampler"], row["clients"], row["study_trials"])] = (
            None
        )
    return [
        f"- {', '.join(systems)}, {_describe(list(workloads), planned)}: {reason}"
        for reason, (systems, workloads) in groups.items()
    ]


def _describe(group: list[Workload], planned: list[Workload]) -> str:
    shared = {
        name: getattr(group[0], name)
        for name in ("space", "sampler", "clients", "trials")
        if len({getattr(w, name) for w in group}) == 1
    }
    alike = [
        w for w in dict.fromkeys(planned) if all(getattr(w, k) == v for k, v in shared.items())
    ]
    if shared and set(alike) == set(group):
        words = {
            "space": lambda v: f"the {v} space",
            "sampler": lambda v: f"the {v} sampler",
            "clients": lambda v: f"{v} clients",
            "trials": lambda v: f"{v:,} trials",
        }
        return "every workload with " + ", ".join(words[k](v) for k, v in shared.items())
    return "; ".join(w.label for w in group)


def loadgen_check(summary: list[dict[str, Any]], http_procs: int) -> list[str]:
    """Whether the load generator could drive the floor harder than the floor can answer.

    Per trial, the floor server spends S ms of CPU in its one process and the generator G ms in
    its ``http_procs`` processes; with a core each, the generator can drive ``http_procs * S / G``
    times what the floor serves. CPU per trial does not depend on other load on the machine, as
    the floor's throughput and busy share do. One line per number of clients, the worst case.
    """
    worst: dict[int, tuple[float, dict[str, Any]]] = {}
    for row in summary:
        if row["system"] != "floor" or math.isnan(row["server_cpu_ms_per_trial"]):
            continue
        headroom = http_procs * row["server_cpu_ms_per_trial"] / row["client_cpu_ms_per_trial"]
        if row["clients"] not in worst or headroom < worst[row["clients"]][0]:
            worst[row["clients"]] = headroom, row
    lines = []
    for clients, (headroom, row) in sorted(worst.items()):
        server, client = row["server_cpu_ms_per_trial"], row["client_cpu_ms_per_trial"]
        verdict = "it saturates the floor" if headroom >= 1.2 else "IT MAY BE THE BOTTLENECK"
        lines.append(
            f"- {clients} clients: CPU per trial, floor server {server:.3f} ms, load generator "
            f"{client:.3f} ms in {http_procs} process(es): the generator can drive "
            f"{headroom:.1f}x what the floor serves, {verdict} (floor "
            f"{row['trials_per_s']:,.0f} trials/s, server busy {row['server_busy']:.0%} of a core)"
        )
    return lines


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "?")[:150].replace("|", "/")


def jsonable(value: Any) -> Any:
    """``value`` with NaN (no sample) as None: JSON has no NaN, and other readers choke on it."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
