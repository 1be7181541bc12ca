"""The HTTP engines: everything between a dialect's request and its parsed answer.

``SyncEngine`` and ``AsyncEngine`` share every decision in ``_EngineBase`` — URL
building, headers, retry policy, Retry-After, error translation, size cap, logging —
and differ only where I/O happens (sending, reading, sleeping).
"""

from __future__ import annotations

import base64
import contextvars
import email.utils
import ipaddress
import logging
import math
import os
import random
import re
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, NoReturn
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import attrs
import httpx
import stamina

from ._inflate import ACCEPT_ENCODING, Inflater, UnsupportedEncoding
from ._secrets import Scrubber
from ._version import __version__
from .errors import (
    APIError,
    DirectoryClosedError,
    DirectoryError,
    EndpointNotFoundError,
    InvalidArgumentError,
    MalformedResponseError,
    PreconditionFailedError,
    RateLimitedError,
    RedirectError,
    ServerError,
    TransportError,
    UserNotFoundError,
)
from .providers._wire import Reply, Request, redact_url

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "Answer",
    "AsyncEngine",
    "ErrorMapper",
    "Request",
    "Retries",
    "SyncEngine",
    "TokenBucket",
    "encode_query",
    "encode_segment",
    "parse_retry_after",
    "plain_http_warning",
    "redact_url",
]

log = logging.getLogger("userdir")

# Set while one of our requests is in stamina's retry loop: stamina's own logging hook
# (WARNING "stamina.retry_scheduled", shown even with logging unconfigured) is then
# silenced for our retries only; the host application's own stamina retries still log.
_RETRYING: contextvars.ContextVar[bool] = contextvars.ContextVar("userdir_retrying", default=False)


class _QuietOwnRetries(logging.Filter):
    """Drops the ``stamina`` logger's records emitted during userdir's own retries."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _RETRYING.get()


logging.getLogger("stamina").addFilter(_QuietOwnRetries())

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
USER_AGENT = f"userdir/{__version__}"

# an HTTP error answer -> the error to raise for it
ErrorMapper = Callable[[Reply], APIError]
#: 0.1's name of a successful answer.
Answer = Reply


def _finite(value: object) -> float | None:
    """``value`` as a finite float, or None for NaN, infinities, bools and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def _shown(value: object) -> str:
    """A refused option's value for an error message: numbers as such, else the type."""
    return repr(value) if isinstance(value, (int, float)) else type(value).__name__


