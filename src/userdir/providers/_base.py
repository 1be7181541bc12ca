"""What every provider dialect shares: the dialect contract and pure helpers.

A dialect is pure: it builds :class:`~userdir.providers.Request` values, reads
decoded answers (and, where it needs them, the :class:`~userdir.providers.Reply`'s
status and headers) into models, and maps error answers. It never does I/O, so one
dialect drives both the sync and the async directory.
"""

from __future__ import annotations

import inspect
import json
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar

from ..emails import email_key
from ..errors import (
    APIError,
    InvalidArgumentError,
    MalformedResponseError,
    UnsupportedOperationError,
    error_class_for_status,
)
from ..models import Capabilities, DirectoryUser, NewUser, UserChanges, UserKind, UserStatus
from ._fields import MAX_NESTING, Fields, describe, nesting_exceeds
from ._paging import CursorPaging, ListPage, PageNumberPaging, Paging, Position
from ._wire import Reply, Request, redact_url

__all__ = [
    "BOT",
    "MAX_NESTING",
    "PERSON",
    "UNKNOWN_STATUS",
    "Dialect",
    "Fields",
    "ListPage",
    "Reply",
    "Request",
    "check_email",
    "check_id",
    "check_page_size",
    "describe",
    "error_fields",
    "error_mapper",
    "nesting_exceeds",
    "paging_of",
    "parse_datetime",
    "user_parser",
]

MAX_ID_LENGTH = 256

# Enum members read once: looking them up on the class costs more than a global, and
# the mappings use them for every user.
PERSON = UserKind.PERSON
BOT = UserKind.BOT
UNKNOWN_STATUS = UserStatus.UNKNOWN


