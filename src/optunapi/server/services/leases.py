"""Leases: no trial stays RUNNING after its worker went silent.

Every RUNNING trial is leased for its study's ``lease_seconds`` from its start or its last
heartbeat (``heartbeat`` and ``report`` renew it). When a lease has expired the trial is *reaped*:
failed with the reason recorded in its user attrs, and, while the study allows retries, its params
are queued again as a new WAITING trial that the next ask hands out.

Reaping happens in a background thread and, for one study, before each of its asks (so an ask is
never held back by a dead worker's trial, whatever the reaper's timing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState
from starlette.concurrency import run_in_threadpool

from optunapi.server.concurrency import run_service
from optunapi.server.services.studies import Studies, StudyEntry
from optunapi.server.storage import finish_trial, queue_params

# Where lease state lives: system attrs for the server, user attrs for what people should see.
HEARTBEAT_KEY = "optunapi:heartbeat"
FAIL_REASON = "fail_reason"
RETRY_OF = "retry_of"
RETRIED_AS = "retried_as"
ATTEMPT = "attempt"

_ASK_REAP_GAP = 1.0
_log = logging.getLogger("optunapi.server")


class Leases:
    """Lease arithmetic and reaping for the studies of one storage."""

    def __init__(self, studies: Studies, default_seconds: float) -> None:
        self._studies = studies
        self._storage = studies.storage
        self.default_seconds = default_seconds

    def seconds(self, entry: StudyEntry) -> float:
        """The lease of the study's trials."""
        return entry.definition.lease_seconds or self.default_seconds

    def last_heartbeat(self, trial: FrozenTrial) -> float:
        """When the trial last showed life (epoch seconds): its last heartbeat, or its start."""
        beat = trial.system_attrs.get(HEARTBEAT_KEY)
        if beat is not None:
            return float(beat)
        assert trial.datetime_start is not None
        return trial.datetime_start.timestamp()  # Optuna stores naive local times

    def expires_at(self, entry: StudyEntry, trial: FrozenTrial) -> datetime | None:
        """When a RUNNING trial's lease runs out (None for other states)."""
        if trial.state != TrialState.RUNNING:
            return None
        return _utc(self.last_heartbeat(trial) + self.seconds(entry))

    def expired(self, entry: StudyEntry, trial: FrozenTrial, now: float) -> bool:
        """Whether a RUNNING trial's lease has run out."""
        return self.last_heartbeat(trial) + self.seconds(entry) <= now

    def renew(self, entry: StudyEntry, trial: FrozenTrial) -> datetime:
        """Record a heartbeat now; returns the new expiry. The caller holds the study lock."""
        now = time.time()
        self._storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_KEY, now)
        return _utc(now + self.seconds(entry))

    def reap_due(self, entry: StudyEntry) -> None:
        """Reap the study's expired trials unless that was done in the last second.

        Called before each ask, so that asks do not wait for the background pass, without
        reading every running trial on every ask.
        """
        if time.monotonic() - entry.last_reaped >= _ASK_REAP_GAP:
            self.reap_expired(entry)

    def reap_expired(self, entry: StudyEntry) -> int:
        """Reap every expired RUNNING trial of the study; returns how many."""
        now = time.time()
        with entry.locked(self._studies.study_wait):
            entry.last_reaped = time.monotonic()
            running = self._storage.get_all_trials(
                entry.study_id, deepcopy=False, states=(TrialState.RUNNING,)
            )
            expired = [t for t in running if self.expired(entry, t, now)]
            for trial in expired:
                self.reap(entry, trial, now)
        return len(expired)

    def reap(self, entry: StudyEntry, trial: FrozenTrial, now: float) -> None:
        """Fail a trial whose lease expired and queue a retry if the study allows one.

        The caller holds the study lock.
        """
        attrs: dict[str, Any] = {
            FAIL_REASON: "stale",
            "last_heartbeat": _utc(self.last_heartbeat(trial)).isoformat(),
            "lease_seconds": self.seconds(entry),
            "reaped_at": _utc(now).isoformat(),
        }
        attempt = int(trial.user_attrs.get(ATTEMPT, 0))
        if attempt < entry.definition.max_retries:
            # Queued before the trial is failed, so whoever sees it failed sees its retry too.
            attrs[RETRIED_AS] = queue_params(
                self._storage,
                entry.study_id,
                dict(trial.params),
                user_attrs={RETRY_OF: trial.number, ATTEMPT: attempt + 1},
            )
        for key, value in attrs.items():
            self._storage.set_trial_user_attr(trial._trial_id, key, value)
        try:
            finish_trial(entry.study, trial.number, state=TrialState.FAIL)
        except (UpdateFinishedTrialError, ValueError):
            # Told meanwhile by another replica: its outcome stands, and the attrs above are
            # ignored (``reaped`` needs the FAIL state). A retry copy queued above then runs
            # once more: wasted work, never a lost result.
            return
        _log.info("reaped trial %d of %s (lease expired)", trial.number, entry.name)

    def forget(self, entry: StudyEntry) -> None:
        """Drop a study that was deleted meanwhile."""
        self._studies.forget(entry.name)

    def studies(self) -> list[StudyEntry]:
        """Every study of the storage, for a pass of the reaper (loaded if need be)."""
        entries = []
        for summary in self._storage.get_all_studies():
            # A study deleted meanwhile, or one whose definition is unreadable, is skipped.
            with contextlib.suppress(Exception):
                entries.append(self._studies.get(summary.study_name))
        return entries


def reaped(trial: FrozenTrial) -> bool:
    """Whether the trial was failed by the reaper, its lease having expired."""
    return trial.state == TrialState.FAIL and trial.user_attrs.get(FAIL_REASON) == "stale"


class Reaper:
    """Reaps expired trials every ``interval`` seconds: a task of the server's event loop.

    A study whose requests run on the event loop (``Trials.quick_lock``) is reaped there too: a
    thread holding the study's lock, if only while it waits for the interpreter, would send the
    quick requests behind it to worker threads. Other studies are reaped in a worker thread.
    """

    def __init__(
        self,
        leases: Leases,
        quick_lock: Callable[[str], threading.RLock | None],
        interval: float,
    ) -> None:
        self._leases = leases
        self._quick_lock = quick_lock
        self._interval = interval

    async def run(self) -> None:
        """Reap until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.reap_all()
            except Exception:
                # A busy or unreachable storage: the next pass tries again.
                _log.warning("reaper pass failed", exc_info=True)

    async def reap_all(self) -> int:
        """One pass over every study; returns how many trials were reaped."""
        reaped = 0
        for entry in await run_in_threadpool(self._leases.studies):
            try:
                quick = self._quick_lock(entry.name)
                reaped += await run_service(quick, self._leases.reap_expired, entry)
            except KeyError:  # deleted meanwhile
                self._leases.forget(entry)
        return reaped


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)
