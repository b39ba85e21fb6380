"""Prefilled studies, built once per run of the harness and copied for every measurement.

Every measured run starts from a fresh copy of a database file, so that no run inherits another's
trials. Filling 10,000 trials takes far longer than a measurement, so each kind of file is
filled once: optunapi's through its own HTTP API (``POST .../enqueue`` with a value, from several
connections at once), Optuna's through Optuna. All hold the same trials: a fixed sequence of
random points, so a smaller study is a prefix of a larger one and optunapi's can grow in steps.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.study import StudyDirection

from benchmarks.wire import Connection
from benchmarks.workloads import SPACES, STUDY, distributions, objective, random_point

PREFILL_CONNECTIONS = 8
SAMPLER_SEED = 42


def points(space: str, n: int) -> list[tuple[dict[str, Any], float]]:
    """The first ``n`` prefilled trials of ``space``: params and objective value."""
    rng = random.Random(f"prefill-{space}")
    result = []
    for _ in range(n):
        params = random_point(SPACES[space], rng)
        result.append((params, objective(SPACES[space], params)))
    return result


def copy_database(src: Path, dest: Path) -> None:
    """Copy an SQLite file with its WAL and shared-memory files, if its writer left any."""
    for suffix in ("", "-wal", "-shm"):
        if (source := Path(f"{src}{suffix}")).exists():
            shutil.copyfile(source, f"{dest}{suffix}")


def optunapi_command(db: Path, config_dir: Path) -> list[str]:
    """``optunapi serve`` on ``db``, port 0, as the benchmark runs it."""
    return [
        sys.executable, "-m", "optunapi.cli", "serve", "--port", "0",
        "--storage", f"sqlite:///{db}", "--config-dir", str(config_dir),
        "--log-level", "warning",
    ]  # fmt: skip


def study_body(space: str, sampler: str) -> bytes:
    """The ``POST /v1/studies`` body for the benchmark study."""
    return json.dumps(
        {"name": STUDY, "space": SPACES[space], "sampler": {"type": sampler, "seed": SAMPLER_SEED}}
    ).encode()


class Templates:
    """Prefilled database files in ``root``, built on first use."""

    def __init__(self, root: Path, say: Callable[[str], None]) -> None:
        """Keep templates under ``root``; report what takes time through ``say``."""
        self.root = root
        self.say = say
        root.mkdir(parents=True, exist_ok=True)
        self._optunapi: dict[tuple[str, str], list[int]] = {}

    def rdb(self, space: str, trials: int) -> Path:
        """An Optuna SQLite file whose study holds ``trials`` complete trials."""
        path = self.root / f"optuna-{space}-{trials}.db"
        if not path.exists():
            started = time.monotonic()
            building = _building(path)
            _fill_rdb(building, space, trials)
            _publish(building, path)
            self._said(f"Optuna SQLite study, {space}, {trials} trials", started)
        return path

    def journal(self, space: str, trials: int) -> Path:
        """An Optuna journal file whose study holds ``trials`` complete trials."""
        path = self.root / f"optuna-{space}-{trials}.journal"
        if not path.exists():
            started = time.monotonic()
            building = _building(path)
            storage = JournalStorage(JournalFileBackend(str(building)))
            study = optuna.create_study(study_name=STUDY, storage=storage)
            dists = distributions(SPACES[space])
            study.add_trials(
                optuna.trial.create_trial(params=p, distributions=dists, value=v)
                for p, v in points(space, trials)
            )
            _publish(building, path)
            self._said(f"Optuna journal study, {space}, {trials} trials", started)
        return path

    def optunapi(self, space: str, sampler: str, trials: int) -> Path:
        """An optunapi SQLite file holding the study with ``trials`` complete trials.

        Grows the largest smaller template of the same space and sampler, if there is one.
        """
        path = self.root / f"optunapi-{space}-{sampler}-{trials}.db"
        if path.exists():
            return path
        built = self._optunapi.setdefault((space, sampler), [])
        base = max((n for n in built if n < trials), default=0)
        started = time.monotonic()
        building = _building(path)
        if base:
            copy_database(self.root / f"optunapi-{space}-{sampler}-{base}.db", building)
        _fill_optunapi(building, space, sampler, base, trials, self.root)
        _publish(building, path)
        built.append(trials)
        rate = (trials - base) / max(time.monotonic() - started, 1e-9)
        self._said(
            f"optunapi study, {space} {sampler}, {trials} trials ({rate:.0f} enqueues/s)", started
        )
        return path

    def _said(self, what: str, started: float) -> None:
        self.say(f"prefilled {what} in {time.monotonic() - started:.1f} s")


def _building(path: Path) -> Path:
    """Where ``path`` is built, cleared of what an interrupted build left behind.

    A template appears under its name only once complete (``_publish``), so a failed build is
    never mistaken for a finished one.
    """
    building = path.with_name(f"building-{path.name}")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    return building


def _publish(building: Path, path: Path) -> None:
    """Move a complete template (and any WAL files its writer left) to its name."""
    for suffix in ("-wal", "-shm", ""):  # the main file last: it marks the template as done
        if (source := Path(f"{building}{suffix}")).exists():
            os.replace(source, f"{path}{suffix}")


def _fill_rdb(path: Path, space: str, trials: int) -> None:
    """Write the trials in one transaction, straight into Optuna's tables.

    Optuna's ``add_trials`` commits each trial on its own, about 5 ms apiece on SQLite: 50 s for
    a 10k study. The rows written here are those ``add_trial`` writes for a complete
    single-objective trial; loading the study back checks them.
    """
    from optuna.storages._rdb import models
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    storage = RDBStorage(f"sqlite:///{path}")
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], STUDY)
    dists = distributions(SPACES[space])
    now = datetime.datetime.now()
    trial_rows, param_rows, value_rows = [], [], []
    for number, (params, value) in enumerate(points(space, trials)):
        trial_id = number + 1  # a fresh file: the first trial id is 1
        trial_rows.append(
            {"trial_id": trial_id, "number": number, "study_id": study_id,
             "state": optuna.trial.TrialState.COMPLETE,
             "datetime_start": now, "datetime_complete": now}
        )  # fmt: skip
        for name, val in params.items():
            param_rows.append(
                {"trial_id": trial_id, "param_name": name,
                 "param_value": dists[name].to_internal_repr(val),
                 "distribution_json": optuna.distributions.distribution_to_json(dists[name])}
            )  # fmt: skip
        value_rows.append(
            {"trial_id": trial_id, "objective": 0, "value": value,
             "value_type": models.TrialValueModel.TrialValueType.FINITE}
        )  # fmt: skip
    if trials:
        with Session(storage.engine) as session, session.begin():
            session.execute(insert(models.TrialModel), trial_rows)
            session.execute(insert(models.TrialParamModel), param_rows)
            session.execute(insert(models.TrialValueModel), value_rows)
    loaded = optuna.load_study(study_name=STUDY, storage=storage).get_trials(deepcopy=False)
    assert len(loaded) == trials, (len(loaded), trials)
    if trials:
        assert loaded[-1].params == points(space, trials)[-1][0], "prefilled params differ"
    storage.remove_session()
    storage.engine.dispose()


def _fill_optunapi(path: Path, space: str, sampler: str, have: int, want: int, root: Path) -> None:
    """Start optunapi on ``path``; enqueue trials ``have`` to ``want`` from several connections."""
    config_dir = root / "config"
    config_dir.mkdir(exist_ok=True)
    log = open(root / "optunapi-prefill.log", "a")  # noqa: SIM115 - closed below, after the server
    server = subprocess.Popen(
        optunapi_command(path, config_dir), stdout=subprocess.PIPE, stderr=log, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if "serving on " not in line:
            raise RuntimeError(f"optunapi did not start for the prefill: {line!r}")
        url = line.split("serving on ")[1].split()[0]
        status, body = Connection(url).request("POST", "/v1/studies", study_body(space, sampler))
        if status not in (200, 201):
            raise RuntimeError(f"creating the study: {status} {body[:300]!r}")
        todo = points(space, want)[have:]

        def enqueue(share: list[tuple[dict[str, Any], float]]) -> None:
            conn = Connection(url)
            target = f"/v1/studies/{STUDY}/enqueue"
            for params, value in share:
                payload = json.dumps({"params": params, "value": value}).encode()
                status, body = conn.request("POST", target, payload)
                if status not in (200, 201):
                    raise RuntimeError(f"enqueue: {status} {body[:300]!r}")
            conn.close()

        with ThreadPoolExecutor(PREFILL_CONNECTIONS) as pool:
            shares = [todo[i::PREFILL_CONNECTIONS] for i in range(PREFILL_CONNECTIONS)]
            for future in [pool.submit(enqueue, share) for share in shares]:
                future.result()
        status, body = Connection(url).request("GET", f"/v1/studies/{STUDY}")
        complete = json.loads(body)["counts"]["complete"]
        if complete != want:
            raise RuntimeError(f"the prefilled study holds {complete} trials, not {want}")
    finally:
        server.terminate()  # a clean shutdown: SQLite checkpoints its WAL into the file
        server.wait(timeout=60)
        log.close()
