"""Notion's Users API: cursor pages, people and bots, Notion's own error codes.

Pure: builds requests and parses answers; the directories do the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs
import httpx

from .._http import Request, redact_url
from .._secrets import check_credential
from ..errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    EndpointNotFoundError,
    InvalidArgumentError,
    InvalidRequestError,
    MalformedResponseError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UserNotFoundError,
    error_class_for_status,
)
from ..models import _EMPTY, Capabilities, DirectoryUser, UserKind
from ._base import (
    BOT,
    PERSON,
    STR_OR_NONE,
    UNKNOWN_STATUS,
    Dialect,
    Envelope,
    check_id,
    describe,
    error_fields,
    expect_list,
    expect_object,
    make_converter,
    map_payload,
    nesting_exceeds,
    require_id,
    require_shallow,
)

__all__ = ["DEFAULT_NOTION_VERSION", "NotionDialect"]

DEFAULT_NOTION_VERSION = "2025-09-03"
DEFAULT_BASE_URL = "https://api.notion.com"

_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}"
)

ERROR_CODES: Mapping[str, type[APIError]] = {
    "unauthorized": AuthenticationError,
    "restricted_resource": PermissionDeniedError,
    "object_not_found": UserNotFoundError,
    "validation_error": InvalidRequestError,
    "invalid_request": InvalidRequestError,
    "invalid_json": InvalidRequestError,
    "invalid_request_url": EndpointNotFoundError,
    "missing_version": InvalidRequestError,
    "conflict_error": ConflictError,
    "rate_limited": RateLimitedError,
    "internal_server_error": ServerError,
    "service_unavailable": ServerError,
    "gateway_timeout": ServerError,
    "service_overload": ServerError,
    "database_connection_unavailable": ServerError,
}


# -- native payloads ---------------------------------------------------------


@attrs.frozen
class NotionPerson:
    """``user.person``: the email only with the integration's email capability."""

    email: str | None = None
    email_verified: bool | None = None


@attrs.frozen
class NotionBot:
    """``user.bot``: empty for other integrations, owner and workspace for the caller."""

    owner: dict[str, Any] | None = None
    workspace_name: str | None = None
    workspace_id: str | None = None
    workspace_limits: dict[str, Any] | None = None


@attrs.frozen
class NotionUser:
    """A Notion user object, as the API sends it (unknown keys ignored)."""

    object: str
    id: str
    type: str | None = None
    name: str | None = None
    avatar_url: str | None = None
    person: NotionPerson | None = None
    bot: NotionBot | None = None


_converter = make_converter()


_DICT_OR_NONE = (dict, type(None))
_NEXT_CURSOR_KEY = b'"next_cursor":"'
_PLAIN_CURSOR = re.compile(rb"[A-Za-z0-9_-]{1,256}")
_BOT_KEYS = ("owner", "workspace_name", "workspace_id", "workspace_limits")


def _fields(
    user_id: str,
    email: str | None,
    name: str | None,
    avatar_url: str | None,
    kind: UserKind,
    extra: Mapping[str, Any],
    raw: Mapping[str, Any],
) -> dict[str, Any]:
    """Every ``DirectoryUser`` field of a Notion user (both paths use it)."""
    return {
        "id": user_id,
        "provider": "notion",
        "email": email,
        "name": name,
        "given_name": None,
        "family_name": None,
        "username": None,
        "avatar_url": avatar_url,
        "kind": kind,
        "role": None,
        "status": UNKNOWN_STATUS,
        "created_at": None,
        "updated_at": None,
        "last_login_at": None,
        "extra": extra,
        "raw": raw,
    }


