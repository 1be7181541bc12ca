"""What every provider dialect shares: the dialect contract and pure helpers.

A dialect is pure: it builds :class:`~userdir._http.Request` values, parses decoded
JSON into models and maps native errors. It never does I/O, so one dialect drives
both the sync and the async directory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar

import attrs
import cattrs
import httpx

from .._http import Request, redact_url
from .._secrets import quote
from ..emails import email_key
from ..errors import (
    APIError,
    InvalidArgumentError,
    MalformedResponseError,
    UnsupportedOperationError,
    error_class_for_status,
)
from ..models import Capabilities, DirectoryUser, NewUser, UserChanges, UserKind, UserStatus

__all__ = [
    "BOT",
    "MAX_NESTING",
    "PERSON",
    "STR_OR_NONE",
    "UNKNOWN_STATUS",
    "Dialect",
    "Envelope",
    "ListPage",
    "Paging",
    "check_email",
    "check_id",
    "check_page_size",
    "describe",
    "error_fields",
    "expect_list",
    "expect_object",
    "make_converter",
    "map_payload",
    "nesting_exceeds",
    "page_cursor",
    "parse_datetime",
    "require_id",
    "require_shallow",
]

Paging = Literal["cursor", "pages_total", "pages_has_more"]
T = TypeVar("T")

MAX_ID_LENGTH = 256

# Enum members read once: looking them up on the class costs more than a global, and
# the fast mapping paths use them for every user.
PERSON = UserKind.PERSON
BOT = UserKind.BOT
UNKNOWN_STATUS = UserStatus.UNKNOWN
STR_OR_NONE = (str, type(None))


@attrs.frozen
class Envelope:
    """A list answer's envelope: the raw user payloads and where paging stands.

    Cheap to read, so the directory can ask for the next page before it maps the users.
    """

    items: list[Any]
    has_more: bool
    next_cursor: str | None = None
    total_pages: int | None = None
    mapped: bool = False  # items are DirectoryUsers already (a dialect with parse_list only)
    total_items: int | None = None


@attrs.frozen
class ListPage:
    """One parsed list answer, before the pagination strategy looks at it.

    ``next_cursor`` is used by cursor paging; ``total_pages`` by page numbers with
    totals; ``has_more`` by all. ``total_items`` (how many users the directory holds,
    where the service says) lets a page-number walk see the directory change.
    """

    users: list[DirectoryUser]
    has_more: bool
    next_cursor: str | None = None
    total_pages: int | None = None
    total_items: int | None = None


class Dialect:
    """The contract between a provider and the generic directories.

    Subclasses set the class attributes and override what the service supports;
    everything else raises :class:`~userdir.UnsupportedOperationError` before any
    request is built.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    paging: ClassVar[Paging]
    first_page: ClassVar[int] = 0
    items_key: ClassVar[str] = "items"
    base_url: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={redact_url(self.base_url)!r})"

    def auth_headers(self) -> dict[str, str]:
        """The headers that authenticate every request (values are secrets)."""
        raise NotImplementedError

    def protocol_headers(self) -> dict[str, str]:
        """Headers every request needs that are not secret (e.g. an API version)."""
        return {}

    # -- reading --------------------------------------------------------------

    def list_request(
        self, cursor: str | None, page_size: int, filters: Mapping[str, str]
    ) -> Request:
        """The request for one page; ``filters`` only holds the server-side ones."""
        raise NotImplementedError

    def parse_envelope(self, body: Any) -> Envelope:
        """Check a list answer's envelope; the user payloads are left unparsed.

        A dialect may implement ``parse_list`` alone instead; then this maps the page
        at once.
        """
        if type(self).parse_list is Dialect.parse_list:
            raise NotImplementedError("a dialect implements parse_envelope or parse_list")
        page = self.parse_list(body)
        return Envelope(
            list(page.users),
            page.has_more,
            page.next_cursor,
            page.total_pages,
            True,
            page.total_items,
        )

    @staticmethod
    def parse_item(payload: Any, what: str = "user") -> DirectoryUser:
        """Map one user payload of a list answer (``what`` names it in errors)."""
        raise NotImplementedError

    @staticmethod
    def fast_item(d: Any) -> DirectoryUser:
        """Map a well-formed user payload, or raise anything (then ``parse_item`` explains)."""
        raise NotImplementedError

    @staticmethod
    def peek_next_cursor(body: bytes) -> str | None:
        """A cheap guess at a cursor page's ``next_cursor``, read off the raw body.

        Cursor walks send the guessed next request before decoding the page, and check
        the guess once it is decoded (a wrong guess costs one wasted request, never a
        wrong result). None, the default, means "no guess": decode first.
        """
        return None

    def users_of(self, envelope: Envelope) -> list[DirectoryUser]:
        """Map every user payload of a checked envelope, in order."""
        if envelope.mapped:
            return envelope.items
        fast = self.fast_item
        try:  # the whole page through the fast path: no per-item wrappers or labels
            return [fast(item) for item in envelope.items]
        except Exception:  # noqa: S110 - the detailed path names the bad item
            pass
        parse, key = self.parse_item, self.items_key
        return [parse(item, f"{key}[{i}]") for i, item in enumerate(envelope.items)]

    def parse_list(self, body: Any) -> ListPage:
        """Parse one page of users."""
        envelope = self.parse_envelope(body)
        return ListPage(
            self.users_of(envelope),
            envelope.has_more,
            envelope.next_cursor,
            envelope.total_pages,
            envelope.total_items,
        )

    def get_request(self, user_id: str) -> Request:
        """The request that fetches one user by id (validates the id first)."""
        raise NotImplementedError

    def parse_user(self, body: Any) -> DirectoryUser:
        """Parse the answer of a single-user request."""
        raise NotImplementedError

    def email_request(self, email: str) -> Request:
        """The request of a native email lookup (only where ``email_lookup == "native"``)."""
        raise self.unsupported("find_user_by_email (native)")

    def me_request(self) -> Request:
        """The request that fetches the token's own user."""
        raise self.unsupported("me")

    # -- discovery and batched lookups (optional) -----------------------------

    def discovery_request(self) -> Request | None:
        """The request that reads what the server supports, once, before the first
        operation (SCIM's ``/ServiceProviderConfig``); None when there is nothing to read."""
        return None

    def discover(self, body: Any) -> None:
        """Take the discovery answer (None: the server has no such document)."""

    def lookup_batches(self, emails: Sequence[str]) -> list[tuple[tuple[str, ...], Request]]:
        """Requests that each find several emails (where ``email_lookup == "batch"``)."""
        raise self.unsupported("find_users_by_email (batch)")

    def parse_batch(self, body: Any) -> tuple[list[DirectoryUser], bool]:
        """The users a batch found, and whether that is all (False: the page was capped)."""
        raise self.unsupported("find_users_by_email (batch)")

    def lookup_refused(self, error: APIError) -> bool:
        """Whether a refused batch is worth asking again another way (the dialect switched)."""
        return False

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

    def map_error(self, status: int, headers: httpx.Headers, body: bytes) -> APIError:
        """Turn an HTTP error answer into the right :class:`~userdir.APIError`."""
        code, message, request_id = error_fields(body, headers)
        cls = error_class_for_status(status)
        if message is None:
            message = _not_json_message(self.name, status, headers)
        return cls(
            message, provider=self.name, status_code=status, code=code, request_id=request_id
        )

    def unsupported(self, operation: str) -> UnsupportedOperationError:
        """The error for an operation this service does not have."""
        return UnsupportedOperationError(
            f"{operation} is not supported by the {self.name} provider", provider=self.name
        )

    def malformed(self, what: str) -> MalformedResponseError:
        """The error for an answer that cannot be mapped."""
        return MalformedResponseError(what, provider=self.name)


