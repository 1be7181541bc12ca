"""Paging and writes against a hostile or busy service (issue 13).

Cursor walks that keep bringing users already yielded stop, and never yield an id
twice; a 3xx is never success; a DELETE whose lost answer is retried and answered 404
succeeded; PATCH is never repeated once sent; REST page walks re-read the pages that
may have moved when ``meta.total`` changes, so no user present throughout is lost.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpx import HTTPXMock

import userdir
from userdir import DirectoryUser, NewUser, UserChanges
from userdir._http import AsyncEngine, SyncEngine
from userdir._walk import MAX_STALLED_PAGES, Walk
from userdir.providers import Dialect, ListPage, PageNumberPaging, Reply, Request
from userdir.providers._paging import MAX_REREAD_RESTARTS
from userdir.providers.rest import RestDialect
from userdir.testing import Fault, RestEmulator

from .concurrency import slow
from .conftest import API_KEY, REST_TOKEN, TOKEN
from .test_notion import listing as notion_listing
from .test_notion import person, uid

# -- cursor walks: pages of users already yielded --------------------------------------


def notion_pages(pages: list[list[int]], *, forever: list[int] | None = None) -> Any:
    """Cursor ``c<n>`` answers ``pages[n]``; past them, ``forever`` under ever new cursors.

    Requests past 60 end the walk, so code without the guard fails instead of hanging.
    """

    def answer(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("start_cursor")
        n = 0 if cursor is None else int(cursor[1:])
        users = pages[n] if n < len(pages) else (forever or [])
        more = n + 1 < len(pages) or (forever is not None and n < 60)
        body = notion_listing([person(uid(i), None) for i in users], f"c{n + 1}" if more else None)
        return httpx.Response(200, json=body)

    return answer


@pytest.mark.parametrize("speed", ["quick", "slow"])  # slow: the sync walk's worker thread
def test_cursor_pages_of_known_users_under_new_cursors_stop(
    connect: Any, mode: str, httpx_mock: HTTPXMock, speed: str
) -> None:
    answer = notion_pages([[1, 2]], forever=[2, 1])
    httpx_mock.add_callback(
        slow(answer, mode, 0.005) if speed == "slow" else answer, is_reusable=True
    )
    with pytest.raises(userdir.MalformedResponseError, match="does not advance") as caught:
        list(connect("notion", token=TOKEN).iter_users(page_size=2))
    assert "no new user" in str(caught.value)
    # the first page and the stalled pages: a handful, never the 60 on offer
    assert len(httpx_mock.get_requests()) <= 1 + MAX_STALLED_PAGES + 3


@pytest.mark.parametrize("speed", ["quick", "slow"])
def test_cursor_walk_never_yields_an_id_twice(
    connect: Any, mode: str, httpx_mock: HTTPXMock, speed: str
) -> None:
    pages = [[1, 2], [2, 3], [3, 1, 4], [4, 5], [5, 6], [6, 7], [1, 7, 8], [8, 9]]
    answer = notion_pages(pages)
    httpx_mock.add_callback(
        slow(answer, mode, 0.005) if speed == "slow" else answer, is_reusable=True
    )
    ids = [u.id for u in connect("notion", token=TOKEN).iter_users(page_size=3)]
    assert ids == [uid(i) for i in range(1, 10)]


def test_cursor_walk_tolerates_a_few_pages_of_known_users(
    connect: Any, httpx_mock: HTTPXMock
) -> None:
    pages = [[1], [1], [1], [2]]  # two pages in a row without news: under the limit
    httpx_mock.add_callback(notion_pages(pages), is_reusable=True)
    ids = [u.id for u in connect("notion", token=TOKEN).iter_users(page_size=1)]
    assert ids == [uid(1), uid(2)]


# -- 3xx answers are never success ------------------------------------------------------

SECRET_LOCATION = "https://someone:hunter2@login.example/sso/start?token=QSECRET#frag"
OPERATIONS: dict[str, Callable[[Any], Any]] = {
    "list": lambda d: list(d.iter_users()),
    "get": lambda d: d.get_user(uid(1) if d.provider == "notion" else "u1"),
    "lookup": lambda d: d.find_user_by_email("a@example.com"),
    "me": lambda d: d.me(),
    "create": lambda d: d.create_user(NewUser(email="a@example.com", name="A", password="pw-1")),
    "update": lambda d: d.update_user("u1", UserChanges(name="B")),
    "delete": lambda d: d.delete_user("u1"),
}
SUPPORTED = [
    ("notion", "list"),
    ("notion", "get"),
    ("notion", "me"),
    ("org_api", "list"),
    ("org_api", "get"),
    ("org_api", "lookup"),
    ("rest", "list"),
    ("rest", "get"),
    ("rest", "create"),
    ("rest", "update"),
    ("rest", "delete"),
]


def provider_options(provider: str) -> dict[str, Any]:
    if provider == "notion":
        return {"token": TOKEN}
    if provider == "org_api":
        return {"api_key": API_KEY, "base_url": "https://org.test"}
    return {"token": REST_TOKEN, "base_url": "https://rest.test"}


@pytest.mark.parametrize(("provider", "operation"), SUPPORTED)
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_an_error_naming_status_and_bare_location(
    connect: Any, httpx_mock: HTTPXMock, provider: str, operation: str, status: int
) -> None:
    httpx_mock.add_response(status_code=status, headers={"Location": SECRET_LOCATION}, json={})
    directory = connect(provider, **provider_options(provider))
    with pytest.raises(userdir.RedirectError) as caught:
        OPERATIONS[operation](directory)
    error = caught.value
    assert isinstance(error, userdir.APIError)
    assert error.status_code == status
    assert error.location == "https://login.example/sso/start"
    text = f"{error} {error!r}"
    assert f"HTTP {status}" in text
    assert "https://login.example/sso/start" in text
    for secret in ("QSECRET", "hunter2", "someone", "frag"):
        assert secret not in text
    assert len(httpx_mock.get_requests()) == 1  # neither followed nor retried


def test_a_relative_or_missing_location_is_shown_as_such(
    connect: Any, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=303, headers={"Location": "/v2/users?key=abc"})
    httpx_mock.add_response(status_code=304)
    directory = connect("rest", **provider_options("rest"))
    with pytest.raises(userdir.RedirectError, match="'/v2/users'") as caught:
        directory.get_user("u1")
    assert caught.value.location == "/v2/users"
    assert "abc" not in str(caught.value)
    with pytest.raises(userdir.RedirectError, match="without a Location") as caught:
        directory.delete_user("u1")
    assert caught.value.location is None
    assert caught.value.status_code == 304


# -- DELETE whose answer was lost; PATCH is never repeated --------------------------------


def rest_with(emu: RestEmulator, connect: Any) -> Any:
    return connect("rest", token=emu.token, base_url="https://rest.test", transport=emu.transport)


@pytest.mark.parametrize("lost", ["drop_after_processing", "timeout_after_processing"])
def test_a_delete_retried_after_its_lost_answer_succeeds(connect: Any, lost: str) -> None:
    emu = RestEmulator()
    victim, other = emu.populate(2)
    emu.inject(getattr(Fault, lost)(), times=1)
    rest_with(emu, connect).delete_user(victim)
    assert [u["id"] for u in emu.users] == [other]
    statuses = [(r.method, r.status, r.fault) for r in emu.requests]
    assert statuses == [("DELETE", None, lost), ("DELETE", 404, None)]


def test_a_delete_answered_404_at_once_is_user_not_found(connect: Any) -> None:
    emu = RestEmulator()
    emu.populate(1)
    with pytest.raises(userdir.UserNotFoundError):
        rest_with(emu, connect).delete_user("usr_999999")
    assert len(emu.requests) == 1


def test_a_404_after_a_retried_server_error_also_means_gone(connect: Any) -> None:
    # the 503 may come from a gateway after the service applied the delete
    emu = RestEmulator()
    emu.inject(Fault.status(503), times=1)
    rest_with(emu, connect).delete_user("usr_999999")
    assert [r.status for r in emu.requests] == [503, 404]


def test_a_put_retried_and_answered_404_is_still_user_not_found(connect: Any) -> None:
    emu = RestEmulator()
    emu.inject(Fault.drop(), times=1)
    with pytest.raises(userdir.UserNotFoundError):
        rest_with(emu, connect).update_user("usr_999999", UserChanges(name="B"))
    assert [r.status for r in emu.requests] == [None, 404]


@pytest.mark.parametrize("failure", ["read_timeout", "503"])
def test_patch_is_never_sent_twice(mode: str, failure: str) -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        if failure == "503":
            return httpx.Response(503, json={"error": {"message": "busy"}})
        raise httpx.ReadTimeout("timed out", request=request)

    dialect = RestDialect(token=REST_TOKEN, base_url="https://rest.test")
    options: dict[str, Any] = {
        "provider": "rest",
        "base_url": "https://rest.test",
        "auth_headers": dialect.auth_headers(),
        "error_mapper": dialect.map_error,
    }
    request = Request("PATCH", ("api", "v1", "users", "u1"), json={"name": "B"})
    expected = userdir.TransportError if failure == "read_timeout" else userdir.ServerError
    assert not request.idempotent
    if mode == "sync":
        engine = SyncEngine(transport=httpx.MockTransport(answer), **options)
        with pytest.raises(expected) as caught:
            engine.request(request)
        engine.close()
    else:

        async def run() -> None:
            engine = AsyncEngine(transport=httpx.MockTransport(answer), **options)
            try:
                await engine.request(request)
            finally:
                await engine.close()

        with pytest.raises(expected) as caught:
            asyncio.run(run())
    assert sent == ["PATCH"]
    if failure == "read_timeout":
        assert "outcome is unknown" in str(caught.value)


# -- page-number walks while users come and go ------------------------------------------


class Mutating(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The emulator's transport, changing the directory as list request N arrives."""

    def __init__(self, emu: RestEmulator, events: dict[int, Callable[[], None]]) -> None:
        self.emu = emu
        self.events = events
        self.lists = 0
        self.lock = threading.Lock()

    def before(self, request: httpx.Request) -> None:
        if request.method != "GET" or request.url.path != "/api/v1/users":
            return
        with self.lock:
            self.lists += 1
            event = self.events.get(self.lists)
            if event is not None:
                event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.before(request)
        return self.emu.transport.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.before(request)
        return await self.emu.transport.handle_async_request(request)


