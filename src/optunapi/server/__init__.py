"""The optunapi server: ``create_app`` builds it, ``optunapi serve`` runs it."""

from __future__ import annotations

from optunapi.server.app import create_app
from optunapi.server.settings import Settings

__all__ = ["Settings", "create_app"]
