"""API errors, rendered as ``application/problem+json`` (RFC 9457).

RollwiseError
└── ApiError            status, code, detail, extra members
    ├── BadRequest      400
    ├── Unauthorized    401
    ├── Forbidden       403
    ├── NotFound        404
    ├── Conflict        409 (a stale version: ``current_version`` says the latest)
    ├── PayloadTooLarge 413
    ├── PreconditionRequired 428 (a write that does not name the version it edits)
    ├── Invalid         422 (``problems``: the JSON path and message of each)
    ├── TooManyRequests 429 (``Retry-After``)
    │   ├── TooManyAuthFailures  too many failed authentications from this address
    │   └── TooManyStreams       the token has as many streams open as it may
    └── StorageFull     503 (``Retry-After``: the database cannot be written for lack of disk)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import msgspec

from rollwise.errors import Problem, RollwiseError
from rollwise_server.models import problems as documents

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionRequired",
    "StorageFull",
    "TooManyAuthFailures",
    "TooManyRequests",
    "TooManyStreams",
    "Unauthorized",
    "VersionConflict",
]


class ApiError(RollwiseError):
    """An error with an HTTP status; ``extra`` members are added to the problem document."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal Server Error"

    def __init__(self, detail: str, **extra: Any) -> None:
        unknown = set(extra) - documents.Problem.MEMBERS
        if unknown:  # a member the problem document does not declare would be dropped
            raise TypeError(f"{type(self).__name__}: undeclared problem members {unknown}")
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def headers(self) -> dict[str, str]:
        """Response headers that go with the problem document."""
        return {}

    def to_problem(self) -> dict[str, Any]:
        return {
            "type": f"https://rollwise.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            **self.extra,
        }

    def to_document(self) -> documents.Problem:
        """The problem document as the API encodes it."""
        return msgspec.convert(self.to_problem(), documents.Problem)


class BadRequest(ApiError):
    status, code, title = 400, "bad_request", "Bad Request"


class Unauthorized(ApiError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(ApiError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(ApiError):
    status, code, title = 404, "not_found", "Not Found"


class Conflict(ApiError):
    status, code, title = 409, "conflict", "Conflict"


class VersionConflict(Conflict):
    """A version check failed: the thing changed since it was read. A caller that named no
    version of its own may read it again and retry; one that named a version gets the 409."""


class PreconditionRequired(ApiError):
    status, code, title = 428, "precondition_required", "Precondition Required"


class PayloadTooLarge(ApiError):
    status, code, title = 413, "payload_too_large", "Payload Too Large"


class Invalid(ApiError):
    status, code, title = 422, "invalid", "Unprocessable Content"

    @classmethod
    def from_problems(cls, problems: Iterable[Problem], prefix: str = "") -> Invalid:
        items = [
            {
                "path": f"{prefix}.{p.path}" if prefix and p.path else (p.path or prefix),
                "message": p.message,
            }
            for p in problems
        ]
        summary = "; ".join(
            f"{i['path']}: {i['message']}" if i["path"] else i["message"] for i in items
        )
        return cls(f"invalid request body: {summary}", problems=items)


class _RetryLater(ApiError):
    """An error that ends: ``Retry-After`` says in how many seconds to try again."""

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TooManyRequests(_RetryLater):
    status, code, title = 429, "too_many_requests", "Too Many Requests"


class TooManyAuthFailures(TooManyRequests):
    code = "too_many_auth_failures"


class TooManyStreams(TooManyRequests):
    code = "too_many_streams"


class StorageFull(_RetryLater):
    status, code, title = 503, "storage_full", "Service Unavailable"