def churn(
    emu: RestEmulator, ids: list[str], deletes: list[int], inserts: int
) -> Callable[[], None]:
    """Delete the users at these indexes of ``ids`` and add ``inserts`` new ones, at once."""

    def event() -> None:
        for index in deletes:
            emu.remove_user(ids[index])
        for _ in range(inserts):
            n = len(emu.requests) * 100 + len(emu)
            emu.add_user(email=f"new{n}-{id(event)}@example.com", name="New")

    return event


@pytest.mark.parametrize(("concurrency", "latency"), [(1, 0.0), (4, 0.004)])
def test_rest_walk_loses_nobody_while_users_are_deleted_and_added(
    connect: Any, concurrency: int, latency: float
) -> None:
    emu = RestEmulator(latency=latency)
    ids = emu.populate(40)
    # each change shrinks the directory: meta.total never comes back to a count it had
    events = {
        2: churn(emu, ids, [0], 0),
        4: churn(emu, ids, [1, 7, 12], 1),
        5: churn(emu, ids, [13, 14, 15, 16, 17, 18], 0),
        7: churn(emu, ids, [30], 0),
    }
    transport = Mutating(emu, events)
    directory = connect(
        "rest",
        token=emu.token,
        base_url="https://rest.test",
        transport=transport,
        concurrency=concurrency,
    )
    got = [u.id for u in directory.iter_users(page_size=5)]
    assert len(got) == len(set(got)), "a user was yielded twice"
    deleted = {ids[i] for i in (0, 1, 7, 12, 13, 14, 15, 16, 17, 18, 30)}
    assert set(ids) - deleted <= set(got), "a user present throughout was lost"
    assert set(got) <= set(ids) | {str(u["id"]) for u in emu.users}
    assert transport.lists > math.ceil(40 / 5)  # the moved pages were read again


