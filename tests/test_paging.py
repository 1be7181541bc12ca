"""The paging strategies and the walk, with no I/O: what is asked, when, and what comes out."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import userdir
from userdir import DirectoryUser
from userdir._walk import Walk
from userdir.providers import (
    CursorPaging,
    Dialect,
    ListPage,
    NextLinkPaging,
    OffsetPaging,
    PageNumberPaging,
    Paging,
    Reply,
    Request,
)

ids = st.sampled_from([f"u{i}" for i in range(12)])


def user(user_id: str, name: str = "") -> DirectoryUser:
    return DirectoryUser(id=user_id, provider="rest", name=name or None)


class Pages(Dialect):
    """A dialect whose answers are ListPages already (the walk's input, without JSON)."""

    name = "pages"
    items_key = "items"
    base_url = "https://pages.test"

    def __init__(self, paging: Paging) -> None:
        self.paging = paging  # type: ignore[misc]

    def list_request(self, position: Any, page_size: int, filters: Any) -> Request:
        return Request("GET", ("users",), (("at", str(position)),))

    def parse_page(self, body: Any, reply: Reply | None = None) -> ListPage:
        return body  # type: ignore[no-any-return]


def walk(paging: Paging, window: int = 4) -> Walk:
    return Walk(Pages(paging), paging, page_size=10, filters={}, local={}, window=window)


def take(w: Walk, page: ListPage) -> list[DirectoryUser]:
    """Hand ``page`` to the walk as the answer to its oldest request."""
    w.dialect.parse_page = lambda body, reply=None: page  # type: ignore[method-assign]
    w.take(Reply(200, {}, b"{}"))
    return w.users(page)


def positions(requests: list[Request]) -> list[str]:
    return [dict(r.params)["at"] for r in requests]


@given(st.lists(st.lists(ids, min_size=1, max_size=6), min_size=1, max_size=8))
def test_each_id_is_yielded_once_at_its_first_sighting(pages: list[list[str]]) -> None:
    w = walk(PageNumberPaging(first=1, totals=True))
    got: list[DirectoryUser] = []
    for number, page in enumerate(pages, start=1):
        w.requests()
        w.stalled = 0  # the loop guard is tested on its own
        users = [user(i, f"p{number}") for i in page]
        got += take(w, ListPage(users, number < len(pages), total_pages=len(pages)))
    expected: dict[str, str] = {}
    for number, page in enumerate(pages, start=1):
        for i in page:
            expected.setdefault(i, f"p{number}")
    assert [(u.id, u.name) for u in got] == list(expected.items())


def test_a_page_of_new_ids_is_taken_whole() -> None:
    w = walk(PageNumberPaging(first=1, totals=True))
    w.requests()
    first = [user("a"), user("b")]
    assert take(w, ListPage(first, True, total_pages=2)) == first
    w.requests()
    second = [user("c"), user("c", "again"), user("a"), user("d")]
    got = take(w, ListPage(second, False, total_pages=2))
    assert [(u.id, u.name) for u in got] == [("c", None), ("d", None)]
    assert w.seen == {"a", "b", "c", "d"}


def test_totals_open_the_full_window_after_the_first_answer_and_never_pass_the_end() -> None:
    w = walk(PageNumberPaging(first=1, totals=True), window=4)
    assert positions(w.requests()) == ["1"]
    take(w, ListPage([user("a")], True, total_pages=6))
    assert positions(w.requests()) == ["2", "3", "4", "5"]
    for n in range(2, 7):
        take(w, ListPage([user(f"u{n}")], n < 6, total_pages=6))
        ahead = positions(w.requests())
        assert all(int(p) <= 6 for p in ahead)
    assert w.done


def test_has_more_only_runs_at_most_window_minus_one_past_the_end() -> None:
    w = walk(PageNumberPaging(first=0), window=4)
    assert positions(w.requests()) == ["0"]
    take(w, ListPage([user("a")], True))
    assert positions(w.requests()) == ["1", "2", "3", "4"]
    take(w, ListPage([user("b")], False))  # page 1 is the last
    assert w.drop() == [0, 1, 2]  # pages 2, 3, 4: at most window - 1 past the end
    assert w.requests() == []
    assert w.done


def test_offsets_step_by_what_the_server_returned_and_replan_on_a_short_page() -> None:
    w = walk(OffsetPaging(start=1), window=3)
    assert positions(w.requests()) == ["1"]
    # asked for 10, the server caps at 4: the step is 4, never the count asked
    take(w, ListPage([user(f"a{i}") for i in range(4)], total_items=20))
    assert positions(w.requests()) == ["5", "9", "13"]
    # the cap drops to 2: the requests in flight past it are dropped and asked again
    take(w, ListPage([user("b0"), user("b1")], total_items=20))
    assert w.drop() == [0, 1]
    assert positions(w.requests()) == ["7", "9", "11"]


def test_offsets_stop_at_the_total() -> None:
    w = walk(OffsetPaging(start=1), window=8)
    w.requests()
    take(w, ListPage([user("a"), user("b")], total_items=3))
    assert positions(w.requests()) == ["3"]
    take(w, ListPage([user("c")], total_items=3))
    assert w.requests() == [] and w.done


@pytest.mark.parametrize("paging", [CursorPaging(), NextLinkPaging()])
def test_chains_ask_one_at_a_time_and_refuse_a_loop(paging: Paging) -> None:
    w = walk(paging, window=8)
    assert len(w.requests()) == 1
    take(w, ListPage([user("a")], True, "c1"))
    assert positions(w.requests()) == ["c1"]
    with pytest.raises(userdir.MalformedResponseError, match="twice"):
        take(w, ListPage([user("b")], True, "c1"))


def test_pages_without_new_users_stop_the_walk() -> None:
    w = walk(CursorPaging())
    w.requests()
    take(w, ListPage([user("a")], True, "c1"))
    for n in (2, 3):
        w.requests()
        assert take(w, ListPage([user("a")], True, f"c{n}")) == []
    w.requests()
    with pytest.raises(userdir.MalformedResponseError, match="does not advance"):
        take(w, ListPage([user("a")], True, "c4"))
