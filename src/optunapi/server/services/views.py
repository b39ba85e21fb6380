"""Studies and trials as the API shows them: reads, listings, counts, best trials."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

from optuna.trial import FrozenTrial, TrialState

from optunapi.errors import (
    ConflictError,
    StorageBusyError,
    StudyNotFoundError,
    TrialNotFoundError,
)
from optunapi.schemas import StateCounts, StudyRead, StudySummary, TrialRead, TrialStateName
from optunapi.server.services.leases import Leases
from optunapi.server.services.sampling import decode
from optunapi.server.services.studies import Studies, StudyEntry
from optunapi.server.storage import CONSTRAINTS_KEY, queued_params

WORKER_KEY = "optunapi:worker"

STATE_NAMES: dict[TrialState, TrialStateName] = {
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "fail",
}
STATES = {name: state for state, name in STATE_NAMES.items()}


class Views:
    """Read-only views of the studies of one storage."""

    def __init__(self, studies: Studies, leases: Leases) -> None:
        self._studies = studies
        self._storage = studies.storage
        self._leases = leases

    def get(self, name: str, number: int) -> TrialRead:
        """One trial of a study."""
        entry = self._studies.get(name)
        with self.study_gone(entry):
            return self.read(entry, self.trial(entry, number))

    def page(
        self, name: str, state: TrialStateName | None, offset: int, limit: int
    ) -> tuple[list[TrialRead], int]:
        """One page of a study's trials, ordered by number, and how many match in all."""
        entry = self._studies.get(name)
        states = None if state is None else (STATES[state],)
        with self.study_gone(entry):
            trials = self._storage.get_all_trials(entry.study_id, deepcopy=False, states=states)
        trials = sorted(trials, key=lambda t: t.number)
        return [self.read(entry, t) for t in trials[offset : offset + limit]], len(trials)

    def best(self, entry: StudyEntry) -> list[FrozenTrial]:
        """The best feasible trial, or the Pareto front; empty when none is complete."""
        with self.study_gone(entry):
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
        with self.study_gone(entry):
            trials = self._storage.get_all_trials(entry.study_id, deepcopy=False)
        counts: dict[str, int] = {}
        for t in trials:
            key = STATE_NAMES[t.state]
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
            lease_seconds=self._leases.seconds(entry),
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
        stored = queued_params(trial)  # a waiting trial shows the params it will run
        params = {p.name: decode(p, stored[p.name]) for p in space.params if p.name in stored}
        constraints = trial.system_attrs.get(CONSTRAINTS_KEY)
        return TrialRead(
            number=trial.number,
            state=STATE_NAMES[trial.state],
            params=params,
            values=trial.values,
            value=trial.values[0] if trial.values else None,
            intermediate_values=dict(trial.intermediate_values),
            datetime_start=_utc(trial.datetime_start),
            datetime_complete=_utc(trial.datetime_complete),
            worker=trial.system_attrs.get(WORKER_KEY),
            lease_expires_at=self._leases.expires_at(entry, trial),
            user_attrs=trial.user_attrs,
            constraints=None if constraints is None else list(constraints),
        )

    def export(self, name: str, fmt: str) -> str:
        """Every trial of a study as CSV (one row a trial) or JSON (the study and its trials)."""
        entry = self._studies.get(name)
        with self.study_gone(entry):
            frozen = self._storage.get_all_trials(entry.study_id, deepcopy=False)
        trials = [self.read(entry, t) for t in sorted(frozen, key=lambda t: t.number)]
        if fmt == "json":
            body = {
                "study": self.describe(entry).model_dump(mode="json"),
                "trials": [t.model_dump(mode="json") for t in trials],
            }
            return json.dumps(body, indent=1)
        definition = entry.definition
        # Prefixed, so that no metric name can collide with another column.
        metrics = [f"values_{m}" for m in definition.metric_names or ()] or (
            ["value"]
            if len(definition.directions) == 1
            else [f"values_{i}" for i in range(len(definition.directions))]
        )
        names = [p.name for p in definition.space.params]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            [
                "number",
                "state",
                *metrics,
                *(f"params_{n}" for n in names),
                "datetime_start",
                "datetime_complete",
                "worker",
            ]
        )
        for t in trials:
            values: list[float | None] = [*t.values] if t.values else [None] * len(metrics)
            params = [_cell(t.params[n]) if n in t.params else None for n in names]
            writer.writerow(
                [
                    t.number,
                    t.state,
                    *values,
                    *params,
                    _iso(t.datetime_start),
                    _iso(t.datetime_complete),
                    t.worker,
                ]
            )
        return out.getvalue()

    def trial(self, entry: StudyEntry, number: int) -> FrozenTrial:
        """Trial ``number`` of the study, as stored."""
        try:
            trial_id = self._storage.get_trial_id_from_study_id_trial_number(entry.study_id, number)
        except KeyError:
            raise TrialNotFoundError(
                f"Study {entry.name!r} has no trial number {number}."
            ) from None
        return self._storage.get_trial(trial_id)

    @contextmanager
    def study_gone(self, entry: StudyEntry) -> Iterator[None]:
        """Turn 'this study id no longer exists' (deleted by another request) into a 404."""
        try:
            yield
        except KeyError:
            # Optuna raises KeyError for rows (or cache entries) that vanished: the study was
            # deleted meanwhile. If it still looks present, the delete is under way.
            if self._studies.exists(entry):
                raise StorageBusyError(
                    f"Study {entry.name!r} is being deleted or replaced; retry."
                ) from None
            self._studies.forget(entry.name)
            raise StudyNotFoundError(f"Study {entry.name!r} was deleted.") from None


def _cell(value: object) -> object:
    """A param value in a CSV cell: numbers and strings as they are, anything else as JSON."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return value
    return json.dumps(value)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _listed(names: Sequence[str] | None) -> list[str] | None:
    return None if names is None else list(names)


def _feasible(trial: FrozenTrial) -> bool:
    constraints = trial.system_attrs.get(CONSTRAINTS_KEY)
    return constraints is None or all(c <= 0 for c in constraints)


def _utc(moment: datetime | None) -> datetime | None:
    # Optuna stores naive local times.
    return None if moment is None else moment.astimezone(timezone.utc)
