"""Leases against a real server: killed workers, heartbeats, retries, late results (K5)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from optunapi import Client, TrialExpiredError, TrialNotRunningError

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "opt": {"type": "categorical", "choices": ["sgd", "adam"]},
}
# A worker that asks one trial, says its number, then hangs until it is killed.
HANGING_WORKER = """
import sys, threading
from optunapi import Client
trial = Client(sys.argv[1]).ask(sys.argv[2], worker="doomed")
print(trial.number, flush=True)
threading.Event().wait()
"""


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll an observable condition until it holds (the lease clock is real time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        threading.Event().wait(0.05)


def killed_worker_trial(client: Client, study: str) -> int:
    worker = subprocess.Popen(
        [sys.executable, "-c", HANGING_WORKER, client.url, study], stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    number = int(worker.stdout.readline())
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    return number


def test_a_killed_workers_trial_is_failed_as_stale(client: Client, study_name: str) -> None:
    client.create_study(study_name, SPACE, lease_seconds=1)
    number = killed_worker_trial(client, study_name)
    assert client.trial_info(study_name, number).state == "running"
    wait_until(lambda: client.trial_info(study_name, number).state == "fail")
    reaped = client.trial_info(study_name, number)
    assert reaped.user_attrs["fail_reason"] == "stale"
    assert reaped.user_attrs["last_heartbeat"] <= reaped.user_attrs["reaped_at"]
    assert client.study(study_name).counts.running == 0
    fresh = client.ask(study_name, worker="doomed")  # the dead holder's name is free again
    assert fresh.number != number and fresh.state == "running"


def test_a_killed_workers_trial_is_requeued_with_the_same_params(
    client: Client, study_name: str
) -> None:
    client.create_study(study_name, SPACE, lease_seconds=1, max_retries=1)
    number = killed_worker_trial(client, study_name)
    original = client.trial_info(study_name, number)
    wait_until(lambda: client.trial_info(study_name, number).state == "fail")
    copy_number = client.trial_info(study_name, number).user_attrs["retried_as"]
    assert client.trial_info(study_name, copy_number).state == "waiting"
    retry = client.ask(study_name)
    assert retry.number == copy_number and retry.params == original.params
    assert retry.user_attrs == {"retry_of": number, "attempt": 1}
    # The retry dies too: max_retries is 1, so it is failed and not queued again.
    wait_until(lambda: client.trial_info(study_name, copy_number).state == "fail")
    assert "retried_as" not in client.trial_info(study_name, copy_number).user_attrs
    assert client.trials(study_name, state="waiting") == []


def test_a_heartbeating_trial_is_never_reaped(client: Client, study_name: str) -> None:
    client.create_study(study_name, SPACE, lease_seconds=0.6)
    with client.trial(study_name) as trial:
        # Train for five lease periods; the context heartbeats in the background.
        assert not trial.lost.wait(3.0)
        assert client.trial_info(study_name, trial.number).state == "running"
        trial.tell(0.5)
    assert client.trial_info(study_name, trial.number).value == 0.5


def test_reports_renew_the_lease(client: Client, study_name: str) -> None:
    client.create_study(study_name, SPACE, lease_seconds=0.6)
    number = client.ask(study_name).number
    for step in range(8):
        assert client.report(study_name, number, step, 1.0 / (step + 1)) is False
        threading.Event().wait(0.2)  # 1.6 s in all: well past one lease, never past one gap
    stored = client.trial_info(study_name, number)
    assert stored.state == "running" and len(stored.intermediate_values) == 8


def test_late_results_without_retries_are_kept_once(client: Client, study_name: str) -> None:
    client.create_study(study_name, SPACE, lease_seconds=0.5)
    trial = client.ask(study_name)
    wait_until(lambda: client.trial_info(study_name, trial.number).state == "fail")
    with pytest.raises(TrialNotRunningError, match="stop working"):
        client.heartbeat(study_name, trial.number)
    late = client.tell(study_name, trial.number, 0.25)
    assert late.state == "complete" and late.value == 0.25 and late.params == trial.params
    assert late.user_attrs["late_result_of"] == trial.number
    assert client.tell(study_name, trial.number, 0.25).number == late.number  # idempotent
    assert client.trial_info(study_name, trial.number).state == "fail"
    with httpx.Client(base_url=client.url) as http:
        other = http.post(
            f"/v1/studies/{study_name}/trials/{trial.number}/tell", json={"value": 0.75}
        )
    assert other.status_code == 409 and other.json()["stored"]["value"] == 0.25
    assert [t.value for t in client.trials(study_name, state="complete")] == [0.25]


def test_late_result_goes_to_a_waiting_retry_or_is_refused(client: Client, study_name: str) -> None:
    client.create_study(study_name, SPACE, lease_seconds=0.5, max_retries=2)
    first = client.ask(study_name)
    wait_until(lambda: client.trial_info(study_name, first.number).state == "fail")
    told = client.tell(study_name, first.number, 1.5)  # its retry copy was still waiting
    assert told.number == client.trial_info(study_name, first.number).user_attrs["retried_as"]
    assert told.state == "complete" and told.params == first.params
    assert client.trials(study_name, state="waiting") == []

    second = client.ask(study_name)
    wait_until(lambda: client.trial_info(study_name, second.number).state == "fail")
    taken = client.ask(study_name)  # another worker takes the retry copy
    assert taken.params == second.params
    with pytest.raises(TrialExpiredError) as refused:
        client.tell(study_name, second.number, 2.5)
    assert refused.value.extra["retried_as"] == taken.number
    assert client.trial_info(study_name, taken.number).values != [2.5]