def _not_json_message(provider: str, status: int, headers: httpx.Headers) -> str:
    ctype = headers.get("content-type", "no content type").split(";")[0].strip()
    return (
        f"HTTP {status} answer whose body was not the {provider} service's JSON error "
        f"({ctype}); probably from a proxy or gateway"
    )


def error_fields(body: bytes, headers: httpx.Headers) -> tuple[str | None, str | None, str | None]:
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


def page_cursor(provider: str, cursor: str | None, first: int) -> int:
    """Read a page-number cursor (an opaque str to callers)."""
    if cursor is None:
        return first
    if (
        not isinstance(cursor, str)
        or not (cursor.isascii() and cursor.isdigit())  # "²".isdigit() but int("²") fails
        or len(cursor) > 9
    ):
        raise InvalidArgumentError(
            f"not a cursor this {provider} directory gave out: {str(cursor)[:40]!r}",
            provider=provider,
        )
    page = int(cursor)
    if page < first:
        raise InvalidArgumentError(f"page cursor below the first page: {cursor}", provider=provider)
    return page


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


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _strict_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _datetime(value: Any, _: Any) -> datetime:
    return parse_datetime(value)


def _mapping(value: Any, _: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def make_converter() -> cattrs.Converter:
    """A converter for native payloads: strict scalars, unknown keys ignored."""
    converter = cattrs.Converter(forbid_extra_keys=False, detailed_validation=True)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(datetime, _datetime)
    converter.register_structure_hook_func(lambda t: t == dict[str, Any], _mapping)
    return converter


def map_payload(
    provider: str,
    payload: Any,
    what: str,
    fast: Callable[[Any], DirectoryUser],
    converter: cattrs.Converter,
    cls: type[T],
    finish: Callable[[T, Mapping[str, Any], str], DirectoryUser],
) -> DirectoryUser:
    """Map one user payload: a fast hand-written path, cattrs to explain the rest.

    ``fast`` maps the common, well-formed shapes straight to a ``DirectoryUser`` and
    raises anything otherwise. The detailed path then structures the payload into the
    provider's native class with cattrs — naming the bad field in a
    :class:`~userdir.MalformedResponseError` — and ``finish`` maps it. Both paths give
    equal users for any payload the fast path takes (a property test checks it).
    """
    try:
        return fast(payload)
    except Exception:  # noqa: S110 - the detailed path below decides
        pass
    if not isinstance(payload, dict):
        raise MalformedResponseError(
            f"{what}: expected a JSON object, got {_json_type(payload)}", provider=provider
        )
    try:
        native = converter.structure(payload, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            details = "; ".join(cattrs.transform_error(exc, path=what))
        else:
            details = f"{what}: {exc}"
        raise MalformedResponseError(
            f"cannot map the answer: {details}", provider=provider
        ) from None
    except RecursionError:
        raise MalformedResponseError(f"{what}: nested too deeply", provider=provider) from None
    return finish(native, MappingProxyType(payload), what)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def describe(value: Any) -> str:
    """A short description of a JSON value for a message: never its full text."""
    if isinstance(value, str):
        return quote(value)
    return _json_type(value)


#: How deeply a free-form value kept in ``extra`` may nest dicts and lists. Deeper is
#: refused as malformed: no directory needs it, and it would make ``==``, ``repr`` and
#: ``to_dict`` of the user run into Python's recursion limit.
MAX_NESTING = 32


def nesting_exceeds(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``value`` nests dicts and lists more than ``limit`` levels (no recursion)."""
    level = [value] if isinstance(value, (dict, list)) else []  # the containers only
    for _ in range(limit):
        inner: list[Any] = []
        for container in level:
            children = container.values() if isinstance(container, dict) else container
            inner.extend(c for c in children if isinstance(c, (dict, list)))
        level = inner
    return bool(level)


def require_shallow(provider: str, value: Any, what: str) -> None:
    """Refuse a free-form value nested deeper than :data:`MAX_NESTING`."""
    if nesting_exceeds(value):
        raise MalformedResponseError(
            f"{what}: nested deeper than {MAX_NESTING} levels", provider=provider
        )


def require_id(provider: str, user_id: str, what: str) -> None:
    """Refuse a parsed user whose id is empty: it could be neither fetched nor told apart."""
    if not user_id.strip():
        raise MalformedResponseError(f"{what}.id: empty", provider=provider)


def expect_object(provider: str, body: Any, what: str) -> dict[str, Any]:
    """The body as a dict, or a MalformedResponseError saying what came instead."""
    if not isinstance(body, dict):
        raise MalformedResponseError(
            f"{what}: expected a JSON object, got {_json_type(body)}", provider=provider
        )
    return body


def expect_list(provider: str, value: Any, what: str) -> list[Any]:
    """The value as a list, or a MalformedResponseError."""
    if not isinstance(value, list):
        raise MalformedResponseError(
            f"{what}: expected an array, got {_json_type(value)}", provider=provider
        )
    return value