def _check_retry_field(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    name = attribute.name
    if name == "attempts":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(
                f"retries: attempts must be an int of at least 1, got {_shown(value)}"
            )
        return
    number = _finite(value)
    if name == "timeout":
        if number is None or number <= 0:
            raise InvalidArgumentError(
                f"retries: timeout must be a finite number of seconds above 0, got {_shown(value)}"
            )
    elif number is None or number < 0:
        raise InvalidArgumentError(
            f"retries: {name} must be a finite number of seconds, 0 or more, got {_shown(value)}"
        )


@attrs.frozen
class Retries:
    """The retry policy: at most ``attempts`` tries within ``timeout`` seconds in all.

    ``timeout`` is the whole call's budget: the attempts, the reading of their answers
    and the waits between them (it also bounds a call made with ``retries=False``, at
    its default). A wait that would reach the end of the budget is not taken: the last
    error is raised at once.
    ``max_retry_after`` caps how long a ``Retry-After`` answer may make us wait.
    ``wait_initial``/``wait_max`` shape the exponential backoff (with jitter) used
    when the service does not say how long to wait. Every field is checked when the
    policy is made: ``attempts`` at least 1, ``timeout`` finite and above 0, the others
    finite and 0 or more (``InvalidArgumentError`` naming the field otherwise).
    """

    attempts: int = attrs.field(default=5, validator=_check_retry_field)
    timeout: float = attrs.field(default=60.0, validator=_check_retry_field)
    max_retry_after: float = attrs.field(default=60.0, validator=_check_retry_field)
    wait_initial: float = attrs.field(default=0.2, validator=_check_retry_field)
    wait_max: float = attrs.field(default=10.0, validator=_check_retry_field)

    @classmethod
    def coerce(cls, value: Retries | int | bool | Mapping[str, Any] | None) -> Retries | None:
        """Accept ``retries=`` as a policy, a number of attempts, a mapping, or False."""
        if value is None or value is True:
            return cls()
        if value is False:
            return None
        if isinstance(value, Retries):
            return value
        if isinstance(value, int):
            if value < 1:
                raise InvalidArgumentError("retries= must be at least 1 attempt, or False")
            return cls(attempts=value)
        if isinstance(value, Mapping):
            unknown = set(value) - {f.name for f in attrs.fields(cls)}
            if unknown:
                raise InvalidArgumentError(
                    f"unknown retries option(s): {', '.join(sorted(map(str, unknown)))}"
                )
            return cls(**value)
        raise InvalidArgumentError(
            f"retries= takes a Retries, a number of attempts, a mapping or False, "
            f"not {type(value).__name__}"
        )


def encode_query(params: tuple[tuple[str, str], ...]) -> str:
    """Percent-encode query parameters: everything but RFC 3986's unreserved characters."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in params)


def encode_segment(segment: str) -> str:
    """Percent-encode one path segment, including ``/``, ``?``, ``#``, ``%`` and dots."""
    quoted = quote(segment, safe="")
    if quoted in (".", ".."):
        return quoted.replace(".", "%2E")
    return quoted


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = datetime.now(timezone.utc).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


def _bare_url(url: str) -> str:
    """``url`` without user-info, query and fragment (a relative URL stays relative)."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


class TokenBucket:
    """A client-side rate limit shared by every request of one engine.

    ``reserve()`` books the next slot and returns how long the caller must wait first;
    the sync engine sleeps that long, the async engine awaits it.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        number = _finite(rate)
        if number is None or number <= 0:
            raise InvalidArgumentError(
                f"max_requests_per_second must be a finite number above 0, got {_shown(rate)}"
            )
        self.interval = 1.0 / rate
        self.burst = max(1.0, burst if burst is not None else 1.0)
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Book a slot; return the seconds to wait before using it."""
        with self._lock:
            now = time.monotonic()
            earliest = now - (self.burst - 1) * self.interval
            start = max(self._next, earliest)
            self._next = start + self.interval
            return max(0.0, start - now)


_TIMEOUT_PHASES = ("connect", "read", "write", "pool")


def _check_timeout(timeout: object, provider: str) -> httpx.Timeout:
    """The engine's timeouts: the default for None, else finite and above 0.

    No limit at all must be asked for explicitly, in httpx's own terms:
    ``httpx.Timeout(None)`` (or None for one phase of an ``httpx.Timeout``).
    """
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        for phase in _TIMEOUT_PHASES:
            value = getattr(timeout, phase)
            number = _finite(value)
            if value is not None and (number is None or number <= 0):
                raise InvalidArgumentError(
                    f"timeout: the {phase} timeout must be a finite number of seconds above 0, "
                    f"or None for no limit, got {_shown(value)}",
                    provider=provider,
                )
        return timeout
    number = _finite(timeout)
    if number is None or number <= 0:
        raise InvalidArgumentError(
            "timeout must be a finite number of seconds above 0, an httpx.Timeout, or None "
            f"for the default (no limit: httpx.Timeout(None)), got {_shown(timeout)}",
            provider=provider,
        )
    return httpx.Timeout(number)


_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Errors of our own side: the request could not be written as built (h11 refuses an
# illegal header, an unsupported scheme). Retrying cannot help, and their text quotes
# header values.
_LOCAL_ERRORS = (httpx.LocalProtocolError, httpx.UnsupportedProtocol)
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _secret_values(auth_headers: Mapping[str, str]) -> set[str]:
    """What a credential header holds: its credential, or the whole value if no scheme."""
    values = set()
    for value in auth_headers.values():
        _scheme, _, credential = value.partition(" ")
        values.add(credential if len(credential) >= 4 else value)
    return values


def _header_value(provider: str, name: str, value: str) -> str:
    """A header value as it can go on the wire: stripped; refused if it cannot."""
    value = value.strip()
    if not value.isascii() or not value.replace("\t", " ").isprintable():
        raise InvalidArgumentError(
            f"the value of header {name!r} holds control or non-ASCII characters",
            provider=provider,
        )
    return value


def _merge_headers(
    provider: str,
    headers: Mapping[str, str] | None,
    auth_headers: Mapping[str, str],
    url_auth: bool,
) -> httpx.Headers:
    """The engine's default headers, then ``headers=``, then the (checked) credentials.

    Names compare case-insensitively (a later one replaces an earlier one). A
    ``headers=`` entry that names a credential header is refused: it would be a second
    credential, or override the one the provider's options give.
    """
    if headers is not None and (
        not isinstance(headers, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise InvalidArgumentError("headers must map str to str", provider=provider)
    protected = {name.lower() for name in auth_headers}
    if url_auth:
        protected.add("authorization")
    merged = httpx.Headers(
        {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,  # what the engine decodes itself
        }
    )
    for name, value in (headers or {}).items():
        if not _HEADER_NAME.fullmatch(name):
            raise InvalidArgumentError(
                f"headers=: {name[:40]!r} is not a valid header name", provider=provider
            )
        if name.lower() in protected:
            raise InvalidArgumentError(
                f"headers= must not set {name!r}: the credentials come from the "
                "provider's own options",
                provider=provider,
            )
        merged[name] = _header_value(provider, name, value)
    merged.update(auth_headers)
    return merged


def _check_base_url(provider: str, base_url: object) -> str:
    """``base_url`` stripped, and refused (never quoted: it may hold a password) if it
    is not an http(s) URL that can be sent."""
    if not isinstance(base_url, str):
        raise InvalidArgumentError(
            f"base_url must be a string, not {type(base_url).__name__}", provider=provider
        )
    base_url = base_url.strip()
    if not base_url.isprintable() or any(c.isspace() for c in base_url):
        raise InvalidArgumentError(
            "base_url holds whitespace or control characters inside", provider=provider
        )
    scheme = urlsplit(base_url).scheme
    if scheme not in ("http", "https"):
        got = f"scheme {scheme[:10]!r}" if scheme.isalnum() else "no scheme"
        raise InvalidArgumentError(
            f"base_url must be an http(s) URL (https://host...), got {got}", provider=provider
        )
    return base_url


def _is_loopback(host: str) -> bool:
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http_warning(base_url: str, credentials: bool) -> str | None:
    """The warning to give when credentials would travel unencrypted, else None.

    Plain ``http://`` is fine to a loopback address (an emulator, a local proxy).
    """
    parts = urlsplit(base_url.strip())
    credentials = credentials or "@" in parts.netloc
    if not credentials or parts.scheme.lower() != "http":
        return None
    host = parts.hostname or ""
    if _is_loopback(host):
        return None
    return (
        f"credentials will be sent unencrypted over http:// to {host!r}; "
        "use https:// (plain http is only for loopback addresses)"
    )


def _name_stale_version(error: PreconditionFailedError, request: Request) -> None:
    """Say which version a refused conditional write (``If-Match``) named."""
    wanted = "if-match"
    version = next((text for key, text in request.headers if key.lower() == wanted), None)
    if version is None:
        return
    error.version = version
    error.message = f"{error.message} (the user changed since version {version[:80]})"


class _EngineBase:
    """Everything the engines share; no I/O here."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        auth_headers: Mapping[str, str],
        error_mapper: ErrorMapper,
        timeout: float | httpx.Timeout | None = None,
        retries: Retries | int | bool | Mapping[str, Any] | None = None,
        max_requests_per_second: float | None = None,
        headers: Mapping[str, str] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.provider = provider
        base_url = _check_base_url(provider, base_url)
        # User-info goes into a Basic Authorization header, never in the URL: httpx logs
        # every request's URL (INFO "HTTP Request: ..."), password included.
        self._url_basic: str | None = None
        auth_headers = {k: _header_value(provider, k, v) for k, v in auth_headers.items()}
        secrets = _secret_values(auth_headers)
        if "@" in urlsplit(base_url).netloc:
            parts = urlsplit(base_url)
            user, password = unquote(parts.username or ""), unquote(parts.password or "")
            pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            if user or password:  # what httpx did with them in the URL: Basic auth
                self._url_basic = f"Basic {pair}"
            if password:
                secrets.add(password)
                secrets.add(pair)
            base_url = redact_url(base_url)
        self.base_url = base_url.rstrip("/")
        self.retries = Retries.coerce(retries)
        self.budget = (self.retries or Retries()).timeout
        self.closed = False
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int):
            raise InvalidArgumentError("max_response_bytes must be an int", provider=provider)
        if max_response_bytes < 1:
            raise InvalidArgumentError("max_response_bytes must be positive", provider=provider)
        self.max_response_bytes = max_response_bytes
        self.rate_limit = (
            TokenBucket(max_requests_per_second) if max_requests_per_second is not None else None
        )
        self._error_mapper = error_mapper
        timeout = _check_timeout(timeout, provider)
        self.timeout = timeout
        self._client_headers = _merge_headers(
            provider, headers, auth_headers, self._url_basic is not None
        )
        #: Replaces the credentials in every error this engine raises.
        self.scrubber = Scrubber(secrets)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider} {redact_url(self.base_url)}>"

    def scrub_error(self, error: DirectoryError, request: Request | None = None) -> None:
        """Scrub every text field of an error, then bound its length.

        Besides the credentials, the password the request carried (create/update) is
        scrubbed: a validation error may echo the body back.
        """
        scrubber = self.scrubber
        if request is not None and isinstance(request.json, Mapping):
            password = request.json.get("password")
            if isinstance(password, str):
                scrubber = scrubber.plus([password])
        scrubber.finish(error)

    # -- request building ----------------------------------------------------

    def url_path(self, request: Request) -> str:
        if request.url is not None:
            return urlsplit(request.url).path or "/"
        return "/" + "/".join(encode_segment(s) for s in request.path)

    def link_url(self, request: Request) -> str:
        """A link the service gave, checked to stay on its origin (credentials go along)."""
        assert request.url is not None
        link, base = urlsplit(request.url), urlsplit(self.base_url)
        if not link.scheme and not link.netloc and request.url.startswith("/"):
            return f"{base.scheme}://{base.netloc}{request.url}"
        if (link.scheme, link.netloc.lower()) != (base.scheme, base.netloc.lower()):
            raise MalformedResponseError(
                f"the service linked to another origin ({link.scheme}://{link.hostname}); "
                "not followed, the credentials would go along",
                provider=self.provider,
            )
        return request.url

    def send_headers(self, client: httpx.Client | httpx.AsyncClient) -> None:
        """Fix every request's headers once: the client's, then the Basic auth of the URL.

        Requests go straight to the client's transport (the one it picked for the URL,
        proxies from the environment included), not through ``Client.send``: the engine
        follows no redirect, keeps no cookie and runs no auth flow, and skipping that
        machinery saves about 6% of a listing's CPU (providers.md). An httpx that no
        longer has ``_transport_for_url`` gets ``Client.send`` instead.
        """
        headers = httpx.Headers(client.headers)
        if self._url_basic is not None:
            headers["Authorization"] = self._url_basic
        self._headers = headers
        self._route: Any = getattr(client, "_transport_for_url", None)

    def build(
        self, client: httpx.Client | httpx.AsyncClient, request: Request, deadline: float
    ) -> httpx.Request:
        """The httpx request, its timeouts cut to what is left of the call's budget."""
        left = self.time_left(request, deadline, sent=False)
        if request.url is not None:
            url = self.link_url(request)
        else:
            url = self.base_url + self.url_path(request)
        try:
            if request.params:  # encoded here: a third of the cost of httpx's params=
                url += ("&" if "?" in url else "?") + encode_query(request.params)
            headers = self._headers
            if request.headers:
                headers = httpx.Headers(headers)
                headers.update(request.headers)
            http_request = httpx.Request(request.method, url, json=request.json, headers=headers)
        except (ValueError, TypeError) as exc:
            # A value that cannot go on the wire: a lone surrogate (not UTF-8), NaN or
            # an object that is not JSON in a body. Nothing was sent.
            raise InvalidArgumentError(
                f"{request.method} request to {request.path[0] if request.path else '/'!r}: "
                f"an argument cannot be sent ({type(exc).__name__})",
                provider=self.provider,
            ) from None
        timeout = self.timeout
        http_request.extensions["timeout"] = {
            "connect": _at_most(timeout.connect, left),
            "read": _at_most(timeout.read, left),
            "write": _at_most(timeout.write, left),
            "pool": _at_most(timeout.pool, left),
        }
        return http_request

    # -- deadlines and closing ----------------------------------------------

    def deadline(self) -> float:
        """When a call starting now must be over (``time.monotonic()`` clock)."""
        return time.monotonic() + self.budget

    def time_left(self, request: Request, deadline: float, *, sent: bool = True) -> float:
        """Seconds left of the call's budget; raises once it is spent or we are closed."""
        if self.closed:
            raise self.closed_error()
        left = deadline - time.monotonic()
        if left <= 0:
            raise self.over_budget(request, sent=sent)
        return left

    def over_budget(self, request: Request, *, sent: bool) -> TransportError:
        """The error of a call whose time budget is spent (or would be, waiting)."""
        err = TransportError(
            f"{request.method} {self.url_path(request)} did not finish within its "
            f"time budget of {self.budget:g} s (Retries.timeout)",
            provider=self.provider,
        )
        err.request_not_sent = not sent
        return err

    def pace(self, request: Request, deadline: float) -> float:
        """How long the client-side rate limit asks to wait before sending.

        A wait that would reach the call's deadline is not taken: the call ends at once
        with the budget's error, nothing sent (as a ``Retry-After`` beyond it is not waited).
        """
        if self.rate_limit is None:
            return 0.0
        wait = self.rate_limit.reserve()
        if wait and time.monotonic() + wait >= deadline:
            raise self.over_budget(request, sent=False)
        return wait

    def closed_error(self) -> DirectoryClosedError:
        return DirectoryClosedError("directory closed", provider=self.provider)

    def failure(self, request: Request, exc: Exception, attempt: int) -> Exception:
        """The userdir error for whatever ended an attempt."""
        if self.closed:  # the connections went away under it: that is all it says
            return exc if isinstance(exc, DirectoryClosedError) else self.closed_error()
        if isinstance(exc, DirectoryError):
            return exc
        if isinstance(exc, httpx.TransportError):
            self.log_transport_error(request, exc, attempt)
            return self.transport_error(exc, request)
        if isinstance(exc, UnsupportedEncoding):
            detail = self.scrubber(str(exc))
        elif isinstance(exc, (httpx.HTTPError, zlib.error)):
            detail = f"the body does not decode ({type(exc).__name__})"
        else:
            return exc
        return MalformedResponseError(
            f"{request.method} {self.url_path(request)}: {detail}", provider=self.provider
        )

    def reader(self, request: Request, response: httpx.Response, deadline: float) -> _Body:
        """Collects an answer's raw chunks: decoded, capped and timed as they come."""
        self.check_length(response, request)
        # An in-process transport may hand over an answer httpx has read (and decoded).
        encoding = None if response.is_stream_consumed else response.headers.get("content-encoding")
        return _Body(self, request, Inflater(encoding), deadline)

    # -- retry policy -------------------------------------------------------

    def retry_hook(self, request: Request, deadline: float) -> Callable[[Exception], bool | float]:
        """Decide, for one request, whether an error is retried and after how long.

        The wait is the service's ``Retry-After`` (capped) or a jittered exponential
        backoff; one that would reach ``deadline`` is not taken, nor is any once closed.
        """
        policy = self.retries
        assert policy is not None
        failures = 0

        def hook(exc: Exception) -> bool | float:
            nonlocal failures
            failures += 1
            if self.closed:
                return False
            if isinstance(exc, RateLimitedError) or (
                request.idempotent and isinstance(exc, ServerError)
            ):
                if exc.retry_after is not None:
                    wait = min(exc.retry_after, policy.max_retry_after)
                else:
                    wait = _backoff(policy, failures)
            elif (
                isinstance(exc, TransportError)
                and not exc._local
                and (request.idempotent or exc.request_not_sent)
            ):
                wait = _backoff(policy, failures)
            else:
                return False
            if time.monotonic() + wait >= deadline:
                return False
            return wait

        return hook

    def retry_context(self, request: Request, deadline: float) -> Any:
        """Stamina's attempts for a request whose first attempt failed.

        The first attempt runs outside stamina, which then costs nothing when it succeeds
        (nearly always); its failure is raised again as stamina's attempt 1, so attempts,
        waiting and instrumentation all stay stamina's. The time budget is the hook's.
        """
        policy = self.retries
        assert policy is not None
        return stamina.retry_context(
            on=self.retry_hook(request, deadline),
            attempts=policy.attempts,
            timeout=None,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
        )

    def may_retry(self, request: Request, exc: Exception, deadline: float) -> bool:
        """Whether a failed first attempt goes on to stamina's retries."""
        return self.retries is not None and self.retry_hook(request, deadline)(exc) is not False

    # -- answers ------------------------------------------------------------

    def check_length(self, response: httpx.Response, request: Request) -> None:
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_response_bytes:
            self.too_large(request)

    def too_large(self, request: Request) -> NoReturn:
        raise MalformedResponseError(
            f"{request.method} {self.url_path(request)}: response body exceeds "
            f"max_response_bytes={self.max_response_bytes}",
            provider=self.provider,
        )

    def transport_error(self, exc: httpx.TransportError, request: Request) -> TransportError:
        not_sent = isinstance(exc, _NOT_SENT_ERRORS)
        what = f"{request.method} {self.url_path(request)}"
        kind = type(exc).__name__
        if isinstance(exc, _LOCAL_ERRORS):
            # its text quotes the offending header, credentials included: never shown
            err = TransportError(
                f"{what} could not be sent as built ({kind}); not retried",
                provider=self.provider,
            )
            err._local = True
            return err  # nothing to scrub
        if not request.idempotent and not not_sent:
            message = (
                f"{what} failed after the request was sent ({kind}); the outcome is "
                "unknown and the request was not repeated — check the directory before "
                "trying again"
            )
        else:
            message = f"{what} failed: {kind}"
            detail = str(exc)
            if detail and len(detail) < 200:
                message += f" ({redact_url(detail)})"
        err = TransportError(message, provider=self.provider)
        err.request_not_sent = not_sent
        self.scrub_error(err, request)
        return err

    def finish(
        self, request: Request, response: httpx.Response, body: bytes, attempt: int, t0: float
    ) -> Reply:
        """Log the answer; raise the mapped error for an HTTP error, else return it."""
        status = response.status_code
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s -> %d in %.1f ms (attempt %d)",
                self.provider,
                request.method,
                self.url_path(request),
                status,
                (time.perf_counter() - t0) * 1000,
                attempt,
            )
        reply = Reply(status, response.headers, body)
        if 300 <= status < 400:
            raise self.redirect_error(request, response)
        if status >= 400:
            error = self._error_mapper(reply)
            if attempt > 1 and request.method == "DELETE" and isinstance(error, UserNotFoundError):
                # An earlier attempt deleted it and its answer was lost: the user is gone,
                # which is what was asked.
                return Reply(status, response.headers, b"")
            if isinstance(error, EndpointNotFoundError) or (
                request.endpoint_404 and status == 404 and isinstance(error, UserNotFoundError)
            ):
                error = self.endpoint_not_found(request, error)
            self.scrub_error(error, request)
            if isinstance(error, PreconditionFailedError):
                _name_stale_version(error, request)
            if error.retry_after is None:
                error.retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise error
        return reply

    def endpoint_not_found(self, request: Request, error: APIError) -> EndpointNotFoundError:
        """A listing's or ``me``'s 404 (or a service's "no such URL"), named for what it
        means: a wrong URL, with the path that was requested."""
        if not isinstance(error, EndpointNotFoundError):
            error = EndpointNotFoundError(
                error.message,
                provider=error.provider,
                status_code=error.status_code,
                code=error.code,
                request_id=error.request_id,
            )
        error.endpoint = f"{request.method} {urlsplit(self.base_url).path}{self.url_path(request)}"
        return error

    def retrying(self, request: Request, attempt: int, cause: Exception | None) -> None:
        """Log a retry (at INFO on the ``userdir`` logger; stamina's own log stays quiet)."""
        if attempt > 1 and log.isEnabledFor(logging.INFO):
            status = getattr(cause, "status_code", None)
            why = f"HTTP {status}" if status is not None else type(cause).__name__
            log.info(
                "%s %s %s: retrying after %s (attempt %d of %d)",
                self.provider,
                request.method,
                self.url_path(request),
                why,
                attempt,
                self.retries.attempts if self.retries else 1,
            )

    def gave_up(self, error: DirectoryError, attempts: int) -> None:
        """Say in the final error how many attempts were made, and to which host."""
        if attempts > 1:
            error.attempts = attempts
            error.host = urlsplit(self.base_url).netloc  # user-info was dropped in __init__

    def redirect_error(self, request: Request, response: httpx.Response) -> RedirectError:
        """The error for a 3xx answer (redirects are never followed): status and target.

        The target is shown without user-info, query or fragment, which may hold secrets.
        """
        location = response.headers.get("location")
        shown = _bare_url(location) if location else None
        target = f"to {shown[:300]!r}" if shown else "without a Location"
        error = RedirectError(
            f"{request.method} {self.url_path(request)}: the service answered with a redirect "
            f"{target}, which is never followed; check base_url",
            provider=self.provider,
            status_code=response.status_code,
        )
        error.location = shown
        self.scrub_error(error, request)
        if error.location is not None:
            error.location = self.scrubber(error.location)
        return error

    def decode(self, request: Request, reply: Reply) -> Any:
        """The JSON of a successful answer (None when it has no body)."""
        return reply.json(f"{request.method} {self.url_path(request)}", self.provider)

    def log_transport_error(self, request: Request, exc: BaseException, attempt: int) -> None:
        log.debug(
            "%s %s %s -> %s (attempt %d)",
            self.provider,
            request.method,
            self.url_path(request),
            type(exc).__name__,
            attempt,
        )


