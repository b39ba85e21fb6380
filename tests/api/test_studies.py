"""v1 studies: create, conflicts, validation that leaves nothing behind, names."""

from __future__ import annotations

import importlib.util

import pytest
from fastapi.testclient import TestClient

from optunapi.space import load_yaml

SPACE = {"x": {"type": "float", "low": 0, "high": 1}}


def create(api: TestClient, name: str, space: dict = SPACE, **options: object):
    return api.post("/v1/studies", json={"name": name, "space": space, **options})


def test_create_then_same_definition_is_200_and_other_direction_409(api: TestClient) -> None:
    """K13."""
    assert create(api, "s").status_code == 201
    again = create(api, "s")
    assert again.status_code == 200 and again.json()["name"] == "s"
    other = create(api, "s", directions=["maximize"])
    assert other.status_code == 409
    problem = other.json()
    assert "minimize" in problem["detail"] and "maximize" in problem["detail"]
    assert problem["stored"] == {"directions": ["minimize"]}
    assert api.get("/v1/studies/s").json()["directions"] == ["minimize"]


def test_bad_space_is_422_naming_every_parameter_and_creates_nothing(
    api: TestClient, case_space, settings
) -> None:
    """K8 over v1 and over the legacy route."""
    bad = load_yaml(case_space("step-with-log"))
    answer = create(api, "k8", bad)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert {e["param"] for e in answer.json()["errors"]} == {"lr", "batch"}
    assert api.get("/v1/studies/k8").status_code == 404
    (settings.config_dir / "k8.yaml").write_text(case_space("step-with-log"))
    legacy = api.get("/optunapi/hparams/k8")
    assert legacy.status_code == 422 and {e["param"] for e in legacy.json()["errors"]} == {
        "lr",
        "batch",
    }
    assert api.get("/v1/studies").json()["studies"] == []


def test_step_that_does_not_divide_is_422_saying_what_fits(api: TestClient, case_space) -> None:
    """K9."""
    answer = create(api, "k9", load_yaml(case_space("step-not-dividing")))
    assert answer.status_code == 422
    messages = {e["param"]: e["message"] for e in answer.json()["errors"]}
    assert "high: 0.9" in messages["dropout"] and "high: 9" in messages["units"]
    assert set(messages) == {"dropout", "units", "tiny"}


BAD_NAMES = [
    "héllo",
    "a" * 129,
    "a" * 513,
    "a" * 10_000,
    " ",
    "-lead",
    "a b",
    "a\x00b",
    "../../etc/passwd",
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n)[:20])
def test_bad_names_are_422_on_every_route(api: TestClient, name: str, settings) -> None:
    """K14: one rule, checked before any file or database is touched."""
    from urllib.parse import quote

    encoded = quote(name, safe="")
    answers = [
        create(api, name),
        api.get(f"/v1/studies/{encoded}"),
        api.delete(f"/v1/studies/{encoded}"),
        api.post(f"/v1/studies/{encoded}/trials"),
        api.get(f"/v1/studies/{encoded}/trials"),
        api.post(f"/v1/studies/{encoded}/trials/0/tell", json={"value": 1}),
        api.get(f"/v1/studies/{encoded}/best"),
        api.get(f"/optunapi/hparams/{encoded}"),
        api.get(f"/optunapi/score/{encoded}?trial_id=0&score=1"),
    ]
    assert [a.status_code for a in answers] == [422] * len(answers)
    assert all(a.json()["type"].endswith("invalid-name") for a in answers)
    assert list(settings.config_dir.iterdir()) == []
    assert api.get("/v1/studies").json()["studies"] == []


def test_empty_name_segment_is_422(api: TestClient) -> None:
    assert api.get("/v1/studies//trials").status_code == 422
    assert api.get("/optunapi/hparams/").status_code == 422


def test_delete_then_the_study_is_gone(api: TestClient) -> None:
    create(api, "gone")
    api.post("/v1/studies/gone/trials")
    assert api.delete("/v1/studies/gone").status_code == 204
    assert api.get("/v1/studies/gone").status_code == 404
    assert api.post("/v1/studies/gone/trials").status_code == 404
    assert api.delete("/v1/studies/gone").status_code == 404
    assert create(api, "gone").status_code == 201  # the name is free again


def test_sampler_needing_a_missing_package_is_422_at_creation(api: TestClient) -> None:
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here, so the gp sampler is available")
    answer = create(api, "gp", sampler={"type": "gp"})
    assert answer.status_code == 422 and "pip install" in answer.json()["detail"]
    assert api.get("/v1/studies/gp").status_code == 404


def test_unknown_sampler_option_is_422(api: TestClient) -> None:
    answer = create(api, "opt", sampler={"type": "tpe", "bogus": 1})
    assert answer.status_code == 422 and "bogus" in answer.json()["detail"]
    assert api.get("/v1/studies/opt").status_code == 404


def test_unknown_route_and_body_errors_are_problems(api: TestClient) -> None:
    missing = api.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["status"] == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    body = api.post(
        "/v1/studies", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert body.status_code == 422 and body.json()["errors"]
    extra = api.post("/v1/studies", json={"name": "x", "space": SPACE, "spaec": 1})
    assert extra.status_code == 422


def test_health_names_version_and_storage_without_password(api: TestClient) -> None:
    health = api.get("/v1/health").json()
    assert health["status"] == "ok" and health["storage"].startswith("sqlite:///")
