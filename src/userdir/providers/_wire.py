"""The wire contract between a provider and the engines: requests out, replies in.

Both types are plain values: a provider builds :class:`Request` values and reads
:class:`Reply` values without any HTTP library, and the engines (sync and async) do
the sending. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from ..errors import MalformedResponseError

__all__ = ["NOT_IDEMPOTENT", "Reply", "Request", "next_link", "redact_url"]

#: Methods whose effect may happen twice if sent twice: never retried once sent.
NOT_IDEMPOTENT = frozenset({"POST", "PATCH"})


def _idempotent(request: Request) -> bool:
    return request.method not in NOT_IDEMPOTENT


def _headers(value: Mapping[str, str] | tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(name), str(text)) for name, text in items)


@attrs.frozen
class Request:
    """A request as a provider describes it; the engine encodes and sends it.

    Every entry of ``path`` is one path segment, percent-encoded on the way out, so a
    value such as ``../admin`` or ``a/b?c#d`` can never change the path or the query.
    ``url``, when set, is a link the service gave (a next-page link): absolute on the
    service's own origin, or a path from its root; the engine refuses any other origin.
    ``headers`` are added to this request only (``If-Match``, ``Content-Type``...).
    ``idempotent`` says whether sending it twice is harmless: by default every method
    but POST and PATCH. A request that is not idempotent is never retried once sent.
    """

    method: str
    path: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    json: Any = None
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_headers)
    idempotent: bool = attrs.field(
        default=attrs.Factory(_idempotent, takes_self=True), kw_only=True
    )
    url: str | None = attrs.field(default=None, kw_only=True)
    #: A 404 to this request means the endpoint is wrong (``base_url``?), not that a
    #: user is missing: set by the directories on listings and ``me``, and by a dialect
    #: on a lookup whose service never answers "no such user" with a 404 (a filter on
    #: a collection answers 200 and no match).
    endpoint_404: bool = attrs.field(default=False, kw_only=True)

    def where(self) -> str:
        """``METHOD /path`` for messages (never the query: it may hold an email)."""
        if self.url is not None:
            return f"{self.method} {urlsplit(self.url).path or '/'}"
        return f"{self.method} /" + "/".join(self.path)


def _lower(value: Mapping[str, str]) -> Mapping[str, str]:
    # An engine's headers (httpx's) are case-insensitive already; a plain dict is not.
    if isinstance(value, dict):
        return {name.lower(): text for name, text in value.items()}
    return value


@attrs.frozen(eq=False)
class Reply:
    """An HTTP answer as a provider sees it: status, headers and the raw body.

    ``headers`` answers lower-case names (``reply.headers.get("etag")``). Parsers get
    the body already decoded; the reply is there for its status and headers.
    """

    status: int
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_lower)
    body: bytes = b""

    def json(self, what: str = "answer", provider: str | None = None) -> Any:
        """The body decoded as JSON (None when empty); MalformedResponseError if not JSON."""
        if self.status == 204 or not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            raise MalformedResponseError(
                f"{what}: HTTP {self.status} answer is not valid JSON",
                provider=provider,
                status_code=self.status,
            ) from None


def next_link(headers: Mapping[str, str]) -> str | None:
    """The ``rel="next"`` target of an RFC 8288 ``Link`` header, or None."""
    value = headers.get("link")
    if not value:
        return None
    for part in value.split(","):
        target, _, params = part.strip().partition(";")
        target = target.strip()
        if not (target.startswith("<") and target.endswith(">")):
            continue
        for param in params.split(";"):
            name, _, rel = param.strip().partition("=")
            if name.strip().lower() == "rel" and "next" in rel.strip().strip('"').lower().split():
                return target[1:-1]
    return None


def redact_url(url: str) -> str:
    """Drop any user-info (``user:secret@``) from a URL before showing it."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