class _Body:
    """One answer's body as it arrives: decoded step by step, each step counted against
    ``max_response_bytes`` before the next is made, and the call's deadline checked."""

    __slots__ = ("chunks", "deadline", "engine", "inflater", "request", "size")

    def __init__(
        self, engine: _EngineBase, request: Request, inflater: Inflater, deadline: float
    ) -> None:
        self.engine = engine
        self.request = request
        self.inflater = inflater
        self.deadline = deadline
        self.chunks: list[bytes] = []
        self.size = 0

    def feed(self, raw: bytes) -> None:
        """Take one raw chunk off the wire."""
        for piece in self.inflater.feed(raw):
            self._add(piece)
        self.engine.time_left(self.request, self.deadline)

    def end(self) -> bytes:
        """The whole decoded body, once the raw one has ended."""
        for piece in self.inflater.flush():
            self._add(piece)
        return b"".join(self.chunks)

    def _add(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self.engine.max_response_bytes:
            self.engine.too_large(self.request)
        self.chunks.append(piece)


def _at_most(timeout: float | None, left: float) -> float:
    return left if timeout is None else min(timeout, left)


def _backoff(policy: Retries, failures: int) -> float:
    """Stamina's exponential backoff with up to a second of jitter (none when testing)."""
    if stamina.is_testing():
        return 0.0
    wait = policy.wait_initial * 2.0 ** min(failures - 1, 64) + random.uniform(0, 1.0)
    return float(min(policy.wait_max, wait))


_tls_lock = threading.Lock()
_tls: dict[str, ssl.SSLContext] = {}


def _tls_context(base_url: str) -> ssl.SSLContext:
    """One TLS context per process, shared by every client, built on first HTTPS use.

    Loading the CA bundle takes tens of milliseconds; a context per client paid it on
    every ``connect()``, even for ``http://``. A client whose base URL is ``http://``
    never speaks TLS (requests stay on the base URL's origin) and gets a context that
    verifies against no CA at all: it fails closed should it ever be used.
    """
    kind = "https" if base_url.startswith("https:") else "none"
    with _tls_lock:
        context = _tls.get(kind)
        if context is None:
            if kind == "https":
                context = httpx.create_ssl_context()
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            _tls[kind] = context
        return context


_PROXY_VARIABLES = {
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
}


def _client_kwargs(engine: _EngineBase, transport: object) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "headers": engine._client_headers,
        "timeout": engine.timeout,
        "follow_redirects": False,
    }
    if os.environ.keys() & _PROXY_VARIABLES:  # a proxy may speak TLS whatever the URL
        kwargs["verify"] = _tls_context("https:")
    elif transport is None:
        kwargs["verify"] = _tls_context(engine.base_url)
    else:  # a transport of the caller's: no TLS of ours is ever used
        kwargs["verify"] = _tls_context("http:")
    return kwargs


class SyncEngine(_EngineBase):
    """The blocking engine, over ``httpx.Client``; safe to share between threads."""

    def __init__(self, *, transport: httpx.BaseTransport | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._client = httpx.Client(transport=transport, **_client_kwargs(self, transport))
        self.send_headers(self._client)

    def close(self) -> None:
        """Close the connection pool; requests in flight end with DirectoryClosedError."""
        self.closed = True
        self._client.close()

    def request(self, request: Request) -> Any:
        """Send with retries; return the parsed JSON answer or raise a userdir error."""
        return self.decode(request, self.fetch(request))

    def fetch_once(self, request: Request) -> Reply | None:
        """One attempt, no retry: the successful answer, or None for any failure."""
        try:
            return self._once(request, 1, self.deadline())
        except Exception:
            return None

    def fetch(self, request: Request) -> Reply:
        """Send with retries; the successful answer, undecoded, or a userdir error."""
        deadline = self.deadline()
        first: Exception | None = None
        try:
            return self._once(request, 1, deadline)
        except Exception as exc:
            if not self.may_retry(request, exc, deadline):
                raise
            first = exc
        cause, attempts, quiet = first, 1, _RETRYING.set(True)
        try:
            for attempt in self.retry_context(request, deadline):
                with attempt:
                    if first is not None:
                        failed, first = first, None
                        raise failed
                    attempts = attempt.num
                    self.retrying(request, attempts, cause)
                    try:
                        return self._once(request, attempts, deadline)
                    except Exception as exc:
                        cause = exc
                        raise
        except DirectoryError as exc:
            self.gave_up(exc, attempts)
            raise
        finally:
            _RETRYING.reset(quiet)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, http_request: httpx.Request) -> httpx.Response:
        """Hand the request to the transport the client picked for its URL."""
        if self.closed:
            raise self.closed_error()
        if self._route is None:
            return self._client.send(http_request, stream=True)
        response: httpx.Response = self._route(http_request.url).handle_request(http_request)
        response.request = http_request
        return response

    def _once(self, request: Request, attempt: int, deadline: float) -> Reply:
        wait = self.pace(request, deadline)
        if wait:
            time.sleep(wait)
        t0 = time.perf_counter()
        try:
            http_request = self.build(self._client, request, deadline)
            response = self._send(http_request)
            try:
                reader = self.reader(request, response, deadline)
                if response.is_stream_consumed:
                    reader.feed(response.content)
                else:
                    raw = response.iter_raw()
                    try:
                        for chunk in raw:
                            reader.feed(chunk)
                    finally:
                        raw.close()  # type: ignore[attr-defined]
                body = reader.end()
            finally:
                response.close()
        except Exception as exc:
            raise self.failure(request, exc, attempt) from None
        return self.finish(request, response, body, attempt, t0)


