"""optunapi: distribute hyperparameter optimization over HTTP.

``import optunapi`` loads the client side only (httpx, pydantic, PyYAML); the server lives in
``optunapi.server`` and needs the ``server`` extra.
"""

from __future__ import annotations

__version__ = "0.2.0"

from optunapi.client import Client, Trial, TrialPruned
from optunapi.errors import (
    AuthenticationError,
    ConflictError,
    InvalidSpaceError,
    InvalidValueError,
    NotFoundError,
    OptunapiError,
    PermissionDeniedError,
    ServerUnreachableError,
    StorageBusyError,
    StudyDefinitionConflictError,
    StudyNotFoundError,
    TrialExpiredError,
    TrialFinishedError,
    TrialNotFoundError,
    TrialNotRunningError,
)

__all__ = [
    "AuthenticationError",
    "Client",
    "ConflictError",
    "InvalidSpaceError",
    "InvalidValueError",
    "NotFoundError",
    "OptunapiError",
    "PermissionDeniedError",
    "ServerUnreachableError",
    "StorageBusyError",
    "StudyDefinitionConflictError",
    "StudyNotFoundError",
    "Trial",
    "TrialExpiredError",
    "TrialFinishedError",
    "TrialNotFoundError",
    "TrialNotRunningError",
    "TrialPruned",
    "__version__",
]
