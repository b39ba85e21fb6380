"""64 concurrent clients mixing every call: nothing lost, nothing duplicated, nothing stuck."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from optunapi import Client

from .test_leases import wait_until

SPACE = {
    "a": {"type": "float", "low": -1, "high": 1},
    "b": {"type": "int", "low": 1, "high": 64, "log": True},
    "c": {"type": "categorical", "choices": ["x", "y", "z"]},
}
CLIENTS, CYCLES = 64, 6
# Long enough for a heartbeat to arrive under this load on a 2-core machine, short enough for
# the trials that clients walk away from to be reaped within the test.
LEASE_SECONDS = 10


def test_64_clients_mixing_asks_tells_heartbeats_reports_and_reads(
    client: Client, study_name: str
) -> None:
    client.create_study(study_name, SPACE, lease_seconds=LEASE_SECONDS, sampler={"type": "random"})
    acked: dict[int, float] = {}
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS)
    base = f"/v1/studies/{study_name}/trials"

    def run(i: int) -> None:
        rng = random.Random(i)
        with httpx.Client(base_url=client.url, timeout=120) as http:
            barrier.wait()
            for _ in range(CYCLES):
                number = http.post(base, json={"worker": f"w{i}"}).json()["number"]
                calls = [
                    http.post(f"{base}/{number}/heartbeat"),
                    http.post(f"{base}/{number}/report", json={"step": 0, "value": 1.0}),
                    http.get(f"{base}/{number}"),
                    http.get(base, params={"limit": 5}),
                ]
                if rng.random() < 0.1:
                    continue  # walks away: the lease must clean up after it
                value = rng.random()
                calls.append(http.post(f"{base}/{number}/tell", json={"value": value}))
                bad = [r.text for r in calls if r.status_code != 200]
                with lock:
                    errors.extend(bad)
                    if not bad:
                        acked[number] = value

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(run, range(CLIENTS)))

    assert errors == []
    trials = client.trials(study_name)
    assert [t.number for t in trials] == list(range(len(trials)))  # unique and gap-free
    by_number = {t.number: t for t in trials}
    assert all(by_number[n].value == v for n, v in acked.items())
    walked_away = [t for t in trials if t.state == "running"]
    assert walked_away  # some did, so the reaping below is tested
    wait_until(lambda: client.study(study_name).counts.running == 0, timeout=6 * LEASE_SECONDS)
    assert all(client.trial_info(study_name, t.number).state == "fail" for t in walked_away)
