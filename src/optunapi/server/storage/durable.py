"""``DurableStorage``: Optuna's in-memory storage, saved to a SQLite file before each answer.

Optuna's relational storage costs about 15 ms of SQLite work per trial here: a row and several
queries per parameter, and every running trial read back on each ask. This storage keeps the
studies in memory, as Optuna's ``InMemoryStorage`` does (samplers read them at memory speed), and
writes what changed to a SQLite file at ``commit``, one row per changed trial, in one transaction.

A *unit* is what one thread changed since its last commit: the server commits at the end of every
request that writes (while it holds the study's lock) and answers after the commit, so an
acknowledged write is on disk (SQLite in WAL mode survives a killed process). A failed commit
undoes its unit in memory too, so a 503 leaves the study as it was.

One process owns a file (an exclusive lock, taken at open): the memory is the truth only while no
other writer exists. Other processes may read the file with any SQLite client.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from optuna._typing import JSONSerializable
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution
from optuna.storages import InMemoryStorage
from optuna.storages._in_memory import _StudyInfo
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from optunapi.errors import StorageBusyError
from optunapi.server.storage.checkpoints import Checkpointer

FORMAT = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS optunapi_studies (
    study_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL  -- JSON: directions, user_attrs, system_attrs
);
CREATE TABLE IF NOT EXISTS optunapi_trials (
    trial_id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    body TEXT NOT NULL,  -- JSON: state, values, times, params, distributions, attrs, steps
    UNIQUE (study_id, number)
);
"""

_UPSERT_TRIAL = (
    "INSERT INTO optunapi_trials VALUES (?, ?, ?, ?) "
    "ON CONFLICT (trial_id) DO UPDATE SET body = excluded.body"
)


@dataclass
class _StudyBefore:
    """A study as it was when a unit first changed it."""

    info: _StudyInfo
    user_attrs: dict[str, Any]
    system_attrs: dict[str, Any]
    # Where its trials were, when the unit deletes it.
    trial_ids: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass
class _Unit:
    """What one thread changed since its last commit, with what it replaced (None: created)."""

    studies: dict[int, _StudyBefore | None] = field(default_factory=dict)
    trials: dict[int, FrozenTrial | None] = field(default_factory=dict)


class StorageInUseError(RuntimeError):
    """Another process holds the SQLite file."""


