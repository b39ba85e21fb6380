"""DurableStorage: Optuna's in-memory storage semantics, saved to a real SQLite file.

The same operations run against Optuna's own ``InMemoryStorage`` and against a ``DurableStorage``
that is then closed and opened again: what a restarted server reads must be what Optuna would
have answered before the restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import BaseStorage, InMemoryStorage
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial

from optunapi.errors import StorageBusyError
from optunapi.server.storage import DurableStorage, StorageInUseError, close, open_storage
from optunapi.server.storage.checkpoints import Checkpointer

DISTRIBUTIONS = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "units": IntDistribution(16, 512, step=16),
    "act": CategoricalDistribution(["relu", 1, 1.0, True, None]),
}


def exercise(storage: BaseStorage) -> None:
    """Every kind of write the server makes, on two studies."""
    single = storage.create_new_study([StudyDirection.MINIMIZE], "single")
    multi = storage.create_new_study([StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE], "multi")
    storage.set_study_user_attr(single, "owner", {"team": "ml", "n": [1, 2]})
    storage.set_study_system_attr(single, "optunapi:definition", {"space": {"x": 1}})
    for i in range(4):
        trial_id = storage.create_new_trial(single)
        storage.set_trial_param(trial_id, "lr", 0.001 * (i + 1), DISTRIBUTIONS["lr"])
        storage.set_trial_param(trial_id, "units", 32.0 * (i + 1), DISTRIBUTIONS["units"])
        storage.set_trial_param(trial_id, "act", float(i), DISTRIBUTIONS["act"])
        storage.set_trial_intermediate_value(trial_id, 3, 0.5 + i)
        storage.set_trial_user_attr(trial_id, "note", f"trial {i}")
        storage.set_trial_system_attr(trial_id, "constraints", [i - 1.5])
        if i < 3:
            state = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)[i]
            values = [10.0 - i] if state == TrialState.COMPLETE else None
            storage.set_trial_state_values(trial_id, state, values)
    waiting = create_trial(
        state=TrialState.WAITING, system_attrs={"fixed_params": {"lr": 0.01}}, user_attrs={}
    )
    storage.create_new_trial(single, template_trial=waiting)
    done = create_trial(
        params={"lr": 0.02, "act": None},
        distributions={"lr": DISTRIBUTIONS["lr"], "act": DISTRIBUTIONS["act"]},
        values=[1.5, 2.5],
    )
    storage.create_new_trial(multi, template_trial=done)
    doomed = storage.create_new_study([StudyDirection.MAXIMIZE], "doomed")
    storage.create_new_trial(doomed)
    storage.delete_study(doomed)


def snapshot(storage: BaseStorage) -> list[dict[str, object]]:
    """Everything the storage answers, in comparable form."""
    studies = []
    for study in sorted(storage.get_all_studies(), key=lambda s: s.study_name):
        trials = storage.get_all_trials(study._study_id)
        studies.append(
            {
                "name": study.study_name,
                "directions": study.directions,
                "user_attrs": study.user_attrs,
                "system_attrs": study.system_attrs,
                "trials": [
                    {
                        "number": t.number,
                        "state": t.state,
                        "values": t.values,
                        "params": {k: (type(v), v) for k, v in t.params.items()},
                        "distributions": t.distributions,
                        "user_attrs": t.user_attrs,
                        "system_attrs": t.system_attrs,
                        "steps": t.intermediate_values,
                        "started": t.datetime_start is not None,
                        "completed": t.datetime_complete is not None,
                    }
                    for t in trials
                ],
            }
        )
    return studies


def commit(storage: DurableStorage) -> DurableStorage:
    storage.commit()
    return storage


def test_a_reopened_file_answers_what_optuna_answers(tmp_path: Path) -> None:
    expected = InMemoryStorage()
    exercise(expected)
    durable = DurableStorage(tmp_path / "s.db", 1.0)
    exercise(durable)
    commit(durable).close()

    reopened = DurableStorage(tmp_path / "s.db", 1.0)
    assert snapshot(reopened) == snapshot(expected)
    single = reopened.get_study_id_from_name("single")
    assert reopened.get_best_trial(single).number == 0
    # New trials after the restart continue the numbers and the ids.
    trial_id = reopened.create_new_trial(single)
    assert reopened.get_trial(trial_id).number == 5
    assert trial_id not in {t._trial_id for t in snapshot_trials(reopened, "multi")}


def snapshot_trials(storage: BaseStorage, name: str) -> list[optuna.trial.FrozenTrial]:
    return storage.get_all_trials(storage.get_study_id_from_name(name))


def test_only_committed_changes_survive_a_restart(tmp_path: Path) -> None:
    durable = DurableStorage(tmp_path / "s.db", 1.0)
    study = durable.create_new_study([StudyDirection.MINIMIZE], "s")
    kept = durable.create_new_trial(study)
    commit(durable)
    durable.set_trial_state_values(kept, TrialState.COMPLETE, [1.0])
    durable.create_new_trial(study)
    durable._checkpointer.stop()  # as a killed process: nothing more reaches the file
    durable._db.close()
    os.close(durable._owner)
    reopened = DurableStorage(tmp_path / "s.db", 1.0)
    [trial] = reopened.get_all_trials(reopened.get_study_id_from_name("s"))
    assert trial.state == TrialState.RUNNING


def test_a_failed_commit_undoes_its_changes_in_memory(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    durable = DurableStorage(db, 0.1)
    study = durable.create_new_study([StudyDirection.MINIMIZE], "s")
    running = durable.create_new_trial(study)
    best = durable.create_new_trial(study)
    durable.set_trial_state_values(best, TrialState.COMPLETE, [5.0])
    gone = durable.create_new_study([StudyDirection.MINIMIZE], "gone")
    commit(durable)
    before = snapshot(durable)

    writer = sqlite3.connect(db)
    writer.execute("BEGIN IMMEDIATE")  # another writer holds the database
    try:
        durable.set_trial_user_attr(running, "k", "v")
        durable.set_trial_state_values(running, TrialState.COMPLETE, [1.0])  # a new best
        durable.create_new_trial(study)
        durable.set_study_user_attr(study, "k", "v")
        durable.create_new_study([StudyDirection.MINIMIZE], "new")
        durable.delete_study(gone)
        with pytest.raises(StorageBusyError):
            durable.commit()
        assert not durable.healthy
    finally:
        writer.rollback()
        writer.close()
    assert snapshot(durable) == before
    assert durable.get_best_trial(study)._trial_id == best
    # The next unit commits normally and numbers continue without a gap.
    trial_id = durable.create_new_trial(study)
    commit(durable)
    assert durable.healthy and durable.get_trial(trial_id).number == 2


IN_FLIGHT_QUERIES = [
    (TrialState.RUNNING,),
    (TrialState.WAITING,),
    (TrialState.RUNNING, TrialState.WAITING),
    (TrialState.COMPLETE, TrialState.RUNNING),
]


def in_flight(storage: BaseStorage, study: int) -> list[list[int]]:
    return [
        [t.number for t in storage.get_all_trials(study, deepcopy=False, states=states)]
        for states in IN_FLIGHT_QUERIES
    ]


def test_trials_in_flight_are_found_as_optuna_finds_them(tmp_path: Path) -> None:
    """Running and waiting trials are looked up without reading the finished ones before them;
    the answers stay Optuna's, also when a failed commit puts a finished trial back."""
    expected, durable = InMemoryStorage(), DurableStorage(tmp_path / "s.db", 0.1)
    both = [(s, s.create_new_study([StudyDirection.MINIMIZE], "s")) for s in (expected, durable)]
    waiting = create_trial(state=TrialState.WAITING, system_attrs={"fixed_params": {"x": 1}})
    ids = {}
    for storage, study in both:
        ids[storage] = [
            storage.create_new_trial(study, template_trial=waiting if n == 20 else None)
            for n in range(30)
        ]
    unfinished = (3, 17, 20, 29)
    for number in [*range(5, 30), 0, 1, 2, 4]:  # out of order, some never
        if number in unfinished:
            continue
        for storage, _ in both:
            storage.set_trial_state_values(ids[storage][number], TrialState.COMPLETE, [1.0])
        assert in_flight(durable, both[1][1]) == in_flight(expected, both[0][1])
    study = both[1][1]
    assert in_flight(durable, study)[2] == [3, 17, 20, 29]
    commit(durable)

    writer = sqlite3.connect(tmp_path / "s.db")
    writer.execute("BEGIN IMMEDIATE")  # the tell of trial 3 will not commit
    try:
        durable.set_trial_state_values(ids[durable][3], TrialState.COMPLETE, [1.0])
        assert in_flight(durable, study)[0] == [17, 29]
        with pytest.raises(StorageBusyError):
            durable.commit()
    finally:
        writer.rollback()
        writer.close()
    assert in_flight(durable, study) == in_flight(expected, both[0][1])
    assert in_flight(durable, study)[0] == [3, 17, 29]


