"""The digits demo: a server, a study and four trainers searching it in parallel.

Starts ``optunapi serve`` on a free port with a SQLite file in ``run/``, creates the study from
``config/digits.yaml``, runs the trainers, shows progress, then prints the best trial. Each run
starts a fresh search: the previous run's database is removed first.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from optunapi import Client, OptunapiError
from optunapi.schemas import StudyRead

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUN = HERE / "run"
CONFIG = HERE / "config"
STUDY = "digits"
TRAINERS = 4
TRIALS_EACH = 10


def shown(path: Path) -> Path:
    """``path`` relative to the repository when run from its root, else absolute."""
    if Path.cwd() == ROOT and path.is_relative_to(ROOT):
        return path.relative_to(ROOT)
    return path


def start_server(db: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``optunapi serve`` on a free port; return it and its URL once it listens.

    All its output goes to ``run/server.log``, copied by a thread, so that the pipe never fills.
    """
    command = [
        sys.executable, "-m", "optunapi.cli", "serve", "--port", "0",
        "--storage", f"sqlite:///{db}", "--config-dir", str(CONFIG),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert server.stdout is not None
    log = open(RUN / "server.log", "w")  # noqa: SIM115 - closed by the copying thread
    for line in server.stdout:
        log.write(line)
        if " serving on " in line:
            threading.Thread(target=copy_lines, args=(server.stdout, log)).start()
            return server, line.split(" serving on ")[1].split()[0]
    log.close()
    server.wait()
    output = (RUN / "server.log").read_text()
    sys.exit(f"The server did not start (exit {server.returncode}):\n{output}")


def copy_lines(source: TextIO, target: TextIO) -> None:
    """Copy ``source`` to ``target`` line by line until its end, then close ``target``."""
    with target:
        for line in source:
            target.write(line)
            target.flush()


def start_trainers(url: str) -> list[subprocess.Popen[str]]:
    """Start the trainers, each logging to ``run/trainer-N.log``."""
    trainers = []
    for i in range(1, TRAINERS + 1):
        command = [
            sys.executable, str(HERE / "trainer.py"), url, STUDY, str(TRIALS_EACH),
            "--worker", f"trainer-{i}",
        ]  # fmt: skip
        with open(RUN / f"trainer-{i}.log", "w") as log:
            trainers.append(
                subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
            )
    return trainers


def progress(study: StudyRead, done: int, total: int) -> str:
    """One line: trials finished, best score so far, failures."""
    parts = [f"[{done:{len(str(total))}}/{total}]"]
    if study.best is not None and study.best.value is not None:
        metric = (study.metric_names or ["value"])[0]
        parts.append(f"best {metric} {study.best.value:.4f} (trial {study.best.number})")
    if study.counts.fail:
        parts.append(f"{study.counts.fail} failed")
    return " ".join(parts)


def watch(client: Client, trainers: list[subprocess.Popen[str]]) -> StudyRead:
    """Print a progress line whenever a trial finishes, until every trainer has exited."""
    total, reported = TRAINERS * TRIALS_EACH, 0
    while True:
        running = any(t.poll() is None for t in trainers)
        study = client.study(STUDY)
        done = study.counts.complete + study.counts.fail + study.counts.pruned
        if done != reported:
            print(progress(study, done, total), flush=True)
            reported = done
        if not running:
            return study
        time.sleep(0.2)


def report(study: StudyRead, db: Path) -> None:
    """Print the best trial and how to look at the study again."""
    best = study.best
    if best is None or best.value is None:
        print("No trial completed.")
        return
    print(f"\nBest accuracy {best.value:.4f}, trial {best.number}:")
    for name, value in best.params.items():
        print(f"  {name} = {value:.4g}" if isinstance(value, float) else f"  {name} = {value}")
    optunapi = shown(Path(sys.executable).parent / "optunapi")
    print(f"\nThe study is stored in {shown(db)}. To look at it again:")
    print(f"  {optunapi} serve --storage sqlite:///{shown(db)}")
    print(f"  {optunapi} best {STUDY}    # in another terminal")


def main() -> int:
    """Run the demo; 1 if a trainer failed."""
    RUN.mkdir(exist_ok=True)
    db = RUN / "optunapi.db"
    for stale in RUN.glob(f"{db.name}*"):  # the database and its -wal and -shm files
        stale.unlink()
    server, url = start_server(db)
    trainers: list[subprocess.Popen[str]] = []
    try:
        print(f"Server on {url}, log in {shown(RUN / 'server.log')}")
        with Client(url) as client:
            client.create_study(STUDY, CONFIG / f"{STUDY}.yaml")
            print(f"Searching {STUDY!r} with {TRAINERS} trainers, {TRIALS_EACH} trials each")
            trainers = start_trainers(url)
            report(watch(client, trainers), db)
    except OptunapiError as exc:
        print(f"{exc}\nThe server's log: {shown(RUN / 'server.log')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        for process in [*trainers, server]:
            if process.poll() is None:
                process.terminate()
                process.wait()
    failed = [(i, t.returncode) for i, t in enumerate(trainers, 1) if t.returncode != 0]
    for i, code in failed:
        log = RUN / f"trainer-{i}.log"
        last = (log.read_text().strip().splitlines() or ["no output"])[-1]
        print(f"trainer-{i} failed (exit {code}): {last}\n  see {shown(log)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
