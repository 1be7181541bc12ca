"""The org-API-key service: zero-based pages, lookup by id or email, not-found as a 400.

Pure: builds requests and parses answers; the directories do the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from .._secrets import check_credential
from ..errors import APIError, InvalidArgumentError, InvalidRequestError, UserNotFoundError
from ..models import _EMPTY, Capabilities, DirectoryUser
from ._base import Dialect, check_email, check_id
from ._fields import STR_OR_NONE, Fields, checked_id
from ._paging import ListPage, PageNumberPaging
from ._wire import Reply, Request

__all__ = ["OrgApiDialect"]

# How a "user not found" 400 is told from any other 400: its message.
NOT_FOUND_MESSAGE = re.compile(r"not\s+found|no\s+such\s+user|does\s+not\s+exist", re.IGNORECASE)

F = Fields("org_api")
opt_strs = F.opt_strs
_STRINGS = (
    "email",
    "username",
    "first_name",
    "last_name",
    "picture_url",
    "user_role",
    "calendar_link",
)


def _join_name(first: str | None, last: str | None) -> str | None:
    first = first.strip() if first else None
    last = last.strip() if last else None
    if first and last:
        return f"{first} {last}"
    return first or last or None


def parse_user(payload: Any, what: str = "user") -> DirectoryUser:
    """Map one org-API user object (the one mapping path)."""
    d = payload
    user_id = checked_id(F, d, what)
    get = d.get
    email, username, first, last = (
        get("email"),
        get("username"),
        get("first_name"),
        get("last_name"),
    )
    picture, role, calendar = get("picture_url"), get("user_role"), get("calendar_link")
    if not (
        isinstance(email, STR_OR_NONE)
        and isinstance(username, STR_OR_NONE)
        and isinstance(first, STR_OR_NONE)
        and isinstance(last, STR_OR_NONE)
        and isinstance(picture, STR_OR_NONE)
        and isinstance(role, STR_OR_NONE)
        and isinstance(calendar, STR_OR_NONE)
    ):
        opt_strs(d, _STRINGS, what)  # raises, naming the field
    return DirectoryUser._trusted(
        {
            "id": user_id,
            "provider": "org_api",
            "email": email,
            "name": _join_name(first, last),
            "given_name": first or None,
            "family_name": last or None,
            "username": username,
            "avatar_url": picture,
            "role": role,
            "extra": MappingProxyType({"calendar_link": calendar}) if calendar else _EMPTY,
            "raw": MappingProxyType(d),
        }
    )


@attrs.define(repr=False)
class OrgApiDialect(Dialect):
    """The org-API-key service: ``Authorization: <api key>`` with no scheme."""

    name: ClassVar[str] = "org_api"
    capabilities: ClassVar[Capabilities] = Capabilities(
        email_lookup="native", paging="pages_has_more", max_page_size=100, user_status=False
    )
    paging: ClassVar[PageNumberPaging] = PageNumberPaging(first=0, totals=False)
    items_key = "users"

    api_key: str = attrs.field(kw_only=True)
    base_url: str = attrs.field(kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            raise InvalidArgumentError(
                "org_api needs api_key= (the org API key)", provider=self.name
            )
        self.api_key = check_credential(self.name, "api_key", self.api_key)

    def auth_headers(self) -> dict[str, str]:
        """The bare key: ``Authorization: <api key>``, never ``Bearer``."""
        return {"Authorization": self.api_key}

    def list_request(self, position: int, page_size: int, filters: Mapping[str, str]) -> Request:
        """``GET /list-users?page=<n>&page_size=<n>`` (the first page is 0)."""
        return Request(
            "GET", ("list-users",), (("page", str(position)), ("page_size", str(page_size)))
        )

    parse_item = staticmethod(parse_user)

    def parse_page(self, body: Any, reply: Reply | None = None) -> ListPage:
        """Check ``{"users": [...], "page", "page_size", "has_more"}``."""
        data = F.object(body, "list answer")
        items = F.list(data.get("users"), "list answer.users")
        has_more = data.get("has_more", False)
        if type(has_more) is not bool:
            raise self.malformed("list answer.has_more: expected a boolean")
        return ListPage(items, has_more)

    def get_request(self, user_id: str) -> Request:
        """``GET /fetch-user?id=<id>``."""
        return Request("GET", ("fetch-user",), (("id", check_id(self.name, user_id)),))

    def email_request(self, email: str) -> Request:
        """``GET /fetch-user?email=<email>`` (the service matches case-insensitively).

        A missing user is a 400 here, so a 404 means a wrong URL (``endpoint_404``).
        """
        return Request(
            "GET",
            ("fetch-user",),
            (("email", check_email(self.name, email)),),
            endpoint_404=True,
        )

    def parse_user(self, body: Any, reply: Reply | None = None) -> DirectoryUser:
        """Parse ``{"user": {...}}``."""
        data = F.object(body, "fetch-user answer")
        if "user" not in data:
            raise self.malformed("fetch-user answer: no 'user' key")
        return parse_user(data["user"], "fetch-user answer.user")

    def _map_reply(self, reply: Reply) -> APIError:
        """A 400 whose message says "not found" is a missing user; any other 400 is not."""
        error = super()._map_reply(reply)
        if isinstance(error, InvalidRequestError) and NOT_FOUND_MESSAGE.search(error.message):
            return UserNotFoundError(
                error.message,
                provider=self.name,
                status_code=error.status_code,
                code=error.code,
                request_id=error.request_id,
            )
        return error
