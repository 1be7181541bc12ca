"""The provider extension API on the wire: offsets, lookups, headers, idempotency, links.

Uses the test-only ``roster`` provider (tests/roster.py) where a service is needed, and
small dialects on pytest-httpx for next links. Sync and async.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs
import httpx
import pytest
from pytest_httpx import HTTPXMock

import userdir
from userdir import Capabilities, DirectoryUser, UserChanges
from userdir.providers import (
    Dialect,
    Fields,
    ListPage,
    NextLinkPaging,
    OffsetPaging,
    Reply,
    Request,
    next_link,
)
from userdir.testing import Fault

from .roster import PAGE_CAP, PROVIDER, RosterEmulator


def roster(users: int = 0) -> RosterEmulator:
    emu = PROVIDER.make(users)
    assert isinstance(emu, RosterEmulator)
    return emu


def test_offsets_step_by_what_the_server_returned(connect: Callable[..., Any]) -> None:
    emu = roster(30)
    d = connect("roster", **emu.connect_options())
    ids = [u.id for u in d.iter_users(page_size=20)]  # asks 20, gets 7 per page
    assert ids == [u["id"] for u in emu.users]
    offsets = [int(r.params["offset"]) for r in emu.requests]
    assert offsets[0] == 0
    assert sorted(offsets) == list(range(0, 30, PAGE_CAP))  # never an offset past the total


def test_list_page_cursor_is_the_next_offset(connect: Callable[..., Any]) -> None:
    emu = roster(10)
    d = connect("roster", **emu.connect_options())
    first = d.list_page(page_size=50)
    assert len(first.users) == PAGE_CAP
    assert first.next_cursor == str(PAGE_CAP)
    second = d.list_page(first.next_cursor, page_size=50)
    assert [u.id for u in first.users + second.users] == [u["id"] for u in emu.users]
    assert second.next_cursor is None


def test_a_lookup_finding_two_users_is_a_typed_error(connect: Callable[..., Any]) -> None:
    emu = roster(3)
    twin = emu.add_user(email="twin@roster.example", display_name="One")
    # a second account with the same email, as a service without unique emails holds it
    with emu._lock:
        emu._users["p99999"] = {**emu._users[twin], "id": "p99999", "email": "TWIN@roster.example"}
        emu._order.append("p99999")
    d = connect("roster", **emu.connect_options())
    with pytest.raises(userdir.DuplicateEmailError) as info:
        d.find_user_by_email("twin@roster.example")
    assert info.value.count == 2
    assert "2 users" in str(info.value)
    assert isinstance(info.value, userdir.DirectoryError)


def test_a_lookup_finding_nobody_is_none(connect: Callable[..., Any]) -> None:
    emu = roster(3)
    d = connect("roster", **emu.connect_options())
    email = emu.email_of(emu.users[1])
    assert email is not None
    found = d.find_users_by_email([email.upper(), "nobody@roster.example"])
    assert [u and u.id for u in found.values()] == [emu.users[1]["id"], None]


def test_request_headers_go_out_and_reply_headers_come_back(connect: Callable[..., Any]) -> None:
    emu = roster(2)
    user_id = emu.users[0]["id"]
    d = connect("roster", **emu.connect_options())
    assert d.get_user(user_id).extra["etag"] == '"v1"'
    updated = d.update_user(user_id, UserChanges(name="New Name"))
    assert updated.name == "New Name"
    assert updated.extra["etag"] == '"v2"'  # read off the answer's ETag header
    patch = [r for r in emu.requests if r.method == "PATCH"]
    assert patch[0].headers["if-match"] == "*"
    assert patch[0].json == {"display_name": "New Name"}


@pytest.mark.parametrize("fault", [Fault.drop_after_processing(), Fault.status(503)])
def test_patch_is_never_retried_once_sent(connect: Callable[..., Any], fault: Fault) -> None:
    emu = roster(1)
    user_id = emu.users[0]["id"]
    d = connect("roster", **emu.connect_options())
    emu.inject(fault, times=1)  # a retry would succeed: prove none is made
    with pytest.raises(userdir.DirectoryError):
        d.update_user(user_id, UserChanges(name="Twice?"))
    assert [r.method for r in emu.requests] == ["PATCH"]


def test_idempotency_is_stated_by_the_request() -> None:
    assert not Request("PATCH", ("x",)).idempotent
    assert not Request("POST", ("x",)).idempotent
    assert Request("PUT", ("x",)).idempotent
    assert Request("POST", ("search",), idempotent=True).idempotent


# -- next links -----------------------------------------------------------------------------

LINKED = "https://linked.test"
F = Fields("linked")


@attrs.define(repr=False)
class LinkedDialect(Dialect):
    """Pages chained by ``Link: <...>; rel="next"`` headers."""

    name: ClassVar[str] = "linked"
    capabilities: ClassVar[Capabilities] = Capabilities(paging="next_link")
    paging: ClassVar[NextLinkPaging] = NextLinkPaging()
    base_url: str = LINKED

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer linked-token"}

    def list_request(self, position: Any, page_size: int, filters: Mapping[str, str]) -> Request:
        if position is None:
            return Request("GET", ("users",), (("limit", str(page_size)),))
        return Request("GET", url=position)

    @staticmethod
    def parse_item(payload: Any, what: str = "user") -> DirectoryUser:
        d = F.object(payload, what)
        return DirectoryUser(id=F.id(d, what), provider="linked")

    def parse_page(self, body: Any, reply: Reply | None = None) -> ListPage:
        link = next_link(reply.headers) if reply is not None else None
        return ListPage(F.list(body, "list answer"), link is not None, link)


@pytest.fixture
def linked() -> Any:
    userdir.register_provider("linked", LinkedDialect, replace=True)
    return None


def test_next_links_are_followed_from_the_link_header(
    connect: Callable[..., Any], httpx_mock: HTTPXMock, linked: None
) -> None:
    httpx_mock.add_response(
        url=f"{LINKED}/users?limit=100",
        json=[{"id": "a"}],
        headers={"Link": f'<{LINKED}/users?after=a&limit=100>; rel="next"'},
    )
    httpx_mock.add_response(
        url=f"{LINKED}/users?after=a&limit=100",
        json=[{"id": "b"}],
        headers={"Link": '</users?after=b&limit=100>; rel="next", </users>; rel="first"'},
    )
    httpx_mock.add_response(url=f"{LINKED}/users?after=b&limit=100", json=[{"id": "c"}])
    assert [u.id for u in connect("linked").iter_users()] == ["a", "b", "c"]
    assert all(
        r.headers["authorization"] == "Bearer linked-token" for r in httpx_mock.get_requests()
    )


def test_a_next_link_to_another_origin_is_refused(
    connect: Callable[..., Any], httpx_mock: HTTPXMock, linked: None
) -> None:
    httpx_mock.add_response(
        url=f"{LINKED}/users?limit=100",
        json=[{"id": "a"}],
        headers={"Link": '<https://evil.test/steal>; rel="next"'},
    )
    with pytest.raises(userdir.MalformedResponseError, match="another origin"):
        list(connect("linked").iter_users())
    assert len(httpx_mock.get_requests()) == 1  # the token never went to evil.test


def test_next_link_reads_rfc_8288() -> None:
    assert next_link({"link": '<https://a.test/p2>; rel="next"'}) == "https://a.test/p2"
    assert next_link(
        {"link": '<https://a.test/p1>; rel="prev", <https://a.test/p3>; rel=next'}
    ) == ("https://a.test/p3")
    assert next_link({"link": '<https://a.test/p1>; rel="prev"'}) is None
    assert next_link({}) is None


# -- the blocking walk's threads ---------------------------------------------------------------


def walk_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("userdir-")]


def settle(deadline: float = 5.0) -> list[threading.Thread]:
    """The walk threads left once in-flight requests had time to end."""
    end = time.monotonic() + deadline
    while walk_threads() and time.monotonic() < end:
        time.sleep(0.01)
    return walk_threads()


@pytest.mark.parametrize("how", ["ends", "abandoned", "closed"])
def test_a_walk_uses_at_most_concurrency_threads_and_leaves_none(how: str) -> None:
    emu = PROVIDER.make(200, latency=0.002)
    seen: list[int] = []

    def count(request: httpx.Request) -> httpx.Response:
        seen.append(len(walk_threads()))
        return emu.transport.handle_request(request)

    options = emu.connect_options()
    options["transport"] = httpx.MockTransport(count)
    d = userdir.connect("roster", concurrency=3, **options)
    users = d.iter_users()
    taken = [next(users) for _ in range(20)]
    if how == "ends":
        taken.extend(users)
        assert len(taken) == 200
    elif how == "abandoned":
        del users
    else:
        d.close()
    assert max(seen) <= 3
    assert settle() == []
    d.close()


# -- the 0.1 provider contract still works, with a DeprecationWarning -----------------------


@attrs.define(repr=False)
class OldStyleDialect(Dialect):
    """A dialect written for 0.1: paging as a string, parse_list, map_error(status, ...)."""

    name: ClassVar[str] = "oldstyle"
    capabilities: ClassVar[Capabilities] = Capabilities(paging="pages_has_more")
    paging = "pages_has_more"  # type: ignore[assignment]
    first_page = 0
    base_url: str = "https://old.test"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer old-token"}

    def list_request(self, cursor: Any, page_size: int, filters: Mapping[str, str]) -> Request:
        assert isinstance(cursor, str)  # 0.1 dialects got page numbers as text
        return Request("GET", ("people",), (("page", cursor),))

    def parse_list(self, body: Any) -> ListPage:
        users = [DirectoryUser(id=u, provider="oldstyle") for u in body["ids"]]
        return ListPage(users, body["more"])

    def get_request(self, user_id: str) -> Request:
        return Request("GET", ("people", user_id))

    def parse_user(self, body: Any) -> DirectoryUser:  # type: ignore[override]
        return DirectoryUser(id=body["id"], provider="oldstyle")

    def map_error(self, status: Any, headers: Any, body: Any) -> userdir.APIError:  # type: ignore[override]
        return userdir.UserNotFoundError(f"old style {status}", provider="oldstyle")


def test_a_0_1_dialect_still_works_and_is_told_to_move(
    connect: Callable[..., Any], httpx_mock: HTTPXMock
) -> None:
    userdir.register_provider("oldstyle", OldStyleDialect, replace=True)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/people/x":
            return httpx.Response(410, json={})
        page = int(request.url.params["page"])
        ids = {0: ["a"], 1: ["b"]}.get(page, [])
        return httpx.Response(200, json={"ids": ids, "more": page < 1})

    httpx_mock.add_callback(answer, is_reusable=True)
    with pytest.warns(DeprecationWarning, match="0.1 provider contract") as caught:
        d = connect("oldstyle")
    said = " ".join(str(w.message) for w in caught)
    assert "paging = 'pages_has_more'" in said
    assert "parse_list" in said
    assert "map_error(status, headers, body)" in said
    assert [u.id for u in d.iter_users()] == ["a", "b"]
    # has_more only: at most concurrency - 1 (default 4) requests past the last page
    assert len(httpx_mock.get_requests()) <= 2 + 3
    with pytest.raises(userdir.UserNotFoundError, match="old style 410"):
        d.get_user("x")


def test_the_provider_modules_import_no_engine() -> None:
    import ast
    from pathlib import Path

    import userdir.providers

    folder = Path(userdir.providers.__file__).parent
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            else:
                continue
            for name in names:
                assert not name.startswith(("httpx", "stamina", "userdir._http")), path.name
                assert name not in ("userdir.directory", "..directory", ".._http"), path.name


# -- discovery: capabilities the service announces, read once before they are needed -----


@attrs.define(repr=False, slots=False)  # discover() sets the instance's capabilities
class DiscoveringDialect(Dialect):
    """Learns from ``GET /config`` whether it may filter by email and its page cap."""

    name: ClassVar[str] = "discovering"
    capabilities: ClassVar[Capabilities] = Capabilities(paging="offset", max_page_size=100)
    paging: ClassVar[OffsetPaging] = OffsetPaging(start=1)
    base_url: str = "https://disco.test"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer disco"}

    def discovery_request(self) -> Request | None:
        return Request("GET", ("config",))

    def discover(self, body: Any, reply: Reply | None = None) -> None:
        self.capabilities = Capabilities(  # type: ignore[misc]
            paging="offset",
            max_page_size=body["maxResults"],
            email_lookup="native" if body["filter"] else "scan",
        )

    def list_request(self, position: Any, page_size: int, filters: Mapping[str, str]) -> Request:
        return Request(
            "GET", ("Users",), (("startIndex", str(position)), ("count", str(page_size)))
        )

    @staticmethod
    def parse_item(payload: Any, what: str = "user") -> DirectoryUser:
        d = F.object(payload, what)
        return DirectoryUser(
            id=F.id(d, what), provider="discovering", email=F.opt_str(d, "email", what)
        )

    def parse_page(self, body: Any, reply: Reply | None = None) -> ListPage:
        return ListPage(body["Resources"], total_items=body["totalResults"])

    def email_request(self, email: str) -> Request:
        return Request("GET", ("Users",), (("filter", f'emails eq "{email}"'),))

    def parse_lookup(self, body: Any, reply: Reply | None = None) -> list[DirectoryUser]:
        return self.map_items(self.parse_page(body, reply))


def test_discovery_is_asked_once_before_the_calls_that_need_it(
    connect: Callable[..., Any], httpx_mock: HTTPXMock
) -> None:
    userdir.register_provider("discovering", DiscoveringDialect, replace=True)
    people = [{"id": f"u{i}", "email": f"u{i}@disco.test"} for i in range(1, 6)]

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/config":
            return httpx.Response(200, json={"maxResults": 2, "filter": True})
        if "filter" in request.url.params:
            found = [p for p in people if p["email"] in request.url.params["filter"]]
            return httpx.Response(200, json={"Resources": found, "totalResults": len(found)})
        start, count = int(request.url.params["startIndex"]), int(request.url.params["count"])
        return httpx.Response(
            200, json={"Resources": people[start - 1 : start - 1 + count], "totalResults": 5}
        )

    httpx_mock.add_callback(answer, is_reusable=True)
    d = connect("discovering")
    assert [u.id for u in d.iter_users()] == ["u1", "u2", "u3", "u4", "u5"]
    assert d.find_user_by_email("u4@disco.test").id == "u4"  # native: the config said so
    paths = [(r.url.path, r.url.params.get("count")) for r in httpx_mock.get_requests()]
    assert [p for p, _ in paths].count("/config") == 1
    # the first page guessed alongside the config (count=100) was not the walk's: every
    # page after it uses the announced cap
    pages = [c for p, c in paths if p == "/Users" and c]
    assert pages.count("100") <= 1  # the guess, sent only if the config let it go first
    assert set(pages) - {"100"} == {"2"}
    assert paths[-1][0] == "/Users"  # the lookup was one filtered request, not a scan