class AsyncEngine(_EngineBase):
    """The asyncio engine, over ``httpx.AsyncClient``; safe to share between tasks."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._client = httpx.AsyncClient(transport=transport, **_client_kwargs(self, transport))
        self.send_headers(self._client)

    async def close(self) -> None:
        """Close the connection pool; requests in flight end with DirectoryClosedError."""
        self.closed = True
        await self._client.aclose()

    async def request(self, request: Request) -> Any:
        """Send with retries; return the parsed JSON answer or raise a userdir error."""
        return self.decode(request, await self.fetch(request))

    async def fetch_once(self, request: Request) -> Reply | None:
        """One attempt, no retry: the successful answer, or None for any failure."""
        try:
            return await self._once(request, 1, self.deadline())
        except Exception:
            return None

    async def fetch(self, request: Request) -> Reply:
        """Send with retries; the successful answer, undecoded, or a userdir error."""
        deadline = self.deadline()
        first: Exception | None = None
        try:
            return await self._once(request, 1, deadline)
        except Exception as exc:
            if not self.may_retry(request, exc, deadline):
                raise
            first = exc
        cause, attempts, quiet = first, 1, _RETRYING.set(True)
        try:
            async for attempt in self.retry_context(request, deadline):
                with attempt:
                    if first is not None:
                        failed, first = first, None
                        raise failed
                    attempts = attempt.num
                    self.retrying(request, attempts, cause)
                    try:
                        return await self._once(request, attempts, deadline)
                    except Exception as exc:
                        cause = exc
                        raise
        except DirectoryError as exc:
            self.gave_up(exc, attempts)
            raise
        finally:
            _RETRYING.reset(quiet)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, http_request: httpx.Request) -> httpx.Response:
        """Hand the request to the transport the client picked for its URL."""
        if self.closed:
            raise self.closed_error()
        if self._route is None:
            return await self._client.send(http_request, stream=True)
        response: httpx.Response = await self._route(http_request.url).handle_async_request(
            http_request
        )
        response.request = http_request
        return response

    async def _once(self, request: Request, attempt: int, deadline: float) -> Reply:
        wait = self.pace(request, deadline)
        if wait:
            import asyncio  # here: a blocking program never loads asyncio

            await asyncio.sleep(wait)
        t0 = time.perf_counter()
        try:
            http_request = self.build(self._client, request, deadline)
            response = await self._send(http_request)
            try:
                reader = self.reader(request, response, deadline)
                if response.is_stream_consumed:
                    reader.feed(response.content)
                else:
                    raw = response.aiter_raw()
                    try:
                        async for chunk in raw:
                            reader.feed(chunk)
                    finally:
                        # Closed here, not by the event loop's finaliser later: a body
                        # cut short must not leave a generator behind.
                        await raw.aclose()  # type: ignore[attr-defined]
                body = reader.end()
            finally:
                await response.aclose()
        except Exception as exc:
            raise self.failure(request, exc, attempt) from None
        return self.finish(request, response, body, attempt, t0)
