"""The generic REST service: ``/api/v1/users`` CRUD, 1-based pages with totals, filters.

Pure: builds requests and parses answers; the directories do the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from .._secrets import check_credential
from ..errors import InvalidArgumentError
from ..models import _EMPTY, Capabilities, DirectoryUser, NewUser, UserChanges, UserStatus
from ._base import UNKNOWN_STATUS, Dialect, check_email, check_id
from ._fields import STR_OR_NONE, Fields, checked_id
from ._paging import ListPage, PageNumberPaging
from ._wire import Reply, Request

__all__ = ["RestDialect"]

STATUSES = {s.value: s for s in (UserStatus.ACTIVE, UserStatus.INACTIVE, UserStatus.PENDING)}
# what each status value maps to, None (not sent) included; anything else is UNKNOWN
_STATUS_OF: dict[str | None, UserStatus] = {None: UserStatus.UNKNOWN, **STATUSES}

F = Fields("rest")
opt_strs, opt_time = F.opt_strs, F.opt_time
_STRINGS = ("email", "name", "role", "status")


def parse_user(payload: Any, what: str = "user") -> DirectoryUser:
    """Map one REST user object (the one mapping path)."""
    d = payload
    user_id = checked_id(F, d, what)
    get = d.get
    email, name, role, status = get("email"), get("name"), get("role"), get("status")
    if not (
        isinstance(email, STR_OR_NONE)
        and isinstance(name, STR_OR_NONE)
        and isinstance(role, STR_OR_NONE)
        and isinstance(status, STR_OR_NONE)
    ):
        opt_strs(d, _STRINGS, what)  # raises, naming the field
    settings = F.opt_object(d, "settings", what) if "settings" in d else None
    known = _STATUS_OF.get(status)
    extra: Mapping[str, Any] = _EMPTY
    if known is None or settings is not None:
        values: dict[str, Any] = {}
        if known is None:
            values["status"] = status
        if settings is not None:
            values["settings"] = settings
        extra = MappingProxyType(values)
    return DirectoryUser._trusted(
        {
            "id": user_id,
            "provider": "rest",
            "email": email,
            "name": name,
            "role": role,
            "status": known or UNKNOWN_STATUS,
            "created_at": opt_time(d, "created_at", what),
            "updated_at": opt_time(d, "updated_at", what),
            "last_login_at": opt_time(d, "last_login", what),
            "extra": extra,
            "raw": MappingProxyType(d),
        }
    )


def _check_text(name: str, value: object, *, required: bool = True) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{name} must be a non-empty string", provider="rest")


def _no_external_id(value: object) -> None:
    if value is not None:  # the directories refuse it first (Capabilities.external_id)
        raise InvalidArgumentError("external_id: REST keeps no external id", provider="rest")


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
    paging: ClassVar[PageNumberPaging] = PageNumberPaging(first=1, totals=True)
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

    def list_request(self, position: int, page_size: int, filters: Mapping[str, str]) -> Request:
        """``GET /api/v1/users?page=&limit=&status=&role=`` (the first page is 1)."""
        params = [("page", str(position)), ("limit", str(page_size))]
        params.extend((key, filters[key]) for key in ("status", "role") if key in filters)
        return Request("GET", ("api", "v1", "users"), tuple(params))

    parse_item = staticmethod(parse_user)

    def parse_page(self, body: Any, reply: Reply | None = None) -> ListPage:
        """Check ``{"data": [...], "meta": {"total", "page", "limit", "pages"}}``."""
        data = F.object(body, "list answer")
        items = F.list(data.get("data"), "list answer.data")
        meta = F.object(data.get("meta"), "list answer.meta")
        page, pages = meta.get("page"), meta.get("pages")
        for key, value in (("page", page), ("pages", pages)):
            if type(value) is not int or value < 0:
                raise self.malformed(f"list answer.meta.{key}: expected a non-negative integer")
        assert isinstance(page, int)
        assert isinstance(pages, int)
        total = meta.get("total")
        if total is not None and (type(total) is not int or total < 0):
            raise self.malformed("list answer.meta.total: expected a non-negative integer")
        return ListPage(items, page < pages, None, pages, total_items=total)

    def get_request(self, user_id: str) -> Request:
        """``GET /api/v1/users/{user_id}``."""
        return Request("GET", ("api", "v1", "users", check_id(self.name, user_id)))

    def parse_user(self, body: Any, reply: Reply | None = None) -> DirectoryUser:
        """Parse ``{"data": {...}}``."""
        data = F.object(body, "user answer")
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
        _no_external_id(new_user.external_id)
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
        _no_external_id(body.get("external_id"))
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
