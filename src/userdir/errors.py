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
    ├── DuplicateEmailError          a lookup found several users with one email_key
    ├── DirectoryClosedError         the directory was closed (before or during the call)
    └── APIError                     the service answered with an HTTP error
        ├── InvalidRequestError      400 / 422 validation
        ├── AuthenticationError      401
        ├── PermissionDeniedError    403
        ├── UserNotFoundError        404, and the org API's "not found" 400
        ├── EndpointNotFoundError    404 from a listing or me(), Notion's invalid_request_url:
        │                            the URL is wrong (base_url?)
        ├── ConflictError            409
        │   └── PreconditionFailedError  412: the user changed since the version given
        ├── RateLimitedError         429 (``retry_after`` in seconds, if the service said)
        ├── ServerError              5xx, including Notion's 529
        └── RedirectError            3xx: redirects are never followed (``location``)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "DirectoryClosedError",
    "DirectoryError",
    "DuplicateEmailError",
    "EndpointNotFoundError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "MalformedResponseError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "RateLimitedError",
    "RedirectError",
    "ServerError",
    "TransportError",
    "UnsupportedOperationError",
    "UserNotFoundError",
    "error_class_for_status",
]


class DirectoryError(Exception):
    """Base of every error ``userdir`` raises.

    After retries, ``attempts`` says how many were made and ``host`` where to (both
    also in ``str()``); otherwise they are None.
    """

    attempts: int | None = None
    host: str | None = None

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
        if self.attempts is not None and self.attempts > 1:
            line += f" (gave up after {self.attempts} attempts to {self.host})"
        return line

    def __repr__(self) -> str:
        fields = [f"message={self.message!r}"]
        for name in ("provider", "status_code", "code", "request_id", "attempts", "host"):
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
    # Our own side could not write the request (an illegal header): never retried.
    _local: bool = False


class MalformedResponseError(DirectoryError):
    """The service answered with something that cannot be mapped, or pagination looped."""


class DuplicateEmailError(DirectoryError):
    """An email lookup found several users with the same ``email_key``; ``count`` says how many.

    Raised instead of picking one of them silently.
    """

    def __init__(self, message: str, *, count: int, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.count = count


class DirectoryClosedError(DirectoryError):
    """The directory was closed: a call made after ``close()``, or one it cut short."""


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


class EndpointNotFoundError(APIError):
    """A listing or ``me()`` got a 404: the endpoint, not a user, is missing.

    Usually a wrong ``base_url`` (one that repeats the API's own path, such as
    ``/api/v1``). ``endpoint`` names the request, e.g. ``"GET /api/v1/api/v1/users"``;
    ``str()`` says it, ``message`` stays the service's own.
    """

    endpoint: str | None = None

    def __str__(self) -> str:
        line = super().__str__()
        if self.endpoint:
            line += (
                f" — no such endpoint: {self.endpoint} (is base_url right? it should not "
                "repeat the API's own path)"
            )
        return line


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


class RedirectError(APIError):
    """The service answered with a redirect (3xx), which ``userdir`` never follows.

    ``location`` is where it pointed, without user-info, query or fragment (None when
    the answer had no ``Location``). Usually a wrong ``base_url`` (``http`` for ``https``,
    a missing path) or a proxy's login page.
    """

    location: str | None = None


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