def _fast_user(d: Any) -> DirectoryUser:
    """The common shapes, straight to the model; anything else raises (see map_payload)."""
    user_id, kind = d["id"], d["type"]
    name, avatar = d.get("name"), d.get("avatar_url")
    if (
        d["object"] != "user"
        or type(user_id) is not str
        or not user_id.strip()
        or not isinstance(name, STR_OR_NONE)
        or not isinstance(avatar, STR_OR_NONE)
    ):
        raise TypeError
    extra: Mapping[str, Any] = _EMPTY
    email = None
    if kind == "person" and "bot" not in d:
        person = d.get("person")
        if person is not None:
            email = person.get("email")
            verified = person.get("email_verified")
            if not isinstance(email, STR_OR_NONE) or (
                verified is not None and type(verified) is not bool
            ):
                raise TypeError
            if verified is not None:
                extra = MappingProxyType({"email_verified": verified})
        user_kind = PERSON
    elif kind == "bot" and "person" not in d:
        bot = d.get("bot")
        if bot:
            owner, workspace_name, workspace_id, limits = (bot.get(k) for k in _BOT_KEYS)
            if not (
                isinstance(owner, _DICT_OR_NONE)
                and isinstance(workspace_name, STR_OR_NONE)
                and isinstance(workspace_id, STR_OR_NONE)
                and isinstance(limits, _DICT_OR_NONE)
                and not nesting_exceeds(owner)
                and not nesting_exceeds(limits)
            ):
                raise TypeError
            extra = MappingProxyType({k: bot[k] for k in _BOT_KEYS if bot.get(k) is not None})
        elif bot is not None and type(bot) is not dict:
            raise TypeError
        user_kind = BOT
    else:
        raise TypeError
    return DirectoryUser._trusted(
        _fields(user_id, email, name, avatar, user_kind, extra, MappingProxyType(d))
    )


def _finish(native: NotionUser, raw: Mapping[str, Any], what: str) -> DirectoryUser:
    """Map a structured Notion user (the detailed path) to the shared model."""
    require_id(NotionDialect.name, native.id, what)
    if native.object != "user":
        raise MalformedResponseError(
            f"{what}: expected object 'user', got {describe(native.object)}",
            provider=NotionDialect.name,
        )
    extra: dict[str, Any] = {}
    is_bot = native.type == "bot" or (native.type is None and native.bot is not None)
    if native.type not in (None, "person", "bot"):
        extra["type"] = native.type
    email = None
    if is_bot:
        if native.bot is not None:
            for key in _BOT_KEYS:
                value = getattr(native.bot, key)
                if value is not None:
                    require_shallow(NotionDialect.name, value, f"{what}.bot.{key}")
                    extra[key] = value
    elif native.person is not None:
        email = native.person.email
        if native.person.email_verified is not None:
            extra["email_verified"] = native.person.email_verified
    kind = BOT if is_bot else PERSON
    return DirectoryUser(
        **_fields(native.id, email, native.name, native.avatar_url, kind, extra, raw)
    )


def parse_user(payload: Any, what: str = "user") -> DirectoryUser:
    """Parse one Notion user object."""
    return map_payload(
        NotionDialect.name, payload, what, _fast_user, _converter, NotionUser, _finish
    )


def _sendable_cursor(cursor: str) -> bool:
    return len(cursor) <= 256 and cursor.isprintable()


def check_notion_id(user_id: object) -> str:
    """A Notion user id must be a UUID, with or without dashes."""
    check_id(NotionDialect.name, user_id)
    assert isinstance(user_id, str)
    if not _UUID.fullmatch(user_id):
        raise InvalidArgumentError(
            f"a Notion user id must be a UUID (with or without dashes), got {user_id[:80]!r}",
            provider=NotionDialect.name,
        )
    return user_id


