"""What one search leaves behind, whichever mode ran it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Run:
    """One search of one problem with one seed.

    Attributes:
        mode: ``parallel``, ``parallel[option=value]``, ``sequential``, ``random`` or ``batch``.
        seed: The sampler's seed.
        values: The objective of every trial, in trial order (trial number for the server).
        seconds: Wall-clock time of the search.
        checks: What the mode verified about itself (the parallel mode: trials told and
            stored by the server, trials in flight at each ask).
    """

    mode: str
    seed: int
    values: list[float]
    seconds: float
    checks: dict[str, Any] = field(default_factory=dict)

    def best_so_far(self) -> list[float]:
        """The best value after each trial."""
        out: list[float] = []
        for value in self.values:
            out.append(value if not out else min(out[-1], value))
        return out

    def to_json(self) -> dict[str, Any]:
        """A plain dict for the results file."""
        return asdict(self)
