"""Inputs a fresh tester used to break the server: each is a 4xx that changes nothing."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

SPACE = {"x": {"type": "float", "low": 0, "high": 1}}


@pytest.mark.parametrize(
    "space",
    [
        {"x": {"type": "int", "low": 0, "high": 1e30}},
        {"x": {"type": "int", "low": -(2**60), "high": 0}},
        {"x": {"type": "float", "low": 0, "high": 1, "step": 1e-30}},
        {"x": {"type": "float", "low": -1e308, "high": 1e308}},
        {"x": {"type": "categorical", "choices": [0.0, -0.0]}},
    ],
    ids=["int-1e30", "int-2^60", "step-1e-30", "float-overflow", "zero-and-minus-zero"],
)
def test_unusable_spaces_are_422_and_leave_nothing(api: TestClient, space: dict) -> None:
    answer = api.post("/v1/studies", json={"name": "s", "space": space})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["param"] == "x"
    assert api.get("/v1/studies").json() == {"studies": []}


def test_unusable_study_options_are_422(api: TestClient) -> None:
    for options in ({"lease_seconds": 1e308}, {"lease_seconds": 0}, {"max_retries": 10**9}):
        answer = api.post("/v1/studies", json={"name": "s", "space": SPACE, **options})
        assert answer.status_code == 422, options
    assert api.get("/v1/studies").json() == {"studies": []}


def test_numbers_beyond_storage_integers_are_422(api: TestClient) -> None:
    api.post("/v1/studies", json={"name": "s", "space": SPACE})
    n = api.post("/v1/studies/s/trials").json()["number"]
    huge = 2**63
    assert api.get(f"/v1/studies/s/trials/{huge}").status_code == 422
    assert api.post(f"/v1/studies/s/trials/{huge}/tell", json={"value": 1}).status_code == 422
    assert api.get(f"/optunapi/score/s?trial_id={huge}&score=1").status_code == 422
    for step in (huge, True, "3", -1):
        answer = api.post(f"/v1/studies/s/trials/{n}/report", json={"step": step, "value": 1})
        assert answer.status_code == 422, step
    assert api.get(f"/v1/studies/s/trials/{2**31 - 1}").status_code == 404


def test_user_attrs_that_could_not_be_read_back_are_422(api: TestClient) -> None:
    api.post("/v1/studies", json={"name": "s", "space": SPACE})
    n = api.post("/v1/studies/s/trials").json()["number"]
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    raw_nan = '{"value": 1, "user_attrs": {"loss": NaN}}'
    bodies = [
        json.dumps({"value": 1, "user_attrs": {"a": deep}}),
        raw_nan,
        json.dumps({"value": 1, "user_attrs": {"blob": "x" * 100_000}}),
    ]
    for body in bodies:
        answer = api.post(
            f"/v1/studies/s/trials/{n}/tell",
            content=body.encode(),
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 422, body[:60]
    assert api.get(f"/v1/studies/s/trials/{n}").json()["state"] == "running"


def test_unreadable_bodies_and_wrong_methods_are_problems(api: TestClient) -> None:
    api.post("/v1/studies", json={"name": "s", "space": SPACE})
    bad_utf8 = api.post(
        "/v1/studies", content=b'{"name": "\xff"}', headers={"content-type": "application/json"}
    )
    assert bad_utf8.status_code == 422
    assert bad_utf8.json()["type"].startswith("urn:optunapi:problem:")
    wrong = api.put("/v1/studies/s")
    assert wrong.status_code == 405 and wrong.json()["type"].endswith("method-not-allowed")
    assert "allow" in wrong.headers


def test_bodies_over_the_limit_are_413(api: TestClient) -> None:
    big = {"name": "s", "space": SPACE, "sampler": {"type": "tpe", "pad": "x" * 2_000_000}}
    answer = api.post("/v1/studies", json=big)
    assert answer.status_code == 413 and answer.json()["type"].endswith("request-too-large")
    assert api.get("/v1/studies").json() == {"studies": []}


def test_v1_asks_create_and_check_file_defined_studies(api: TestClient, settings) -> None:
    (settings.config_dir / "mnist.yaml").write_text("x: {type: float, low: 0, high: 1}\n")
    first = api.post("/v1/studies/mnist/trials")
    assert first.status_code == 201 and set(first.json()["params"]) == {"x"}
    (settings.config_dir / "mnist.yaml").write_text("x: {type: float, low: 0, high: 2}\n")
    assert api.post("/v1/studies/mnist/trials").status_code == 409
    assert api.get("/v1/studies/mnist").json()["counts"]["running"] == 1


def test_effective_lease_is_shown(api: TestClient, settings) -> None:
    api.post("/v1/studies", json={"name": "s", "space": SPACE})
    assert api.get("/v1/studies/s").json()["lease_seconds"] == settings.lease_seconds


@pytest.mark.parametrize(
    ("options", "space", "says"),
    [
        ({"sampler": {"type": "tpe", "gamma": "x"}}, SPACE, "gamma"),
        ({"sampler": {"type": "tpe", "n_startup_trials": "x"}}, SPACE, "fails"),
        ({"pruner": {"type": "hyperband", "min_resource": 0}}, SPACE, "ZeroDivision"),
        ({"sampler": "bruteforce"}, SPACE, "continuous"),
        ({"sampler": "grid"}, {"x": {"type": "float", "low": 0, "high": 1e15, "step": 1}}, "more"),
        ({}, {"x": {"type": "float", "low": 1e308, "high": 1.7e308}}, "beyond"),
        ({}, {"c": {"type": "categorical", "choices": list(range(1001))}}, "1001 choices"),
    ],
    ids=[
        "tpe-gamma",
        "tpe-type",
        "hyperband-0",
        "bruteforce-float",
        "huge-grid",
        "wide",
        "choices",
    ],
)
def test_options_that_would_fail_later_are_422_now(
    api: TestClient, options: dict, space: dict, says: str
) -> None:
    answer = api.post("/v1/studies", json={"name": "s", "space": space, **options})
    assert answer.status_code == 422 and says in answer.json()["detail"], answer.text
    assert api.get("/v1/studies").json() == {"studies": []}


def test_a_grid_that_runs_out_keeps_answering(api: TestClient) -> None:
    space = {"a": {"type": "categorical", "choices": ["x", "y"]}}
    api.post("/v1/studies", json={"name": "g", "space": space, "sampler": "grid"})
    numbers = [api.post("/v1/studies/g/trials").json()["number"] for _ in range(3)]
    for n in numbers:
        assert api.post(f"/v1/studies/g/trials/{n}/tell", json={"value": n}).status_code == 200


def test_text_that_cannot_be_stored_is_422(api: TestClient) -> None:
    raw = b'{"name": "s", "space": {"\\ud800": {"type": "categorical", "choices": ["a"]}}}'
    answer = api.post("/v1/studies", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and "surrogate" in answer.json()["detail"]
    assert api.get("/v1/studies").json() == {"studies": []}


def test_waiting_trials_show_the_params_they_will_run(api: TestClient) -> None:
    api.post("/v1/studies", json={"name": "w", "space": SPACE})
    api.post("/v1/studies/w/enqueue", json={"params": {"x": 0.25}})
    (waiting,) = api.get("/v1/studies/w/trials", params={"state": "waiting"}).json()["trials"]
    assert waiting["params"] == {"x": 0.25}


def test_a_streamed_body_over_the_limit_is_413(api: TestClient) -> None:
    def chunks():
        yield b'{"name": "s", "space": {"x": {"type": "float", "low": 0, "high": 1}}, "p": "'
        for _ in range(40):
            yield b"x" * 50_000
        yield b'"}'

    answer = api.post("/v1/studies", content=chunks(), headers={"content-type": "application/json"})
    assert answer.status_code == 413


def test_requests_other_than_an_ask_create_nothing_from_a_space_file(
    api: TestClient, settings
) -> None:
    (settings.config_dir / "fresh.yaml").write_text("x: {type: float, low: 0, high: 1}\n")
    assert api.get("/optunapi/score/fresh?trial_id=7&score=1").status_code == 404
    assert api.post("/v1/studies/fresh/trials/3/tell", json={"value": 1}).status_code == 404
    assert api.get("/v1/studies/fresh").status_code == 404
    assert api.get("/v1/studies").json() == {"studies": []}


def test_a_trailing_slash_is_a_problem_not_a_redirect(api: TestClient) -> None:
    answer = api.delete("/v1/studies/", follow_redirects=False)
    assert answer.status_code == 422 and answer.json()["type"].endswith("invalid-name")


def test_a_repeated_report_keeps_the_first_value(api: TestClient) -> None:
    api.post("/v1/studies", json={"name": "r", "space": SPACE})
    n = api.post("/v1/studies/r/trials").json()["number"]
    for value in (0.7, 0.9):
        api.post(f"/v1/studies/r/trials/{n}/report", json={"step": 0, "value": value})
    assert api.get(f"/v1/studies/r/trials/{n}").json()["intermediate_values"] == {"0": 0.7}


def test_enqueue_with_the_wrong_value_count_speaks_of_no_trial(api: TestClient) -> None:
    api.post("/v1/studies", json={"name": "e", "space": SPACE})
    answer = api.post("/v1/studies/e/enqueue", json={"params": {"x": 0.5}, "values": [1, 2]})
    assert answer.status_code == 422 and "still running" not in answer.json()["detail"]


def test_dashboard_errors_are_problems(api: TestClient) -> None:
    for path in ("/api/studies/abc", "/csv/abc", "/api/studies/99999"):
        answer = api.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("application/problem+json"), path


def test_a_405_names_every_method_of_the_path_and_head_is_served(api: TestClient) -> None:
    """``Allow`` lists what the path serves (not only its first route's method), and HEAD is
    answered wherever GET is, as a liveness probe sends it."""
    api.post(
        "/v1/studies", json={"name": "p1", "space": {"x": {"type": "int", "low": 0, "high": 1}}}
    )
    for method, path, allowed in [
        ("PUT", "/v1/studies", "GET, HEAD, POST"),
        ("PUT", "/v1/studies/p1", "DELETE, GET, HEAD"),
        ("GET", "/v1/studies/p1/trials/0/tell", "POST"),
    ]:
        answer = api.request(method, path)
        assert answer.status_code == 405, path
        assert answer.headers["allow"] == allowed
        assert answer.json()["detail"].endswith(f"allowed: {allowed}.")
    health = api.head("/v1/health")
    assert health.status_code == 200 and health.content == b""
    assert health.headers["content-type"] == "application/json"
    missing = api.head("/v1/studies/nope")
    assert missing.status_code == 404 and missing.content == b""
    assert api.get("/v1/health").json()["status"] == "ok"
    # The legacy GETs that start or finish a trial are not run for a HEAD.
    (api.app.state.settings.config_dir / "legacy.yaml").write_text(  # type: ignore[attr-defined]
        "x: {name: x, type: int, low: 0, high: 3}\n"
    )
    probe = api.head("/optunapi/hparams/legacy")
    assert probe.status_code == 405 and probe.headers["allow"] == "GET"
    assert api.get("/v1/studies/legacy").status_code == 404  # nothing was created


def test_a_query_parameter_given_twice_is_refused_and_changes_nothing(api: TestClient) -> None:
    """Which of two values counts would be a guess; on the legacy score route, a write."""
    (api.app.state.settings.config_dir / "twice.yaml").write_text(  # type: ignore[attr-defined]
        "x: {name: x, type: float, low: 0, high: 1}\n"
    )
    first = api.get("/optunapi/hparams/twice").json()["trial_id"]
    second = api.get("/optunapi/hparams/twice").json()["trial_id"]
    for target in (
        f"/optunapi/score/twice?trial_id={second}&trial_id={first}&score=2",
        f"/optunapi/score/twice?trial_id={first}&score=1&score=2",
        "/v1/studies/twice/trials?state=complete&state=running",
        "/v1/studies/twice/export?format=csv&format=json",
    ):
        refused = api.get(target)
        assert refused.status_code == 422, target
        assert refused.json()["errors"][0]["loc"][0] == "query"
    assert api.get("/v1/studies/twice").json()["counts"]["running"] == 2
    assert api.get(f"/optunapi/score/twice?trial_id={first}&score=1").status_code == 200