def test_commits_leave_the_log_to_the_checkpointer(tmp_path: Path) -> None:
    """No commit copies the log back (which took milliseconds, inline); the thread does."""
    path = tmp_path / "s.db"
    durable = DurableStorage(path, 1.0)
    durable._checkpointer.stop()
    study = durable.create_new_study([StudyDirection.MINIMIZE], "s")
    for _ in range(1200):  # a page or more each: past SQLite's own checkpoint, at 1,000
        durable.create_new_trial(study)
        commit(durable)
    checkpointer = Checkpointer(path, durable._lock, interval=3600)
    try:
        busy, log, copied = checkpointer.checkpoint()
        assert busy == 0 and log > 1000 and copied == log
        restarts = _wal_restarts(path)
        durable.create_new_trial(study)
        commit(durable)  # the first commit after a whole checkpoint starts the log anew
        assert _wal_restarts(path) == restarts + 1
        assert checkpointer.checkpoint()[1] < 10
    finally:
        checkpointer.stop()
        close(durable)
    reopened = DurableStorage(path, 1.0)
    assert len(reopened.get_all_trials(reopened.get_study_id_from_name("s"))) == 1201
    close(reopened)


def test_the_storage_checkpoints_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    durable = DurableStorage(path, 1.0)
    study = durable.create_new_study([StudyDirection.MINIMIZE], "s")
    commit(durable)
    restarts = _wal_restarts(path)
    deadline = time.monotonic() + 30
    while _wal_restarts(path) == restarts:  # each pass of the thread lets a commit restart it
        assert time.monotonic() < deadline, "no checkpoint in 30 s"
        durable.create_new_trial(study)
        commit(durable)
    close(durable)


