"""Prometheus metrics at ``GET /metrics``: requests by route and status, their latency, and the
trials of every study by state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optunapi.server.services.views import Views


class Metrics:
    """The metrics of one app, in a registry of its own (no process-wide globals)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "optunapi_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "optunapi_requests_in_progress",
            "HTTP requests being answered now.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "optunapi_request_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

        # The labelled series, looked up once: prometheus-client's labels() costs more than
        # the observation itself, twice per request.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count an answered request and its latency."""
        series = self._series.get((method, route, status))
        if series is None:
            series = self._series[(method, route, status)] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        series[0].inc()
        series[1].observe(seconds)

    def watch_trials(self, views: Views) -> None:
        """Report trial counts per study and state at each scrape."""
        self.registry.register(_TrialCounts(views))


class _TrialCounts(Collector):
    def __init__(self, views: Views) -> None:
        self._views = views

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "optunapi_trials", "Trials of each study, by state.", labels=["study", "state"]
        )
        for study in self._views.summaries():
            for state, count in study.counts.model_dump().items():
                family.add_metric([study.name, state], count)
        yield family


class RequestMetrics:
    """ASGI middleware counting and timing every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = None
        self.metrics.in_progress.inc()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except BaseException:
            status = status or 500
            raise
        finally:
            self.metrics.in_progress.dec()
            if status is not None:  # None: the client left before its answer, none was given
                route = getattr(scope.get("route"), "path", "unmatched")
                self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)
