"""The org-API provider on the wire (pytest-httpx), sync and async."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

import userdir
from userdir import UserKind, UserStatus
from userdir.providers.org_api import OrgApiDialect

from .concurrency import HeldUntil, Rendezvous, slow
from .conftest import API_KEY

BASE = "https://org.test"


def org_user(n: int, email: str | None = None, **kw: Any) -> dict[str, Any]:
    user = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "email": email or f"user{n}@example.com",
        "username": f"user{n}",
        "first_name": f"First{n}",
        "last_name": f"Last{n}",
        "picture_url": f"https://example.com/{n}.jpg",
        "user_role": "Member",
        "calendar_link": None,
    }
    user.update(kw)
    return user


def page_of(request: httpx.Request) -> int:
    """The page number a listing request asks for."""
    return int(request.url.params["page"])


def pages_callback(total: int, page_size: int = 100) -> Any:
    """Serve a directory of ``total`` users the way the service pages it."""

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        size = int(request.url.params["page_size"])
        ids = range(page * size, min(total, (page + 1) * size))
        return httpx.Response(
            200,
            json={
                "users": [org_user(i) for i in ids],
                "page": page,
                "page_size": size,
                "has_more": (page + 1) * size < total,
            },
        )

    return answer


def test_first_page_is_zero_and_key_is_bare(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(pages_callback(3), url=f"{BASE}/list-users?page=0&page_size=100")
    users = list(connect("org_api", api_key=API_KEY, base_url=BASE).iter_users())
    assert [u.username for u in users] == ["user0", "user1", "user2"]
    request = httpx_mock.get_request()
    assert request.headers["authorization"] == API_KEY
    assert "bearer" not in request.headers["authorization"].lower()


def test_mapping(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/fetch-user?id=a1b2c3d4-e5f6-7890-1234-567890abcdef",
        json={
            "user": {
                "id": "a1b2c3d4-e5f6-7890-1234-567890abcdef",
                "email": "alice@example.com",
                "username": "alice",
                "first_name": "Alice",
                "last_name": "Smith",
                "picture_url": "https://example.com/alice.jpg",
                "user_role": "Admin",
                "calendar_link": "https://calendly.com/alice",
            }
        },
    )
    user = connect("org_api", api_key=API_KEY, base_url=BASE).get_user(
        "a1b2c3d4-e5f6-7890-1234-567890abcdef"
    )
    assert user.name == "Alice Smith"
    assert (user.given_name, user.family_name, user.username) == ("Alice", "Smith", "alice")
    assert user.avatar_url == "https://example.com/alice.jpg"
    assert user.role == "Admin"
    assert user.extra == {"calendar_link": "https://calendly.com/alice"}
    assert user.kind is UserKind.PERSON
    assert user.status is UserStatus.UNKNOWN


@pytest.mark.parametrize(
    ("first", "last", "name"),
    [("Bob", "", "Bob"), ("", "Jones", "Jones"), (None, None, None), ("  ", "X", "X")],
)
def test_name_joined_from_parts(first: Any, last: Any, name: Any) -> None:
    raw = org_user(1, first_name=first, last_name=last)
    user = OrgApiDialect(api_key=API_KEY, base_url=BASE).parse_user({"user": raw})
    assert user.name == name


@pytest.mark.parametrize(
    "email",
    ["a+tag@example.com", "o'brien&co@example.com", "x=y?z#w@example.com", "Ünï@bücher.example"],
)
def test_lookup_by_email_is_query_encoded(connect: Any, httpx_mock: HTTPXMock, email: str) -> None:
    httpx_mock.add_response(json={"user": org_user(1, email=email)})
    user = connect("org_api", api_key=API_KEY, base_url=BASE).find_user_by_email(email)
    assert user is not None
    request = httpx_mock.get_request()
    assert request.url.path == "/fetch-user"
    assert dict(request.url.params) == {"email": email}  # round-trips exactly
    if "+" in email:
        assert b"%2B" in request.url.query  # a literal plus, not a space


def test_lookup_by_id(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"user": org_user(7)})
    connect("org_api", api_key=API_KEY, base_url=BASE).get_user("../x?y=1&email=z")
    request = httpx_mock.get_request()
    assert request.url.path == "/fetch-user"
    assert list(request.url.params.multi_items()) == [("id", "../x?y=1&email=z")]


def test_not_found_400_is_user_not_found(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=400, json={"error": "User not found"}, is_reusable=True)
    d = connect("org_api", api_key=API_KEY, base_url=BASE)
    with pytest.raises(userdir.UserNotFoundError) as info:
        d.get_user("missing")
    assert info.value.status_code == 400
    assert info.value.message == "User not found"
    assert d.find_user_by_email("gone@example.com") is None


def test_other_400_stays_invalid_request(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=400, json={"error": "Provide exactly one of id or email"})
    with pytest.raises(userdir.InvalidRequestError) as info:
        connect("org_api", api_key=API_KEY, base_url=BASE).get_user("x")
    assert type(info.value) is userdir.InvalidRequestError
    assert info.value.message == "Provide exactly one of id or email"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, userdir.AuthenticationError),
        (403, userdir.PermissionDeniedError),
        (404, userdir.UserNotFoundError),
        (500, userdir.ServerError),
    ],
)
def test_errors_by_status(connect: Any, httpx_mock: HTTPXMock, status: int, cls: type) -> None:
    httpx_mock.add_response(status_code=status, json={"error": "nope"}, is_reusable=True)
    with pytest.raises(cls):
        connect("org_api", api_key=API_KEY, base_url=BASE).get_user("x")


def test_window_overshoot_yields_nothing_extra(
    connect: Any, httpx_mock: HTTPXMock, mode: str
) -> None:
    # 650 users: pages 0 to 6 (has_more false). Pages 0 to 2 take a round trip, which
    # opens the window; the last page is held until a page past it is asked for, so the
    # window must have run ahead (speculatively) while it was unanswered.
    answer = pages_callback(650)
    for page in (0, 1, 2):
        httpx_mock.add_callback(
            slow(answer, mode), url=f"{BASE}/list-users?page={page}&page_size=100"
        )
    last = HeldUntil(hold=lambda r: page_of(r) == 6, release=lambda r: page_of(r) > 6)
    httpx_mock.add_callback(last.callback(mode, answer), is_reusable=True)
    d = connect("org_api", api_key=API_KEY, base_url=BASE, concurrency=4)
    users = list(d.iter_users())
    assert [u.username for u in users] == [f"user{i}" for i in range(650)]
    assert last.released  # speculative pages past the end went out ...
    pages = sorted(page_of(r) for r in httpx_mock.get_requests())
    assert pages[:7] == list(range(7))
    assert max(pages) <= 6 + 4 - 1  # ... at most one window (concurrency=4) ahead of page 6


def test_window_pages_are_in_flight_together(
    connect: Any, httpx_mock: HTTPXMock, mode: str
) -> None:
    answer = pages_callback(1000)
    meeting = Rendezvous(parties=3)
    # pages 0 to 2 take a network round trip: that is what opens the concurrent window
    for page in (0, 1, 2):
        httpx_mock.add_callback(
            slow(answer, mode), url=f"{BASE}/list-users?page={page}&page_size=100"
        )
    httpx_mock.add_callback(meeting.callback(mode, answer), is_reusable=True)
    d = connect("org_api", api_key=API_KEY, base_url=BASE, concurrency=3)
    assert len(list(d.iter_users())) == 1000
    assert meeting.met


def test_find_many_runs_each_distinct_email_once(
    connect: Any, httpx_mock: HTTPXMock, mode: str
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        email = request.url.params["email"]
        if email.lower().startswith("none"):
            return httpx.Response(400, json={"error": "User not found"})
        return httpx.Response(200, json={"user": org_user(1, email=email.lower())})

    meeting = Rendezvous(parties=2)
    httpx_mock.add_callback(meeting.callback(mode, answer), is_reusable=True)
    d = connect("org_api", api_key=API_KEY, base_url=BASE, concurrency=2)
    found = d.find_users_by_email(["A@example.com", "a@EXAMPLE.com", "none@example.com"])
    assert found["A@example.com"] is not None
    assert found["a@EXAMPLE.com"] == found["A@example.com"]
    assert found["none@example.com"] is None
    assert len(httpx_mock.get_requests()) == 2
    assert meeting.met


def test_capabilities_and_no_writes(connect: Any, httpx_mock: HTTPXMock) -> None:
    d = connect("org_api", api_key=API_KEY, base_url=BASE)
    assert d.capabilities.email_lookup == "native"
    assert not d.capabilities.writes
    assert not d.capabilities.me
    with pytest.raises(userdir.UnsupportedOperationError):
        d.create_user(userdir.NewUser(email="a@b.co", name="A"))
    with pytest.raises(userdir.UnsupportedOperationError):
        d.delete_user("x")
    with pytest.raises(userdir.UnsupportedOperationError):
        d.me()
    assert httpx_mock.get_requests() == []


def test_base_url_is_required() -> None:
    with pytest.raises(userdir.ConfigError, match="base_url"):
        userdir.connect("org_api", api_key=API_KEY)


def test_list_page_cursor_is_the_next_page(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(pages_callback(5), is_reusable=True)
    d = connect("org_api", api_key=API_KEY, base_url=BASE)
    first = d.list_page(page_size=2)
    assert first.next_cursor == "1"
    second = d.list_page(first.next_cursor, page_size=2)
    third = d.list_page(second.next_cursor, page_size=2)
    assert [u.username for u in third.users] == ["user4"]
    assert third.next_cursor is None
    with pytest.raises(userdir.InvalidArgumentError):
        d.list_page("garbage")


def test_has_more_with_empty_pages_stops(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        json={"users": [], "page": 0, "page_size": 100, "has_more": True}, is_reusable=True
    )
    with pytest.raises(userdir.MalformedResponseError, match="does not advance"):
        list(connect("org_api", api_key=API_KEY, base_url=BASE).iter_users())
    assert len(httpx_mock.get_requests()) <= 3 + 4
