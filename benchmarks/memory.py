"""Server memory per stored trial: 100 studies x 1,000 trials, the 6-parameter space.

    .venv/bin/python benchmarks/memory.py [--studies 100] [--trials 1000]

Fills a fresh SQLite file through the server's own services (the code a request runs, without
HTTP, so that the fill takes a minute rather than several), measuring how much the resident
memory (RSS) grew, then measures it again in a fresh process that opens the file, as a restarted
server does. Prints bytes per stored trial for both; the target is at most 2,048.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import SPACES

SPACE = SPACES["6-param"]


def services(db: Path):  # type: ignore[no-untyped-def]
    """The server's services over the storage at ``db``, as the application builds them."""
    from optunapi.server.services.leases import Leases
    from optunapi.server.services.studies import Studies
    from optunapi.server.services.trials import Trials
    from optunapi.server.services.views import Views
    from optunapi.server.storage import open_storage

    storage = open_storage(f"sqlite:///{db}", 2.0)
    studies = Studies(storage, db.parent, 20.0)
    leases = Leases(studies, 600.0)
    views = Views(studies, leases)
    return storage, studies, Trials(studies, leases, views)


def fill(db: Path, n_studies: int, n_trials: int) -> int:
    """Create the studies and run their trials (random sampler, ask then tell); returns how
    much the process's RSS grew meanwhile."""
    import gc

    from optunapi.schemas import TrialTell
    from optunapi.server.storage import close
    from optunapi.space import build_definition

    gc.collect()
    before = rss()
    storage, studies, trials = services(db)
    told = TrialTell(value=0.5)
    for s in range(n_studies):
        name = f"study-{s}"
        studies.create(name, build_definition(SPACE, sampler={"type": "random", "seed": s}))
        for _ in range(n_trials):
            trial = trials.ask(name).trial
            trials.tell(name, trial.number, told)
    gc.collect()
    grown = rss() - before
    close(storage)
    return grown


def rss() -> int:
    """This process's resident memory in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(db: Path) -> None:
    """Print the RSS that opening ``db`` adds, after everything else is imported."""
    import gc

    import optunapi.server.app  # noqa: F401  (the server's imports, counted before)

    gc.collect()
    before = rss()
    storage, studies, _ = services(db)
    for summary in storage.get_all_studies():  # the studies loaded, as the first asks do
        studies.get(summary.study_name)
    gc.collect()
    after = rss()
    studies_ids = [s._study_id for s in storage.get_all_studies()]
    n = sum(len(storage.get_all_trials(i, deepcopy=False)) for i in studies_ids)
    print(f"{n} {after - before}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--studies", type=int, default=100)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    with tempfile.TemporaryDirectory() as root:
        db = Path(root) / "memory.db"
        start = time.perf_counter()
        running = fill(db, args.studies, args.trials)
        filled = time.perf_counter() - start
        out = subprocess.run(
            [sys.executable, __file__, "--measure", str(db)],
            check=True, capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        n, grown = int(out[0]), int(out[1])
        size = db.stat().st_size + sum(p.stat().st_size for p in Path(root).glob("memory.db-*"))
    print(f"filled {n} trials ({args.studies} studies) in {filled:.0f} s")
    print(f"server memory, having run them: {running / n:.0f} bytes/trial")
    print(f"server memory, restarted: {grown / 2**20:.1f} MiB = {grown / n:.0f} bytes/trial")
    print(f"SQLite file: {size / 2**20:.1f} MiB = {size / n:.0f} bytes/trial")
    worst = max(grown, running) / n
    print(f"target <= 2048 bytes/trial: {'met' if worst <= 2048 else 'NOT met'}")


if __name__ == "__main__":
    main()