def _wal_restarts(path: Path) -> int:
    """The log's checkpoint sequence number, which SQLite increments when it starts it anew."""
    header = Path(f"{path}-wal").read_bytes()[:16]
    return int.from_bytes(header[12:16], "big")


def test_one_process_owns_a_file(tmp_path: Path) -> None:
    owner = DurableStorage(tmp_path / "s.db", 1.0)
    with pytest.raises(StorageInUseError, match="another running optunapi server"):
        DurableStorage(tmp_path / "s.db", 1.0)
    served = subprocess.run(
        [sys.executable, "-m", "optunapi.cli", "serve", "--port", "0",
         "--storage", f"sqlite:///{tmp_path / 's.db'}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert served.returncode == 1 and "another running optunapi server" in served.stderr
    owner.close()
    DurableStorage(tmp_path / "s.db", 1.0).close()  # free again


def test_a_database_of_optunas_relational_storage_is_opened_as_such(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="old", storage=url)
    study.enqueue_trial({"x": 1})
    storage = open_storage(url, 1.0)
    assert not isinstance(storage, DurableStorage)
    assert len(storage.get_all_trials(storage.get_study_id_from_name("old"))) == 1
    with pytest.raises(StorageInUseError):  # one server per file in this format too
        open_storage(url, 1.0)
    close(storage)
    close(open_storage(url, 1.0))


def test_rows_are_plain_json(tmp_path: Path) -> None:
    """Any SQLite client can read a study: one JSON row per trial."""
    durable = DurableStorage(tmp_path / "s.db", 1.0)
    exercise(durable)
    commit(durable).close()
    with contextlib.closing(sqlite3.connect(tmp_path / "s.db")) as db:
        rows = db.execute(
            "SELECT t.number, t.body FROM optunapi_trials t JOIN optunapi_studies s "
            "USING (study_id) WHERE s.name = 'single' ORDER BY t.number"
        ).fetchall()
    first = json.loads(rows[0][1])
    assert first["state"] == "COMPLETE" and first["values"] == [10.0]
    assert first["params"] == {"lr": 0.001, "units": 32, "act": "relu"}
    assert datetime.fromisoformat(first["start"]) <= datetime.fromisoformat(first["complete"])
