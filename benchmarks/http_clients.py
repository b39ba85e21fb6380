"""HTTP clients in one load-generator process: a selector loop over keep-alive sockets.

No thread switches and no HTTP library between the clock and the wire, so that one process can
saturate the floor server (``compare.py`` prints the check). Each connection is one client,
a small state machine: idle, asking, telling.
"""

from __future__ import annotations

import json
import selectors
import time
from collections import Counter
from typing import Any

from benchmarks.drivers import ClientLog, HttpDriver, Progress, Window
from benchmarks.wire import HTTPError, ResponseParser, address, connect, request_bytes
from benchmarks.workloads import STUDY, objective


class _HttpClient:
    """One connection's state in the selector loop."""

    __slots__ = (
        "ask_latency",
        "cycle_start",
        "number",
        "params",
        "parser",
        "phase",
        "progress",
        "sent_at",
        "sock",
        "todo",
    )

    def __init__(self) -> None:
        self.sock: Any = None
        self.parser = ResponseParser()
        self.phase = "idle"  # "ask" or "tell" while a request is in flight
        self.sent_at = 0.0
        self.cycle_start = 0.0
        self.ask_latency = 0.0
        self.number = -1
        self.params: dict[str, Any] = {}
        self.todo = 0  # warm-up cycles left
        self.progress = Progress()


