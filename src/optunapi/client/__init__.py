"""The Python client: ``Client`` talks to a server; errors are those of ``optunapi.errors``."""

from __future__ import annotations

from optunapi.client._sync import Client, Trial, TrialPruned

__all__ = ["Client", "Trial", "TrialPruned"]
