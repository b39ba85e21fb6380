"""What the load generator drives, and what its clients record: the vocabulary of a run.

Every client loops ask -> tell(objective(params)) -> ask... and stops starting cycles when the
window ends; the cycle in flight then finishes (within a grace period). The clients start a
ramp before the window, so that the window sees a steady state rather than all of them asking
at once. A client's rate is its cycles that overlap the window over the time from the start of
the first to the end of the last, and the system's throughput is the sum of its clients' rates:
unlike a count of the trials done within the window, this does not round to zero for a system
that takes seconds per trial. Latencies are those of the asks and tells of these cycles.

``http_clients`` and ``python_clients`` drive the two kinds of system.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from benchmarks.workloads import Space


@dataclass(frozen=True)
class HttpDriver:
    """An HTTP system: where it listens and which routes ask and tell.

    ``routes`` is ``"v1"`` (optunapi's ``POST .../trials`` and ``.../tell``, the floor) or
    ``"legacy"`` (the original's ``GET /optunapi/hparams`` and ``/optunapi/score``).
    """

    url: str
    routes: str
    space: Space
    """What the objective is computed over; empty when the params are placeholders."""


@dataclass(frozen=True)
class PythonDriver:
    """A system used through Optuna's Python API.

    ``storage`` is an Optuna storage URL (``sqlite:///...``), ``grpc://host:port`` for a
    ``GrpcStorageProxy``, or ``memory`` for a study of the process's own, in memory.
    """

    storage: str
    sampler: str
    space: Space


Driver = HttpDriver | PythonDriver


@dataclass
class Window:
    """When the measurement runs, on the machine-wide monotonic clock all processes share."""

    start: float
    end: float
    grace: float
    """How long after ``end`` a cycle in flight may still take before it is a timeout."""

    def overlaps(self, started: float, ended: float) -> bool:
        """Whether something that ran from ``started`` to ``ended`` ran during the window.

        Counting what overlaps the window, rather than what started in it, keeps a system whose
        requests take longer than the window from measuring as nothing at all.
        """
        return started < self.end and ended >= self.start


@dataclass
class ClientLog:
    """What some clients saw; the logs of several processes add up with ``merge``."""

    asks: list[float] = field(default_factory=list)
    """Latencies (s) of the asks of the cycles that overlap the window."""
    tells: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    """Per client: its cycles that overlap the window over the time they took."""
    cycles: int = 0
    """Cycles completed from the clients' start to their end (ramp and grace included)."""
    in_window: int = 0
    """Tells that succeeded within the window (the plain count)."""
    numbers: list[int] = field(default_factory=list)
    """Every trial number handed out, warm-up included: a repeat is a wrong id."""
    errors: Counter[str] = field(default_factory=Counter)
    wrong_tells: int = 0
    """Tells answered for another trial than the one told."""
    cpu: float = 0.0
    """CPU seconds the load-generating processes spent over the same time as ``cycles``."""

    def merge(self, other: ClientLog) -> None:
        """Add another log to this one."""
        self.asks += other.asks
        self.tells += other.tells
        self.rates += other.rates
        self.cycles += other.cycles
        self.in_window += other.in_window
        self.numbers += other.numbers
        self.errors.update(other.errors)
        self.wrong_tells += other.wrong_tells
        self.cpu += other.cpu


@dataclass
class Progress:
    """One client's completed cycles that overlap the window."""

    cycles: int = 0
    first: float = 0.0
    """When the first of them started."""
    last: float = 0.0
    """When the last of them ended."""

    def add(self, started: float, ended: float) -> None:
        """Count a completed cycle."""
        if not self.cycles:
            self.first = started
        self.cycles += 1
        self.last = ended

    def rate(self) -> float:
        """Cycles per second, back to back."""
        return self.cycles / (self.last - self.first) if self.cycles else 0.0
