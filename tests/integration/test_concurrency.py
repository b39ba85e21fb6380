"""Field cases K1-K3 against a real server on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from optunapi import Client
from optunapi.space import load_yaml

from .conftest import ServerProcess


def test_a_slow_reader_does_not_make_a_tell_fail(
    server: ServerProcess, client: Client, study_name: str
) -> None:
    """K1: a reader holding a read transaction on the file while a worker tells."""
    client.create_study(study_name, {"x": {"type": "float", "low": 0, "high": 1}})
    trial = client.ask(study_name)
    reader = sqlite3.connect(server.db_path, timeout=0)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM optunapi_trials").fetchone()[0] >= 1
        told = client.tell(study_name, trial.number, 0.25)  # while the read is open
        assert told.state == "complete" and told.value == 0.25
        # The reader's snapshot predates the tell: it was not blocked and did not block.
        (body,) = reader.execute(
            "SELECT body FROM optunapi_trials WHERE number = ? AND study_id = "
            "(SELECT study_id FROM optunapi_studies WHERE name = ?)",
            (trial.number, study_name),
        ).fetchone()
        assert json.loads(body)["state"] == "RUNNING"
    finally:
        reader.rollback()
        reader.close()
    assert client.trial_info(study_name, trial.number).value == 0.25


def test_parallel_workers_do_not_get_identical_params(
    client: Client, case_space, study_name: str
) -> None:
    """K2: seeded TPE, six workers asking before anyone tells, twice."""
    space = load_yaml(case_space("same-params"))
    client.create_study(study_name, space, sampler={"type": "tpe", "seed": 42})

    def six_at_once() -> list[dict]:
        barrier = threading.Barrier(6)

        def ask(_: int) -> dict:
            with Client(client.url) as c:
                barrier.wait()
                t = c.ask(study_name)
                return {"number": t.number, "params": t.params}

        with ThreadPoolExecutor(6) as pool:
            return list(pool.map(ask, range(6)))

    def distinct(trials: list[dict]) -> bool:
        return len({json.dumps(t["params"], sort_keys=True) for t in trials}) == len(trials)

    first = six_at_once()
    assert distinct(first)
    for t in first:
        client.tell(study_name, t["number"], sum(map(hash, str(t["params"]))) % 97 / 97)
    for i in range(6):
        t = client.ask(study_name)
        client.tell(study_name, t.number, (i * 37 % 11) / 11)
    assert len(client.trials(study_name, state="complete")) == 12
    second = six_at_once()
    assert distinct(second)
    running = client.trials(study_name, state="running")
    assert distinct([{"params": t.params} for t in running]) and len(running) == 6


@pytest.mark.parametrize("round_", range(5))
def test_two_racing_tells_store_exactly_one(client: Client, study_name: str, round_: int) -> None:
    """K3: values 1.0 and 2.0 race; one 200 that was stored, one 409 naming it."""
    client.create_study(study_name, {"x": {"type": "float", "low": 0, "high": 1}})
    number = client.ask(study_name).number
    barrier = threading.Barrier(2)

    def tell(value: float) -> httpx.Response:
        with httpx.Client(base_url=client.url) as http:
            barrier.wait()
            return http.post(
                f"/v1/studies/{study_name}/trials/{number}/tell", json={"value": value}
            )

    with ThreadPoolExecutor(2) as pool:
        answers = dict(zip((1.0, 2.0), pool.map(tell, (1.0, 2.0)), strict=True))
    codes = sorted(r.status_code for r in answers.values())
    assert codes == [200, 409]
    winner = next(v for v, r in answers.items() if r.status_code == 200)
    loser = next(r for r in answers.values() if r.status_code == 409)
    assert loser.json()["stored"]["value"] == winner
    assert str(winner) in loser.json()["detail"]
    assert client.trial_info(study_name, number).values == [winner]
