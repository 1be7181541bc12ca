"""The exceptions every ``userdir`` directory raises.

Every error carries the same attributes, whatever the provider: ``provider``,
``status_code`` (the HTTP status, if an answer came), ``code`` (the provider's native
error code, if it sent one), ``message`` and ``request_id``. ``str()`` is one line.
No error ever holds a token, an API key or a password.

The hierarchy::

    DirectoryError
    ├── ConfigError                  bad config: unknown provider/option, missing ${ENV}
    ├── InvalidArgumentError         bad argument caught before sending (also a ValueError)
    ├── UnsupportedOperationError    the directory cannot do this; raised before any request
    ├── TransportError               network failures and timeouts (after retries)
    ├── MalformedResponseError       a payload that cannot be mapped, a pagination loop
    └── APIError                     the service answered with an HTTP error
        ├── InvalidRequestError      400 / 422 validation
        ├── AuthenticationError      401
        ├── PermissionDeniedError    403
        ├── UserNotFoundError        404, and the org API's "not found" 400
        ├── ConflictError            409
        │   └── PreconditionFailedError  412: the user changed since the version given
        ├── RateLimitedError         429 (``retry_after`` in seconds, if the service said)
        └── ServerError              5xx, including Notion's 529
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "DirectoryError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "MalformedResponseError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "RateLimitedError",
    "ServerError",
    "TransportError",
    "UnsupportedOperationError",
    "UserNotFoundError",
    "error_class_for_status",
]


class DirectoryError(Exception):
    """Base of every error ``userdir`` raises."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.request_id = request_id

    @property
    def message(self) -> str:
        """The explanation, without the provider/status prefix of ``str()``."""
        return str(self.args[0]) if self.args else ""

    @message.setter
    def message(self, value: str) -> None:
        self.args = (value,)

    def __str__(self) -> str:
        parts = []
        if self.provider:
            parts.append(f"[{self.provider}]")
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.code:
            parts.append(f"({self.code})")
        head = " ".join(parts)
        text = " ".join(self.message.split())  # one line, whatever the server sent
        line = f"{head}: {text}" if head else text
        if self.request_id:
            line += f" (request_id={self.request_id})"
        return line

    def __repr__(self) -> str:
        fields = [f"message={self.message!r}"]
        for name in ("provider", "status_code", "code", "request_id"):
            value = getattr(self, name)
            if value is not None:
                fields.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(fields)})"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[DirectoryError], message: str, state: dict[str, object]) -> DirectoryError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ConfigError(DirectoryError):
    """The configuration is wrong: an unknown provider or option, a missing variable."""


class InvalidArgumentError(DirectoryError, ValueError):
    """An argument was rejected before anything was sent."""


class UnsupportedOperationError(DirectoryError):
    """The directory cannot do this operation; no request was sent."""


class TransportError(DirectoryError):
    """The network failed or timed out, after any retries.

    ``request_not_sent`` is True when the request surely never reached the service
    (a connection that could not be made), so repeating it is always safe.
    """

    request_not_sent: bool = False


class MalformedResponseError(DirectoryError):
    """The service answered with something that cannot be mapped, or pagination looped."""


class APIError(DirectoryError):
    """The service answered with an HTTP error status.

    ``retry_after`` holds the seconds the service asked us to wait, if it said.
    """

    retry_after: float | None = None


class InvalidRequestError(APIError):
    """The service rejected the request as invalid (400, 422)."""


class AuthenticationError(APIError):
    """The credentials were missing or invalid (401)."""


class PermissionDeniedError(APIError):
    """The credentials are valid but may not do this (403)."""


class UserNotFoundError(APIError):
    """No such user (404, or the org API's "not found" 400)."""


class ConflictError(APIError):
    """The request conflicts with the directory's state, e.g. an email in use (409)."""


class PreconditionFailedError(ConflictError):
    """The user changed since the ``version`` a conditional write named (412).

    ``version`` is the stale version that was sent (``If-Match``), if known.
    """

    version: str | None = None


class RateLimitedError(APIError):
    """Too many requests (429), after any retries; ``retry_after`` as the service said."""


class ServerError(APIError):
    """The service failed (5xx, Notion's 529)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: UserNotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    422: InvalidRequestError,
    429: RateLimitedError,
}


def error_class_for_status(status_code: int) -> type[APIError]:
    """Pick the error class for an HTTP status; providers refine it for their quirks."""
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIError)
