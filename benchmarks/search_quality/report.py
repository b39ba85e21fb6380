"""The markdown table printed at the end of a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _num(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.4g}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def markdown_table(problems: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per problem and mode under test (parallel, its variants, batch).

    Args:
        problems: Problem name to its ``summary`` (see ``quality.summarize``).
    """
    head = (
        "| problem | mode | median regret | sequential | random | ratio to sequential "
        "(90% CI) | unfloored ratio | within 10% | ratio to random (p) "
        "| clearly better than random | in flight at ask |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for name, summary in problems.items():
        seq, rnd = summary["median_regret"]["sequential"], summary["median_regret"]["random"]
        for c in summary["comparisons"]:
            low, high = c["ratio_interval_90"]
            flight = summary["in_flight"].get(c["mode"])
            rows.append(
                f"| {name} | {c['mode']} | {_num(c['median_regret'])} | {_num(seq)} "
                f"| {_num(rnd)} | {c['ratio_to_sequential']:.3f} ({low:.2f}-{high:.2f}) "
                f"| {c['raw_ratio_to_sequential']:.2f} "
                f"| {_yes(c['within_10_percent'])} "
                f"| {c['ratio_to_random']:.2f} (p={c['p_value_vs_random']:.2g}) "
                f"| {_yes(c['clearly_better_than_random'])} "
                f"| {'-' if flight is None else f'{flight:.1f}'} |"
            )
    return "\n".join(rows)
