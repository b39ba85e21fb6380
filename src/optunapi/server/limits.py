"""A cap on request bodies, so that one request cannot fill the server's memory or the storage."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optunapi.errors import RequestTooLargeError
from optunapi.server.problems import TOO_LARGE, render


class BodySizeLimit:
    """ASGI middleware: a body over ``max_bytes`` is a 413 before the route reads it whole."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # FastAPI turns an error while reading into a 400; the mark makes it a 413.
                scope.setdefault("state", {})[TOO_LARGE] = self._error()
                raise self._error()
            return message

        await self.app(scope, counting, send)

    def _error(self) -> RequestTooLargeError:
        return RequestTooLargeError(
            f"The request body is larger than {self.max_bytes} bytes, the most this server "
            "accepts (OPTUNAPI_MAX_BODY_BYTES)."
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await render(self._error())(scope, receive, send)
