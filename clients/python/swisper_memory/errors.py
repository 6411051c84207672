"""The errors the client raises: one class per HTTP error the service answers, all under
SwisperMemoryError.

The service answers every error as ``{"error": {"code", "message", "field"?}}``; an ApiError
carries those fields, the HTTP status, the request id (``X-Request-Id``, for the service's logs)
and, for 429 and 503, the seconds the service asked to wait (``Retry-After``).
"""

from __future__ import annotations


class SwisperMemoryError(Exception):
    """Base of every error this client raises."""


class ConnectionFailedError(SwisperMemoryError):
    """The service gave no answer: the connection was refused, dropped or timed out (after retries)."""


class RequestTimeoutError(ConnectionFailedError):
    """The service did not answer within the client's ``timeout`` (after retries)."""


class ApiError(SwisperMemoryError):
    """The service answered with an error status.

    Attributes: ``status`` (the HTTP status; None for a check made before sending), ``code`` (the
    service's stable code, e.g. ``invalid_input``), ``message``, ``field`` (the offending input,
    for ``invalid_input``), ``request_id`` and ``retry_after`` (seconds, for 429 and 503).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "error",
        field: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field
        self.request_id = request_id
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class ValidationError(ApiError, ValueError):
    """400 ``invalid_input``: ``field`` names the offending input as it was sent (``message.role``,
    ``messages[3].content``), the same name the TypeScript library's ValidationError gives. Nothing
    was stored."""


class AuthenticationError(ApiError):
    """401 ``unauthorized``: no API key, or one the service does not know."""


class ForbiddenError(ApiError):
    """403 ``forbidden``: the key is valid, but its tenant may not use this operation (the legacy
    migration's routes answer it to a key of another tenant than the one they migrate into)."""


class NotFoundError(ApiError):
    """404 ``not_found``: the tenant has no memory of the session (never written to, or erased)."""


class ConflictError(ApiError):
    """409: an imported session already exists with other content (``import_conflict``); nothing of it changed."""


class PayloadTooLargeError(ApiError):
    """413 ``payload_too_large``: the body is larger than the service's MEMORY_BODY_LIMIT_BYTES."""


class UnsupportedMediaTypeError(ApiError):
    """415 ``unsupported_media_type``: the body was not JSON."""


class RateLimitedError(ApiError):
    """429 ``rate_limited``: more requests this minute than the key's limit; ``retry_after`` says
    when to try again."""


class InternalServerError(ApiError):
    """500 ``internal``: a bug in the service, logged there with ``request_id``."""


class ServiceUnavailableError(ApiError):
    """503: the service cannot serve the request now; ``retry_after`` says when to try again."""


class StorageUnavailableError(ServiceUnavailableError):
    """503 ``storage_unavailable``: no storage tier can serve the request (PostgreSQL down, say)."""


class ShuttingDownError(ServiceUnavailableError):
    """503 ``shutting_down``: this instance is draining; another one (or its restart) will answer."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    429: RateLimitedError,
    500: InternalServerError,
    503: ServiceUnavailableError,
}

_BY_CODE: dict[str, type[ApiError]] = {
    "storage_unavailable": StorageUnavailableError,
    "shutting_down": ShuttingDownError,
}


def error_class(status: int, code: str) -> type[ApiError]:
    """The class of an error answer: by its status, or by its code where that has a class of its own."""
    by_status = _BY_STATUS.get(status, ApiError)
    by_code = _BY_CODE.get(code)
    return by_code if by_code is not None and issubclass(by_code, by_status) else by_status
