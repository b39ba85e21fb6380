"""One PNG per problem: the median best-so-far regret of each mode against trials."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a benchmark machine

import matplotlib.pyplot as plt

_STYLE = {"sequential": ("black", "-"), "random": ("grey", ":"), "batch": ("tab:green", "-.")}


def plot_problem(
    path: Path,
    title: str,
    curves: dict[str, dict[str, list[float]]],
    tolerance: float,
    workers: int,
    seeds: int,
) -> None:
    """Write the median (line) and interquartile range (band) of each mode's floored regret.

    Args:
        path: The PNG to write.
        title: The problem, as a person reads it.
        curves: Mode name to ``verdict.curve`` output.
        tolerance: The verdict's floor, drawn as a dashed line: below it, regrets count as
            solved.
        workers: Parallel workers, for the legend.
        seeds: Seeds behind each median, for the title.
    """
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    colors = iter(["tab:blue", "tab:orange", "tab:purple", "tab:red", "tab:cyan"])
    for mode, c in curves.items():
        color, line = _STYLE.get(mode.split("[")[0], (next(colors, "tab:brown"), "-"))
        label = f"{mode} ({workers} workers, server)" if mode.startswith("parallel") else mode
        if mode.startswith("batch"):
            label = f"{mode} ({workers} in flight, in process)"
        x = range(1, len(c["median"]) + 1)
        ax.plot(x, c["median"], color=color, linestyle=line, label=label)
        ax.fill_between(x, c["q25"], c["q75"], color=color, alpha=0.12, linewidth=0)
    ax.axhline(tolerance, color="grey", linewidth=0.8, linestyle="--",
               label="tolerance (the verdict's floor)")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("trials")
    ax.set_ylabel("best-so-far regret")
    ax.set_title(f"{title}: median of {seeds} seeds, quartile bands", fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