class DurableStorage(InMemoryStorage):
    """Studies in memory, every change saved to ``path`` by ``commit``.

    Args:
        path: The SQLite file; created with its tables if missing.
        busy_timeout: Seconds a commit waits for another writer (a backup, a shell) to finish.

    Raises:
        StorageInUseError: another process has the file open as its storage.
    """

    def __init__(self, path: Path, busy_timeout: float) -> None:
        super().__init__()
        self._owner = lock_exclusively(path)
        # isolation_level=None: transactions are begun and ended here, explicitly.
        # check_same_thread=False: the connection is used under ``self._lock`` from any thread.
        self._db = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        # WAL: readers never block the writer. synchronous=NORMAL: a commit is in the WAL
        # before it returns, which a killed process cannot undo (a power cut can lose the last).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's work
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={FORMAT}")
        # One object per distinct distribution: 100,000 trials of one space share six.
        self._distributions: dict[tuple[str, str], BaseDistribution] = {}
        self._distribution_json: dict[int, str] = {}
        self._shared_distributions: dict[tuple[tuple[str, int], ...], dict[str, Any]] = {}
        self._units = threading.local()
        # Per study, a trial number below which every trial is finished: a finished trial never
        # changes state again (but an undone unit may put one back: ``_undo`` resets it).
        self._first_unfinished: dict[int, int] = {}
        #: False after a commit failed, until one succeeds: the database may be locked.
        self.healthy = True
        self._load()
        self._checkpointer = Checkpointer(path, self._lock)

    # -- saving ------------------------------------------------------------------------------

    def commit(self) -> None:
        """Write what this thread changed since its last commit, in one transaction.

        Raises:
            StorageBusyError: the file stayed locked past the busy timeout, or the write failed;
                the changes are undone in memory as well, as if they had not been made.
        """
        unit = self._unit()
        if not (unit.studies or unit.trials):
            return
        with self._lock:
            self._units.current = _Unit()
            studies = [i for i in unit.studies if i in self._studies]
            deleted = [(i,) for i in unit.studies if i not in self._studies]
            trials = [i for i in unit.trials if i in self._trial_id_to_study_id_and_number]
            try:
                self._write(
                    deleted,
                    [(i, self._studies[i].name, self._study_body(i)) for i in studies],
                    [self._trial_row(i) for i in trials],
                )
            except sqlite3.Error as exc:
                self.healthy = False
                self._undo(unit)
                raise StorageBusyError(
                    f"The database could not be written ({exc}); nothing was changed. Retry."
                ) from None
            self.healthy = True

    def close(self) -> None:
        """Release the file (changes not committed are lost, as they were not acknowledged)."""
        self._checkpointer.stop()
        with self._lock:
            self._db.close()  # the last connection to close checkpoints the log whole
            os.close(self._owner)

    def _write(
        self,
        deleted: list[tuple[int]],
        studies: list[tuple[int, str, str]],
        trials: list[tuple[int, int, int, str]],
    ) -> None:
        if not deleted and not studies and len(trials) == 1:  # most asks and tells
            # One statement is a transaction of its own in autocommit mode.
            self._db.execute(_UPSERT_TRIAL, trials[0])
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if deleted:
                self._db.executemany("DELETE FROM optunapi_trials WHERE study_id = ?", deleted)
                self._db.executemany("DELETE FROM optunapi_studies WHERE study_id = ?", deleted)
            if studies:  # after the deletions: a study created here may take a freed name
                self._db.executemany(
                    "INSERT INTO optunapi_studies VALUES (?, ?, ?) ON CONFLICT (study_id) "
                    "DO UPDATE SET name = excluded.name, body = excluded.body",
                    studies,
                )
            self._db.executemany(_UPSERT_TRIAL, trials)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _unit(self) -> _Unit:
        unit: _Unit | None = getattr(self._units, "current", None)
        if unit is None:
            unit = self._units.current = _Unit()
        return unit

    def _touch_study(self, study_id: int, deleting: bool = False) -> None:
        """Remember the study as it is, before this unit first changes it (and, before it is
        deleted, where its trials are: read only then, as QMC and grid samplers change their
        study's attrs at every ask)."""
        unit = self._unit()
        info = self._studies.get(study_id)
        if study_id not in unit.studies:
            unit.studies[study_id] = (
                None if info is None else _StudyBefore(info, info.user_attrs, info.system_attrs)
            )
        before = unit.studies[study_id]
        if deleting and before is not None and info is not None:
            before.trial_ids = {t._trial_id: (study_id, t.number) for t in info.trials}

    def _touch_trial(self, trial_id: int) -> None:
        """Remember the trial as it is, before this unit first changes it. Optuna's in-memory
        storage replaces a trial's object on every change, so the object itself is the copy."""
        unit = self._unit()
        if trial_id not in unit.trials:
            unit.trials[trial_id] = self._get_trial(trial_id)

    def _undo(self, unit: _Unit) -> None:
        """Put back what the unit changed, newest first. The caller holds ``self._lock``."""
        touched: set[int] = set()
        for trial_id, before in reversed(unit.trials.items()):
            where = self._trial_id_to_study_id_and_number.get(trial_id)
            if where is None:  # its study was deleted in this unit: put back with the study
                continue
            study_id, number = where
            touched.add(study_id)
            trials = self._studies[study_id].trials
            if before is None:  # created in this unit; the study lock kept it the last one
                assert trials[-1]._trial_id == trial_id
                trials.pop()
                del self._trial_id_to_study_id_and_number[trial_id]
            else:
                trials[number] = before
        for study_id, study_before in reversed(unit.studies.items()):
            if study_before is None:  # created in this unit
                if study_id in self._studies:
                    super().delete_study(study_id)
                continue
            info = study_before.info
            info.user_attrs, info.system_attrs = study_before.user_attrs, study_before.system_attrs
            if study_id not in self._studies:  # deleted in this unit
                self._studies[study_id] = info
                self._study_name_to_id[info.name] = study_id
                self._trial_id_to_study_id_and_number.update(study_before.trial_ids)
                for trial_id, before in unit.trials.items():
                    if before is not None and trial_id in study_before.trial_ids:
                        info.trials[before.number] = before
            touched.add(study_id)
        for study_id in touched & self._studies.keys():
            info = self._studies[study_id]
            self._prev_waiting_trial_number[study_id] = 0
            self._first_unfinished[study_id] = 0
            info.best_trial_id = None
            for trial in info.trials:
                self._update_cache(trial._trial_id, study_id)

    # -- reading ------------------------------------------------------------------------------

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        """See ``optuna.storages.BaseStorage``. The trials in flight (what the reaper and some
        asks look for) are found without reading the finished ones before the first of them:
        at 20,000 trials, 10 us instead of 1 ms."""
        if states is None or any(s in states for s in _FINISHED):
            return super().get_all_trials(study_id, deepcopy, states)
        with self._lock:
            self._check_study_id(study_id)
            trials = self._studies[study_id].trials
            first = self._first_unfinished.get(study_id, 0)
            while first < len(trials) and trials[first].state in _FINISHED:
                first += 1
            self._first_unfinished[study_id] = first
            found = [t for t in trials[first:] if t.state in states]
            return copy.deepcopy(found) if deepcopy else found

    # -- Optuna's storage API: every change joins the thread's unit --------------------------

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        """See ``optuna.storages.BaseStorage``."""
        with self._lock:
            study_id = super().create_new_study(directions, study_name)
            self._unit().studies.setdefault(study_id, None)
            return study_id

    def delete_study(self, study_id: int) -> None:
        """See ``optuna.storages.BaseStorage``."""
        with self._lock:
            if study_id in self._studies:
                self._touch_study(study_id, deleting=True)
            super().delete_study(study_id)
            self._first_unfinished.pop(study_id, None)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        """See ``optuna.storages.BaseStorage``."""
        with self._lock:
            self._check_study_id(study_id)
            self._touch_study(study_id)
            super().set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: JSONSerializable) -> None:
        """See ``optuna.storages.BaseStorage``."""
        with self._lock:
            self._check_study_id(study_id)
            self._touch_study(study_id)
            super().set_study_system_attr(study_id, key, value)

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        """See ``optuna.storages.BaseStorage``."""
        with self._lock:
            trial_id = super().create_new_trial(study_id, template_trial)
            self._unit().trials[trial_id] = None
            if template_trial is not None and template_trial.distributions:
                trial = self._get_trial(trial_id)  # a fresh copy nobody else holds yet
                trial.distributions = {
                    name: self._intern(d) for name, d in trial.distributions.items()
                }
            return trial_id

    def create_running_trial(
        self,
        study_id: int,
        params: dict[str, Any],
        distributions: dict[str, BaseDistribution],
        system_attrs: dict[str, Any],
    ) -> int:
        """A RUNNING trial started now with these params, made in one step (not one copy of
        the trial per parameter, as ``set_trial_param`` makes). The caller owns the dicts."""
        with self._lock:
            self._check_study_id(study_id)
            trial = FrozenTrial(
                number=-1,
                trial_id=-1,
                state=TrialState.RUNNING,
                value=None,
                values=None,
                datetime_start=datetime.now(),  # naive local time, as Optuna's storages
                datetime_complete=None,
                params=params,
                distributions={name: self._intern(d) for name, d in distributions.items()},
                user_attrs={},
                system_attrs=system_attrs,
                intermediate_values={},
            )
            trial_id = self._max_trial_id + 1
            self._max_trial_id = trial_id
            info = self._studies[study_id]
            trial.number = len(info.trials)
            trial._trial_id = trial_id
            self._trial_id_to_study_id_and_number[trial_id] = (study_id, trial.number)
            info.trials.append(trial)
            info.param_distribution.update(trial.distributions)
            self._unit().trials[trial_id] = None
            return trial_id

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        """See ``optuna.storages.BaseStorage``."""
        with self._lock:
            self._touch_trial(trial_id)
            super().set_trial_param(
                trial_id, param_name, param_value_internal, self._intern(distribution)
            )

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        """See ``optuna.storages.BaseStorage``."""
        with self._lock:
            self._touch_trial(trial_id)
            changed = super().set_trial_state_values(trial_id, state, values)
            if changed and state.is_finished():
                self._compact(self._get_trial(trial_id))
            return changed

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        """See ``optuna.storages.BaseStorage``."""
        with self._lock:
            self._touch_trial(trial_id)
            super().set_trial_intermediate_value(trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        """See ``optuna.storages.BaseStorage``."""
        with self._lock:
            self._touch_trial(trial_id)
            super().set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: JSONSerializable) -> None:
        """See ``optuna.storages.BaseStorage``."""
        with self._lock:
            self._touch_trial(trial_id)
            super().set_trial_system_attr(trial_id, key, value)

    def _compact(self, trial: FrozenTrial) -> None:
        """Share a finished trial's distributions and empty attrs with the other trials of its
        space (a fresh object, replaced by the state change, that no reader holds yet)."""
        key = tuple((name, id(d)) for name, d in trial.distributions.items())
        trial.distributions = self._shared_distributions.setdefault(key, trial.distributions)
        for attr in ("user_attrs", "system_attrs", "intermediate_values"):
            if not getattr(trial, attr):
                setattr(trial, attr, _EMPTY)

    # -- rows --------------------------------------------------------------------------------

    def _intern(self, distribution: BaseDistribution) -> BaseDistribution:
        # The class and every field, by repr: choices 1, 1.0, True and "1" stay apart.
        key = (type(distribution).__name__, repr(distribution.__dict__))
        found = self._distributions.get(key)
        if found is None:
            self._distributions[key] = found = distribution
            self._distribution_json[id(found)] = distribution_to_json(found)
        return found

    def _study_body(self, study_id: int) -> str:
        info = self._studies[study_id]
        return json.dumps(
            {
                "directions": [d.name for d in info.directions],
                "user_attrs": info.user_attrs,
                "system_attrs": info.system_attrs,
            }
        )

    def _trial_row(self, trial_id: int) -> tuple[int, int, int, str]:
        study_id, number = self._trial_id_to_study_id_and_number[trial_id]
        trial = self._studies[study_id].trials[number]
        body = {
            "state": trial.state.name,
            "values": trial.values,
            "start": _iso(trial.datetime_start),
            "complete": _iso(trial.datetime_complete),
            "params": trial.params,
            "distributions": {
                name: self._distribution_json.get(id(d)) or distribution_to_json(d)
                for name, d in trial.distributions.items()
            },
            "user_attrs": trial.user_attrs,
            "system_attrs": trial.system_attrs,
            "steps": trial.intermediate_values,
        }
        return trial_id, study_id, number, json.dumps(body)

    def _load(self) -> None:
        """Rebuild the studies in memory from the file."""
        for study_id, name, body in self._db.execute(
            "SELECT study_id, name, body FROM optunapi_studies ORDER BY study_id"
        ):
            raw = json.loads(body)
            info = _StudyInfo(name, [StudyDirection[d] for d in raw["directions"]])
            info.user_attrs = raw["user_attrs"]
            info.system_attrs = raw["system_attrs"]
            self._studies[study_id] = info
            self._study_name_to_id[name] = study_id
            self._prev_waiting_trial_number[study_id] = 0
            self._max_study_id = max(self._max_study_id, study_id)
        # Trials of one space share their distributions, names and choices, and their empty
        # attrs: the in-memory storage replaces a trial's dicts before it changes them, never
        # changes them in place, so sharing is safe, and halves the memory per trial.
        shared: dict[tuple[tuple[str, str], ...], dict[str, BaseDistribution]] = {}
        by_text: dict[str, BaseDistribution] = {}
        for trial_id, study_id, number, body in self._db.execute(
            "SELECT trial_id, study_id, number, body FROM optunapi_trials ORDER BY study_id, number"
        ):
            raw = json.loads(body)
            key = tuple(raw["distributions"].items())
            distributions = shared.get(key)
            if distributions is None:
                distributions = {}
                for name, text in key:
                    if text not in by_text:
                        by_text[text] = self._intern(json_to_distribution(text))
                    distributions[sys.intern(name)] = by_text[text]
                shared[key] = distributions
            info = self._studies[study_id]
            trial = FrozenTrial(
                number=number,
                state=TrialState[raw["state"]],
                value=None,
                values=raw["values"],
                datetime_start=_parse(raw["start"]),
                datetime_complete=_parse(raw["complete"]),
                params={sys.intern(k): _shared(v) for k, v in raw["params"].items()},
                distributions=distributions,
                user_attrs=raw["user_attrs"] or _EMPTY,
                system_attrs=raw["system_attrs"] or _EMPTY,
                intermediate_values={int(k): v for k, v in raw["steps"].items()} or _EMPTY,
                trial_id=trial_id,
            )
            assert number == len(info.trials), f"trial numbers of study {study_id} have a gap"
            info.trials.append(trial)
            info.param_distribution.update(distributions)
            self._trial_id_to_study_id_and_number[trial_id] = (study_id, number)
            self._max_trial_id = max(self._max_trial_id, trial_id)
            self._update_cache(trial_id, study_id)


_FINISHED = frozenset(s for s in TrialState if s.is_finished())

# The in-memory storage replaces a trial's dicts before it changes them, never changes them in
# place: one empty dict can stand for every trial's empty attrs.
_EMPTY: dict[Any, Any] = {}


def _shared(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) else value


def lock_exclusively(path: Path) -> int:
    """Take the lock that makes this process the owner of the file at ``path``; returns the
    descriptor that holds it (closing it releases the lock).

    Raises:
        StorageInUseError: another process holds it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageInUseError(
            f"{path} is the storage of another running optunapi server: one server process "
            "owns a SQLite file. Stop it, or give this server another file."
        ) from None
    return fd


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
