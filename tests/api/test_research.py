"""Pruning, several objectives, samplers, warm starts and export, in process."""

from __future__ import annotations

import csv
import importlib.util
import io
import json

import pytest
from fastapi.testclient import TestClient

from optunapi.space import build_definition

CONDITIONAL = {
    "opt": {"type": "categorical", "choices": ["sgd", "adam"]},
    "momentum": {"type": "float", "low": 0.0, "high": 0.9, "step": 0.1, "when": {"opt": "sgd"}},
    "layers": {"type": "int", "low": 1, "high": 4},
}


def create(api: TestClient, name: str, space: dict = CONDITIONAL, **options: object) -> None:
    answer = api.post("/v1/studies", json={"name": name, "space": space, **options})
    assert answer.status_code == 201, answer.text


def ask(api: TestClient, name: str) -> dict:
    return api.post(f"/v1/studies/{name}/trials").json()


def tell(api: TestClient, name: str, number: int, **body: object):
    return api.post(f"/v1/studies/{name}/trials/{number}/tell", json=body)


def report(api: TestClient, name: str, number: int, step: int, value: float) -> bool:
    answer = api.post(
        f"/v1/studies/{name}/trials/{number}/report", json={"step": step, "value": value}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["should_prune"]


def test_median_pruner_stops_a_trial_worse_than_the_others(api: TestClient) -> None:
    create(api, "prune", pruner={"type": "median", "n_startup_trials": 3, "n_warmup_steps": 0})
    for good in range(3):
        n = ask(api, "prune")["number"]
        assert not any(report(api, "prune", n, s, 1.0 / (s + 1)) for s in range(3))
        tell(api, "prune", n, value=0.1 * good)
    bad = ask(api, "prune")["number"]
    assert report(api, "prune", bad, 0, 50.0) is True
    assert tell(api, "prune", bad, state="pruned").json()["state"] == "pruned"
    stored = api.get(f"/v1/studies/prune/trials/{bad}").json()
    assert stored["intermediate_values"] == {"0": 50.0}
    assert stored["value"] == 50.0  # a pruned trial keeps its last reported value


def test_report_checks_its_body_and_the_trial(api: TestClient) -> None:
    create(api, "rep")
    n = ask(api, "rep")["number"]
    path = f"/v1/studies/rep/trials/{n}/report"
    assert api.post(path, json={"step": -1, "value": 1}).status_code == 422
    bad = api.post(
        path, content=b'{"step": 1, "value": NaN}', headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422
    first = api.post(path, json={"step": 3, "value": 1.0})
    assert first.status_code == 200 and first.json()["stored"] is True
    # A step's first value stays, as in Optuna; the answer says the new one was not stored.
    again = api.post(path, json={"step": 3, "value": 2.0})
    assert again.status_code == 200 and again.json()["stored"] is False
    assert api.get(f"/v1/studies/rep/trials/{n}").json()["intermediate_values"] == {"3": 1.0}
    tell(api, "rep", n, value=1.0)
    assert api.post(path, json={"step": 1, "value": 1}).status_code == 409
    assert api.post(f"/v1/studies/rep/trials/{n}/heartbeat").status_code == 409


def test_multi_objective_best_is_the_pareto_front(api: TestClient) -> None:
    create(api, "mo", directions=["minimize", "maximize"], metric_names=["loss", "acc"])
    points = {(1.0, 0.5): True, (2.0, 0.9): True, (3.0, 0.4): False, (1.5, 0.5): False}
    numbers = {}
    for values in points:
        n = ask(api, "mo")["number"]
        numbers[n] = values
        assert tell(api, "mo", n, values=list(values)).status_code == 200
        assert report(api, "mo", ask(api, "mo")["number"], 0, 1.0) is False
    front = api.get("/v1/studies/mo/best").json()["trials"]
    assert {tuple(t["values"]) for t in front} == {p for p, on in points.items() if on}
    study = api.get("/v1/studies/mo").json()
    assert study["best"] is None and len(study["best_trials"]) == 2
    assert study["metric_names"] == ["loss", "acc"]


SAMPLERS = ["tpe", "random", "cmaes", "qmc", "nsga2", "nsga3", "grid", "bruteforce", "gp"]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_a_conditional_space(api: TestClient, sampler: str) -> None:
    needs = {"cmaes": "cmaes", "qmc": "scipy", "gp": "torch"}.get(sampler)
    if needs and importlib.util.find_spec(needs) is None:
        answer = api.post(
            "/v1/studies", json={"name": "s", "space": CONDITIONAL, "sampler": {"type": sampler}}
        )
        assert answer.status_code == 422 and f"pip install {needs}" in answer.json()["detail"]
        return
    create(api, "s", sampler={"type": sampler, "seed": 3})
    model = build_definition(CONDITIONAL).space
    for i in range(12):
        trial = ask(api, "s")
        assert model.check_params(trial["params"]) == []
        assert tell(api, "s", trial["number"], value=float(i % 5)).status_code == 200


def test_grid_needs_discrete_params_and_bad_options_are_422(api: TestClient) -> None:
    space = {"x": {"type": "float", "low": 0, "high": 1}}
    grid = api.post("/v1/studies", json={"name": "g", "space": space, "sampler": "grid"})
    assert grid.status_code == 422 and "continuous" in grid.json()["detail"]
    pruner = api.post(
        "/v1/studies", json={"name": "g", "space": space, "pruner": {"type": "median", "warmup": 3}}
    )
    assert pruner.status_code == 422 and "warmup" in pruner.json()["detail"]
    assert api.get("/v1/studies/g").status_code == 404


def test_enqueued_params_are_handed_out_first(api: TestClient) -> None:
    create(api, "warm")
    first = {"opt": "sgd", "momentum": 0.3, "layers": 2}
    answer = api.post("/v1/studies/warm/enqueue", json={"params": first})
    assert answer.status_code == 201
    again = api.post("/v1/studies/warm/enqueue", json={"params": first, "skip_if_exists": True})
    assert again.status_code == 200 and again.json() == {
        "number": answer.json()["number"],
        "skipped": True,
    }
    trial = ask(api, "warm")
    assert trial["number"] == answer.json()["number"] and trial["params"] == first


def test_enqueue_with_a_value_adds_a_finished_trial(api: TestClient) -> None:
    create(api, "past")
    params = {"opt": "adam", "layers": 3}
    number = api.post("/v1/studies/past/enqueue", json={"params": params, "value": 0.42}).json()
    stored = api.get(f"/v1/studies/past/trials/{number['number']}").json()
    assert stored["state"] == "complete" and stored["value"] == 0.42 and stored["params"] == params
    assert api.get("/v1/studies/past/best").json()["trials"][0]["value"] == 0.42


def test_enqueue_refuses_params_outside_the_space(api: TestClient) -> None:
    create(api, "bad")
    for params in (
        {"opt": "rmsprop", "layers": 1},
        {"opt": "adam", "layers": 9},
        {"opt": "adam", "layers": 1, "momentum": 0.1},
        {"opt": "adam"},
        {"opt": "sgd", "momentum": 0.35, "layers": 1},
    ):
        answer = api.post("/v1/studies/bad/enqueue", json={"params": params})
        assert answer.status_code == 422, params
    assert api.get("/v1/studies/bad").json()["counts"]["waiting"] == 0


def test_export_as_csv_and_json(api: TestClient) -> None:
    create(api, "exp", metric_names=["loss"])
    for i in range(3):
        trial = ask(api, "exp")
        tell(api, "exp", trial["number"], value=float(i))
    ask(api, "exp")
    as_csv = api.get("/v1/studies/exp/export", params={"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'filename="exp.csv"' in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["state"] for r in rows] == ["complete"] * 3 + ["running"]
    assert [r["values_loss"] for r in rows[:3]] == ["0.0", "1.0", "2.0"]
    assert {"params_opt", "params_momentum", "params_layers"} <= set(rows[0])
    as_json = api.get("/v1/studies/exp/export", params={"format": "json"}).json()
    assert as_json["study"]["name"] == "exp" and len(as_json["trials"]) == 4
    assert api.get("/v1/studies/exp/export", params={"format": "xml"}).status_code == 422
    assert json.loads(json.dumps(as_json)) == as_json
