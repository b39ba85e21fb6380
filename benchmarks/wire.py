"""Minimal HTTP/1.1 for the load generator: prebuilt requests and an incremental answer parser.

``http.client`` and httpx spend more CPU per request than a small server needs to answer one,
and on a 2-core machine the load generator shares the cores with the server it measures. So
requests are serialized once into bytes, and answers are parsed only as far as needed: the
status line, ``Content-Length`` or chunked framing (what uvicorn sends), ``Connection: close``.
The parser does no I/O, so the selector loop (``http_clients``) and the blocking ``Connection``
(setup and prefill) share it. ``compare.py`` checks that the result saturates the floor server.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


class HTTPError(Exception):
    """The connection broke, or the answer was not the HTTP/1.1 this parser expects."""


def request_bytes(method: str, target: str, host: str, body: bytes = b"") -> bytes:
    """Serialize one request; a non-empty body is sent as JSON.

    Args:
        method: ``GET`` or ``POST``.
        target: Path and query.
        host: The ``Host`` header.
        body: The request body.
    """
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    return head.encode("ascii") + b"\r\n" + body


def address(url: str) -> tuple[str, int, str]:
    """``http://host:port`` as ``(host, port, netloc)``."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80, parts.netloc


class ResponseParser:
    """Feed it the bytes of a connection; it returns each answer once it is complete."""

    def __init__(self) -> None:
        """Start with an empty buffer, waiting for a status line."""
        self._buf = b""
        self.close_after = False  # the last answer said ``Connection: close``

    def feed(self, data: bytes) -> tuple[int, bytes] | None:
        """Add received bytes; return ``(status, body)`` when an answer is complete.

        Raises:
            HTTPError: The bytes are not an HTTP/1.1 answer this parser understands.
        """
        self._buf += data
        return self._parse()

    def _parse(self) -> tuple[int, bytes] | None:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = self._buf[:end].split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError) as exc:
            raise HTTPError(f"not an HTTP status line: {lines[0][:80]!r}") from exc
        length, chunked, close = -1, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        rest = self._buf[end + 4 :]
        if chunked:
            parsed = _dechunk(rest)
            if parsed is None:
                return None
            body, used = parsed
        elif length >= 0:
            if len(rest) < length:
                return None
            body, used = rest[:length], length
        else:
            raise HTTPError("an answer without Content-Length or chunked framing")
        self._buf = rest[used:]
        self.close_after = close
        return status, body


def _dechunk(data: bytes) -> tuple[bytes, int] | None:
    """Decode a complete chunked body at the start of ``data``: ``(body, bytes used)``."""
    parts, pos = [], 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(data[pos:eol].split(b";")[0], 16)
        start = eol + 2
        if len(data) < start + size + 2:
            return None
        parts.append(data[start : start + size])
        pos = start + size + 2  # each chunk ends in CRLF; the last one (size 0) has no trailers
        if size == 0:
            return b"".join(parts), pos


class Connection:
    """One blocking keep-alive connection, for setup and prefill; reconnects after a failure."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        """Remember where to connect; the socket opens with the first request.

        Args:
            url: ``http://host:port``.
            timeout: Seconds a connect or a read may block before it is an error.
        """
        host, port, self.netloc = address(url)
        self._address = (host, port)
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._parser = ResponseParser()

    def close(self) -> None:
        """Close the socket; the next request reconnects."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request and wait for its whole answer.

        Returns:
            The status code and the body.

        Raises:
            HTTPError: On a socket error or a malformed answer; the connection is closed.
        """
        try:
            if self._sock is None:
                self._sock = connect(self._address, self._timeout)
                self._parser = ResponseParser()
            self._sock.sendall(request_bytes(method, target, self.netloc, body))
            answer = self._parser.feed(b"")
            while answer is None:
                data = self._sock.recv(65536)
                if not data:
                    raise HTTPError("connection closed by the server")
                answer = self._parser.feed(data)
        except (OSError, ValueError, HTTPError) as exc:
            self.close()
            raise HTTPError(f"{type(exc).__name__}: {exc}") from exc
        if self._parser.close_after:
            self.close()
        return answer


def connect(addr: tuple[str, int], timeout: float) -> socket.socket:
    """Open a TCP connection with Nagle off: each request is one write that waits for its answer."""
    sock = socket.create_connection(addr, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
