"""The org-API-key service: zero-based pages, lookup by id or email, not-found as a 400.

Pure: builds requests and parses answers; the directories do the I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs
import httpx

from .._http import Request
from ..errors import APIError, InvalidArgumentError, InvalidRequestError, UserNotFoundError
from ..models import Capabilities, DirectoryUser, UserKind
from ._base import (
    Dialect,
    ListPage,
    check_email,
    check_id,
    expect_list,
    expect_object,
    make_converter,
    page_cursor,
    require_id,
    structure,
)

__all__ = ["OrgApiDialect"]

# How a "user not found" 400 is told from any other 400: its message.
NOT_FOUND_MESSAGE = re.compile(r"not\s+found|no\s+such\s+user|does\s+not\s+exist", re.IGNORECASE)


@attrs.frozen
class OrgUser:
    """A user as the org API sends it (unknown keys ignored)."""

    id: str
    email: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    picture_url: str | None = None
    user_role: str | None = None
    calendar_link: str | None = None


_converter = make_converter()
_FIELDS = tuple(f.name for f in attrs.fields(OrgUser))[1:]


def _fast_user(d: Any) -> OrgUser:
    get = d.get
    values = [get(name) for name in _FIELDS]
    for value in values:
        if value is not None and type(value) is not str:
            raise TypeError
    user_id = d["id"]
    if type(user_id) is not str:
        raise TypeError
    return OrgUser(user_id, *values)


def _join_name(first: str | None, last: str | None) -> str | None:
    parts = [p.strip() for p in (first, last) if p and p.strip()]
    return " ".join(parts) or None


def to_directory_user(native: OrgUser, raw: Mapping[str, Any]) -> DirectoryUser:
    """Map a structured org-API user to the shared model."""
    return DirectoryUser(
        id=native.id,
        provider=OrgApiDialect.name,
        email=native.email,
        name=_join_name(native.first_name, native.last_name),
        given_name=native.first_name or None,
        family_name=native.last_name or None,
        username=native.username,
        avatar_url=native.picture_url,
        kind=UserKind.PERSON,
        role=native.user_role,
        extra={"calendar_link": native.calendar_link} if native.calendar_link else None,
        raw=raw,
    )


def parse_user(payload: Any, what: str = "user") -> DirectoryUser:
    """Parse one org-API user object."""
    native = structure(_converter, OrgApiDialect.name, payload, OrgUser, _fast_user, what)
    require_id(OrgApiDialect.name, native.id, what)
    return to_directory_user(native, MappingProxyType(payload))


@attrs.define(repr=False)
class OrgApiDialect(Dialect):
    """The org-API-key service: ``Authorization: <api key>`` with no scheme."""

    name: ClassVar[str] = "org_api"
    capabilities: ClassVar[Capabilities] = Capabilities(
        email_lookup="native", paging="pages_has_more", max_page_size=100
    )
    paging = "pages_has_more"
    first_page = 0

    api_key: str = attrs.field(kw_only=True)
    base_url: str = attrs.field(kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.api_key, str) or not self.api_key.strip():
            raise InvalidArgumentError(
                "org_api needs api_key= (the org API key)", provider=self.name
            )

    def auth_headers(self) -> dict[str, str]:
        """The bare key: ``Authorization: <api key>``, never ``Bearer``."""
        return {"Authorization": self.api_key}

    def list_request(
        self, cursor: str | None, page_size: int, filters: Mapping[str, str]
    ) -> Request:
        """``GET /list-users?page=<n>&page_size=<n>`` (the first page is 0)."""
        page = page_cursor(self.name, cursor, self.first_page)
        return Request("GET", ("list-users",), (("page", str(page)), ("page_size", str(page_size))))

    def parse_list(self, body: Any) -> ListPage:
        """Parse ``{"users": [...], "page", "page_size", "has_more"}``."""
        data = expect_object(self.name, body, "list answer")
        users_raw = expect_list(self.name, data.get("users"), "list answer.users")
        users = [parse_user(item, f"users[{i}]") for i, item in enumerate(users_raw)]
        has_more = data.get("has_more", False)
        if type(has_more) is not bool:
            raise self.malformed("list answer.has_more: expected a boolean")
        return ListPage(users, has_more)

    def get_request(self, user_id: str) -> Request:
        """``GET /fetch-user?id=<id>``."""
        return Request("GET", ("fetch-user",), (("id", check_id(self.name, user_id)),))

    def email_request(self, email: str) -> Request:
        """``GET /fetch-user?email=<email>`` (the service matches case-insensitively)."""
        return Request("GET", ("fetch-user",), (("email", check_email(self.name, email)),))

    def parse_user(self, body: Any) -> DirectoryUser:
        """Parse ``{"user": {...}}``."""
        data = expect_object(self.name, body, "fetch-user answer")
        if "user" not in data:
            raise self.malformed("fetch-user answer: no 'user' key")
        return parse_user(data["user"], "fetch-user answer.user")

    def map_error(self, status: int, headers: httpx.Headers, body: bytes) -> APIError:
        """A 400 whose message says "not found" is a missing user; any other 400 is not."""
        error = super().map_error(status, headers, body)
        if isinstance(error, InvalidRequestError) and NOT_FOUND_MESSAGE.search(error.message):
            return UserNotFoundError(
                error.message,
                provider=self.name,
                status_code=status,
                code=error.code,
                request_id=error.request_id,
            )
        return error
