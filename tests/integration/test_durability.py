"""Every acknowledged write survives kill -9 of the server; a busy storage answers 503."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from optunapi import Client

from .conftest import ServerProcess
from .test_leases import wait_until

SPACE = {"x": {"type": "float", "low": 0, "high": 1}, "k": {"type": "int", "low": 0, "high": 9}}


def value_for(number: int) -> float:
    """Each trial's one right value: a wrong one stored would show."""
    return number + 0.5


@pytest.fixture
def own_server(tmp_path: Path):
    srv = ServerProcess(tmp_path, f"sqlite:///{tmp_path / 'kill.db'}")
    srv.start()
    yield srv
    srv.stop()


def test_acknowledged_tells_survive_kill_9(own_server: ServerProcess) -> None:
    study = "durable"
    with Client(own_server.url) as c:
        c.create_study(study, SPACE, lease_seconds=1)
    acked: dict[int, float] = {}
    asked: set[int] = set()
    lock = threading.Lock()
    enough = threading.Event()

    def cycles(_: int) -> None:
        with httpx.Client(base_url=own_server.url, timeout=10) as http:
            while True:
                try:
                    number = http.post(f"/v1/studies/{study}/trials").json()["number"]
                    with lock:
                        asked.add(number)
                    told = http.post(
                        f"/v1/studies/{study}/trials/{number}/tell",
                        json={"value": value_for(number)},
                    )
                except httpx.TransportError:
                    return  # the server is gone
                if told.status_code == 200:
                    with lock:
                        acked[number] = told.json()["value"]
                        if len(acked) >= 60:
                            enough.set()

    with ThreadPoolExecutor(8) as pool:
        for i in range(8):
            pool.submit(cycles, i)
        assert enough.wait(120)
        own_server.kill()  # mid-load: requests are in flight

    own_server.start()  # same storage, new process
    with Client(own_server.url) as c:
        trials = c.trials(study)
        numbers = [t.number for t in trials]
        assert len(numbers) == len(set(numbers)) and numbers == list(range(len(numbers)))
        by_number = {t.number: t for t in trials}
        for number, value in acked.items():
            assert by_number[number].state == "complete"
            assert by_number[number].value == value == value_for(number)
        for t in trials:
            assert t.state in ("complete", "running", "fail")
            if t.state == "complete":
                assert t.value == value_for(t.number)  # never a wrong value
        # Trials whose tell was not acknowledged are reaped, not left running.
        wait_until(lambda: c.study(study).counts.running == 0)


def test_a_storage_locked_past_the_busy_timeout_answers_503(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from optunapi.server import Settings, create_app

    db = tmp_path / "busy.db"
    settings = Settings(storage=f"sqlite:///{db}", config_dir=tmp_path, busy_timeout=0.3)
    with TestClient(create_app(settings)) as api:
        api.post("/v1/studies", json={"name": "b", "space": SPACE})
        number = api.post("/v1/studies/b/trials").json()["number"]
        writer = sqlite3.connect(db)
        writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            busy = api.post(f"/v1/studies/b/trials/{number}/tell", json={"value": 1.0})
            assert busy.status_code == 503
            assert busy.headers["retry-after"].isdigit()
            assert busy.json()["type"].endswith("storage-busy")
            assert api.get(f"/v1/studies/b/trials/{number}").json()["state"] == "running"
        finally:
            writer.rollback()
            writer.close()
        retried = api.post(f"/v1/studies/b/trials/{number}/tell", json={"value": 1.0})
        assert retried.status_code == 200 and retried.json()["value"] == 1.0