class HttpLoad:
    """Clients of one HTTP system in one process, driven by a selector loop."""

    def __init__(self, driver: HttpDriver, clients: int, timeout: float = 120.0) -> None:
        """Prepare ``clients`` connections to ``driver.url`` (opened by ``warm_up``)."""
        host, port, netloc = address(driver.url)
        self._addr, self._netloc, self._timeout = (host, port), netloc, timeout
        self._driver = driver
        self._clients = [_HttpClient() for _ in range(clients)]
        self._sel = selectors.DefaultSelector()
        self.log = ClientLog()
        self._window: Window | None = None
        self._warm_errors: Counter[str] = Counter()
        if driver.routes == "v1":
            self._ask = request_bytes("POST", f"/v1/studies/{STUDY}/trials", netloc)
            self._number_key = "number"
        else:
            self._ask = request_bytes("GET", f"/optunapi/hparams/{STUDY}", netloc)
            self._number_key = "trial_id"

    def _tell(self, number: int, value: float) -> bytes:
        if self._driver.routes == "v1":
            target = f"/v1/studies/{STUDY}/trials/{number}/tell"
            return request_bytes(
                "POST", target, self._netloc, json.dumps({"value": value}).encode()
            )
        target = f"/optunapi/score/{STUDY}?trial_id={number}&score={value!r}"
        return request_bytes("GET", target, self._netloc)

    def warm_up(self, cycles: int) -> None:
        """Connect every client; the first one runs ``cycles`` untimed cycles.

        Warming one connection is enough for what a server builds lazily, and keeps a server
        that takes seconds per request from spending the warm-up on every connection.

        Raises:
            RuntimeError: The cycles did not complete; says what went wrong.
        """
        for client in self._clients:
            self._open(client)
        first = self._clients[0]
        first.todo = cycles
        self._send_ask(first, time.monotonic())
        self._run(deadline=time.monotonic() + self._timeout)
        if first.todo > 0:
            raise RuntimeError(f"warm-up failed: {dict(self._warm_errors) or 'timed out'}")

    def measure(self, window: Window) -> ClientLog:
        """Loop until ``window.end``, let cycles in flight finish, and return the log."""
        # A connection idle since the warm-up may have been closed by the server's keep-alive
        # timeout: it reads as readable (EOF) now, and is reopened before the clock starts.
        for key, _ in self._sel.select(timeout=0):
            self._reopen(key.data)
        self._window = window
        cpu = time.process_time()
        now = time.monotonic()
        for client in self._clients:
            self._send_ask(client, now)
        self._run(deadline=window.end + window.grace)
        self.log.cpu = time.process_time() - cpu
        self.log.rates = [c.progress.rate() for c in self._clients]
        for client in self._clients:
            if client.sock is not None:
                client.sock.close()
        return self.log

    def _open(self, client: _HttpClient) -> None:
        client.sock = connect(self._addr, self._timeout)
        client.sock.setblocking(False)
        client.parser = ResponseParser()
        self._sel.register(client.sock, selectors.EVENT_READ, client)

    def _reopen(self, client: _HttpClient) -> None:
        if client.sock is not None:
            self._sel.unregister(client.sock)
            client.sock.close()
            client.sock = None
        try:
            self._open(client)
        except OSError as exc:
            self._error(f"connect {type(exc).__name__}", time.monotonic())

    def _send(self, client: _HttpClient, raw: bytes, phase: str, now: float) -> None:
        client.phase, client.sent_at = phase, now
        try:
            if client.sock is None:
                raise HTTPError("not connected")
            sent = client.sock.send(raw)
            if sent < len(raw):  # a full socket buffer: rare for a few hundred bytes
                client.sock.setblocking(True)
                client.sock.sendall(raw[sent:])
                client.sock.setblocking(False)
        except (OSError, HTTPError) as exc:
            self._error(f"{phase} {type(exc).__name__}", now)
            client.phase = "idle"
            self._reopen(client)

    def _send_ask(self, client: _HttpClient, now: float) -> None:
        """Start a cycle, unless the window is over (or, warming up, no cycle is left)."""
        window = self._window
        if (window is not None and now >= window.end) or (window is None and client.todo <= 0):
            client.phase = "idle"
        else:
            client.cycle_start = now
            self._send(client, self._ask, "ask", now)

    def _error(self, kind: str, started: float) -> None:
        """Count a failed request (warm-up errors apart: they fail the warm-up)."""
        if self._window is None:
            self._warm_errors[kind] += 1
        elif self._window.overlaps(started, time.monotonic()):
            self.log.errors[kind] += 1

    def _run(self, deadline: float) -> None:
        """Serve answers until every client is idle; past ``deadline``, give up on the rest."""
        while any(c.phase != "idle" for c in self._clients):
            now = time.monotonic()
            if now > deadline:
                for client in self._clients:
                    if client.phase != "idle":
                        # Judged by its cycle, which overlaps the window (none starts after it):
                        # a tell that began after the window's end is still a lost cycle.
                        self._error(f"{client.phase} timeout", client.cycle_start)
                        client.phase = "idle"
                        self._reopen(client)  # a late answer must not be read as the next one
                return
            for key, _ in self._sel.select(timeout=min(1.0, deadline - now)):
                self._readable(key.data)

    def _readable(self, client: _HttpClient) -> None:
        now = time.monotonic()
        try:
            data = client.sock.recv(65536)
            if not data:
                raise HTTPError("connection closed")
            answer = client.parser.feed(data)
        except (OSError, HTTPError) as exc:
            self._error(f"{client.phase} {type(exc).__name__}", client.sent_at)
            self._reopen(client)
            self._send_ask(client, now)
            return
        if answer is None:
            return
        if client.parser.close_after:
            self._reopen(client)
        status, body = answer
        if client.phase == "ask":
            self._asked(client, status, body, now)
        elif client.phase == "tell":
            self._told(client, status, body, now)

    def _asked(self, client: _HttpClient, status: int, body: bytes, now: float) -> None:
        client.ask_latency = now - client.sent_at
        try:
            if not 200 <= status < 300:
                raise HTTPError(f"ask {status}")
            answer = json.loads(body)
            client.number, client.params = answer[self._number_key], answer["params"]
        except (HTTPError, ValueError, KeyError, TypeError) as exc:
            self._error(str(exc) if isinstance(exc, HTTPError) else "ask bad body", client.sent_at)
            self._send_ask(client, now)
            return
        self.log.numbers.append(client.number)
        value = objective(self._driver.space, client.params)
        self._send(client, self._tell(client.number, value), "tell", now)

    def _told(self, client: _HttpClient, status: int, body: bytes, now: float) -> None:
        window, started = self._window, client.sent_at
        client.todo -= 1
        if 200 <= status < 300:
            try:
                told = json.loads(body)[self._number_key]
            except (ValueError, KeyError, TypeError):
                told = None
            if told != client.number:
                self.log.wrong_tells += 1
            if window is not None:
                self.log.cycles += 1
                if window.overlaps(client.cycle_start, now):
                    client.progress.add(client.cycle_start, now)
                    self.log.asks.append(client.ask_latency)
                    self.log.tells.append(now - started)
                if window.start <= now <= window.end:
                    self.log.in_window += 1
        else:
            self._error(f"tell {status}", started)
        self._send_ask(client, now)