@attrs.define(repr=False)
class NotionDialect(Dialect):
    """Notion's Users API (``/v1/users``), ``Authorization: Bearer`` + ``Notion-Version``."""

    name: ClassVar[str] = "notion"
    capabilities: ClassVar[Capabilities] = Capabilities(
        email_lookup="scan", me=True, paging="cursor", max_page_size=100, user_status=False
    )
    paging = "cursor"
    items_key = "results"

    token: str = attrs.field(kw_only=True)
    notion_version: str = attrs.field(default=DEFAULT_NOTION_VERSION, kw_only=True)
    base_url: str = attrs.field(default=DEFAULT_BASE_URL, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token.strip():
            raise InvalidArgumentError(
                "notion needs token= (an integration token)", provider="notion"
            )
        self.token = check_credential(self.name, "token", self.token)
        if not isinstance(self.notion_version, str) or not self.notion_version.strip():
            raise InvalidArgumentError(
                "notion_version= must be a non-empty string", provider="notion"
            )

    def __repr__(self) -> str:
        return (
            f"NotionDialect(base_url={redact_url(self.base_url)!r}, "
            f"notion_version={self.notion_version!r})"
        )

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Bearer <token>``."""
        return {"Authorization": f"Bearer {self.token}"}

    def protocol_headers(self) -> dict[str, str]:
        """``Notion-Version``: the API version every request names."""
        return {"Notion-Version": self.notion_version}

    def list_request(
        self, cursor: str | None, page_size: int, filters: Mapping[str, str]
    ) -> Request:
        """``GET /v1/users?page_size=&start_cursor=``."""
        params: list[tuple[str, str]] = [("page_size", str(page_size))]
        if cursor is not None:
            if not isinstance(cursor, str) or not cursor or len(cursor) > 256:
                raise InvalidArgumentError("not a Notion cursor", provider=self.name)
            params.append(("start_cursor", cursor))
        return Request("GET", ("v1", "users"), tuple(params))

    fast_item = staticmethod(_fast_user)
    parse_item = staticmethod(parse_user)

    @staticmethod
    def peek_next_cursor(body: bytes) -> str | None:
        """The last ``"next_cursor":"..."`` of a compact body, if it is a plain token.

        Notion sends the envelope's keys after ``results``, so the last match is the
        page's own cursor; the walk checks it against the decoded page in any case.
        """
        at = body.rfind(_NEXT_CURSOR_KEY)
        if at < 0:
            return None
        start = at + len(_NEXT_CURSOR_KEY)
        match = _PLAIN_CURSOR.match(body, start)
        if match is None or body[match.end() : match.end() + 1] != b'"':
            return None
        return match.group().decode("ascii")

    def parse_envelope(self, body: Any) -> Envelope:
        """Check a ``list`` object: ``results``, ``has_more``, ``next_cursor``."""
        data = expect_object(self.name, body, "list answer")
        if data.get("object", "list") != "list":
            raise self.malformed(
                f"list answer: expected object 'list', got {describe(data.get('object'))}"
            )
        results = expect_list(self.name, data.get("results"), "list answer.results")
        has_more = data.get("has_more", False)
        next_cursor = data.get("next_cursor")
        if type(has_more) is not bool:
            raise self.malformed("list answer.has_more: expected a boolean")
        if next_cursor is not None and not isinstance(next_cursor, str):
            raise self.malformed("list answer.next_cursor: expected a string or null")
        if has_more and not next_cursor:
            raise self.malformed("list answer says has_more but gives no next_cursor")
        if has_more and isinstance(next_cursor, str) and not _sendable_cursor(next_cursor):
            # it could not be sent back (over 256 characters, control characters, or
            # lone surrogates that no URL can carry)
            raise self.malformed("list answer.next_cursor: not a cursor that can be sent back")
        return Envelope(results, has_more, next_cursor if has_more else None)

    def get_request(self, user_id: str) -> Request:
        """``GET /v1/users/{id}``; the id must be a UUID."""
        return Request("GET", ("v1", "users", check_notion_id(user_id)))

    def parse_user(self, body: Any) -> DirectoryUser:
        """Parse a user object."""
        return parse_user(body)

    def me_request(self) -> Request:
        """``GET /v1/users/me``: the token's bot."""
        return Request("GET", ("v1", "users", "me"))

    def map_error(self, status: int, headers: httpx.Headers, body: bytes) -> APIError:
        """Notion's ``code`` decides; a non-JSON answer (a proxy's page) goes by status."""
        code, message, request_id = error_fields(body, headers)
        if message is None:
            ctype = headers.get("content-type", "no content type").split(";")[0].strip()
            message = (
                f"HTTP {status} answer whose body was not Notion's JSON error ({ctype}); "
                "probably from a proxy or gateway"
            )
            code = None
        cls = ERROR_CODES.get(code or "") or error_class_for_status(status)
        if status == 529:
            cls = ServerError
        return cls(
            message, provider=self.name, status_code=status, code=code, request_id=request_id
        )
