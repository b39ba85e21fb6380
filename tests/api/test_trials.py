"""v1 trials: ask, tell, bad values, idempotent tells, pagination, stepped floats."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from optunapi.space import build_definition, load_yaml

SPACE = {"x": {"type": "float", "low": 0, "high": 1}}


def study(api: TestClient, name: str = "s", space: dict = SPACE, **options: object) -> str:
    answer = api.post("/v1/studies", json={"name": name, "space": space, **options})
    assert answer.status_code == 201, answer.text
    return name


def ask(api: TestClient, name: str = "s", **body: object) -> dict:
    answer = api.post(f"/v1/studies/{name}/trials", json=body or None)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def tell_raw(api: TestClient, number: int, raw: str, name: str = "s"):
    return api.post(
        f"/v1/studies/{name}/trials/{number}/tell",
        content=raw.encode(),
        headers={"content-type": "application/json"},
    )


def state_of(api: TestClient, number: int, name: str = "s") -> str:
    return api.get(f"/v1/studies/{name}/trials/{number}").json()["state"]


def test_nan_and_infinity_are_422_and_leave_the_trial_running(api: TestClient) -> None:
    """K6: JSON has no NaN token; Python's parser reads one, and it is refused."""
    study(api)
    n = ask(api)["number"]
    for raw in (
        '{"value": NaN}',
        '{"value": Infinity}',
        '{"value": -Infinity}',
        '{"values": [NaN]}',
        '{"value": 1e999}',
    ):
        answer = tell_raw(api, n, raw)
        assert answer.status_code == 422, raw
        assert answer.json()["type"].endswith("invalid-value")
        assert state_of(api, n) == "running"
    assert tell_raw(api, n, '{"state": "fail"}').json()["state"] == "fail"


def test_legacy_nan_and_inf_scores_are_422(api: TestClient) -> None:
    study(api)
    n = api.get("/optunapi/hparams/s").json()["trial_id"]
    for score in ("nan", "inf", "-inf", "NaN", "abc"):
        assert api.get(f"/optunapi/score/s?trial_id={n}&score={score}").status_code == 422
    assert state_of(api, n) == "running"
    assert api.get(f"/optunapi/score/s?trial_id={n}&score=0.5").json()["best_score"] == 0.5


def test_same_tell_twice_is_200_and_a_different_one_409(api: TestClient) -> None:
    """K7: the stored value never changes."""
    study(api)
    n = ask(api)["number"]
    first = tell_raw(api, n, '{"value": 1.0}')
    again = tell_raw(api, n, '{"value": 1}')
    other = tell_raw(api, n, '{"value": 2.0}')
    assert (first.status_code, again.status_code, other.status_code) == (200, 200, 409)
    assert again.json() == first.json()
    assert other.json()["stored"] == {
        "number": n,
        "state": "complete",
        "values": [1.0],
        "value": 1.0,
        "constraints": None,
        "user_attrs": {},
    }
    assert "1.0" in other.json()["detail"]
    fail = tell_raw(api, n, '{"state": "fail"}')
    assert fail.status_code == 409
    assert api.get(f"/v1/studies/s/trials/{n}").json()["values"] == [1.0]


def test_a_repeated_pruned_tell_with_a_value_is_refused_as_before(api: TestClient) -> None:
    study(api)
    n = ask(api)["number"]
    api.post(f"/v1/studies/s/trials/{n}/report", json={"step": 1, "value": 0.3})
    assert tell_raw(api, n, '{"state": "pruned", "value": 0.3}').status_code == 422
    assert tell_raw(api, n, '{"state": "pruned"}').status_code == 200
    for body in ('{"state": "pruned", "value": 999}', '{"state": "pruned", "values": [0.3]}'):
        assert tell_raw(api, n, body).status_code == 422, body
    assert tell_raw(api, n, '{"state": "pruned"}').status_code == 200
    assert api.get(f"/v1/studies/s/trials/{n}").json()["values"] == [0.3]


def test_a_repeat_with_other_user_attrs_is_a_different_tell(api: TestClient) -> None:
    study(api)
    n = ask(api)["number"]
    told = '{"value": 1.0, "user_attrs": {"a": 1, "b": [1]}}'
    assert tell_raw(api, n, told).status_code == 200
    assert tell_raw(api, n, told).status_code == 200
    assert tell_raw(api, n, '{"value": 1.0, "user_attrs": {"b": [1]}}').status_code == 200
    assert tell_raw(api, n, '{"value": 1.0}').status_code == 200
    for other in ('{"a": 2}', '{"a": true}', '{"a": 1.0}', '{"c": 1}'):
        answer = tell_raw(api, n, f'{{"value": 1.0, "user_attrs": {other}}}')
        assert answer.status_code == 409, other
        assert answer.json()["stored"]["user_attrs"] == {"a": 1, "b": [1]}
    assert api.get(f"/v1/studies/s/trials/{n}").json()["user_attrs"] == {"a": 1, "b": [1]}


