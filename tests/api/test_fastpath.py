"""The fast path for plain asks and tells (``server/fastpath.py``) answers as the routes do.

The same requests, well- and ill-formed, go to an app with the fast path and to one without;
the answers must be the same. And the fast path must really answer the plain ones itself while
passing every other request on with its body intact.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from optunapi.server import Settings, create_app
from optunapi.server.fastpath import FastPath
from optunapi.server.routes import trials

STUDY = {
    "name": "s",
    "space": {
        "x": {"type": "float", "low": 0, "high": 1},
        "k": {"type": "categorical", "choices": ["a", "b"]},
    },
    "sampler": {"type": "random", "seed": 7},
}
JSON = {"content-type": "application/json"}
_TIMES = ("datetime_start", "datetime_complete", "lease_expires_at")


@pytest.fixture
def both(tmp_path: Path) -> Iterator[dict[bool, TestClient]]:
    """An app with the fast path (True) and one without (False), each on its own file."""
    clients = {}
    for fast in (True, False):
        root = tmp_path / str(fast)
        (root / "config").mkdir(parents=True)
        settings = Settings(storage=f"sqlite:///{root / 'db.sqlite'}", config_dir=root / "config")
        clients[fast] = TestClient(
            create_app(settings, fast_path=fast), raise_server_exceptions=False
        )
    with clients[True], clients[False]:
        yield clients


def _answer(response: Response) -> tuple[int, str, Any, str | None]:
    """What a client sees, with the clock's readings blanked."""
    body: Any = response.text
    if "json" in response.headers.get("content-type", ""):
        body = _blank(response.json())
    return (
        response.status_code,
        response.headers.get("content-type", ""),
        body,
        response.headers.get("retry-after"),
    )


