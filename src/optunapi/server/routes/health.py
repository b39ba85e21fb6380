"""``GET /v1/health``."""

from __future__ import annotations

from fastapi import APIRouter

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
