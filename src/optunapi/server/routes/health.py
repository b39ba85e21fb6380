"""Operators' routes: ``GET /v1/health`` and ``GET /metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from optunapi import __version__
from optunapi.schemas import Health
from optunapi.server.deps import SettingsDep
from optunapi.server.storage import redact

router = APIRouter(tags=["health"])


@router.get("/v1/health")
async def health(settings: SettingsDep) -> Health:
    """Liveness, the version and the storage this server uses (without its password).

    ``async``: it blocks on nothing, so it answers even while every worker thread waits for a
    busy storage."""
    return Health(version=__version__, storage=redact(settings.storage))


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests by route and status, latency, trials by study and state."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
