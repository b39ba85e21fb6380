"""The Python client and the CLI against a real server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from optunapi import (
    Client,
    InvalidSpaceError,
    InvalidValueError,
    ServerUnreachableError,
    StudyDefinitionConflictError,
    StudyNotFoundError,
    TrialFinishedError,
)

from .conftest import ServerProcess

SPACE = {"x": {"type": "float", "low": -10, "high": 10}}


def test_optimize_finds_a_minimum_and_best_returns_it(client: Client, study_name: str) -> None:
    client.create_study(study_name, SPACE, sampler={"type": "tpe", "seed": 3})
    client.optimize(study_name, lambda p: (p["x"] - 2) ** 2, n_trials=30)
    best = client.best(study_name)
    values = [t.value for t in client.trials(study_name)]
    assert len(values) == 30
    assert best[0].value == min(values)
    assert client.study(study_name).best.number == best[0].number


def test_trial_context_tells_fail_when_the_body_raises(client: Client, study_name: str) -> None:
    client.create_study(study_name, SPACE)
    with pytest.raises(ZeroDivisionError), client.trial(study_name) as trial:
        _ = 1 / 0
    stored = client.trial_info(study_name, trial.number)
    assert stored.state == "fail"
    assert "ZeroDivisionError" in stored.user_attrs["error"]


def test_a_trial_outliving_its_study_does_not_tell_the_next_one(
    client: Client, study_name: str
) -> None:
    """The study is deleted and created again while a trial runs; the new study has a trial of
    the same number. The old trial's report and tell are refused (the study it belonged to is
    gone), and the new trial is left as it was."""
    client.create_study(study_name, SPACE)
    with pytest.raises(StudyNotFoundError, match="was deleted"), client.trial(study_name) as old:
        client.delete_study(study_name)
        client.create_study(study_name, SPACE)
        new = client.ask(study_name)
        assert new.number == old.number
        try:
            old.report(0, 1.0)
        finally:
            old.tell(1.0)
    kept = client.trial_info(study_name, new.number)
    assert kept.state == "running" and kept.intermediate_values == {} and kept.values is None


def test_server_errors_come_back_as_the_same_classes(client: Client, study_name: str) -> None:
    with pytest.raises(StudyNotFoundError, match=study_name):
        client.ask(study_name)
    with pytest.raises(InvalidSpaceError) as bad:
        client.create_study(study_name, {"lr": {"type": "float", "low": 1, "high": 0}})
    assert bad.value.extra["errors"][0]["param"] == "lr"
    client.create_study(study_name, SPACE)
    with pytest.raises(StudyDefinitionConflictError, match="maximize"):
        client.create_study(study_name, SPACE, directions=["maximize"])
    number = client.ask(study_name).number
    with pytest.raises(InvalidValueError):
        client.tell(study_name, number, values=[1.0, 2.0])
    client.tell(study_name, number, 1.0)
    assert client.tell(study_name, number, 1.0).value == 1.0  # a retried tell is a 200
    with pytest.raises(TrialFinishedError) as finished:
        client.tell(study_name, number, 2.0)
    assert finished.value.extra["stored"]["value"] == 1.0


def test_unreachable_server_is_a_clear_error() -> None:
    with Client("http://127.0.0.1:9", retries=1) as c, pytest.raises(ServerUnreachableError):
        c.health()


def test_cli_lists_studies_and_prints_the_best(
    server: ServerProcess, client: Client, study_name: str
) -> None:
    client.create_study(study_name, SPACE)
    client.optimize(study_name, lambda p: abs(p["x"]), n_trials=3)
    cli = [sys.executable, "-m", "optunapi.cli"]
    listed = subprocess.run(
        [*cli, "studies", "--server", server.url], capture_output=True, text=True, check=True
    ).stdout
    assert f"{study_name}\tminimize\tcomplete 3" in listed
    best = subprocess.run(
        [*cli, "best", study_name, "--server", server.url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(best)[0]["value"] == client.best(study_name)[0].value
    missing = subprocess.run(
        [*cli, "best", "no-such-study", "--server", server.url], capture_output=True, text=True
    )
    assert missing.returncode != 0 and "no study named" in missing.stderr


def test_ask_warns_when_every_point_is_in_flight(
    client: Client, study_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    client.create_study(study_name, {"k": {"type": "categorical", "choices": ["a", "b"]}})
    with caplog.at_level("WARNING", logger="optunapi.client"):
        first = [client.ask(study_name) for _ in range(2)]
        assert caplog.records == []
        extra = client.ask(study_name)
    [record] = caplog.records
    twin = next(t for t in first if t.params == extra.params)
    assert f"trial {extra.number} repeats the params of trial {twin.number}" in record.getMessage()
