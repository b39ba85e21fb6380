"""Trials: ask, tell, heartbeat, report. Every Optuna write to a trial lives here."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState, create_trial

from optunapi.errors import (
    InvalidValueError,
    RequestValidationError,
    StudyNotFoundError,
    TrialExpiredError,
    TrialFinishedError,
    TrialNotRunningError,
)
from optunapi.schemas import PruneAdvice, TrialEnqueue, TrialRead, TrialTell
from optunapi.server.services.leases import RETRIED_AS, Leases, reaped
from optunapi.server.services.sampling import (
    distribution,
    encode,
    point_count,
    served,
    suggest_all,
)
from optunapi.server.services.studies import Studies, StudyEntry
from optunapi.server.services.views import STATE_NAMES, STATES, WORKER_KEY, Views
from optunapi.server.storage import (
    CONSTRAINTS_KEY,
    ensure_writable,
    finish_trial,
    queue_params,
    queued_params,
    quick,
    start_trial,
    was_queued,
)

LATE_RESULT_OF = "late_result_of"
# Samplers whose ask reads no other trial, so costs the same at 10 and 10,000 trials.
_QUICK_SAMPLERS = {"random"}


class Asked(NamedTuple):
    """The answer to an ask."""

    trial: TrialRead
    #: False: the worker's running trial, handed back.
    created: bool
    #: Another trial in flight with the same params: the space is exhausted.
    twin: int | None
    #: Which study of this name the trial belongs to (``STUDY_UID_HEADER``).
    study_uid: str


class Trials:
    """Ask-and-tell over HTTP for the studies of one storage."""

    def __init__(self, studies: Studies, leases: Leases, views: Views) -> None:
        self._studies = studies
        self._storage = studies.storage
        self._leases = leases
        self._views = views

    def quick_lock(self, name: str, asking: bool) -> threading.RLock | None:
        """The study's lock when a request on it takes well under a millisecond, so that it may
        run on the event loop rather than pay for a hop to a worker thread: the study is loaded,
        the storage answers from memory, and, for an ask, the sampler does not read the trials.
        None otherwise."""
        entry = self._studies.loaded(name)
        if entry is None or not quick(self._storage):
            return None
        if asking and entry.definition.sampler["type"] not in _QUICK_SAMPLERS:
            return None
        return entry.lock

    def ask(self, name: str, worker: str | None = None) -> Asked:
        """Start a trial: a queued one (a retry) if any, else one with freshly sampled params.

        A ``worker`` that already holds a RUNNING trial of this study gets that trial back, so
        a restarted process resumes its trial instead of leaking it.
        """
        entry = self._studies.for_ask(name)
        with self._views.study_gone(entry), entry.locked(self._studies.study_wait):
            self._leases.reap_due(entry)
            if worker is not None:
                held = self._held_by(entry, worker)
                if held is not None:
                    read = self._views.read(entry, held)
                    return Asked(read, created=False, twin=None, study_uid=entry.uid)
            ensure_writable(self._storage)
            trial = self._new_trial(entry, worker)
            read, twin = self._views.read(entry, trial), self._twin(entry, trial)
            return Asked(read, created=True, twin=twin, study_uid=entry.uid)

    def tell(
        self, name: str, number: int, outcome: TrialTell, study_uid: str | None = None
    ) -> TrialRead:
        """Finish a trial. An identical repeat answers the stored trial; a different one is a 409.

        A result for a trial reaped after its lease expired is still stored when no other
        worker took its params over (see ``_tell_late``).

        Raises:
            InvalidValueError: the values do not fit the study; the trial stays RUNNING.
            TrialFinishedError: finished with another outcome, which is left as it was.
            TrialExpiredError: reaped, and its params handed to another worker.
            StudyNotFoundError: ``study_uid`` is not the study's: it was deleted.
        """
        entry = self._studies.get(name)
        _check_study(entry, study_uid)
        with self._views.study_gone(entry), entry.locked(self._studies.study_wait):
            frozen = self._views.trial(entry, number)
            state, values = STATES[outcome.state], outcome.all_values()
            if frozen.state == TrialState.WAITING:
                raise TrialNotRunningError(
                    f"Trial {number} of study {name!r} is waiting: it has not been handed out "
                    "yet, so it cannot be told."
                )
            if frozen.state == TrialState.RUNNING:
                self._check_values(entry, state, values)
                self._finish(entry, frozen, outcome)
                return self._views.read(entry, self._views.trial(entry, number))
            if reaped(frozen) and state != TrialState.FAIL:
                return self._tell_late(entry, frozen, outcome)
            # A body refused on a running trial is refused on a finished one too.
            self._check_values(entry, state, values, running=False)
            self._check_repeat(entry, frozen, outcome)
            return self._views.read(entry, frozen)

    def enqueue(self, name: str, request: TrialEnqueue) -> tuple[int, bool]:
        """Queue params for the next ask, or add them as a finished trial when a value is given.

        Returns:
            The trial's number, and whether it was created (False: ``skip_if_exists`` found
            a trial with the same params).

        Raises:
            RequestValidationError: the params are not a point of the study's space.
        """
        entry = self._studies.get(name)
        space = entry.definition.space
        problems = space.check_params(request.params)
        if problems:
            raise RequestValidationError(
                f"These params are not a point of study {name!r}'s space: "
                + "; ".join(p["message"] for p in problems),
                errors=problems,
            )
        params = {
            p.name: encode(p, request.params[p.name])
            for p in space.params
            if p.name in request.params
        }
        values = request.all_values()
        with self._views.study_gone(entry), entry.locked(self._studies.study_wait):
            if request.skip_if_exists:
                trials = self._storage.get_all_trials(entry.study_id, deepcopy=False)
                for trial in trials:
                    if _same_params(queued_params(trial), params):
                        return trial.number, False
            if values is None:
                number = queue_params(
                    self._storage, entry.study_id, params, request.user_attrs or {}
                )
                return number, True
            self._check_values(entry, TrialState.COMPLETE, values, running=False)
            template = create_trial(
                state=TrialState.COMPLETE,
                params=params,
                distributions={p.name: distribution(p) for p in space.params if p.name in params},
                values=values,
                user_attrs=request.user_attrs,
            )
            trial_id = self._storage.create_new_trial(entry.study_id, template_trial=template)
            return self._storage.get_trial_number_from_id(trial_id), True

    def heartbeat(self, name: str, number: int, study_uid: str | None = None) -> datetime:
        """Renew a RUNNING trial's lease; returns when it now expires.

        Raises:
            TrialNotRunningError: the trial is finished or was reaped: stop working on it.
            StudyNotFoundError: ``study_uid`` is not the study's: it was deleted.
        """
        entry = self._studies.get(name)
        _check_study(entry, study_uid)
        with self._views.study_gone(entry), entry.locked(self._studies.study_wait):
            return self._leases.renew(entry, self._running(entry, number))

    def report(
        self, name: str, number: int, step: int, value: float, study_uid: str | None = None
    ) -> PruneAdvice:
        """Store an intermediate value, renew the lease; says whether to prune the trial, and
        whether the value was stored (as in Optuna, a step's first value stays)."""
        entry = self._studies.get(name)
        _check_study(entry, study_uid)
        with self._views.study_gone(entry), entry.locked(self._studies.study_wait):
            frozen = self._running(entry, number)
            stored = step not in frozen.intermediate_values
            if stored:
                self._storage.set_trial_intermediate_value(frozen._trial_id, step, value)
            self._leases.renew(entry, frozen)
            if entry.definition.is_multi_objective:  # Optuna's pruners are for one objective
                return PruneAdvice(should_prune=False, stored=stored)
            frozen = self._views.trial(entry, number)
            prune = bool(entry.study.pruner.prune(entry.study, frozen))
            return PruneAdvice(should_prune=prune, stored=stored)

    def _running(self, entry: StudyEntry, number: int) -> FrozenTrial:
        """Trial ``number`` if it is RUNNING with a live lease (an expired one is reaped now)."""
        frozen = self._views.trial(entry, number)
        now = time.time()
        if frozen.state == TrialState.RUNNING and self._leases.expired(entry, frozen, now):
            self._leases.reap(entry, frozen, now)
            frozen = self._views.trial(entry, number)
        if frozen.state == TrialState.RUNNING:
            return frozen
        why = f"is {STATE_NAMES[frozen.state]}"
        if reaped(frozen):
            last = frozen.user_attrs.get("last_heartbeat")
            why = f"was failed when its lease expired (last heartbeat {last})"
            if frozen.user_attrs.get(RETRIED_AS) is not None:
                why += f" and re-queued as trial {frozen.user_attrs[RETRIED_AS]}"
        raise TrialNotRunningError(
            f"Trial {number} of study {entry.name!r} {why}: stop working on it.",
            state=STATE_NAMES[frozen.state],
        )

    def _new_trial(self, entry: StudyEntry, worker: str | None) -> FrozenTrial:
        drawn = None
        if not self._storage.get_all_trials(
            entry.study_id, deepcopy=False, states=(TrialState.WAITING,)
        ):  # a queued trial (retry, enqueue) goes to Optuna's ask, which hands it out
            drawn = served(entry.study.sampler).draw_all(entry.study, entry.definition.space)
        if drawn is not None:
            system_attrs = {} if worker is None else {WORKER_KEY: worker}
            trial_id = start_trial(self._storage, entry.study_id, *drawn, system_attrs)
            return self._storage.get_trial(trial_id)
        trial = entry.study.ask()
        try:
            suggest_all(trial, entry.definition.space)
            if worker is not None:
                self._storage.set_trial_system_attr(trial._trial_id, WORKER_KEY, worker)
        except BaseException:
            # Never leave a RUNNING trial behind a failed ask.
            self._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            raise
        return self._storage.get_trial(trial._trial_id)

    def _finish(self, entry: StudyEntry, frozen: FrozenTrial, outcome: TrialTell) -> None:
        trial_id = frozen._trial_id
        state, values = STATES[outcome.state], outcome.all_values()
        for key, value in (outcome.user_attrs or {}).items():
            self._storage.set_trial_user_attr(trial_id, key, value)
        if outcome.constraints is not None:
            self._storage.set_trial_system_attr(trial_id, CONSTRAINTS_KEY, outcome.constraints)
        try:
            finish_trial(entry.study, frozen.number, values, state)
        except (UpdateFinishedTrialError, ValueError):
            stored = self._views.trial(entry, frozen.number)
            if not stored.state.is_finished():
                raise
            # Finished by another server on the same database meanwhile.
            self._check_repeat(entry, stored, outcome)

    def _tell_late(self, entry: StudyEntry, reaped: FrozenTrial, outcome: TrialTell) -> TrialRead:
        """Store the result of a trial that was reaped after its lease expired.

        The reaped trial stays failed (it is what happened to it). Its result goes to the retry
        copy of its params if that copy is still waiting, else, when retries are off, to a new
        trial with the same params; either carries ``late_result_of``. A copy another worker
        already took makes this a 409: the result is not stored.
        """
        state, values = STATES[outcome.state], outcome.all_values()
        self._check_values(entry, state, values)
        trials = self._storage.get_all_trials(entry.study_id, deepcopy=False)
        stored = [t for t in trials if t.user_attrs.get(LATE_RESULT_OF) == reaped.number]
        if stored:
            self._check_repeat(entry, stored[0], outcome)
            return self._views.read(entry, stored[0])
        copy_number = reaped.user_attrs.get(RETRIED_AS)
        if copy_number is None:
            template = create_trial(
                state=TrialState.RUNNING,
                params=reaped.params,
                distributions=reaped.distributions,
                user_attrs={LATE_RESULT_OF: reaped.number},
            )
            trial_id = self._storage.create_new_trial(entry.study_id, template_trial=template)
        else:
            copy = self._views.trial(entry, int(copy_number))
            trial_id = copy._trial_id
            if not (
                copy.state == TrialState.WAITING
                and self._storage.set_trial_state_values(trial_id, TrialState.RUNNING)
            ):
                raise TrialExpiredError(
                    f"Trial {reaped.number} of study {entry.name!r} was failed when its lease "
                    f"expired, and its params were handed out again as trial {copy_number} "
                    f"(now {STATE_NAMES[copy.state]}); this result was not stored.",
                    retried_as=int(copy_number),
                )
            # A queued trial gets its params when asked; this one is claimed, so set them here.
            for name, distribution in reaped.distributions.items():
                internal = distribution.to_internal_repr(reaped.params[name])
                self._storage.set_trial_param(trial_id, name, internal, distribution)
            self._storage.set_trial_user_attr(trial_id, LATE_RESULT_OF, reaped.number)
        late = self._storage.get_trial(trial_id)
        self._finish(entry, late, outcome)
        return self._views.read(entry, self._storage.get_trial(trial_id))

    def _twin(self, entry: StudyEntry, trial: FrozenTrial) -> int | None:
        """When every point of the study's space is in flight and ``trial``'s sampled params
        repeat one, the number of the other trial in flight there; else None. Only for discrete
        spaces without conditions (the ones whose points can be counted), and not for a queued
        trial, whose params were chosen by whoever queued them."""
        points = point_count(entry.definition.space)
        if points is None or was_queued(trial):
            return None
        in_flight = self._storage.get_all_trials(
            entry.study_id, deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)
        )
        held = {t.number: _json(queued_params(t)) for t in in_flight}
        if len(set(held.values())) < points:  # a point was free, yet a sampler chose this one
            return None
        mine = _json(trial.params)
        return min((n for n, p in held.items() if p == mine and n != trial.number), default=None)

    def _held_by(self, entry: StudyEntry, worker: str) -> FrozenTrial | None:
        running = self._storage.get_all_trials(
            entry.study_id, deepcopy=False, states=(TrialState.RUNNING,)
        )
        mine = [t for t in running if t.system_attrs.get(WORKER_KEY) == worker]
        return min(mine, key=lambda t: t.number) if mine else None

    def _check_values(
        self,
        entry: StudyEntry,
        state: TrialState,
        values: Sequence[float] | None,
        running: bool = True,
    ) -> None:
        n = len(entry.definition.directions)
        if state == TrialState.COMPLETE:
            if values is None:
                raise InvalidValueError(
                    "A complete trial needs its objective: give 'value' (or 'values'), or tell "
                    "state 'fail' for a run that produced none.",
                    expected=n,
                )
            if len(values) != n:
                raise InvalidValueError(
                    f"Study {entry.name!r} has {n} objective(s) "
                    f"({', '.join(entry.definition.directions)}) but {len(values)} value(s) "
                    "were given" + ("; the trial is still running." if running else "."),
                    expected=n,
                )
        elif values is not None:
            raise InvalidValueError(
                f"A {STATE_NAMES[state]} trial takes no value: a pruned trial keeps its last "
                "reported value, a failed one none.",
            )

    def _check_repeat(self, entry: StudyEntry, stored: FrozenTrial, outcome: TrialTell) -> None:
        """Pass a tell that repeats the stored outcome (state, values, and the constraints and
        user attrs it gives); raise ``TrialFinishedError`` for any other."""
        state, values = STATES[outcome.state], outcome.all_values()
        stored_constraints = stored.system_attrs.get(CONSTRAINTS_KEY)
        same = stored.state == state and (
            state == TrialState.PRUNED or _same_values(stored.values, values)
        )
        if same and outcome.constraints is not None:
            same = _same_values(stored_constraints, outcome.constraints)
        if same and outcome.user_attrs:
            # As JSON: 1, 1.0 and true are different attrs.
            same = all(
                key in stored.user_attrs and _json(stored.user_attrs[key]) == _json(value)
                for key, value in outcome.user_attrs.items()
            )
        if same:
            return
        shown: str = STATE_NAMES[stored.state]
        if stored.values:
            shown += " with " + ("value " if len(stored.values) == 1 else "values ")
            shown += ", ".join(repr(v) for v in stored.values)
        if stored_constraints is not None:
            shown += f" and constraints {list(stored_constraints)}"
        if outcome.user_attrs:
            shown += f" and user_attrs {_json(stored.user_attrs)}"
        raise TrialFinishedError(
            f"Trial {stored.number} of study {entry.name!r} is already {shown}; a trial has one "
            "outcome, so this different one was not stored.",
            stored={
                "number": stored.number,
                "state": STATE_NAMES[stored.state],
                "values": stored.values,
                "value": stored.values[0] if stored.values else None,
                "constraints": stored_constraints,
                "user_attrs": stored.user_attrs,
            },
        )


def _check_study(entry: StudyEntry, study_uid: str | None) -> None:
    """Refuse a request about a trial of an earlier study of this name, given by the uid its ask
    answered: deleted and created again, the study numbers its trials from 0 anew."""
    if study_uid is not None and study_uid != entry.uid:
        raise StudyNotFoundError(
            f"The study {entry.name!r} that this trial belonged to was deleted; the study of that "
            "name now is another one. Stop working on this trial; nothing was changed."
        )


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True)


def _same_params(a: dict[str, object], b: dict[str, object]) -> bool:
    return _json(a) == _json(b)


def _same_values(a: Sequence[float] | None, b: Sequence[float] | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return list(a) == list(b)
