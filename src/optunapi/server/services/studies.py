"""Studies: create, load, check against their definition, delete.

A study's definition (space, directions, sampler...) is stored with it, so a second create, or an
edited space file, is compared with what the trials were sampled from: the same definition loads
the study, a different one is a 409 and changes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import TrialState

from optunapi.errors import (
    ConflictError,
    InvalidSpaceError,
    StorageBusyError,
    StudyDefinitionConflictError,
    StudyNotFoundError,
)
from optunapi.names import check_study_name
from optunapi.server.services.sampling import build_pruner, build_sampler, decode, rehearse
from optunapi.server.storage import commit
from optunapi.space import StudyDefinition, definition_from_dict, parse_space_file

DEFINITION_KEY = "optunapi:definition"


@dataclass
class StudyEntry:
    """A study loaded in this process: its definition and the one sampler that serves it.

    One sampler per study per process, so that a seeded sampler hands out a sequence of
    different samples rather than the same first sample to every request.
    """

    name: str
    study_id: int
    definition: StudyDefinition
    study: optuna.Study
    canonical: str
    # Unique to this study: SQLite reuses the ids of deleted studies, so (name, id) is not.
    uid: str
    # Sampling and telling are serialized per study: Optuna's samplers are not thread-safe, and
    # the check-then-tell of a trial must be atomic.
    lock: threading.RLock = field(default_factory=threading.RLock)
    # When this process last looked for expired leases in the study (time.monotonic()).
    last_reaped: float = 0.0
    # Saves the storage's pending changes (``storage.commit``).
    save: Callable[[], None] = lambda: None

    @contextlib.contextmanager
    def locked(self, timeout: float) -> Iterator[None]:
        """Hold the study's lock to change it, and save the changes before letting go, so that
        they are durable before they are acknowledged.

        Raises:
            StorageBusyError: the lock was not had within ``timeout`` seconds (when the storage
                is stuck, requests answer 503 instead of queueing without end), or the changes
                could not be saved.
        """
        if not self.lock.acquire(timeout=timeout):
            raise StorageBusyError(
                f"Study {self.name!r} is busy: the requests before this one did not finish "
                f"within {timeout:g} s (is the storage locked?). Nothing was changed; retry.",
            )
        try:
            try:
                yield
            except BaseException:
                # What was changed before the error is saved too; the error is the answer.
                with contextlib.suppress(StorageBusyError):
                    self.save()
                raise
            self.save()
        finally:
            self.lock.release()


class Studies:
    """The studies of one storage, loaded on first use and kept for the life of the process."""

    def __init__(self, storage: BaseStorage, config_dir: Path, study_wait: float) -> None:
        self._storage = storage
        self._config_dir = config_dir
        #: How long a request waits for a study that other requests hold.
        self.study_wait = study_wait
        self._entries: dict[str, StudyEntry] = {}
        self._lock = threading.Lock()
        self._files: dict[str, tuple[tuple[int, int], StudyDefinition, str]] = {}

    @property
    def storage(self) -> BaseStorage:
        """The Optuna storage behind these studies."""
        return self._storage

    def create(self, name: str, definition: StudyDefinition) -> tuple[StudyEntry, bool]:
        """Create the study, or load it if it exists with the same definition.

        Returns:
            The study and whether it was created by this call.

        Raises:
            InvalidNameError, InvalidSpaceError: nothing was created.
            StudyDefinitionConflictError: it exists with another definition.
        """
        check_study_name(name)
        rehearse(definition)  # bad sampler or pruner options fail now, not at the first ask
        with self._lock:
            directions = [StudyDirection[d.upper()] for d in definition.directions]
            try:
                study_id = self._storage.create_new_study(directions, name)
            except DuplicatedStudyError:
                entry = self._load(name, adopt=definition)
                self._check_same(entry, definition)
                return entry, False
            try:
                self._storage.set_study_system_attr(study_id, DEFINITION_KEY, _stored(definition))
                entry = self._load(name)
                if definition.metric_names:
                    entry.study.set_metric_names(list(definition.metric_names))
                commit(self._storage)
            except BaseException:
                # A create that fails half-way leaves no study behind.
                self._entries.pop(name, None)
                with contextlib.suppress(Exception):
                    self._storage.delete_study(study_id)
                raise
            return entry, True

    def get(self, name: str) -> StudyEntry:
        """The study named ``name`` (only an ask creates one from its space file).

        Raises:
            InvalidNameError, StudyNotFoundError.
        """
        check_study_name(name)
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        with self._lock:
            return self._load(name)

    def loaded(self, name: str) -> StudyEntry | None:
        """The study named ``name`` if this process has it loaded already."""
        return self._entries.get(name)

    def for_ask(self, name: str) -> StudyEntry:
        """The study to ask a trial of. When ``{config_dir}/{name}.yaml`` exists, it defines the
        study: created on first use, and checked on every ask, so that an edited file is a 409
        before any trial is created."""
        check_study_name(name)
        loaded = self._file_definition(name)
        if loaded is None:
            return self.get(name)
        definition, canonical = loaded
        try:
            entry = self.get(name)  # an existing study is compared, not created again
        except (StudyNotFoundError, ConflictError):  # none yet, or one Optuna made: adopt it
            return self.create(name, definition)[0]
        if entry.canonical != canonical:
            self._check_same(entry, definition)
        return entry

    def delete(self, name: str) -> None:
        """Delete the study of this name and all its trials.

        Raises:
            InvalidNameError, StudyNotFoundError.
        """
        check_study_name(name)
        entry = self._entries.get(name)
        # The study's lock first, then the registry's, as a request on the study takes them:
        # waiting for the study while holding the registry would stop every request that looks
        # a study up, the one holding this study included, until the wait timed out.
        with entry.locked(self.study_wait) if entry else contextlib.nullcontext(), self._lock:
            self._entries.pop(name, None)
            try:  # by its current id: a cached entry may be of an older study
                self._storage.delete_study(self._storage.get_study_id_from_name(name))
            except KeyError:
                raise StudyNotFoundError(f"There is no study named {name!r}.") from None
            commit(self._storage)

    def exists(self, entry: StudyEntry) -> bool:
        """Whether the study of a cached entry is still in the storage (not deleted, nor
        replaced by a new study of the same name)."""
        try:
            study_id = self._storage.get_study_id_from_name(entry.name)
            raw = self._storage.get_study_system_attrs(study_id).get(DEFINITION_KEY) or {}
        except KeyError:
            return False
        return bool(raw.get("uid") == entry.uid)

    def forget(self, name: str) -> None:
        """Drop a cached study that another process deleted."""
        with self._lock:
            self._entries.pop(name, None)

    def _load(self, name: str, adopt: StudyDefinition | None = None) -> StudyEntry:
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        try:
            study_id = self._storage.get_study_id_from_name(name)
            raw = self._storage.get_study_system_attrs(study_id).get(DEFINITION_KEY)
            if raw is None:
                raw = self._adopt(name, study_id, adopt)
            definition = definition_from_dict(raw)
            n_trials = len(self._storage.get_all_trials(study_id, deepcopy=False))
            study = optuna.load_study(
                study_name=name,
                storage=self._storage,
                sampler=build_sampler(definition, seed_offset=n_trials),
                pruner=build_pruner(definition.pruner),
            )
        except KeyError:  # no such study, or deleted while loading
            raise StudyNotFoundError(
                f"There is no study named {name!r}: create it with POST /v1/studies, or put "
                f"{name}.yaml in the server's config directory."
            ) from None
        entry = StudyEntry(
            name,
            study_id,
            definition,
            study,
            _canonical(definition),
            str(raw.get("uid")),
            save=functools.partial(commit, self._storage),
        )
        self._entries[name] = entry
        return entry

    def _adopt(self, name: str, study_id: int, definition: StudyDefinition | None) -> dict:  # type: ignore[type-arg]
        """Give a definition to a study that has none: one made by Optuna itself or by the
        original optunapi (whose trials then have to fit the definition's space and
        directions), or one whose creator died before storing its definition."""
        if definition is None:
            raise ConflictError(
                f"Study {name!r} exists but was not created by optunapi, so it has no search "
                f"space; put {name}.yaml in the server's config directory to adopt it, or "
                "delete it."
            )
        directions = [d.name.lower() for d in self._storage.get_study_directions(study_id)]
        misfits = [
            f"trial {t.number}: {'; '.join(m['message'] for m in problems)}"
            for t in self._storage.get_all_trials(study_id, deepcopy=False)
            if (problems := _misfits(definition, t.params, whole=t.state == TrialState.COMPLETE))
        ]
        if directions != list(definition.directions) or misfits:
            why = misfits[:3] or [f"its directions are {directions}"]
            raise ConflictError(
                f"Study {name!r} exists but was not created by optunapi, and its trials do not "
                f"fit the given definition ({'; '.join(why)}); delete it or use another name."
            )
        stored = _stored(definition)
        self._storage.set_study_system_attr(study_id, DEFINITION_KEY, stored)
        commit(self._storage)
        return stored

    def _check_same(self, entry: StudyEntry, given: StudyDefinition) -> None:
        differing = entry.definition.differences(given)
        if not differing:
            return
        stored, wanted = entry.definition.identity(), given.identity()
        parts = "; ".join(
            f"{k}: stored {json.dumps(stored[k])}, given {json.dumps(wanted[k])}" for k in differing
        )
        raise StudyDefinitionConflictError(
            f"Study {entry.name!r} exists with a different definition: "
            f"{' and '.join(differing)} {'differs' if len(differing) == 1 else 'differ'} "
            f"({parts}). "
            "Use a new study name, or delete the study first.",
            stored={k: stored[k] for k in differing},
            given={k: wanted[k] for k in differing},
        )

    def _file_definition(self, name: str) -> tuple[StudyDefinition, str] | None:
        for suffix in (".yaml", ".yml"):
            try:  # os.stat on a str: pathlib's objects cost more than the system call (every ask)
                stat = os.stat(f"{self._config_dir}/{name}{suffix}")
            except (FileNotFoundError, NotADirectoryError):
                continue
            path = self._config_dir / f"{name}{suffix}"
            key = (stat.st_mtime_ns, stat.st_size)
            cached = self._files.get(name)
            if cached is not None and cached[0] == key:
                return cached[1], cached[2]
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidSpaceError(
                    f"The space file {path.name} cannot be read: {exc}",
                    errors=[{"param": "(file)", "message": str(exc)}],
                ) from None
            definition = parse_space_file(text)
            self._files[name] = (key, definition, _canonical(definition))
            return definition, self._files[name][2]
        return None


def _misfits(
    definition: StudyDefinition, params: dict[str, Any], whole: bool
) -> list[dict[str, Any]]:
    """Why a trial's stored params are not a point of the definition's space (only a ``whole``
    trial, a complete one, must have every parameter)."""
    by_name = {p.name: p for p in definition.space.params}
    decoded = {k: decode(by_name[k], v) if k in by_name else v for k, v in params.items()}
    problems = definition.space.check_params(decoded)
    if not whole:
        problems = [p for p in problems if not p["message"].endswith("is missing")]
    return problems


def _stored(definition: StudyDefinition) -> dict[str, Any]:
    return {**definition.to_dict(), "uid": uuid.uuid4().hex}


def _canonical(definition: StudyDefinition) -> str:
    return json.dumps(definition.identity(), sort_keys=True)
