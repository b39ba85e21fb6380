"""The web dashboard (optuna-dashboard) served by the same process, read-only.

optuna-dashboard is a WSGI app with its routes at the root (``/dashboard``, ``/api/...``,
``/static/...``); requests for those paths go to it, everything else to optunapi. Only GET is
passed on: the dashboard is for watching, and its write routes (tell, rename, delete) would
bypass the leases and checks of the API.
"""

from __future__ import annotations

import logging
import types

from a2wsgi import WSGIMiddleware
from optuna.storages import BaseStorage
from optuna_dashboard import wsgi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optunapi.errors import BadRequestError, MethodNotAllowedError, OptunapiError
from optunapi.server.problems import render

_log = logging.getLogger("optunapi.server")
_PATHS = ("/dashboard", "/api/", "/static/", "/csv/", "/favicon.ico")
# Every dashboard request is counted under one route in the metrics.
_ROUTE = types.SimpleNamespace(path="/dashboard")


class Dashboard:
    """ASGI middleware: the dashboard's paths to optuna-dashboard, the rest to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._dashboard: WSGIMiddleware | None = None

    def _over(self, storage: BaseStorage) -> WSGIMiddleware:
        # Built at the first dashboard request: the storage is opened in the app's lifespan.
        if self._dashboard is None:
            self._dashboard = WSGIMiddleware(wsgi(storage))
        return self._dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(_PATHS):
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            error = MethodNotAllowedError("The dashboard is read-only: use the v1 API to change.")
            response = render(error)
            response.headers["Allow"] = "GET, HEAD"
            await response(scope, receive, send)
            return
        scope["route"] = _ROUTE  # for the metrics' route label
        headers = dict(scope["headers"])
        if b"accept-encoding" not in headers:
            # optuna-dashboard's static files fail without this header.
            scope = {**scope, "headers": [*scope["headers"], (b"accept-encoding", b"identity")]}
        storage = scope["app"].state.studies.storage
        failed: list[int] = []

        async def problems_only(message: Message) -> None:
            # The dashboard's own errors (HTML, or its JSON) leave as problem+json too.
            if message["type"] == "http.response.start" and message["status"] >= 400:
                failed.append(message["status"])
                return
            if failed:
                if not message.get("more_body", False):
                    await render(_problem(path, failed[0]))(scope, receive, send)
                return
            await send(message)

        await self._over(storage)(scope, receive, problems_only)  # type: ignore[arg-type]


def _problem(path: str, status: int) -> OptunapiError:
    """What a failed dashboard request answers. The dashboard answers 500 (or 400, or 403 for a
    path that leaves its files) to a path or query it cannot read, such as ``?after=abc``: a
    request the client should change, so a 400; only its 404 and 405 are kept."""
    if status in (404, 405):
        error = OptunapiError.from_problem({}, status)
        error.detail = f"The dashboard has nothing at {path} (HTTP {status})."
        return error
    if status >= 500:
        _log.warning("the dashboard answered HTTP %d to %s", status, path)
    return BadRequestError(
        f"The dashboard could not answer {path} with this path or query (it answered HTTP "
        f"{status}); check them against what the dashboard itself requests."
    )
