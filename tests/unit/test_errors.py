"""The exception tree survives the wire: to_problem then from_problem gives the same class."""

from __future__ import annotations

import pytest

from optunapi import errors


def every_class() -> list[type[errors.OptunapiError]]:
    return [errors.OptunapiError, *errors._all_subclasses(errors.OptunapiError)]


@pytest.mark.parametrize("cls", every_class(), ids=lambda c: c.__name__)
def test_problem_round_trip_keeps_class_detail_and_fields(cls: type[errors.OptunapiError]) -> None:
    original = cls("Something a person can act on.", stored={"value": 1.0})
    body = original.to_problem()
    assert body["status"] == cls.status and body["type"].endswith(cls.slug)
    back = errors.OptunapiError.from_problem(body, cls.status)
    assert type(back) is cls
    assert back.detail == original.detail and back.extra == {"stored": {"value": 1.0}}


def test_a_foreign_problem_maps_by_status() -> None:
    back = errors.OptunapiError.from_problem({"type": "about:blank", "title": "Gone"}, 404)
    assert type(back) is errors.NotFoundError and back.detail == "Gone"
    assert isinstance(errors.OptunapiError.from_problem("not json", 503), errors.StorageBusyError)
