"""The original optunapi client, unchanged, against a real server; and its routes under load."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import requests

from optunapi.space import parse_space_file

from .conftest import ServerProcess


def test_original_client_loop_finds_the_paraboloid_minimum(
    server: ServerProcess, case_space, study_name: str
) -> None:
    (server.config_dir / f"{study_name}.yaml").write_text(case_space("paraboloid"))
    HOST = server.url
    best = None
    # The seed README's client, verbatim but for the study name and the loop around it.
    for _ in range(30):
        read_hparams = requests.get(HOST + f"/optunapi/hparams/{study_name}")
        hp_req = read_hparams.json()
        TRIAL_ID = hp_req["trial_id"]
        PARAMS = hp_req["params"]
        SCORE = (PARAMS["x"] - 1) ** 2 + (PARAMS["y"] + 2) ** 2
        send_score = requests.get(
            HOST + f"/optunapi/score/{study_name}?trial_id={TRIAL_ID}&score={SCORE}"
        )
        score_req = send_score.json()
        BEST_TRIAL_ID = score_req["best_score_id"]
        BEST_PARAMS = score_req["best_params"]
        assert score_req["best_trial"] == BEST_TRIAL_ID
        assert score_req["trial_id"] == TRIAL_ID and score_req["params"] == PARAMS
        best = score_req
    assert best is not None
    assert best["completed_trials"] == 30 and best["running_trials"] == 0
    scores = [
        t["value"]
        for t in httpx.get(f"{server.url}/v1/studies/{study_name}/trials").json()["trials"]
    ]
    assert best["best_score"] == min(scores)
    assert set(BEST_PARAMS) == {"x", "y"}
    assert scores.index(min(scores)) == BEST_TRIAL_ID


def test_sixteen_concurrent_legacy_clients_each_get_their_own_trial(
    server: ServerProcess, case_space, study_name: str
) -> None:
    (server.config_dir / f"{study_name}.yaml").write_text(case_space("same-params"))
    barrier = threading.Barrier(16)

    def one_client(i: int) -> list[tuple[int, dict]]:
        got = []
        with httpx.Client(base_url=server.url, timeout=60) as http:
            barrier.wait()
            for _ in range(5):
                hp = http.get(f"/optunapi/hparams/{study_name}").json()
                score = http.get(
                    f"/optunapi/score/{study_name}",
                    params={"trial_id": hp["trial_id"], "score": float(i)},
                ).json()
                # The answer to the tell speaks of this client's own trial and params.
                assert score["trial_id"] == hp["trial_id"]
                assert score["params"] == hp["params"]
                got.append((hp["trial_id"], hp["params"]))
        return got

    with ThreadPoolExecutor(16) as pool:
        results = [r for rs in pool.map(one_client, range(16)) for r in rs]

    ids = [trial_id for trial_id, _ in results]
    assert sorted(ids) == list(range(80))  # unique and gap-free
    stored = httpx.get(
        f"{server.url}/v1/studies/{study_name}/trials", params={"limit": 1000}
    ).json()["trials"]
    by_number = {t["number"]: t for t in stored}
    for trial_id, params in results:
        assert by_number[trial_id]["params"] == params
        assert by_number[trial_id]["state"] == "complete"


def test_burst_of_32_workers_creating_one_study(
    server: ServerProcess, case_space, study_name: str
) -> None:
    """K4: one study, 320 trials with unique numbers, all complete, no error."""
    (server.config_dir / f"{study_name}.yaml").write_text(case_space("same-params"))
    barrier = threading.Barrier(32)
    errors: list[str] = []

    def worker(i: int) -> list[int]:
        numbers = []
        with httpx.Client(base_url=server.url, timeout=120) as http:
            barrier.wait()
            for _ in range(10):
                hp = http.get(f"/optunapi/hparams/{study_name}")
                if hp.status_code != 200:
                    errors.append(hp.text)
                    continue
                number = hp.json()["trial_id"]
                told = http.get(
                    f"/optunapi/score/{study_name}", params={"trial_id": number, "score": i}
                )
                if told.status_code != 200:
                    errors.append(told.text)
                numbers.append(number)
        return numbers

    with ThreadPoolExecutor(32) as pool:
        numbers = [n for ns in pool.map(worker, range(32)) for n in ns]

    assert errors == []
    assert sorted(numbers) == list(range(320))
    studies = [
        s
        for s in httpx.get(f"{server.url}/v1/studies").json()["studies"]
        if s["name"] == study_name
    ]
    assert len(studies) == 1
    assert studies[0]["counts"]["complete"] == 320
    assert studies[0]["counts"]["running"] == 0


def test_edited_space_file_is_a_409_and_creates_no_trial(
    server: ServerProcess, case_space, study_name: str
) -> None:
    """K11: the study keeps the space its trials were sampled from."""
    path = server.config_dir / f"{study_name}.yaml"
    path.write_text(case_space("edited-v1"))
    first = httpx.get(f"{server.url}/optunapi/hparams/{study_name}")
    assert first.status_code == 200
    path.write_text(case_space("edited-v2"))
    edited = httpx.get(f"{server.url}/optunapi/hparams/{study_name}")
    assert edited.status_code == 409
    problem = edited.json()
    assert edited.headers["content-type"].startswith("application/problem+json")
    assert "space" in problem["detail"] and "space" in problem["stored"]
    assert problem["stored"]["space"] == parse_space_file(case_space("edited-v1")).space.to_dict()
    study = httpx.get(f"{server.url}/v1/studies/{study_name}").json()
    assert study["counts"]["running"] == 1  # only the first ask's trial
    assert sum(study["counts"].values()) == 1


def test_a_database_left_by_the_original_optunapi_keeps_working(tmp_path: Path, case_space) -> None:
    """The original stored its studies with Optuna's relational storage, the space only in
    its YAML file: with that file, the study is adopted, history included; with another space
    it is a 409 that changes nothing."""
    import optuna

    db = tmp_path / "original.db"
    old = optuna.create_study(study_name="parab", storage=f"sqlite:///{db}")
    old.optimize(lambda t: t.suggest_float("x", -10, 10) ** 2 + t.suggest_float("y", -10, 10), 5)
    optuna.create_study(study_name="other", storage=f"sqlite:///{db}").optimize(
        lambda t: t.suggest_float("z", 0, 1), n_trials=2
    )
    srv = ServerProcess(tmp_path, f"sqlite:///{db}")
    srv.config_dir.mkdir(parents=True)
    (srv.config_dir / "parab.yaml").write_text(case_space("paraboloid"))
    (srv.config_dir / "other.yaml").write_text(case_space("paraboloid"))  # not its space
    srv.start()
    try:
        hp = requests.get(f"{srv.url}/optunapi/hparams/parab").json()
        assert hp["trial_id"] == 5 and hp["completed_trials"] == 5
        score = requests.get(f"{srv.url}/optunapi/score/parab?trial_id=5&score=0.5").json()
        assert score["completed_trials"] == 6
        listed = httpx.get(f"{srv.url}/v1/studies/parab/trials").json()
        assert listed["total"] == 6 and listed["trials"][0]["params"] == {
            "x": old.trials[0].params["x"],
            "y": old.trials[0].params["y"],
        }
        refused = httpx.get(f"{srv.url}/optunapi/hparams/other")
        assert refused.status_code == 409 and "do not fit" in refused.json()["detail"]
    finally:
        srv.stop()
    assert len(optuna.load_study(study_name="other", storage=f"sqlite:///{db}").trials) == 2