def test_org_api_walk_cannot_see_deletions(connect: Any) -> None:
    """has_more only: a deletion before the page read next loses a user (documented)."""
    from userdir.testing import OrgApiEmulator

    emu = OrgApiEmulator()
    ids = emu.populate(10)

    class Deleting(httpx.BaseTransport, httpx.AsyncBaseTransport):
        lists = 0

        def before(self, request: httpx.Request) -> None:
            if request.url.path == "/list-users":
                self.lists += 1
                if self.lists == 2:
                    emu.remove_user(ids[0])

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            self.before(request)
            return emu.transport.handle_request(request)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.before(request)
            return await emu.transport.handle_async_request(request)

    directory = connect(
        "org_api", api_key=emu.api_key, base_url="https://org.test", transport=Deleting()
    )
    got = [u.id for u in directory.iter_users(page_size=5)]
    assert ids[5] not in got  # moved onto page 0, which was already read
    assert len(got) == len(set(got))


# -- the same guarantee over random changes, driving the walk directly -------------------


def user(user_id: str) -> DirectoryUser:
    return DirectoryUser(id=user_id, provider="rest")


class Pages(Dialect):
    """Answers are ListPages already: the walk without JSON or HTTP."""

    name = "rest"
    base_url = "https://rest.test"
    paging = PageNumberPaging(first=1, totals=True)

    def __init__(self) -> None:
        self.next_page: ListPage | None = None

    def list_request(self, position: Any, page_size: int, filters: Any) -> Request:
        return Request("GET", ("users",), (("page", str(position)),))

    def parse_page(self, body: Any, reply: Reply | None = None) -> ListPage:
        assert self.next_page is not None
        return self.next_page


