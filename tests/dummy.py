"""A minimal dialect made for the engine and pagination tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from userdir import Capabilities, DirectoryUser, NewUser
from userdir._http import Request
from userdir.providers import Dialect, ListPage
from userdir.providers._base import check_id

BASE = "https://dummy.test"


@attrs.define(repr=False)
class DummyDialect(Dialect):
    """Cursor pages at /users, one user at /users/{id}, POST /users creates."""

    name: ClassVar[str] = "dummy"
    capabilities: ClassVar[Capabilities] = Capabilities(create_user=True, paging="cursor")
    paging = "cursor"

    token: str = attrs.field(kw_only=True)
    base_url: str = attrs.field(default=BASE, kw_only=True)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def list_request(
        self, cursor: str | None, page_size: int, filters: Mapping[str, str]
    ) -> Request:
        params = [("limit", str(page_size))]
        if cursor:
            params.append(("cursor", cursor))
        return Request("GET", ("users",), tuple(params))

    def parse_list(self, body: Any) -> ListPage:
        users = [self._user(u) for u in body["users"]]
        return ListPage(users, body["has_more"], body.get("next"))

    def get_request(self, user_id: str) -> Request:
        return Request("GET", ("users", check_id(self.name, user_id)))

    def parse_user(self, body: Any) -> DirectoryUser:
        return self._user(body)

    def create_request(self, new_user: NewUser) -> Request:
        return Request("POST", ("users",), json={"email": new_user.email, "name": new_user.name})

    def _user(self, data: dict[str, Any]) -> DirectoryUser:
        return DirectoryUser(id=data["id"], provider=self.name, email=data.get("email"))


def page(ids: list[str], next_cursor: str | None = None) -> dict[str, Any]:
    """A dummy list answer."""
    return {
        "users": [{"id": i, "email": f"{i}@example.com"} for i in ids],
        "has_more": next_cursor is not None,
        "next": next_cursor,
    }
