"""PagePlan's bookkeeping: ids never yielded twice, whatever the pages repeat."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from userdir import DirectoryUser
from userdir.directory import PagePlan
from userdir.providers._base import ListPage

ids = st.sampled_from([f"u{i}" for i in range(12)])


def user(user_id: str, name: str = "") -> DirectoryUser:
    return DirectoryUser(id=user_id, provider="rest", name=name or None)


@given(st.lists(st.lists(ids, min_size=1, max_size=6), min_size=1, max_size=8))
def test_each_id_is_yielded_once_at_its_first_sighting(pages: list[list[str]]) -> None:
    plan = PagePlan("rest", 1, 4, totals=True)
    got: list[DirectoryUser] = []
    for number, page in enumerate(pages, start=1):
        users = [user(i, f"p{number}") for i in page]
        plan.stalled = 0  # the loop guard is tested on its own
        got += plan.accept(number, ListPage(users, has_more=number < len(pages)))
    expected: dict[str, str] = {}
    for number, page in enumerate(pages, start=1):
        for i in page:
            expected.setdefault(i, f"p{number}")
    assert [(u.id, u.name) for u in got] == list(expected.items())


def test_a_page_of_new_ids_is_taken_whole() -> None:
    plan = PagePlan("rest", 1, 4, totals=True)
    first = [user("a"), user("b")]
    assert plan.accept(1, ListPage(first, has_more=True)) == first
    second = [user("c"), user("c", "again"), user("a"), user("d")]
    assert [(u.id, u.name) for u in plan.accept(2, ListPage(second, has_more=False))] == [
        ("c", None),
        ("d", None),
    ]
    assert plan.seen_ids == {"a", "b", "c", "d"}
