"""Faults a fresh tester found: deletes under load, a locked storage, leases with retries."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from optunapi import Client, InvalidValueError, TrialNotRunningError

from .conftest import ServerProcess
from .test_leases import wait_until

SPACE = {"x": {"type": "float", "low": 0, "high": 1}}


def test_deleting_a_study_in_use_is_never_a_500(server: ServerProcess, study_name: str) -> None:
    (server.config_dir / f"{study_name}.yaml").write_text("x: {type: float, low: 0, high: 1}\n")
    stop = threading.Event()
    statuses: list[int] = []

    def use() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            while not stop.is_set():
                hp = http.get(f"/optunapi/hparams/{study_name}")
                statuses.append(hp.status_code)
                if hp.status_code == 200:
                    n = hp.json()["trial_id"]
                    statuses.append(
                        http.get(
                            f"/optunapi/score/{study_name}", params={"trial_id": n, "score": 1}
                        ).status_code
                    )
                statuses.append(http.get(f"/v1/studies/{study_name}/trials").status_code)

    with ThreadPoolExecutor(5) as pool:
        for _ in range(4):
            pool.submit(use)
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for _ in range(15):
                http.delete(f"/v1/studies/{study_name}")
                http.get(f"/optunapi/hparams/{study_name}")  # the file recreates it
        stop.set()
    assert statuses and 500 not in statuses, sorted(set(statuses))
    assert set(statuses) <= {200, 404, 409, 503}


def test_a_locked_storage_gives_503s_and_liveness_still_answers(tmp_path: Path) -> None:
    srv = ServerProcess(
        tmp_path,
        f"sqlite:///{tmp_path / 'locked.db'}",
        env={"OPTUNAPI_BUSY_TIMEOUT": "0.2", "OPTUNAPI_STUDY_WAIT": "1"},
    )
    srv.start()
    try:
        with Client(srv.url) as c:
            c.create_study("locked", SPACE)
        writer = sqlite3.connect(srv.db_path)
        writer.execute("BEGIN IMMEDIATE")
        try:
            with ThreadPoolExecutor(50) as pool, httpx.Client(base_url=srv.url) as http:
                asks = [
                    pool.submit(httpx.post, f"{srv.url}/v1/studies/locked/trials", timeout=120)
                    for _ in range(50)
                ]
                # Every worker thread may be waiting on the storage; liveness does not.
                assert http.get("/optunapi/ping", timeout=10).status_code == 200
                assert http.get("/v1/health", timeout=10).status_code == 200
                codes = [f.result().status_code for f in asks]
        finally:
            writer.rollback()
            writer.close()
        assert set(codes) <= {201, 503} and 503 in codes
        with Client(srv.url) as c:
            assert c.ask("locked").state == "running"  # works again once the lock is gone
    finally:
        srv.stop()


def test_heartbeat_after_expiry_with_retries_is_a_409_naming_the_retry(
    client: Client, study_name: str
) -> None:
    client.create_study(study_name, SPACE, lease_seconds=0.5, max_retries=3)
    trial = client.ask(study_name)
    threading.Event().wait(0.7)  # the lease runs out; the reaper may or may not have run
    with pytest.raises(TrialNotRunningError, match="re-queued as trial"):
        client.heartbeat(study_name, trial.number)
    reaped = client.trial_info(study_name, trial.number)
    assert reaped.state == "fail" and reaped.user_attrs["retried_as"] > trial.number


def test_a_late_legacy_score_answers_the_trial_id_it_was_given(
    server: ServerProcess, client: Client, study_name: str
) -> None:
    client.create_study(study_name, SPACE, lease_seconds=0.5)
    hp = httpx.get(f"{server.url}/optunapi/hparams/{study_name}").json()
    wait_until(lambda: client.trial_info(study_name, hp["trial_id"]).state == "fail")
    score = httpx.get(
        f"{server.url}/optunapi/score/{study_name}",
        params={"trial_id": hp["trial_id"], "score": 0.5},
    ).json()
    assert score["trial_id"] == hp["trial_id"] and score["params"] == hp["params"]
    assert score["best_score"] == 0.5


def test_client_refuses_nan_and_takes_numpy_scalars(client: Client, study_name: str) -> None:
    client.create_study(study_name, SPACE)
    number = client.ask(study_name).number
    with pytest.raises(InvalidValueError):
        client.tell(study_name, number, float("nan"))
    with client.trial(study_name) as trial:
        trial.tell(np.float32(0.5))
    assert client.trial_info(study_name, trial.number).value == 0.5
    assert client.trial_info(study_name, number).state == "running"


def test_dashboard_files_are_served_to_clients_without_accept_encoding(
    server: ServerProcess,
) -> None:
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(server.url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    conn.request("GET", "/static/bundle.js")  # http.client sends no Accept-Encoding
    answer = conn.getresponse()
    assert answer.status == 200 and len(answer.read()) > 1000
    conn.close()


def test_worker_survives_bad_output_and_keeps_path(
    server: ServerProcess, client: Client, study_name: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    client.create_study(study_name, {"path": {"type": "categorical", "choices": ["a", "b"]}})
    script = tmp_path / "bad.sh"
    script.write_text(
        'printf "%s\\n" "$PATH" > /dev/null; command -v python3 >/dev/null; echo nan\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "optunapi.cli", "worker", "--study", study_name,
         "--server", server.url, "--n-trials", "3", "--", "bash", str(script)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    trials = client.trials(study_name)
    assert [t.state for t in trials] == ["fail"] * 3  # all three ran; NaN is a failed run
    assert "cannot be stored" in trials[0].user_attrs["error"]
