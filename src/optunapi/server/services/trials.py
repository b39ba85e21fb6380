"""Trials: ask, tell, read. Every Optuna call on a trial lives here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from optunapi.errors import (
    ConflictError,
    InvalidValueError,
    StudyNotFoundError,
    TrialFinishedError,
    TrialNotFoundError,
    TrialNotRunningError,
)
from optunapi.schemas import (
    StateCounts,
    StudyRead,
    StudySummary,
    TrialRead,
    TrialStateName,
    TrialTell,
)
from optunapi.server.services.sampling import decode, suggest_all
from optunapi.server.services.studies import Studies, StudyEntry
from optunapi.server.storage import CONSTRAINTS_KEY

WORKER_KEY = "optunapi:worker"

_STATE_NAMES: dict[TrialState, TrialStateName] = {
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "fail",
}
_STATES = {name: state for state, name in _STATE_NAMES.items()}


class Trials:
    """Ask-and-tell over HTTP for the studies of one storage."""

    def __init__(self, studies: Studies) -> None:
        self._studies = studies
        self._storage = studies.storage

    def ask(self, name: str, worker: str | None = None) -> tuple[TrialRead, bool]:
        """Start a trial with freshly sampled params.

        A ``worker`` that already holds a RUNNING trial of this study gets that trial back, so
        a restarted process resumes its trial instead of leaking it.

        Returns:
            The trial, and whether it was created by this call.
        """
        entry = self._studies.get(name)
        with self._study_gone(entry), entry.lock:
            if worker is not None:
                held = self._held_by(entry, worker)
                if held is not None:
                    return self.read(entry, held), False
            return self.read(entry, self._new_trial(entry, worker)), True

    def ask_legacy(self, entry: StudyEntry) -> FrozenTrial:
        """Start a trial for the legacy route."""
        with self._study_gone(entry), entry.lock:
            return self._new_trial(entry, None)

    def tell(self, name: str, number: int, outcome: TrialTell) -> TrialRead:
        """Finish a trial. An identical repeat answers the stored trial; a different one is a 409.

        Raises:
            InvalidValueError: the values do not fit the study; the trial stays RUNNING.
            TrialFinishedError: finished with another outcome, which is left as it was.
        """
        entry = self._studies.get(name)
        with self._study_gone(entry), entry.lock:
            frozen = self._trial(entry, number)
            values = outcome.all_values()
            state = _STATES[outcome.state]
            if frozen.state.is_finished():
                self._check_repeat(entry, frozen, state, values, outcome.constraints)
                return self.read(entry, frozen)
            if frozen.state != TrialState.RUNNING:
                raise TrialNotRunningError(
                    f"Trial {number} of study {name!r} is {_STATE_NAMES[frozen.state]}: it has "
                    "not been handed out yet, so it cannot be told."
                )
            self._check_values(entry, state, values)
            trial_id = frozen._trial_id
            if outcome.user_attrs:
                for key, value in outcome.user_attrs.items():
                    self._storage.set_trial_user_attr(trial_id, key, value)
            if outcome.constraints is not None:
                self._storage.set_trial_system_attr(
                    trial_id, CONSTRAINTS_KEY, list(outcome.constraints)
                )
            try:
                entry.study.tell(number, values, state=state)
            except UpdateFinishedTrialError:  # finished by another replica meanwhile
                frozen = self._trial(entry, number)
                self._check_repeat(entry, frozen, state, values, outcome.constraints)
            return self.read(entry, self._trial(entry, number))

    def get(self, name: str, number: int) -> TrialRead:
        """One trial of a study."""
        entry = self._studies.get(name)
        with self._study_gone(entry):
            return self.read(entry, self._trial(entry, number))

    def page(
        self, name: str, state: TrialStateName | None, offset: int, limit: int
    ) -> tuple[list[TrialRead], int]:
        """One page of a study's trials, ordered by number, and how many match in all."""
        entry = self._studies.get(name)
        states = None if state is None else (_STATES[state],)
        with self._study_gone(entry):
            trials = self._storage.get_all_trials(entry.study_id, deepcopy=False, states=states)
        trials = sorted(trials, key=lambda t: t.number)
        return [self.read(entry, t) for t in trials[offset : offset + limit]], len(trials)

    def best(self, entry: StudyEntry) -> list[FrozenTrial]:
        """The best feasible trial, or the Pareto front; empty when none is complete."""
        with self._study_gone(entry):
            if entry.definition.is_multi_objective:
                return sorted(entry.study.best_trials, key=lambda t: t.number)
            trials = self._storage.get_all_trials(
                entry.study_id, deepcopy=False, states=(TrialState.COMPLETE,)
            )
        feasible = [t for t in trials if _feasible(t)]
        if not feasible:
            return []
        sign = -1.0 if entry.definition.directions[0] == "maximize" else 1.0
        return [min(feasible, key=lambda t: (sign * t.values[0], t.number))]

    def counts(self, entry: StudyEntry) -> StateCounts:
        """How many trials the study holds in each state."""
        with self._study_gone(entry):
            trials = self._storage.get_all_trials(entry.study_id, deepcopy=False)
        counts: dict[str, int] = {}
        for t in trials:
            key = _STATE_NAMES[t.state]
            counts[key] = counts.get(key, 0) + 1
        return StateCounts(**counts)

    def describe(self, entry: StudyEntry) -> StudyRead:
        """A study as the API shows it: definition, counts per state, best trial(s)."""
        definition = entry.definition
        best = [self.read(entry, t) for t in self.best(entry)]
        return StudyRead(
            name=entry.name,
            directions=list(definition.directions),
            metric_names=_listed(definition.metric_names),
            counts=self.counts(entry),
            space=definition.space.to_dict(),
            sampler=definition.sampler,
            pruner=definition.pruner,
            lease_seconds=definition.lease_seconds,
            max_retries=definition.max_retries,
            best=best[0] if best and not definition.is_multi_objective else None,
            best_trials=best,
        )

    def summaries(self) -> list[StudySummary]:
        """Every study in the storage with its counts per state, by name."""
        out = []
        for frozen in sorted(self._storage.get_all_studies(), key=lambda s: s.study_name):
            try:
                entry = self._studies.get(frozen.study_name)
            except (ConflictError, StudyNotFoundError):
                continue  # not an optunapi study, or deleted meanwhile
            out.append(
                StudySummary(
                    name=entry.name,
                    directions=list(entry.definition.directions),
                    metric_names=_listed(entry.definition.metric_names),
                    counts=self.counts(entry),
                )
            )
        return out

    def read(self, entry: StudyEntry, trial: FrozenTrial) -> TrialRead:
        """A stored trial as the API shows it."""
        space = entry.definition.space
        params = {}
        for p in space.params:
            if p.name in trial.params:
                params[p.name] = decode(p, trial.params[p.name])
        constraints = trial.system_attrs.get(CONSTRAINTS_KEY)
        return TrialRead(
            number=trial.number,
            state=_STATE_NAMES[trial.state],
            params=params,
            values=trial.values,
            value=trial.values[0] if trial.values else None,
            intermediate_values=dict(trial.intermediate_values),
            datetime_start=_utc(trial.datetime_start),
            datetime_complete=_utc(trial.datetime_complete),
            worker=trial.system_attrs.get(WORKER_KEY),
            lease_expires_at=None,
            user_attrs=trial.user_attrs,
            constraints=None if constraints is None else list(constraints),
        )

    def _new_trial(self, entry: StudyEntry, worker: str | None) -> FrozenTrial:
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

    def _held_by(self, entry: StudyEntry, worker: str) -> FrozenTrial | None:
        running = self._storage.get_all_trials(
            entry.study_id, deepcopy=False, states=(TrialState.RUNNING,)
        )
        mine = [t for t in running if t.system_attrs.get(WORKER_KEY) == worker]
        return min(mine, key=lambda t: t.number) if mine else None

    def _trial(self, entry: StudyEntry, number: int) -> FrozenTrial:
        try:
            trial_id = self._storage.get_trial_id_from_study_id_trial_number(entry.study_id, number)
        except KeyError:
            raise TrialNotFoundError(
                f"Study {entry.name!r} has no trial number {number}."
            ) from None
        return self._storage.get_trial(trial_id)

    def _check_values(
        self, entry: StudyEntry, state: TrialState, values: Sequence[float] | None
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
                    "were given; the trial is still running.",
                    expected=n,
                )
        elif values is not None:
            raise InvalidValueError(
                f"A {_STATE_NAMES[state]} trial takes no value: a pruned trial keeps its last "
                "reported value, a failed one none.",
            )

    def _check_repeat(
        self,
        entry: StudyEntry,
        stored: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
        constraints: Sequence[float] | None,
    ) -> None:
        same = stored.state == state and (
            state == TrialState.PRUNED or _same_values(stored.values, values)
        )
        stored_constraints = stored.system_attrs.get(CONSTRAINTS_KEY)
        if same and constraints is not None:
            same = _same_values(stored_constraints, constraints)
        if same:
            return
        shown: str = _STATE_NAMES[stored.state]
        if stored.values:
            shown += " with " + ("value " if len(stored.values) == 1 else "values ")
            shown += ", ".join(repr(v) for v in stored.values)
        raise TrialFinishedError(
            f"Trial {stored.number} of study {entry.name!r} is already {shown}; a trial has one "
            "outcome, so this different one was not stored.",
            stored={
                "state": _STATE_NAMES[stored.state],
                "values": stored.values,
                "value": stored.values[0] if stored.values else None,
            },
        )

    @contextmanager
    def _study_gone(self, entry: StudyEntry) -> Iterator[None]:
        """Turn 'this study id no longer exists' (deleted by another request) into a 404."""
        try:
            yield
        except KeyError as exc:
            if "study" not in str(exc).lower() and "No study" not in str(exc):
                raise
            self._studies.forget(entry.name)
            raise StudyNotFoundError(f"Study {entry.name!r} was deleted.") from None


def _listed(names: Sequence[str] | None) -> list[str] | None:
    return None if names is None else list(names)


def _feasible(trial: FrozenTrial) -> bool:
    constraints = trial.system_attrs.get(CONSTRAINTS_KEY)
    return constraints is None or all(c <= 0 for c in constraints)


def _same_values(a: Sequence[float] | None, b: Sequence[float] | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return list(a) == list(b)


def _utc(moment: datetime | None) -> datetime | None:
    # Optuna stores naive local times.
    return None if moment is None else moment.astimezone(timezone.utc)
