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
from .._secrets import check_credential
from ..errors import APIError, InvalidArgumentError, InvalidRequestError, UserNotFoundError
from ..models import _EMPTY, Capabilities, DirectoryUser
from ._base import (
    PERSON,
    STR_OR_NONE,
    UNKNOWN_STATUS,
    Dialect,
    Envelope,
    check_email,
    check_id,
    expect_list,
    expect_object,
    make_converter,
    map_payload,
    page_cursor,
    require_id,
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


def _join_name(first: str | None, last: str | None) -> str | None:
    first = first.strip() if first else None
    last = last.strip() if last else None
    if first and last:
        return f"{first} {last}"
    return first or last or None


def _fields(
    user_id: str,
    email: str | None,
    username: str | None,
    first_name: str | None,
    last_name: str | None,
    picture_url: str | None,
    user_role: str | None,
    calendar_link: str | None,
    raw: Mapping[str, Any],
) -> dict[str, Any]:
    """The one mapping of org-API values to every ``DirectoryUser`` field (both paths)."""
    return {
        "id": user_id,
        "provider": "org_api",
        "email": email,
        "name": _join_name(first_name, last_name),
        "given_name": first_name or None,
        "family_name": last_name or None,
        "username": username,
        "avatar_url": picture_url,
        "kind": PERSON,
        "role": user_role,
        "status": UNKNOWN_STATUS,
        "created_at": None,
        "updated_at": None,
        "last_login_at": None,
        "extra": MappingProxyType({"calendar_link": calendar_link}) if calendar_link else _EMPTY,
        "raw": raw,
    }


def _fast_user(d: Any) -> DirectoryUser:
    """Well-formed payloads straight to the model; anything else raises (see map_payload)."""
    get = d.get
    user_id, email, username, first, last = (
        d["id"],
        get("email"),
        get("username"),
        get("first_name"),
        get("last_name"),
    )
    picture, role, calendar = get("picture_url"), get("user_role"), get("calendar_link")
    if not (
        type(user_id) is str
        and user_id.strip()
        and isinstance(email, STR_OR_NONE)
        and isinstance(username, STR_OR_NONE)
        and isinstance(first, STR_OR_NONE)
        and isinstance(last, STR_OR_NONE)
        and isinstance(picture, STR_OR_NONE)
        and isinstance(role, STR_OR_NONE)
        and isinstance(calendar, STR_OR_NONE)
    ):
        raise TypeError
    return DirectoryUser._trusted(
        _fields(user_id, email, username, first, last, picture, role, calendar, MappingProxyType(d))
    )


def _finish(native: OrgUser, raw: Mapping[str, Any], what: str) -> DirectoryUser:
    """Map a structured org-API user (the detailed path) to the shared model."""
    require_id(OrgApiDialect.name, native.id, what)
    fields = _fields(
        native.id,
        native.email,
        native.username,
        native.first_name,
        native.last_name,
        native.picture_url,
        native.user_role,
        native.calendar_link,
        raw,
    )
    return DirectoryUser(**fields)


def parse_user(payload: Any, what: str = "user") -> DirectoryUser:
    """Parse one org-API user object."""
    return map_payload(OrgApiDialect.name, payload, what, _fast_user, _converter, OrgUser, _finish)


@attrs.define(repr=False)
class OrgApiDialect(Dialect):
    """The org-API-key service: ``Authorization: <api key>`` with no scheme."""

    name: ClassVar[str] = "org_api"
    capabilities: ClassVar[Capabilities] = Capabilities(
        email_lookup="native", paging="pages_has_more", max_page_size=100, user_status=False
    )
    paging = "pages_has_more"
    first_page = 0
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

    def list_request(
        self, cursor: str | None, page_size: int, filters: Mapping[str, str]
    ) -> Request:
        """``GET /list-users?page=<n>&page_size=<n>`` (the first page is 0)."""
        page = page_cursor(self.name, cursor, self.first_page)
        return Request("GET", ("list-users",), (("page", str(page)), ("page_size", str(page_size))))

    fast_item = staticmethod(_fast_user)
    parse_item = staticmethod(parse_user)

    def parse_envelope(self, body: Any) -> Envelope:
        """Check ``{"users": [...], "page", "page_size", "has_more"}``."""
        data = expect_object(self.name, body, "list answer")
        items = expect_list(self.name, data.get("users"), "list answer.users")
        has_more = data.get("has_more", False)
        if type(has_more) is not bool:
            raise self.malformed("list answer.has_more: expected a boolean")
        return Envelope(items, has_more)

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