def page_walk(window: int) -> tuple[Walk, Pages]:
    dialect = Pages()
    walk = Walk(dialect, dialect.paging, page_size=5, filters={}, local={}, window=window)
    return walk, dialect


def asked(walk: Walk) -> list[int]:
    """The page numbers the walk asks for now."""
    return [int(dict(r.params)["page"]) for r in walk.requests()]


def answer(walk: Walk, dialect: Pages, page: ListPage) -> list[DirectoryUser]:
    """Hand ``page`` to the walk as the answer to its oldest request; its new users."""
    dialect.next_page = page
    walk.take(Reply(200, {}, b"{}"))
    walk.drop()
    return walk.users(page)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 30),
    size=st.integers(1, 6),
    window=st.integers(1, 4),
    shrink=st.booleans(),
    events=st.dictionaries(  # at most 6 changes: within MAX_REREAD_RESTARTS
        st.integers(1, 25),
        st.tuples(
            st.lists(st.integers(0, 10_000), max_size=4),
            st.lists(st.integers(0, 10_000), max_size=3),
        ),
        max_size=6,
    ),
    data=st.data(),
)
def test_page_plan_yields_everyone_present_throughout_exactly_once(
    n: int,
    size: int,
    window: int,
    shrink: bool,
    events: dict[int, tuple[list[int], list[int]]],
    data: st.DataObject,
) -> None:
    state = [f"u{i}" for i in range(n)]
    initial = set(state)
    gone: set[str] = set()
    added = 0
    requests = 0

    def fetch(page_no: int) -> ListPage:
        nonlocal requests, added
        requests += 1
        picks, places = events.get(requests, ([], []))
        # every change moves the count one way (no count comes back: visible to the plan)
        victims = {state[p % len(state)] for p in picks} if state else set()
        if shrink:
            places = places[: max(len(victims) - 1, 0)]
        elif victims and len(places) <= len(victims):
            places = places + [len(state)] * (len(victims) + 1 - len(places))
        for victim in victims:
            state.remove(victim)
            gone.add(victim)
        for place in places:  # anywhere: a service may sort by name
            added += 1
            state.insert(place % (len(state) + 1), f"new{added}")
        total = len(state)
        users = [user(i) for i in state[(page_no - 1) * size : page_no * size]]
        pages = math.ceil(total / size)
        return ListPage(users, page_no < pages, None, pages, total)

    walk, dialect = page_walk(window)
    in_flight: list[int] = []
    answers: dict[int, ListPage] = {}
    got: list[str] = []
    while not walk.done and requests < 500:
        in_flight += asked(walk)
        if not in_flight:
            break
        # the service answers the pages in flight in any order
        while in_flight[0] not in answers:
            pending = [p for p in in_flight if p not in answers]
            page_no = data.draw(st.sampled_from(pending))
            answers[page_no] = fetch(page_no)
        page_no = in_flight.pop(0)
        # the loop guard is tested on its own (many users added before the pages read
        # bring pages of users already yielded, which it may take for a loop)
        walk.stalled = 0
        dialect.next_page = answers.pop(page_no)
        walk.take(Reply(200, {}, b"{}"))
        for index in reversed(walk.drop()):
            answers.pop(in_flight.pop(index), None)
        got += [u.id for u in walk.users(dialect.next_page)]
    assert requests < 500
    assert len(got) == len(set(got))
    assert initial - gone <= set(got)