class Dialect:
    """The contract between a provider and the generic directories.

    Subclasses set the class attributes and override what the service supports;
    everything else raises :class:`~userdir.UnsupportedOperationError` before any
    request is built. The hooks, all pure:

    - requests: :meth:`list_request` (given a position of its ``paging``),
      :meth:`get_request`, :meth:`email_request`, :meth:`me_request`,
      :meth:`create_request`, :meth:`update_request`, :meth:`delete_request`;
    - answers: :meth:`parse_page` (the envelope), :meth:`parse_item` (one user, the one
      mapping path), :meth:`parse_user`, :meth:`parse_lookup`, :meth:`map_error`.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: How listings page (a strategy of :mod:`userdir.providers`).
    paging: ClassVar[Paging]
    #: What the list answer calls its users (names them in errors: ``data[3].email``).
    items_key: ClassVar[str] = "items"
    base_url: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={redact_url(self.base_url)!r})"

    def auth_headers(self) -> dict[str, str]:
        """The headers that authenticate every request (values are secrets)."""
        raise NotImplementedError

    # -- discovery --------------------------------------------------------------

    def discovery_request(self) -> Request | None:
        """A request to send once, before the first call that reads ``capabilities`` or
        ``paging`` (SCIM's ``/ServiceProviderConfig``); None, the default: nothing to ask."""
        return None

    def discover(self, body: Any, reply: Reply | None = None) -> None:
        """Take the discovery answer: set this instance's ``capabilities`` (and ``paging``).

        Called at most once per directory, before the calls that depend on them.
        """

    def protocol_headers(self) -> dict[str, str]:
        """Headers every request needs that are not secret (e.g. an API version)."""
        return {}

    # -- listing --------------------------------------------------------------

    def list_request(self, position: Any, page_size: int, filters: Mapping[str, str]) -> Request:
        """The request for the page at ``position`` (a cursor, page number, offset or
        link, as :attr:`paging` defines); ``filters`` only holds the server-side ones."""
        raise NotImplementedError

    def parse_page(self, body: Any, reply: Reply | None = None) -> ListPage:
        """Check a list answer's envelope; the user payloads are left unmapped.

        Reads where paging stands (``has_more``, the next cursor or link, totals) from
        ``body`` or from ``reply.headers``. A dialect written for 0.1 may implement
        ``parse_list`` (mapped users) instead.
        """
        if type(self).parse_list is Dialect.parse_list:
            raise NotImplementedError("a dialect implements parse_page")
        return self.parse_list(body)

    @staticmethod
    def parse_item(payload: Any, what: str = "user") -> DirectoryUser:
        """Map one user payload of a list answer (``what`` names it in errors)."""
        raise NotImplementedError

    def map_items(self, page: ListPage) -> list[DirectoryUser]:
        """Map every user payload of a checked page, in order; errors name the item."""
        items = page.items
        if not items or type(items[0]) is DirectoryUser:  # mapped by the dialect already
            return items
        parse = self.parse_item
        try:
            return [parse(item) for item in items]
        except MalformedResponseError:
            pass
        key = self.items_key
        return [parse(item, f"{key}[{i}]") for i, item in enumerate(items)]

    def parse_list(self, body: Any) -> ListPage:
        """Parse one page of users, mapped (a convenience over :meth:`parse_page`)."""
        page = self.parse_page(body)
        return ListPage(
            self.map_items(page),
            page.has_more,
            page.next_cursor,
            page.total_pages,
            page.total_items,
        )

    def page_request(
        self, position: Position, page_size: int, filters: Mapping[str, str]
    ) -> Request:
        """:meth:`list_request`, with a 0.1 dialect's page numbers passed as text."""
        if isinstance(position, int) and isinstance(type(self).__dict__.get("paging"), str):
            return self.list_request(str(position), page_size, filters)
        return self.list_request(position, page_size, filters)

    # -- single users ---------------------------------------------------------

    def get_request(self, user_id: str) -> Request:
        """The request that fetches one user by id (validates the id first)."""
        raise NotImplementedError

    def parse_user(self, body: Any, reply: Reply | None = None) -> DirectoryUser:
        """Parse the answer of a single-user request."""
        raise NotImplementedError

    def email_request(self, email: str) -> Request:
        """The request of a native email lookup (only where ``email_lookup == "native"``)."""
        raise self.unsupported("find_user_by_email (native)")

    def parse_lookup(self, body: Any, reply: Reply | None = None) -> list[DirectoryUser]:
        """The users an email lookup found (a filter may find several, or none).

        By default the answer holds one user (:meth:`parse_user`); a service answering
        a filter with a list overrides this.
        """
        return [self.parse_user(body)]

    def lookup_batches(self, emails: Sequence[str]) -> list[tuple[tuple[str, ...], Request]]:
        """Requests that each find several emails (where ``email_lookup == "batch"``).

        Each entry is ``(the emails it asks for, the request)``; the directory sends them
        concurrently and reads each answer with :meth:`parse_batch`.
        """
        raise self.unsupported("find_users_by_email (batch)")

    def parse_batch(
        self, body: Any, reply: Reply | None = None
    ) -> tuple[list[DirectoryUser], bool]:
        """The users a batch found, and whether that is all of them (False: the answer was
        capped, and the directory asks again in halves)."""
        raise self.unsupported("find_users_by_email (batch)")

    def lookup_refused(self, error: APIError) -> bool:
        """Whether a refused batch is worth asking again another way (the dialect switched
        to it, e.g. SCIM's ``userName eq`` where ``emails[...]`` is refused)."""
        return False

    def me_request(self) -> Request:
        """The request that fetches the token's own user."""
        raise self.unsupported("me")

    # -- writing --------------------------------------------------------------

    def create_request(self, new_user: NewUser) -> Request:
        """The request that creates a user."""
        raise self.unsupported("create_user")

    #: Whether writes take ``version=`` (sent as ``If-Match``).
    conditional_writes: ClassVar[bool] = False

    @property
    def update_reads_first(self) -> bool:
        """Whether ``update_request`` needs the user as it is (``current=``) first."""
        return False

    def update_request(self, user_id: str, changes: UserChanges) -> Request:
        """The request that changes a user."""
        raise self.unsupported("update_user")

    def delete_request(self, user_id: str) -> Request:
        """The request that deletes a user."""
        raise self.unsupported("delete_user")

    # -- errors ---------------------------------------------------------------

    def map_error(
        self,
        reply: Reply | int,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> APIError:
        """Turn an HTTP error answer into the right :class:`~userdir.APIError`.

        Called with a :class:`Reply`; ``map_error(status, headers, body)``, 0.1's form,
        is still accepted. The built-in dialects override :meth:`_map_reply`, which
        this calls with the answer as a :class:`Reply`.
        """
        return self._map_reply(_as_reply(reply, headers, body))

    def _map_reply(self, reply: Reply) -> APIError:
        """:meth:`map_error` for an answer already read into a :class:`Reply`."""
        code, message, request_id = error_fields(reply.body, reply.headers)
        cls = error_class_for_status(reply.status)
        if message is None:
            message = _not_json_message(self.name, reply.status, reply.headers)
        return cls(
            message,
            provider=self.name,
            status_code=reply.status,
            code=code,
            request_id=request_id,
        )

    def unsupported(self, operation: str) -> UnsupportedOperationError:
        """The error for an operation this service does not have."""
        return UnsupportedOperationError(
            f"{operation} is not supported by the {self.name} provider", provider=self.name
        )

    def malformed(self, what: str) -> MalformedResponseError:
        """The error for an answer that cannot be mapped."""
        return MalformedResponseError(what, provider=self.name)


def _as_reply(reply: Reply | int, headers: Mapping[str, str] | None, body: bytes | None) -> Reply:
    if isinstance(reply, Reply):
        return reply
    return Reply(reply, headers if headers is not None else {}, body or b"")


def user_parser(dialect: Dialect) -> Callable[[Any, Reply], DirectoryUser]:
    """``dialect.parse_user`` called as ``(body, reply)``, whatever its form (0.1: body only)."""
    method: Callable[..., DirectoryUser] = dialect.parse_user
    try:
        params = inspect.signature(method).parameters.values()
        positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    except (TypeError, ValueError):
        positional = 2
    if positional >= 2:
        return method
    return lambda body, reply: method(body)


def paging_of(dialect: Dialect) -> Paging:
    """The dialect's paging strategy; 0.1's ``paging = "cursor"`` strings are read too
    (with a DeprecationWarning, as is a 0.1 ``parse_list`` without ``parse_page``)."""
    paging: Any = dialect.paging
    legacy = type(dialect).parse_page is Dialect.parse_page
    if legacy:
        _deprecated(dialect, "implements parse_list; implement parse_page and parse_item")
    if isinstance(paging, Paging):
        return paging
    _deprecated(
        dialect,
        f"sets paging = {paging!r}; use a strategy of userdir.providers "
        "(CursorPaging(), PageNumberPaging(first=..., totals=...))",
    )
    if paging == "cursor":
        return CursorPaging()
    first = getattr(dialect, "first_page", 0)
    return PageNumberPaging(first=first, totals=paging == "pages_total")


def _deprecated(dialect: Dialect, what: str) -> None:
    warnings.warn(
        f"{type(dialect).__name__} {what} (the 0.1 provider contract, still read)",
        DeprecationWarning,
        stacklevel=4,
    )


def error_mapper(dialect: Dialect) -> Callable[[Reply], APIError]:
    """``dialect.map_error`` as the engines call it (with a Reply), whatever its form."""
    method = dialect.map_error
    try:
        params = [
            p
            for p in inspect.signature(method).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        params = []
    if len(params) >= 3:  # a 0.1 dialect's map_error(status, headers, body)
        _deprecated(dialect, "defines map_error(status, headers, body); take a Reply")
        return lambda reply: method(reply.status, reply.headers, reply.body)
    return method


def _not_json_message(provider: str, status: int, headers: Mapping[str, str]) -> str:
    ctype = headers.get("content-type", "no content type").split(";")[0].strip()
    return (
        f"HTTP {status} answer whose body was not the {provider} service's JSON error "
        f"({ctype}); probably from a proxy or gateway"
    )


def error_fields(
    body: bytes, headers: Mapping[str, str]
) -> tuple[str | None, str | None, str | None]:
    """Pull ``(code, message, request_id)`` from a JSON error body of any common shape.

    Understands ``{"code", "message"}``, ``{"error": "text"}``,
    ``{"error": {"code", "message"}}`` and ``{"detail": ...}``. A body that is not
    JSON gives ``(None, None, request_id-from-headers)``. The texts come whole, as the
    service sent them: the engine scrubs them before it bounds their length.
    """
    request_id = headers.get("x-request-id")
    try:
        data = json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None, None, _one_line(request_id)
    if not isinstance(data, dict):
        return None, None, _one_line(request_id)
    code = data.get("code")
    message = data.get("message")
    error = data.get("error")
    if isinstance(error, dict):
        code = error.get("code", code)
        message = error.get("message", message)
    elif isinstance(error, str):
        if message is None:
            message = error
        elif code is None:
            code = error
    if message is None and isinstance(data.get("detail"), str):
        message = data["detail"]
    rid = data.get("request_id")
    if isinstance(rid, str):
        request_id = rid
    return (
        _one_line(code),
        message if isinstance(message, str) else None,
        _one_line(request_id),
    )


def _one_line(value: object) -> str | None:
    """A code or request id as the service sent it, on one line (None if empty)."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def check_id(provider: str, user_id: object) -> str:
    """Refuse ids that are not a non-empty, printable, reasonably short string."""
    if not isinstance(user_id, str):
        raise InvalidArgumentError(
            f"a user id must be a str, not {type(user_id).__name__}", provider=provider
        )
    if not user_id or not user_id.strip():
        raise InvalidArgumentError("a user id must not be empty", provider=provider)
    if len(user_id) > MAX_ID_LENGTH:
        raise InvalidArgumentError(
            f"a user id must be at most {MAX_ID_LENGTH} characters, got {len(user_id)}",
            provider=provider,
        )
    if not user_id.isprintable():
        raise InvalidArgumentError(
            f"a user id must not hold control characters: {user_id!r}", provider=provider
        )
    return user_id


def check_email(provider: str, email: object) -> str:
    """Validate an email argument; return it stripped."""
    if not isinstance(email, str):
        raise InvalidArgumentError(
            f"an email must be a str, not {type(email).__name__}", provider=provider
        )
    email_key(email)
    return email.strip()


def check_page_size(provider: str, page_size: object, maximum: int) -> int:
    """Refuse a page size outside ``1..maximum``."""
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise InvalidArgumentError(
            f"page_size must be an int, not {type(page_size).__name__}", provider=provider
        )
    if not 1 <= page_size <= maximum:
        raise InvalidArgumentError(
            f"page_size must be between 1 and {maximum}, got {page_size}", provider=provider
        )
    return page_size


_ISO_FRACTION = re.compile(r"(\.\d+)")


def parse_datetime(value: str) -> datetime:
    """Parse an ISO 8601 timestamp into an aware datetime (UTC when no offset is given)."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        raise ValueError("not an ISO 8601 timestamp")
    try:  # the common case on Python 3.11+: one C call
        parsed = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python 3.10 only takes 3 or 6 fraction digits: pad or cut to 6.
    match = _ISO_FRACTION.search(text)
    if match:
        digits = match.group(1)[1:]
        text = text.replace(match.group(1), "." + (digits + "000000")[:6], 1)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed
