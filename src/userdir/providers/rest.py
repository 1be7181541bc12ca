"""The generic REST service: ``/api/v1/users`` CRUD, 1-based pages with totals, filters.

Pure: builds requests and parses answers; the directories do the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from .._http import Request
from .._secrets import check_credential
from ..errors import InvalidArgumentError
from ..models import _EMPTY, Capabilities, DirectoryUser, NewUser, UserChanges, UserStatus
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
    nesting_exceeds,
    page_cursor,
    parse_datetime,
    require_id,
    require_shallow,
)

__all__ = ["RestDialect"]

STATUSES = {s.value: s for s in (UserStatus.ACTIVE, UserStatus.INACTIVE, UserStatus.PENDING)}
# what each status value maps to, None (not sent) included; anything else is UNKNOWN
_STATUS_OF: dict[str | None, UserStatus] = {None: UserStatus.UNKNOWN, **STATUSES}


@attrs.frozen
class RestUser:
    """A user as the REST service sends it (unknown keys ignored)."""

    id: str
    email: str | None = None
    name: str | None = None
    role: str | None = None
    status: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_login: datetime | None = None
    settings: dict[str, Any] | None = None


_converter = make_converter()


_fromisoformat = datetime.fromisoformat


def _time(value: Any) -> datetime:
    """A timestamp the service sent (not None): parse_datetime's answer, faster."""
    if type(value) is str and 10 <= len(value) <= 40:
        try:  # the common case, inline
            parsed = _fromisoformat(value)
        except ValueError:
            return parse_datetime(value)
        if parsed.tzinfo is not None:
            return parsed
    return parse_datetime(value)


def _fields(
    user_id: str,
    email: str | None,
    name: str | None,
    role: str | None,
    status: str | None,
    created_at: datetime | None,
    updated_at: datetime | None,
    last_login: datetime | None,
    settings: dict[str, Any] | None,
    raw: Mapping[str, Any],
) -> dict[str, Any]:
    """The one mapping of REST values to every ``DirectoryUser`` field (both paths)."""
    known = _STATUS_OF.get(status)
    extra: Mapping[str, Any] = _EMPTY
    if known is None or settings is not None:
        values: dict[str, Any] = {}
        if known is None:
            values["status"] = status
        if settings is not None:
            values["settings"] = settings
        extra = MappingProxyType(values)
    return {
        "id": user_id,
        "provider": "rest",
        "email": email,
        "name": name,
        "given_name": None,
        "family_name": None,
        "username": None,
        "avatar_url": None,
        "kind": PERSON,
        "role": role,
        "status": known or UNKNOWN_STATUS,
        "created_at": created_at,
        "updated_at": updated_at,
        "last_login_at": last_login,
        "extra": extra,
        "raw": raw,
    }


def _fast_user(d: Any) -> DirectoryUser:
    """Well-formed payloads straight to the model; anything else raises (see map_payload)."""
    get = d.get
    user_id, email, name, role, status, settings = (
        d["id"],
        get("email"),
        get("name"),
        get("role"),
        get("status"),
        get("settings"),
    )
    created, updated, login = get("created_at"), get("updated_at"), get("last_login")
    if not (
        type(user_id) is str
        and user_id.strip()
        and isinstance(email, STR_OR_NONE)
        and isinstance(name, STR_OR_NONE)
        and isinstance(role, STR_OR_NONE)
        and isinstance(status, STR_OR_NONE)
        and (settings is None or (type(settings) is dict and not nesting_exceeds(settings)))
    ):
        raise TypeError
    fields = _fields(
        user_id,
        email,
        name,
        role,
        status,
        created if created is None else _time(created),
        updated if updated is None else _time(updated),
        login if login is None else _time(login),
        settings,
        MappingProxyType(d),
    )
    return DirectoryUser._trusted(fields)


def _finish(native: RestUser, raw: Mapping[str, Any], what: str) -> DirectoryUser:
    """Map a structured REST user (the detailed path) to the shared model."""
    require_id(RestDialect.name, native.id, what)
    require_shallow(RestDialect.name, native.settings, f"{what}.settings")
    fields = _fields(
        native.id,
        native.email,
        native.name,
        native.role,
        native.status,
        native.created_at,
        native.updated_at,
        native.last_login,
        native.settings,
        raw,
    )
    return DirectoryUser(**fields)


def parse_user(payload: Any, what: str = "user") -> DirectoryUser:
    """Parse one REST user object."""
    return map_payload(RestDialect.name, payload, what, _fast_user, _converter, RestUser, _finish)


def _check_text(name: str, value: object, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{name} must be a non-empty string", provider="rest")


def _check_settings(value: object) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise InvalidArgumentError("settings must be a mapping", provider="rest")


@attrs.define(repr=False)
class RestDialect(Dialect):
    """The REST ``/api/v1/users`` service with ``Authorization: Bearer <token>``."""

    name: ClassVar[str] = "rest"
    capabilities: ClassVar[Capabilities] = Capabilities(
        email_lookup="scan",
        create_user=True,
        update_user=True,
        delete_user=True,
        server_filters=frozenset({"status", "role"}),
        paging="pages_total",
        max_page_size=100,
        create_requires=frozenset({"email", "name", "password"}),
    )
    paging = "pages_total"
    first_page = 1
    items_key = "data"

    token: str = attrs.field(kw_only=True)
    base_url: str = attrs.field(kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token.strip():
            raise InvalidArgumentError("rest needs token= (a bearer token)", provider=self.name)
        self.token = check_credential(self.name, "token", self.token)

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Bearer <token>``."""
        return {"Authorization": f"Bearer {self.token}"}

    def list_request(
        self, cursor: str | None, page_size: int, filters: Mapping[str, str]
    ) -> Request:
        """``GET /api/v1/users?page=&limit=&status=&role=`` (the first page is 1)."""
        page = page_cursor(self.name, cursor, self.first_page)
        params = [("page", str(page)), ("limit", str(page_size))]
        params.extend((key, filters[key]) for key in ("status", "role") if key in filters)
        return Request("GET", ("api", "v1", "users"), tuple(params))

    fast_item = staticmethod(_fast_user)
    parse_item = staticmethod(parse_user)

    def parse_envelope(self, body: Any) -> Envelope:
        """Check ``{"data": [...], "meta": {"total", "page", "limit", "pages"}}``."""
        data = expect_object(self.name, body, "list answer")
        items = expect_list(self.name, data.get("data"), "list answer.data")
        meta = expect_object(self.name, data.get("meta"), "list answer.meta")
        page, pages = meta.get("page"), meta.get("pages")
        for key, value in (("page", page), ("pages", pages)):
            if type(value) is not int or value < 0:
                raise self.malformed(f"list answer.meta.{key}: expected a non-negative integer")
        assert isinstance(page, int)
        assert isinstance(pages, int)
        total = meta.get("total")
        if total is not None and (type(total) is not int or total < 0):
            raise self.malformed("list answer.meta.total: expected a non-negative integer")
        return Envelope(items, page < pages, None, pages, total_items=total)

    def get_request(self, user_id: str) -> Request:
        """``GET /api/v1/users/{user_id}``."""
        return Request("GET", ("api", "v1", "users", check_id(self.name, user_id)))

    def parse_user(self, body: Any) -> DirectoryUser:
        """Parse ``{"data": {...}}``."""
        data = expect_object(self.name, body, "user answer")
        if "data" not in data:
            raise self.malformed("user answer: no 'data' key")
        return parse_user(data["data"], "user answer.data")

    def create_request(self, new_user: NewUser) -> Request:
        """``POST /api/v1/users`` with email, name, role, password and settings as given."""
        if not isinstance(new_user, NewUser):
            raise InvalidArgumentError("create_user takes a userdir.NewUser", provider=self.name)
        missing = [
            f for f in sorted(self.capabilities.create_requires) if getattr(new_user, f) is None
        ]
        if missing:
            raise InvalidArgumentError(
                f"create_user: the {self.name} provider requires NewUser field(s): "
                f"{', '.join(missing)}",
                provider=self.name,
            )
        body: dict[str, Any] = {
            "email": check_email(self.name, new_user.email),
            "name": new_user.name,
        }
        _check_text("name", new_user.name)
        _check_text("role", new_user.role, required=False)
        _check_text("password", new_user.password, required=False)
        _check_settings(new_user.settings)
        if new_user.role is not None:
            body["role"] = new_user.role
        if new_user.password is not None:
            body["password"] = new_user.password
        if new_user.settings is not None:
            body["settings"] = dict(new_user.settings)
        return Request("POST", ("api", "v1", "users"), json=body)

    def update_request(self, user_id: str, changes: UserChanges) -> Request:
        """``PUT /api/v1/users/{user_id}`` with only the fields that were set."""
        if not isinstance(changes, UserChanges):
            raise InvalidArgumentError(
                "update_user takes a userdir.UserChanges", provider=self.name
            )
        body = changes.fields_set()
        if not body:
            raise InvalidArgumentError("UserChanges sets no field", provider=self.name)
        if "email" in body:
            body["email"] = check_email(self.name, body["email"])
        for key in ("name", "role", "password"):
            if key in body:
                _check_text(key, body[key])
        if "status" in body and body["status"] not in STATUSES:
            raise InvalidArgumentError(
                f"status must be one of {', '.join(STATUSES)}, got {body['status']!r}",
                provider=self.name,
            )
        if "settings" in body:
            _check_settings(body["settings"])
            body["settings"] = dict(body["settings"])
        return Request("PUT", ("api", "v1", "users", check_id(self.name, user_id)), json=body)

    def delete_request(self, user_id: str) -> Request:
        """``DELETE /api/v1/users/{user_id}``."""
        return Request("DELETE", ("api", "v1", "users", check_id(self.name, user_id)))