@pytest.mark.parametrize("total", ["40", -1, 2.5, True])
def test_rest_meta_total_must_be_a_count(
    connect: Any, httpx_mock: HTTPXMock, total: object
) -> None:
    body = {"data": [], "meta": {"total": total, "page": 1, "limit": 5, "pages": 0}}
    httpx_mock.add_response(json=body)
    directory = connect("rest", **provider_options("rest"))
    with pytest.raises(userdir.MalformedResponseError, match=r"meta\.total"):
        list(directory.iter_users(page_size=5))


def test_rest_walk_without_meta_total_still_completes(connect: Any, httpx_mock: HTTPXMock) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        users = [{"id": f"u{i}"} for i in range((page - 1) * 2, min(page * 2, 5))]
        return httpx.Response(200, json={"data": users, "meta": {"page": page, "pages": 3}})

    httpx_mock.add_callback(answer, is_reusable=True)
    got = [u.id for u in connect("rest", **provider_options("rest")).iter_users(page_size=2)]
    assert got == [f"u{i}" for i in range(5)]
    assert len(httpx_mock.get_requests()) == 3


def test_rereading_gives_up_with_a_warning_when_the_directory_never_settles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    walk, dialect = page_walk(1)
    total = 100
    for page_no, name in ((1, "a"), (2, "b")):
        assert asked(walk) == [page_no]
        answer(walk, dialect, ListPage([user(name)], True, None, 100, total))
    total -= 1
    assert asked(walk) == [3]
    answer(walk, dialect, ListPage([user("c")], True, None, 100, total))
    rereads = []
    while (again := asked(walk)) != [4]:  # every page read again shows another count
        rereads += again
        total -= 1
        answer(walk, dialect, ListPage([user(f"x{total}")], True, None, 100, total))
        assert len(rereads) < 50
    assert rereads == [2] + [3] * MAX_REREAD_RESTARTS
    assert "kept changing" in caplog.text  # and the walk went on, to page 4
