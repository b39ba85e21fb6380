"""Plain asks and tells, answered without FastAPI's per-request machinery.

Asks and tells are most of a server's requests, and FastAPI spends more time on one (matching
the routes, its dependency solver validating each path parameter and the body, its exception and
exit-stack wrappers) than the random sampler and the storage together. This ASGI middleware,
the innermost of the app's own (so tokens, metrics and the body cap apply as to any request),
answers a plain ask or tell itself: a path that matches, a valid study name, a trial number in
range, and no body (an ask) or a small JSON object that validates.

Anything else goes on to the FastAPI route with its body replayed: a bad name, number or body,
another content type, a chunked or large body. So every answer to a malformed request is the
route's own, and the two ways share the rest: the same service call (``routes.trials.asked``,
``told``) and the same rendering of the errors it raises (``problems.raised``). The FastAPI
routes still define ask and tell in the OpenAPI document. ``tests/api/test_fastpath.py`` sends
the same requests, well- and ill-formed, both ways and compares the answers.
"""

from __future__ import annotations

import json
import re

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optunapi.errors import OptunapiError
from optunapi.names import STUDY_NAME_PATTERN
from optunapi.schemas import MAX_NUMBER, STUDY_UID_HEADER, TrialAsk, TrialTell
from optunapi.server.problems import raised, render
from optunapi.server.routes.trials import asked, told

ASK_PATH = "/v1/studies/{name}/trials"
TELL_PATH = "/v1/studies/{name}/trials/{number}/tell"
# The name is checked against the naming rule separately, as the route does.
_PATH = re.compile(r"/v1/studies/([^/]+)/trials(?:/(0|[1-9][0-9]{0,9})/tell)?")
_NAME = re.compile(STUDY_NAME_PATTERN)
# Asks and tells are a few hundred bytes; a larger body takes the route (and the body cap).
_MAX_BODY = 16_384
_STUDY_UID = STUDY_UID_HEADER.lower().encode()


class FastPath:
    """ASGI middleware answering plain asks and tells; see the module's docstring."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        # Set on the scope as the router would, for the metrics' route label.
        self._ask = _route(routes, ASK_PATH)
        self._tell = _route(routes, TELL_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = _target(scope)
        length = None if target is None else _plain_length(scope["headers"])
        if target is None or length is None:
            await self.app(scope, receive, send)
            return
        name, number = target
        try:
            body = await _read(receive) if length else b""
        except OptunapiError as error:  # over the server's body cap
            await render(error)(scope, receive, send)
            return
        if body is None:  # the client went away
            return
        valid, model = _parse(body, asking=number is None)
        if not valid:  # the route says what is wrong
            await self.app(scope, _replaying(body, receive), send)
            return
        scope["route"] = self._ask if number is None else self._tell
        trials = scope["app"].state.trials
        try:
            if isinstance(model, TrialTell) and number is not None:
                response = await told(trials, name, number, model, _study_uid(scope["headers"]))
            else:
                response = await asked(trials, name, model if isinstance(model, TrialAsk) else None)
        except Exception as exc:
            response = raised(exc, "POST", scope["path"])
        await response(scope, receive, send)


def _parse(body: bytes, asking: bool) -> tuple[bool, TrialAsk | TrialTell | None]:
    """Whether the route would take ``body`` as it is, and the model it would make of it."""
    if not body:
        return asking, None  # an ask needs no body, a tell does
    try:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            return False, None
        return True, (TrialAsk if asking else TrialTell).model_validate(payload)
    except (ValueError, RecursionError):  # not JSON, too deep, or invalid (ValidationError)
        return False, None


def _target(scope: Scope) -> tuple[str, int | None] | None:
    """The study name and trial number (None: an ask) of an ask or tell this path may answer."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    matched = _PATH.fullmatch(scope["path"])
    if matched is None or _NAME.fullmatch(matched.group(1)) is None:
        return None
    number = None if matched.group(2) is None else int(matched.group(2))
    if number is not None and number > MAX_NUMBER:
        return None
    return matched.group(1), number


def _route(routes: list[BaseRoute], path: str) -> APIRoute:
    return next(r for r in routes if isinstance(r, APIRoute) and r.path == path)


def _plain_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The body's declared length if this path may read it: no body, or a small JSON one with
    a length (not chunked). None when the route should have the request."""
    length, content_type = 0, None
    for key, value in headers:
        if key == b"content-length":
            if not value.isdigit():
                return None
            length = int(value)
        elif key == b"content-type":
            if content_type is not None:  # which one counts is the route's call
                return None
            content_type = value.partition(b";")[0].strip().lower()
        elif key == b"transfer-encoding":
            return None
    json_body = content_type == b"application/json"
    if length > _MAX_BODY or (length and not json_body):
        return None
    return length


def _study_uid(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The ``Optunapi-Study-Uid`` header, as the route would read it."""
    for key, value in headers:
        if key == _STUDY_UID:
            return value.decode("latin-1")
    return None


async def _read(receive: Receive) -> bytes | None:
    """The whole body, or None if the client disconnected first."""
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` that gives the already read body first."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
