"""The one exception hierarchy of optunapi, shared by the server and the client.

Each class carries the HTTP status and the RFC 9457 problem ``type`` it is rendered as. The server
renders an instance as ``application/problem+json``; the client reads that body back into an
instance of the same class, so ``client.tell(...)`` raises the ``TrialFinishedError`` the server
raised::

    OptunapiError
    ├── ServerUnreachableError        (client side: no HTTP answer at all)
    ├── AuthenticationError           401
    ├── PermissionDeniedError         403
    ├── NotFoundError                 404
    │   ├── StudyNotFoundError
    │   └── TrialNotFoundError
    ├── RequestValidationError        422
    │   ├── InvalidNameError
    │   ├── InvalidSpaceError
    │   └── InvalidValueError
    ├── ConflictError                 409
    │   ├── StudyDefinitionConflictError
    │   ├── TrialFinishedError
    │   ├── TrialNotRunningError
    │   └── TrialExpiredError
    ├── MethodNotAllowedError         405
    ├── RequestTooLargeError          413
    ├── StorageBusyError              503 (with Retry-After)
    └── InternalServerError           500 (a server fault, never a client's input)
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_TYPE_PREFIX = "urn:optunapi:problem:"


class OptunapiError(Exception):
    """Base class of every error optunapi raises.

    Attributes:
        detail: A sentence a person can act on.
        extra: Further problem fields (``expected``, ``stored``, ``errors``...).
    """

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "error"
    title: ClassVar[str] = "optunapi error"
    exit_code: ClassVar[int] = 1

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @classmethod
    def problem_type(cls) -> str:
        """The RFC 9457 ``type`` URI of this class."""
        return PROBLEM_TYPE_PREFIX + cls.slug

    def to_problem(self) -> dict[str, Any]:
        """This error as an RFC 9457 problem body."""
        body: dict[str, Any] = {
            "type": self.problem_type(),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body

    @staticmethod
    def from_problem(body: Any, status: int) -> OptunapiError:
        """Rebuild the error a server rendered, falling back on the class of its status."""
        if not isinstance(body, dict):
            body = {}
        detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
        extra = {k: v for k, v in body.items() if k not in {"type", "title", "status", "detail"}}
        cls = _BY_TYPE.get(str(body.get("type")), _BY_STATUS.get(status, OptunapiError))
        return cls(detail, **extra)


class ServerUnreachableError(OptunapiError):
    """The server could not be reached, or did not answer (client side only)."""

    status = 0
    slug = "server-unreachable"
    title = "Server unreachable"
    exit_code = 2


class BadRequestError(OptunapiError):
    """The request could not be answered as sent (a malformed path or query)."""

    status = 400
    slug = "bad-request"
    title = "Bad request"


class AuthenticationError(OptunapiError):
    """The server needs a token and the request carried none."""

    status = 401
    slug = "unauthenticated"
    title = "Token required"


class PermissionDeniedError(OptunapiError):
    """The request's token is not one the server accepts."""

    status = 403
    slug = "forbidden"
    title = "Token not accepted"


class NotFoundError(OptunapiError):
    """A named resource does not exist."""

    status = 404
    slug = "not-found"
    title = "Not found"


class StudyNotFoundError(NotFoundError):
    """No study has this name."""

    slug = "study-not-found"
    title = "Study not found"


class TrialNotFoundError(NotFoundError):
    """The study has no trial with this number."""

    slug = "trial-not-found"
    title = "Trial not found"


class RequestValidationError(OptunapiError):
    """The request is malformed: nothing was changed."""

    status = 422
    slug = "invalid-request"
    title = "Invalid request"


class InvalidNameError(RequestValidationError):
    """A study name breaks the naming rule."""

    slug = "invalid-name"
    title = "Invalid study name"


class InvalidSpaceError(RequestValidationError):
    """A search space or study definition is invalid; ``errors`` names every bad part."""

    slug = "invalid-space"
    title = "Invalid search space"


class InvalidValueError(RequestValidationError):
    """An objective or constraint value cannot be stored (NaN, infinite, wrong count)."""

    slug = "invalid-value"
    title = "Invalid value"


class ConflictError(OptunapiError):
    """The request conflicts with what is stored: nothing was changed."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class StudyDefinitionConflictError(ConflictError):
    """A study with this name exists with a different definition."""

    slug = "study-definition-conflict"
    title = "Study exists with a different definition"


class TrialFinishedError(ConflictError):
    """The trial is finished with another outcome; ``stored`` holds it."""

    slug = "trial-finished"
    title = "Trial already finished"


class TrialNotRunningError(ConflictError):
    """The trial is not running (waiting, or finished), so it cannot take this request."""

    slug = "trial-not-running"
    title = "Trial not running"


class TrialExpiredError(ConflictError):
    """The trial's lease expired and its params were handed to another worker: stop working on
    it; this result was not stored."""

    slug = "trial-expired"
    title = "Trial lease expired"


class MethodNotAllowedError(OptunapiError):
    """The route exists, but not with this method."""

    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class RequestTooLargeError(OptunapiError):
    """The request body is larger than the server accepts."""

    status = 413
    slug = "request-too-large"
    title = "Request too large"


class StorageBusyError(OptunapiError):
    """The storage stayed busy past its timeout; retry after ``retry_after`` seconds."""

    status = 503
    slug = "storage-busy"
    title = "Storage busy"


class InternalServerError(OptunapiError):
    """A fault of the server itself."""

    status = 500
    slug = "internal"
    title = "Internal server error"


def _all_subclasses(cls: type[OptunapiError]) -> list[type[OptunapiError]]:
    found: list[type[OptunapiError]] = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_all_subclasses(sub))
    return found


_CLASSES: list[type[OptunapiError]] = [OptunapiError, *_all_subclasses(OptunapiError)]
_BY_TYPE: dict[str, type[OptunapiError]] = {c.problem_type(): c for c in _CLASSES}
# The most general class of each status, for problems from a proxy or another server.
_BY_STATUS: dict[int, type[OptunapiError]] = {}
for _cls in reversed(_CLASSES):
    _BY_STATUS[_cls.status] = _cls
_BY_STATUS[500] = InternalServerError
