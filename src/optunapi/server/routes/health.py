"""``GET /v1/health``."""

from __future__ import annotations

from fastapi import APIRouter

from optunapi import __version__
from optunapi.schemas import Health
from optunapi.server.deps import SettingsDep
from optunapi.server.storage import redact

router = APIRouter(tags=["health"])


@router.get("/v1/health")
def health(settings: SettingsDep) -> Health:
    """Liveness, the version and the storage this server uses (without its password)."""
    return Health(version=__version__, storage=redact(settings.storage))
