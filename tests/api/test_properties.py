"""Property: for any valid space, every trial the server hands out lies inside that space."""

from __future__ import annotations

import itertools
import json

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optunapi.space import build_definition

from ..unit.test_space import params

_names = itertools.count()


@given(
    space=st.dictionaries(
        st.from_regex(r"[a-z]{1,6}", fullmatch=True), params(), min_size=1, max_size=4
    ),
    sampler=st.sampled_from(["random", "tpe"]),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_sampled_params_lie_inside_any_valid_space(
    api: TestClient, space: dict, sampler: str
) -> None:
    name = f"prop-{next(_names)}"
    created = api.post("/v1/studies", json={"name": name, "space": space, "sampler": sampler})
    if created.status_code == 422:
        return  # refused spaces are covered by the space model's own tests
    assert created.status_code == 201, created.text
    model = build_definition(space).space
    for i in range(4):
        trial = api.post(f"/v1/studies/{name}/trials").json()
        assert model.check_params(trial["params"]) == [], (space, trial["params"])
        listed = api.get(f"/v1/studies/{name}/trials/{trial['number']}").json()["params"]
        assert json.dumps(listed) == json.dumps(trial["params"])  # same values, same types
        api.post(f"/v1/studies/{name}/trials/{trial['number']}/tell", json={"value": i})
