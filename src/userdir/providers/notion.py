"""Notion's Users API: cursor pages, people and bots, Notion's own error codes.

Pure: builds requests and parses answers; the directories do the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from .._secrets import check_credential
from ..errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    EndpointNotFoundError,
    InvalidArgumentError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    UserNotFoundError,
    error_class_for_status,
)
from ..models import _EMPTY, Capabilities, DirectoryUser
from ._base import BOT, PERSON, Dialect, check_id, error_fields
from ._fields import STR_OR_NONE, Fields, checked_id, describe
from ._paging import CursorPaging, ListPage
from ._wire import Reply, Request, redact_url

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


F = Fields("notion")
opt_strs = F.opt_strs
_STRINGS = ("type", "name", "avatar_url")
_BOT_FIELDS = (
    ("owner", F.opt_object),
    ("workspace_name", F.opt_str),
    ("workspace_id", F.opt_str),
    ("workspace_limits", F.opt_object),
)


def parse_user(payload: Any, what: str = "user") -> DirectoryUser:
    """Map one Notion user object (the one mapping path): a person or a bot."""
    d = payload
    user_id = checked_id(F, d, what)
    kind = d.get("object")
    if kind != "user":
        raise F.error(what, f"expected object 'user', got {describe(kind)}")
    user_type, name, avatar = d.get("type"), d.get("name"), d.get("avatar_url")
    if not (
        isinstance(user_type, STR_OR_NONE)
        and isinstance(name, STR_OR_NONE)
        and isinstance(avatar, STR_OR_NONE)
    ):
        opt_strs(d, _STRINGS, what)  # raises, naming the field
    email = None
    extra: Mapping[str, Any] = _EMPTY
    person, bot = d.get("person"), d.get("bot")
    if user_type == "bot" or (user_type is None and bot is not None):
        user_kind = BOT
        if bot is not None:
            F.object(bot, f"{what}.bot")
            values = {}
            for key, read in _BOT_FIELDS:
                value = read(bot, key, what, f"bot.{key}")
                if value is not None:
                    values[key] = value
            extra = MappingProxyType(values) if values else _EMPTY
    else:
        user_kind = PERSON
        if person is not None:
            if type(person) is not dict:
                F.object(person, f"{what}.person")
            email, verified = person.get("email"), person.get("email_verified")
            if email is not None and type(email) is not str:
                F.opt_str(person, "email", what, "person.email")
            if verified is not None:
                F.opt_bool(person, "email_verified", what, "person.email_verified")
                extra = MappingProxyType({"email_verified": verified})
    if user_type not in (None, "person", "bot"):
        extra = MappingProxyType({"type": user_type, **extra})
    return DirectoryUser._trusted(
        {
            "id": user_id,
            "provider": "notion",
            "email": email,
            "name": name,
            "avatar_url": avatar,
            "kind": user_kind,
            "extra": extra,
            "raw": MappingProxyType(d),
        }
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
    paging: ClassVar[CursorPaging] = CursorPaging()
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
        self, position: str | None, page_size: int, filters: Mapping[str, str]
    ) -> Request:
        """``GET /v1/users?page_size=&start_cursor=``."""
        params: list[tuple[str, str]] = [("page_size", str(page_size))]
        if position is not None:
            if not isinstance(position, str) or not position or len(position) > 256:
                raise InvalidArgumentError("not a Notion cursor", provider=self.name)
            params.append(("start_cursor", position))
        return Request("GET", ("v1", "users"), tuple(params))

    parse_item = staticmethod(parse_user)

    def parse_page(self, body: Any, reply: Reply | None = None) -> ListPage:
        """Check a ``list`` object: ``results``, ``has_more``, ``next_cursor``."""
        data = F.object(body, "list answer")
        if data.get("object", "list") != "list":
            raise self.malformed(
                f"list answer: expected object 'list', got {describe(data.get('object'))}"
            )
        results = F.list(data.get("results"), "list answer.results")
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
        return ListPage(results, has_more, next_cursor if has_more else None)

    def get_request(self, user_id: str) -> Request:
        """``GET /v1/users/{id}``; the id must be a UUID."""
        return Request("GET", ("v1", "users", check_notion_id(user_id)))

    def parse_user(self, body: Any, reply: Reply | None = None) -> DirectoryUser:
        """Parse a user object."""
        return parse_user(body)

    def me_request(self) -> Request:
        """``GET /v1/users/me``: the token's bot."""
        return Request("GET", ("v1", "users", "me"))

    def _map_reply(self, reply: Reply) -> APIError:
        """Notion's ``code`` decides; a non-JSON answer (a proxy's page) goes by status."""
        status, headers = reply.status, reply.headers
        code, message, request_id = error_fields(reply.body, headers)
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