def _blank(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: "<time>" if k in _TIMES and v else _blank(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_blank(item) for item in body]
    return body


def _same(both: dict[bool, TestClient], method: str, path: str, **request: Any) -> Any:
    fast, routed = (_answer(both[f].request(method, path, **request)) for f in (True, False))
    assert fast == routed, (method, path, request)
    return fast


ASKS: list[dict[str, Any]] = [
    {},
    {"content": b"{}", "headers": JSON},
    {"json": {"worker": "w1"}},
    {"json": {"worker": "w1"}},  # the same worker gets its trial back: 200
    {
        "content": b'{"worker": "w2"}',
        "headers": {"content-type": "application/json; charset=utf-8"},
    },
    {"json": {"worker": ""}},
    {"json": {"worker": 5}},
    {"json": {"extra": 1}},
    {"content": b"null", "headers": JSON},
    {"content": b"[]", "headers": JSON},
    {"content": b'"x"', "headers": JSON},
    {"content": b"{", "headers": JSON},
    {"content": b"\xff\xfe", "headers": JSON},
    {"content": b"[" * 5000 + b"]" * 5000, "headers": JSON},
    {"content": b'{"worker": "w3"}', "headers": {"content-type": "text/plain"}},
    {"content": b'{"worker": "w4"}'},  # no content type
    {"content": json.dumps({"worker": "w" * 20_000}).encode(), "headers": JSON},  # large
]

TELLS: list[dict[str, Any]] = [
    {"json": {"value": 0.5}, "headers": {"optunapi-study-uid": "an-earlier-study"}},  # 404
    {"content": b'{"value": NaN}', "headers": JSON},
    {"content": b'{"value": 1e999}', "headers": JSON},
    {"json": {"value": 1, "values": [1]}},
    {"json": {"state": "bogus"}},
    {"json": {"values": [1, 2]}},  # one objective: a 409-free 422 from the service
    {"json": {"state": "pruned", "value": 2}},
    {},
    {"content": b"[1]", "headers": JSON},
    {"content": b'{"value": 0.5}', "headers": {"content-type": "text/plain"}},
    {
        "content": b'{"value": 0.5}',
        "headers": [("content-type", "text/plain"), ("content-type", "application/json")],
    },
    {"json": {"value": 0.5, "user_attrs": {"epochs": 3}}},
    {"json": {"value": 0.5, "user_attrs": {"epochs": 3}}},  # an identical repeat: 200
    {"json": {"value": 0.7}},  # a different outcome: 409
    {"json": {"state": "fail"}},
]


def test_asks_answer_as_the_route_does(both: dict[bool, TestClient]) -> None:
    assert _same(both, "POST", "/v1/studies", json=STUDY)[0] == 201
    statuses = [_same(both, "POST", "/v1/studies/s/trials", **ask)[0] for ask in ASKS]
    assert statuses[:5] == [201, 201, 201, 200, 201]
    assert 422 in statuses and 201 in statuses[5:]
    for path in (
        "/v1/studies/nope/trials",  # no such study: 404
        "/v1/studies/-bad/trials",  # an invalid name: 422
        "/v1/studies/s%0A/trials",
        f"/v1/studies/{'n' * 129}/trials",
        "/v1/studies/s/trials/",
    ):
        _same(both, "POST", path)
    listed = _same(both, "GET", "/v1/studies/s/trials", params={"limit": 1000})
    assert listed[2]["total"] == statuses.count(201)


def test_tells_answer_as_the_route_does(both: dict[bool, TestClient]) -> None:
    _same(both, "POST", "/v1/studies", json=STUDY)
    number = _same(both, "POST", "/v1/studies/s/trials")[2]["number"]
    statuses = [
        _same(both, "POST", f"/v1/studies/s/trials/{number}/tell", **tell)[0] for tell in TELLS
    ]
    assert statuses[0] == 404 and statuses[-4:] == [200, 200, 409, 409]
    assert statuses.count(422) >= 8
    for path in (
        "/v1/studies/s/trials/2147483648/tell",
        "/v1/studies/s/trials/-1/tell",
        "/v1/studies/s/trials/abc/tell",
        "/v1/studies/s/trials/00/tell",
        "/v1/studies/s/trials/99/tell",  # no such trial: 404
        "/v1/studies/nope/trials/0/tell",
    ):
        _same(both, "POST", path, json={"value": 1})
    assert _same(both, "GET", f"/v1/studies/s/trials/{number}")[2]["value"] == 0.5


def test_plain_requests_do_not_reach_the_routes_and_others_do_with_their_body(
    tmp_path: Path,
) -> None:
    settings = Settings(storage=f"sqlite:///{tmp_path / 'db.sqlite'}", config_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/studies", json=STUDY).status_code == 201
        passed_on: list[bytes] = []

        async def routes(scope: Any, receive: Any, send: Any) -> None:
            message = await receive()
            passed_on.append(message["body"])
            await send({"type": "http.response.start", "status": 418, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        fast = FastPath(routes, trials.router.routes)

        def post(path: str, body: bytes, content_type: bytes = b"application/json") -> int:
            return asyncio.run(_post(fast, client.app, path, body, content_type))

        assert post("/v1/studies/s/trials", b"") == 201
        assert post("/v1/studies/s/trials", b'{"worker": "w"}') == 201
        assert post("/v1/studies/s/trials/0/tell", b'{"value": 1}') == 200
        assert post("/v1/studies/nope/trials", b"") == 404  # the service's error, rendered
        assert passed_on == []
        for path, body, content_type in (
            ("/v1/studies/s/trials", b'{"worker": 1}', b"application/json"),
            ("/v1/studies/s/trials/1/tell", b'{"value": NaN}', b"application/json"),
            ("/v1/studies/s/trials/1/tell", b'{"value": 1}', b"text/plain"),
            ("/v1/studies/-s/trials", b"", b"application/json"),
        ):
            assert post(path, body, content_type) == 418
            assert passed_on[-1] == body
        assert client.get("/v1/studies/s/trials/0").json()["value"] == 1


async def _post(app: Any, parent: Any, path: str, body: bytes, content_type: bytes) -> int:
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": "",
        "app": parent,
        "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def test_a_client_that_leaves_mid_body_is_not_counted_as_answered(tmp_path: Path) -> None:
    settings = Settings(storage=f"sqlite:///{tmp_path / 'db.sqlite'}", config_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/studies", json=STUDY).status_code == 201
        number = client.post("/v1/studies/s/trials").json()["number"]
        messages: list[dict[str, Any]] = [
            {"type": "http.disconnect"},
            {"type": "http.request", "body": b'{"va', "more_body": True},
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": f"/v1/studies/s/trials/{number}/tell",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"13")],
        }
        asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
        assert sent == []
        registry = client.app.state.metrics.registry  # type: ignore[attr-defined]
        metrics = client.get("/metrics").text
        assert 'status="500"' not in metrics
        assert registry.get_sample_value("optunapi_requests_in_progress") == 0
        assert client.get(f"/v1/studies/s/trials/{number}").json()["state"] == "running"