def test_value_count_must_match_directions(api: TestClient) -> None:
    study(api, "mo", directions=["minimize", "maximize"])
    n = ask(api, "mo")["number"]
    for raw in ('{"value": 1}', '{"values": [1, 2, 3]}', "{}"):
        assert tell_raw(api, n, raw, "mo").status_code == 422
        assert state_of(api, n, "mo") == "running"
    assert tell_raw(api, n, '{"values": [1, 2]}', "mo").json()["values"] == [1.0, 2.0]
    assert tell_raw(api, n, '{"value": 1, "values": [1]}', "mo").status_code == 422


def test_unknown_trial_and_unknown_study_are_404(api: TestClient) -> None:
    study(api)
    assert tell_raw(api, 7, '{"value": 1}').status_code == 404
    assert api.get("/v1/studies/s/trials/7").status_code == 404
    assert api.get("/optunapi/score/s?trial_id=7&score=1").status_code == 404
    assert tell_raw(api, 0, '{"value": 1}', "nope").status_code == 404
    assert api.get("/optunapi/hparams/nope").status_code == 404


def test_a_worker_holding_a_trial_gets_it_back(api: TestClient) -> None:
    study(api)
    first = api.post("/v1/studies/s/trials", json={"worker": "gpu-1"})
    again = api.post("/v1/studies/s/trials", json={"worker": "gpu-1"})
    other = api.post("/v1/studies/s/trials", json={"worker": "gpu-2"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["number"] == first.json()["number"] != other.json()["number"]
    assert first.json()["worker"] == "gpu-1"
    tell_raw(api, first.json()["number"], '{"value": 1}')
    after = api.post("/v1/studies/s/trials", json={"worker": "gpu-1"})
    assert after.status_code == 201 and after.json()["number"] not in (0, 1)


def test_list_pages_by_number_and_filters_by_state(api: TestClient) -> None:
    study(api)
    for i in range(7):
        n = ask(api)["number"]
        if i % 2 == 0:
            tell_raw(api, n, f'{{"value": {i}}}')
    page = api.get("/v1/studies/s/trials", params={"offset": 2, "limit": 3}).json()
    assert [t["number"] for t in page["trials"]] == [2, 3, 4] and page["total"] == 7
    done = api.get("/v1/studies/s/trials", params={"state": "complete"}).json()
    assert [t["number"] for t in done["trials"]] == [0, 2, 4, 6] and done["total"] == 4
    assert api.get("/v1/studies/s/trials", params={"limit": 1001}).status_code == 422
    assert api.get("/v1/studies/s/trials", params={"state": "done"}).status_code == 422
    best = api.get("/v1/studies/s/best").json()["trials"]
    assert [t["number"] for t in best] == [0]


def test_best_follows_the_direction(api: TestClient) -> None:
    study(api, "up", direction="maximize")
    for v in (1.0, 5.0, 3.0):
        tell_raw(api, ask(api, "up")["number"], json.dumps({"value": v}), "up")
    assert api.get("/v1/studies/up/best").json()["trials"][0]["value"] == 5.0
    assert api.get("/v1/studies/up").json()["best"]["value"] == 5.0


def test_infeasible_trials_are_never_best(api: TestClient) -> None:
    study(api)
    infeasible = ask(api)["number"]
    tell_raw(api, infeasible, '{"value": 0.1, "constraints": [1.0]}')
    again = tell_raw(api, infeasible, '{"value": 0.1, "constraints": [0.0]}')
    assert again.status_code == 409 and again.json()["stored"]["constraints"] == [1.0]
    assert "constraints [1.0]" in again.json()["detail"]
    tell_raw(api, ask(api)["number"], '{"value": 0.5, "constraints": [-1.0]}')
    assert api.get("/v1/studies/s/best").json()["trials"][0]["value"] == 0.5


def test_stepped_floats_are_short_decimals_everywhere(
    api: TestClient, case_space, settings
) -> None:
    """K12: in the ask response, in GET .../trials and in the storage itself."""
    study(
        api, "k12", load_yaml(case_space("step-precision")), sampler={"type": "random", "seed": 0}
    )
    asked = [ask(api, "k12")["params"] for _ in range(40)]
    for params in asked:
        for v in params.values():
            assert repr(v) == repr(round(v, 1)), params
    listed = api.get("/v1/studies/k12/trials").json()["trials"]
    assert [t["params"] for t in listed] == asked
    db = sqlite3.connect(settings.storage.removeprefix("sqlite:///"))
    with contextlib.closing(db):  # the rows the server wrote, as any SQLite client reads them
        rows = db.execute("SELECT body FROM optunapi_trials ORDER BY number").fetchall()
    assert [json.loads(body)["params"] for (body,) in rows] == asked


def test_mixed_categorical_choices_keep_their_types_through_tpe(
    api: TestClient, case_space
) -> None:
    """K10: no sampler crash after a few trials; every value one of the exact choices."""
    space = load_yaml(case_space("mixed-categorical"))
    study(api, "k10", space, sampler={"type": "tpe", "seed": 1})
    choices = {k: [json.dumps(c) for c in v["choices"]] for k, v in space.items()}
    seen: dict[str, set[str]] = {k: set() for k in space}
    for i in range(30):
        trial = ask(api, "k10")
        for k, v in trial["params"].items():
            assert json.dumps(v) in choices[k]
            seen[k].add(json.dumps(v))
        tell_raw(api, trial["number"], json.dumps({"value": i % 7}), "k10")
    assert seen["flag"] == {"1", "true"}  # 1 and true are both handed out


def test_conditional_params_and_samples_inside_the_space(api: TestClient) -> None:
    space = {
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
        "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"optimizer": "sgd"}},
        "layers": {"type": "int", "low": 1, "high": 9, "step": 2},
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    }
    study(api, "cond", space, sampler={"type": "tpe", "seed": 5})
    model = build_definition(space).space
    for i in range(25):
        trial = ask(api, "cond")
        params = trial["params"]
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        assert model.check_params(params) == []
        tell_raw(api, trial["number"], json.dumps({"value": params["lr"] * i}), "cond")


def test_tell_body_is_checked(api: TestClient) -> None:
    study(api)
    n = ask(api)["number"]
    assert tell_raw(api, n, '{"value": 1, "colour": 2}').status_code == 422
    assert tell_raw(api, n, '{"value": "1"}').status_code == 422
    assert tell_raw(api, n, '{"state": "pruned", "value": 1}').status_code == 422
    assert tell_raw(api, n, '{"state": "done"}').status_code == 422
    assert state_of(api, n) == "running"
    assert tell_raw(api, n, '{"state": "pruned"}').json()["state"] == "pruned"


def test_legacy_route_serves_a_study_created_through_v1(api: TestClient) -> None:
    study(api, "v1made")
    hp = api.get("/optunapi/hparams/v1made").json()
    assert hp["model_name"] == "v1made" and set(hp["params"]) == {"x"}
    assert hp["running_trials"] == 1 and hp["completed_trials"] == 0


def test_parallel_asks_in_a_small_discrete_space_get_distinct_points(api: TestClient) -> None:
    """K2 in a space of four points: four asks in flight hold four different points."""
    space = {
        "a": {"type": "int", "low": 0, "high": 1},
        "b": {"type": "categorical", "choices": ["x", "y"]},
    }
    for sampler in ("tpe", "random"):
        for seed in range(5):
            name = f"small-{sampler}-{seed}"
            study(api, name, space, sampler={"type": sampler, "seed": seed})
            answers = [api.post(f"/v1/studies/{name}/trials") for _ in range(4)]
            points = {json.dumps(a.json()["params"], sort_keys=True) for a in answers}
            assert len(points) == 4, (sampler, seed, points)
            assert not any("optunapi-space-exhausted" in a.headers for a in answers)


def test_an_exhausted_space_says_which_trial_an_ask_repeats(api: TestClient) -> None:
    """K2: once every point is in flight, an ask repeats one, and says so."""
    space = {
        "a": {"type": "categorical", "choices": [1, 2]},
        "b": {"type": "int", "low": 0, "high": 1},
    }
    for sampler in ("grid", "random", "tpe"):
        name = f"full-{sampler}"
        study(api, name, space, sampler={"type": sampler, "seed": 1})
        first = [api.post(f"/v1/studies/{name}/trials") for _ in range(4)]
        assert not any("optunapi-space-exhausted" in a.headers for a in first), sampler
        extra = api.post(f"/v1/studies/{name}/trials")
        assert extra.status_code == 201
        twin = int(extra.headers["optunapi-space-exhausted"])
        assert first[twin].json()["params"] == extra.json()["params"], sampler
    # A repeat while a point is free is no exhaustion: here a point held twice (queued), and
    # samplers that draw every parameter at once (multivariate TPE), which are not redrawn.
    study(api, "twice", space, sampler={"type": "random", "seed": 1})
    queued = {"a": 1, "b": 0}
    for _ in range(2):
        api.post("/v1/studies/twice/enqueue", json={"params": queued})
    answers = [api.post("/v1/studies/twice/trials") for _ in range(5)]
    points = [json.dumps(a.json()["params"], sort_keys=True) for a in answers]
    assert len(set(points)) == 4  # the two queued, then the three other points
    assert not any("optunapi-space-exhausted" in a.headers for a in answers)
    joint = {"type": "tpe", "seed": 1, "multivariate": True, "n_startup_trials": 1}
    study(api, "joint", space, sampler=joint)
    first = ask(api, "joint")["number"]
    assert tell_raw(api, first, '{"value": 1}', "joint").status_code == 200
    answers = [api.post("/v1/studies/joint/trials") for _ in range(4)]
    held = [json.dumps(a.json()["params"], sort_keys=True) for a in answers]
    assert len(set(held)) < 4  # it repeated a point while others were free
    assert not any("optunapi-space-exhausted" in a.headers for a in answers)
    # Params queued by hand are not a sign of an exhausted space, even if they repeat.
    study(api, "queued", space, sampler={"type": "random", "seed": 1})
    held = ask(api, "queued")["params"]
    assert api.post("/v1/studies/queued/enqueue", json={"params": held}).status_code == 201
    again = api.post("/v1/studies/queued/trials")
    assert again.json()["params"] == held and "optunapi-space-exhausted" not in again.headers
    legacy_space = "a: {name: a, type: categorical, choices: [1]}\n"
    (api.app.state.settings.config_dir / "one.yaml").write_text(legacy_space)  # type: ignore[attr-defined]
    assert "optunapi-space-exhausted" not in api.get("/optunapi/hparams/one").headers
    assert api.get("/optunapi/hparams/one").headers["optunapi-space-exhausted"] == "0"


def test_a_tell_waiting_for_a_busy_study_does_not_hold_up_other_requests(
    api: TestClient,
) -> None:
    """Quick asks and tells run on the event loop, but only when the study's lock is free: one
    that would wait for it waits in a worker thread, and the server answers others meanwhile."""
    study(api, "busy", sampler={"type": "random", "seed": 0})
    number = ask(api, "busy")["number"]
    ask(api, "busy")  # the study is loaded: its asks and tells are quick
    lock = api.app.state.studies.get("busy").lock  # type: ignore[attr-defined]
    lock.acquire()  # as a long request of this study would
    try:
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(
                api.post, f"/v1/studies/busy/trials/{number}/tell", json={"value": 2.0}
            )
            registry = api.app.state.metrics.registry  # type: ignore[attr-defined]
            deadline = time.monotonic() + 20
            while registry.get_sample_value("optunapi_requests_in_progress") != 1:
                assert time.monotonic() < deadline, "the tell never reached the server"
                threading.Event().wait(0.01)  # polls a condition: the tell is in flight
            assert api.get("/v1/health").status_code == 200
            assert api.get("/v1/studies/busy/trials").json()["total"] == 2
            assert not waiting.done()
            lock.release()
            lock = None
            told = waiting.result(timeout=30)
    finally:
        if lock is not None:
            lock.release()
    assert told.status_code == 200 and told.json()["value"] == 2.0


def test_a_trial_of_a_deleted_study_is_not_confused_with_its_successors(api: TestClient) -> None:
    """A study deleted and created again numbers its trials from 0 anew. The ask answers which
    study the trial belongs to; sent back, it makes the old trial's requests 404s, and the new
    study's trial of the same number is left alone."""
    study(api, "again", sampler={"type": "random", "seed": 0})
    old = api.post("/v1/studies/again/trials")
    old_uid = old.headers["optunapi-study-uid"]
    assert api.delete("/v1/studies/again").status_code == 204
    study(api, "again", sampler={"type": "random", "seed": 1})
    new = api.post("/v1/studies/again/trials")
    new_uid = new.headers["optunapi-study-uid"]
    assert new.json()["number"] == old.json()["number"] == 0 and new_uid != old_uid
    stale = {"optunapi-study-uid": old_uid}
    path = "/v1/studies/again/trials/0"
    for answer in (
        api.post(f"{path}/tell", json={"value": 0.5}, headers=stale),
        api.post(f"{path}/heartbeat", headers=stale),
        api.post(f"{path}/report", json={"step": 0, "value": 0.5}, headers=stale),
    ):
        assert answer.status_code == 404
        assert answer.json()["type"].endswith("study-not-found")
        assert "was deleted" in answer.json()["detail"]
    kept = api.get(path).json()
    assert kept["state"] == "running" and kept["intermediate_values"] == {}
    told = api.post(f"{path}/tell", json={"value": 0.5}, headers={"optunapi-study-uid": new_uid})
    assert told.status_code == 200 and told.json()["value"] == 0.5


class _WatchedLock:
    """A study's lock that says when a thread had to wait for it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.waited = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        if not blocking:
            return False
        self.waited.set()
        return self._lock.acquire(timeout=timeout)

    def release(self) -> None:
        self._lock.release()


def test_a_delete_waiting_for_its_study_holds_up_no_other_request(api: TestClient) -> None:
    """A delete waits for the request in progress on its study, and meanwhile that request (and
    any other) still looks studies up: the delete then succeeds, rather than a 20 s stall of
    the whole server ended by a 503."""
    study(api, "doomed", sampler={"type": "random", "seed": 0})
    study(api, "other", sampler={"type": "random", "seed": 0})
    number = ask(api, "doomed")["number"]
    studies = api.app.state.studies  # type: ignore[attr-defined]
    entry = studies.get("doomed")
    entry.lock = lock = _WatchedLock()
    lock.acquire()  # a request on the study is in progress, in this thread
    try:
        with ThreadPoolExecutor(1) as pool:
            deleting = pool.submit(api.delete, "/v1/studies/doomed")
            assert lock.waited.wait(timeout=30), "the delete never waited for the study"
            assert studies.get("doomed") is entry  # as the request in progress does
            assert ask(api, "other")["state"] == "running"
            assert api.get("/v1/studies/doomed").status_code == 200
            lock.release()
            lock = None
            assert deleting.result(timeout=30).status_code == 204
    finally:
        if lock is not None:
            lock.release()
    assert api.get("/v1/studies/doomed").status_code == 404
    told = api.post(f"/v1/studies/doomed/trials/{number}/tell", json={"value": 1.0})
    assert told.status_code == 404


def test_random_asks_respect_conditions_steps_and_choices(api: TestClient) -> None:
    """The random sampler draws a whole trial at once: every trial is still a point of the
    space, conditional parameters appear exactly when their condition holds, and a queued
    trial is still handed out first."""
    space = {
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam", 1, True]},
        "momentum": {"type": "float", "low": 0.0, "high": 0.9, "step": 0.1,
                     "when": {"optimizer": "sgd"}},
        "units": {"type": "int", "low": 16, "high": 512, "step": 16},
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    }  # fmt: skip
    study(api, "cond", space, sampler={"type": "random", "seed": 3})
    queued = {"optimizer": "adam", "units": 32, "lr": 0.01}
    assert api.post("/v1/studies/cond/enqueue", json={"params": queued}).status_code == 201
    model = build_definition(space).space
    trials = [ask(api, "cond") for _ in range(60)]
    assert trials[0]["params"] == queued
    for trial in trials:
        params = trial["params"]
        assert model.check_params(params) == [], params
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
    assert {json.dumps(t["params"]["optimizer"]) for t in trials} == {
        '"sgd"',
        '"adam"',
        "1",
        "true",
    }


def test_trial_numbers_are_written_in_digits(api: TestClient) -> None:
    study(api)
    for _ in range(11):
        ask(api)
    for number in ("1_0", "+10", "%2010", "10%0A", "1e1", "10.0", "٣"):
        answer = api.post(f"/v1/studies/s/trials/{number}/tell", json={"value": 1})
        assert answer.status_code == 422, number
        assert api.get(f"/v1/studies/s/trials/{number}").status_code == 422, number
        legacy = api.get(f"/optunapi/score/s?trial_id={number}&score=1")
        assert legacy.status_code == 422, number
    assert api.get("/v1/studies/s/trials", params={"state": "complete"}).json()["total"] == 0
    assert api.post("/v1/studies/s/trials/010/tell", json={"value": 1}).status_code == 200
