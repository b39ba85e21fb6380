"""HEAD on the GET routes, as HTTP asks (FastAPI serves only the methods a route names).

Not on the legacy ``hparams`` and ``score`` routes: their GET starts or finishes a trial, and a
HEAD must change nothing.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CHANGING = re.compile(r"/optuna(?:pi)?/(?:hparams|score)/")


def serves_head(path: str) -> bool:
    """Whether a HEAD of ``path`` is answered as its GET."""
    return _CHANGING.match(path) is None


class HeadAsGet:
    """ASGI middleware: a HEAD request is answered as its GET, headers only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or not serves_head(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        as_get = {**scope, "method": "GET"}
        await self.app(as_get, receive, headers_only)
        if "route" in as_get:  # for the metrics' route label
            scope["route"] = as_get["route"]
