"""A minimal dialect made for the engine and pagination tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from userdir import Capabilities, DirectoryUser, NewUser
from userdir.providers import CursorPaging, Dialect, ListPage, Reply, Request, check_id

BASE = "https://dummy.test"


@attrs.define(repr=False)
class DummyDialect(Dialect):
    """Cursor pages at /users, one user at /users/{id}, POST /users creates."""

    name: ClassVar[str] = "dummy"
    capabilities: ClassVar[Capabilities] = Capabilities(create_user=True, paging="cursor")
    paging: ClassVar[CursorPaging] = CursorPaging()

    token: str = attrs.field(kw_only=True)
    base_url: str = attrs.field(default=BASE, kw_only=True)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def list_request(
        self, position: str | None, page_size: int, filters: Mapping[str, str]
    ) -> Request:
        params = [("limit", str(page_size))]
        if position:
            params.append(("cursor", position))
        return Request("GET", ("users",), tuple(params))

    def parse_page(self, body: Any, reply: Reply | None = None) -> ListPage:
        return ListPage(body["users"], body["has_more"], body.get("next"))

    @staticmethod
    def parse_item(payload: Any, what: str = "user") -> DirectoryUser:
        return DirectoryUser(id=payload["id"], provider="dummy", email=payload.get("email"))

    def get_request(self, user_id: str) -> Request:
        return Request("GET", ("users", check_id(self.name, user_id)))

    def parse_user(self, body: Any, reply: Reply | None = None) -> DirectoryUser:
        return self.parse_item(body)

    def create_request(self, new_user: NewUser) -> Request:
        return Request("POST", ("users",), json={"email": new_user.email, "name": new_user.name})


def page(ids: list[str], next_cursor: str | None = None) -> dict[str, Any]:
    """A dummy list answer."""
    return {
        "users": [{"id": i, "email": f"{i}@example.com"} for i in ids],
        "has_more": next_cursor is not None,
        "next": next_cursor,
    }
