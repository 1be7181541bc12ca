"""A provider written only for the tests, in one file: the dialect and its emulator.

"Roster" pages by item offset (0-based ``offset``/``limit``, with a ``total``) and caps
every page at 7 users whatever ``limit`` asks; its email lookup is a filter answering a
list; PATCH changes a user under ``If-Match`` and every user answer carries an ETag.
Added to ``tests/providers.py``, it gets the generic suite.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from userdir import Capabilities, DirectoryUser, UserChanges, UserStatus
from userdir.providers import (
    Dialect,
    Fields,
    ListPage,
    OffsetPaging,
    Reply,
    Request,
    check_email,
    check_id,
)
from userdir.testing import Emulator, TestedProvider
from userdir.testing._base import (  # the emulators' shared helpers
    EmailKeyedStore,
    bearer_ok,
    json_reply,
    parse_int,
)
from userdir.testing._base import Reply as Answer

PAGE_CAP = 7
F = Fields("roster")


def parse_person(payload: Any, what: str = "user") -> DirectoryUser:
    """One roster person: ``{"id", "email", "display_name", "active"}``."""
    d = F.object(payload, what)
    active = F.opt_bool(d, "active", what)
    return DirectoryUser(
        id=F.id(d, what),
        provider="roster",
        email=F.opt_str(d, "email", what),
        name=F.opt_str(d, "display_name", what),
        status=UserStatus.UNKNOWN
        if active is None
        else UserStatus("active" if active else "inactive"),
        raw=d,
    )


@attrs.define(repr=False)
class RosterDialect(Dialect):
    """The roster service: ``Authorization: Bearer <token>``, ``/v2/people``."""

    name: ClassVar[str] = "roster"
    capabilities: ClassVar[Capabilities] = Capabilities(
        email_lookup="native", update_user=True, paging="offset", max_page_size=100
    )
    paging: ClassVar[OffsetPaging] = OffsetPaging(start=0)
    items_key = "people"

    token: str = attrs.field(kw_only=True)
    base_url: str = attrs.field(kw_only=True)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def list_request(self, position: int, page_size: int, filters: Mapping[str, str]) -> Request:
        return Request(
            "GET", ("v2", "people"), (("offset", str(position)), ("limit", str(page_size)))
        )

    parse_item = staticmethod(parse_person)

    def parse_page(self, body: Any, reply: Reply | None = None) -> ListPage:
        data = F.object(body, "list answer")
        total = F.opt_int(data, "total", "list answer")
        return ListPage(F.list(data.get("people"), "list answer.people"), total_items=total)

    def get_request(self, user_id: str) -> Request:
        return Request("GET", ("v2", "people", check_id(self.name, user_id)))

    def parse_user(self, body: Any, reply: Reply | None = None) -> DirectoryUser:
        user = parse_person(body)
        etag = reply.headers.get("etag") if reply is not None else None
        return attrs.evolve(user, extra={"etag": etag}) if etag else user

    def email_request(self, email: str) -> Request:
        return Request("GET", ("v2", "people"), (("email", check_email(self.name, email)),))

    def parse_lookup(self, body: Any, reply: Reply | None = None) -> list[DirectoryUser]:
        return self.map_items(self.parse_page(body, reply))

    def update_request(self, user_id: str, changes: UserChanges) -> Request:
        fields = changes.fields_set() if isinstance(changes, UserChanges) else {}
        body = {k: v for k, v in {"display_name": fields.get("name")}.items() if v is not None}
        if "status" in fields:
            body["active"] = fields["status"] == "active"
        if not body:
            raise self.unsupported("update_user of fields other than name and status")
        return Request(
            "PATCH",
            ("v2", "people", check_id(self.name, user_id)),
            json=body,
            headers={"If-Match": "*"},
        )


class RosterEmulator(EmailKeyedStore, Emulator):
    """The roster service in memory (see the module docstring)."""

    service = "roster"

    def __init__(self, token: str = "test-token", *, latency: float = 0.0) -> None:
        Emulator.__init__(self, latency=latency)
        self.token = token
        EmailKeyedStore.__init__(self)
        self.versions: dict[str, int] = {}

    def add_user(self, *, email: str, display_name: str, active: bool = True) -> str:
        """Add a person directly (no request); returns the id."""
        with self._lock:
            return self._add(email, display_name, active)

    def _add(self, email: str, display_name: str, active: bool) -> str:
        user_id = f"p{len(self.versions) + 1:05d}"
        self.versions[user_id] = 1
        return self._store(
            {"id": user_id, "email": email, "display_name": display_name, "active": active}
        )

    def _populate(self, rng: random.Random, first: int, n: int) -> list[str]:
        return [
            self._add(f"person{i}@roster.example", f"Person {i}", rng.random() < 0.8)
            for i in range(first, first + n)
        ]

    def _error(self, status: int, code: str, message: str) -> Answer:
        return json_reply(status, {"error": {"code": code, "message": message}})

    def _fault_status_reply(self, code: int) -> Answer:
        return self._error(code, "error", f"HTTP {code}")

    def _rate_limited_reply(self) -> Answer:
        return self._error(429, "rate_limited", "slow down")

    def _user(self, user_id: str, status: int = 200) -> Answer:
        etag = (("ETag", f'"v{self.versions[user_id]}"'),)
        return json_reply(status, self._users[user_id], etag)

    def _respond(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Answer:
        if not bearer_ok(headers, self.token):
            return self._error(401, "unauthorized", "who are you")
        if path == "/v2/people" and method == "GET":
            if "email" in params:
                found = [
                    u for u in self._listed_users() if u["email"].lower() == params["email"].lower()
                ]
                return json_reply(200, {"people": found, "total": len(found)})
            offset, limit = (
                parse_int(params.get("offset", "0")),
                parse_int(params.get("limit", "10")),
            )
            if offset is None or offset < 0 or limit is None or not 1 <= limit <= 100:
                return self._error(400, "bad_request", "offset >= 0 and limit 1..100")
            chosen = self._order[offset : offset + min(limit, PAGE_CAP)]
            return json_reply(
                200, {"people": [self._users[i] for i in chosen], "total": len(self._order)}
            )
        user_id = path.removeprefix("/v2/people/")
        if not path.startswith("/v2/people/") or user_id not in self._users:
            return self._error(404, "not_found", "no such person")
        if method == "GET":
            return self._user(user_id)
        if method == "PATCH":
            if headers.get("if-match") not in ("*", f'"v{self.versions[user_id]}"'):
                return self._error(412, "precondition_failed", "changed meanwhile")
            self._users[user_id].update(json.loads(body))
            self.versions[user_id] += 1
            return self._user(user_id)
        return self._error(405, "method_not_allowed", "no")

    def _remove(self, user_id: str) -> bool:
        self.versions.pop(user_id, None)
        return EmailKeyedStore._remove(self, user_id)


def users_payload(emu: RosterEmulator) -> list[dict[str, Any]]:
    """The listed payloads (for tests that look at the raw data)."""
    return [dict(MappingProxyType(u)) for u in emu.users]


PROVIDER = TestedProvider("roster", RosterEmulator, RosterDialect)
