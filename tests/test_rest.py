"""The REST provider on the wire (pytest-httpx), sync and async."""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

import userdir
from userdir import NewUser, UserChanges, UserStatus

from .concurrency import Rendezvous, slow
from .conftest import REST_TOKEN

BASE = "https://rest.test"
USERS = f"{BASE}/api/v1/users"


def rest_user(n: int, **kw: Any) -> dict[str, Any]:
    user = {
        "id": f"usr_{n:06d}",
        "email": f"user{n}@example.com",
        "name": f"User {n}",
        "role": "member",
        "status": "active",
        "created_at": "2023-01-15T08:30:00Z",
        "last_login": "2023-06-20T14:22:10Z",
    }
    user.update(kw)
    return user


def listing(users: list[dict[str, Any]], page: int, limit: int, total: int) -> dict[str, Any]:
    return {
        "data": users,
        "meta": {"total": total, "page": page, "limit": limit, "pages": math.ceil(total / limit)},
    }


def directory_callback(total: int) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        limit = int(request.url.params["limit"])
        ids = range((page - 1) * limit, min(total, page * limit))
        return httpx.Response(200, json=listing([rest_user(i) for i in ids], page, limit, total))

    return answer


def test_header_and_first_page(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(directory_callback(3), url=f"{USERS}?page=1&limit=100")
    users = list(connect("rest", token=REST_TOKEN, base_url=BASE).iter_users())
    assert [u.id for u in users] == ["usr_000000", "usr_000001", "usr_000002"]
    assert httpx_mock.get_request().headers["authorization"] == f"Bearer {REST_TOKEN}"


def test_filters_are_on_the_wire(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{USERS}?page=1&limit=100&status=inactive&role=admin",
        json=listing([rest_user(1, status="inactive", role="admin")], 1, 100, 1),
    )
    d = connect("rest", token=REST_TOKEN, base_url=BASE)
    users = list(d.iter_users(status=UserStatus.INACTIVE, role="admin"))
    assert [u.status for u in users] == [UserStatus.INACTIVE]
    assert d.capabilities.server_filters == frozenset({"status", "role"})


def test_bad_status_filter_is_refused(connect: Any, httpx_mock: HTTPXMock) -> None:
    with pytest.raises(userdir.InvalidArgumentError, match="status"):
        connect("rest", token=REST_TOKEN, base_url=BASE).iter_users(status="deleted")
    assert httpx_mock.get_requests() == []


def test_remaining_pages_are_fetched_concurrently_in_order(
    connect: Any, httpx_mock: HTTPXMock, mode: str
) -> None:
    answer = directory_callback(700)  # 7 pages
    meeting = Rendezvous(parties=4)
    # pages 1 to 3 take a network round trip: that is what opens the concurrent window
    for page in (1, 2, 3):
        httpx_mock.add_callback(slow(answer, mode), url=f"{USERS}?page={page}&limit=100")
    httpx_mock.add_callback(meeting.callback(mode, answer), is_reusable=True)
    users = list(connect("rest", token=REST_TOKEN, base_url=BASE, concurrency=4).iter_users())
    assert meeting.met  # pages 4..7 were all in flight at once
    assert [u.id for u in users] == [f"usr_{i:06d}" for i in range(700)]
    pages = [int(r.url.params["page"]) for r in httpx_mock.get_requests()]
    assert sorted(pages) == list(range(1, 8))
    assert pages[0] == 1


def test_directory_growing_during_the_walk(connect: Any, httpx_mock: HTTPXMock) -> None:
    # page 1 says 2 pages; by page 2 two users were inserted at the front: ids shift
    # right, the total grows to 3 pages. Nothing crashes and no id is yielded twice.
    httpx_mock.add_response(
        url=f"{USERS}?page=1&limit=100",
        json=listing([rest_user(i) for i in range(100)], 1, 100, 200),
    )
    shifted = [rest_user(i) for i in range(98, 198)]
    httpx_mock.add_response(url=f"{USERS}?page=2&limit=100", json=listing(shifted, 2, 100, 202))
    httpx_mock.add_response(
        url=f"{USERS}?page=3&limit=100",
        json=listing([rest_user(i) for i in range(198, 202)], 3, 100, 202),
    )
    ids = [u.id for u in connect("rest", token=REST_TOKEN, base_url=BASE).iter_users()]
    assert len(ids) == len(set(ids)) == 202


def test_directory_shrinking_during_the_walk(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{USERS}?page=1&limit=100",
        json=listing([rest_user(i) for i in range(100)], 1, 100, 300),
    )
    httpx_mock.add_response(
        url=f"{USERS}?page=2&limit=100",
        json=listing([rest_user(i) for i in range(100, 150)], 2, 100, 150),
    )
    httpx_mock.add_response(
        url=f"{USERS}?page=3&limit=100", json=listing([], 3, 100, 150), is_optional=True
    )
    # meta.total changed: page 1 is read again, in case users moved back onto it
    httpx_mock.add_response(
        url=f"{USERS}?page=1&limit=100",
        json=listing([rest_user(i) for i in range(100)], 1, 100, 150),
    )
    ids = [u.id for u in connect("rest", token=REST_TOKEN, base_url=BASE).iter_users()]
    assert ids == [f"usr_{i:06d}" for i in range(150)]


def test_mapping(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{USERS}/usr_123456",
        json={
            "data": rest_user(
                123456,
                status="suspended",
                updated_at="2023-06-21T10:22:15.5+02:00",
                settings={"theme": "light", "notifications": True},
            )
        },
    )
    user = connect("rest", token=REST_TOKEN, base_url=BASE).get_user("usr_123456")
    assert user.status is UserStatus.UNKNOWN
    assert user.extra == {
        "status": "suspended",
        "settings": {"theme": "light", "notifications": True},
    }
    assert user.created_at == datetime(2023, 1, 15, 8, 30, tzinfo=timezone.utc)
    assert user.last_login_at == datetime(2023, 6, 20, 14, 22, 10, tzinfo=timezone.utc)
    assert user.updated_at is not None
    assert user.updated_at.utcoffset() is not None
    assert user.role == "member"


@pytest.mark.parametrize("status", ["active", "inactive", "pending"])
def test_known_statuses(status: str) -> None:
    from userdir.providers.rest import parse_user

    assert parse_user(rest_user(1, status=status)).status.value == status


def test_bad_datetime_is_malformed() -> None:
    from userdir.providers.rest import parse_user

    with pytest.raises(userdir.MalformedResponseError, match="created_at"):
        parse_user(rest_user(1, created_at="yesterday"))


def test_create_sends_the_documented_body(connect: Any, httpx_mock: HTTPXMock) -> None:
    created = rest_user(
        789012, email="newuser@example.com", name="Jane Smith", role="editor", status="pending"
    )
    httpx_mock.add_response(url=USERS, method="POST", status_code=201, json={"data": created})
    user = connect("rest", token=REST_TOKEN, base_url=BASE).create_user(
        NewUser(
            email="newuser@example.com",
            name="Jane Smith",
            role="editor",
            password="securePassword123",
            settings={"theme": "dark", "notifications": True},
        )
    )
    assert user.id == "usr_789012"
    assert user.status is UserStatus.PENDING
    assert json.loads(httpx_mock.get_request().content) == {
        "email": "newuser@example.com",
        "name": "Jane Smith",
        "role": "editor",
        "password": "securePassword123",
        "settings": {"theme": "dark", "notifications": True},
    }


def test_update_sends_only_what_was_set(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{USERS}/usr_789012", method="PUT", json={"data": rest_user(789012, role="admin")}
    )
    user = connect("rest", token=REST_TOKEN, base_url=BASE).update_user(
        "usr_789012", UserChanges(role="admin", status=UserStatus.ACTIVE)
    )
    assert user.role == "admin"
    assert json.loads(httpx_mock.get_request().content) == {"role": "admin", "status": "active"}


def test_update_with_nothing_set_is_refused(connect: Any, httpx_mock: HTTPXMock) -> None:
    with pytest.raises(userdir.InvalidArgumentError, match="sets no field"):
        connect("rest", token=REST_TOKEN, base_url=BASE).update_user("usr_1", UserChanges())
    assert httpx_mock.get_requests() == []


def test_delete(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{USERS}/usr_789012",
        method="DELETE",
        json={"success": True, "message": "User deleted successfully"},
    )
    assert connect("rest", token=REST_TOKEN, base_url=BASE).delete_user("usr_789012") is None
    request = httpx_mock.get_request()
    assert (request.method, request.content) == ("DELETE", b"")


def test_conflict(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=USERS,
        method="POST",
        status_code=409,
        json={"error": {"code": "conflict", "message": "Email already in use"}},
    )
    with pytest.raises(userdir.ConflictError) as info:
        connect("rest", token=REST_TOKEN, base_url=BASE).create_user(
            NewUser(email="a@b.co", name="A", password="pw-123456")
        )
    assert info.value.message == "Email already in use"
    assert info.value.code == "conflict"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, userdir.InvalidRequestError),
        (401, userdir.AuthenticationError),
        (403, userdir.PermissionDeniedError),
        (404, userdir.UserNotFoundError),
        (429, userdir.RateLimitedError),
        (500, userdir.ServerError),
    ],
)
def test_errors_keep_the_server_message(
    connect: Any, httpx_mock: HTTPXMock, status: int, cls: type
) -> None:
    httpx_mock.add_response(
        status_code=status,
        json={"error": {"code": "x", "message": f"said {status}"}},
        is_reusable=True,
    )
    with pytest.raises(cls) as info:
        connect("rest", token=REST_TOKEN, base_url=BASE).get_user("usr_1")
    assert info.value.message == f"said {status}"


def test_429_is_retried(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{USERS}/usr_1", status_code=429, headers={"Retry-After": "1"})
    httpx_mock.add_response(url=f"{USERS}/usr_1", json={"data": rest_user(1)})
    assert connect("rest", token=REST_TOKEN, base_url=BASE).get_user("usr_1").id == "usr_000001"


def test_timed_out_post_is_sent_once_and_password_stays_secret(
    connect: Any, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"), url=USERS, method="POST")
    new = NewUser(email="a@b.co", name="A", password="pw-S3CR3T-123")
    with caplog.at_level(logging.DEBUG), pytest.raises(userdir.TransportError) as info:
        connect("rest", token=REST_TOKEN, base_url=BASE).create_user(new)
    assert len(httpx_mock.get_requests()) == 1
    assert "outcome is unknown" in str(info.value)
    texts = [str(info.value), repr(info.value), repr(new)] + [
        r.getMessage() for r in caplog.records
    ]
    assert not [t for t in texts if "pw-S3CR3T-123" in t or REST_TOKEN in t]


def test_email_lookup_scans_once_for_many(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(directory_callback(250), is_reusable=True)
    d = connect("rest", token=REST_TOKEN, base_url=BASE, concurrency=1)
    found = d.find_users_by_email(
        ["USER5@example.com", "user120@example.com", "nobody@example.com"]
    )
    assert found["USER5@example.com"].id == "usr_000005"  # type: ignore[union-attr]
    assert found["user120@example.com"].id == "usr_000120"  # type: ignore[union-attr]
    assert found["nobody@example.com"] is None
    assert sorted(int(r.url.params["page"]) for r in httpx_mock.get_requests()) == [1, 2, 3]


def test_first_match_ends_the_scan(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(directory_callback(1000), is_reusable=True)
    d = connect("rest", token=REST_TOKEN, base_url=BASE, concurrency=1)
    assert d.find_user_by_email("user3@example.com").id == "usr_000003"
    assert len(httpx_mock.get_requests()) <= 2  # page 1, at most one page ahead


def test_capabilities(connect: Any) -> None:
    caps = connect("rest", token=REST_TOKEN, base_url=BASE).capabilities
    assert caps.create_user and caps.update_user and caps.delete_user
    assert caps.email_lookup == "scan"
    assert caps.paging == "pages_total"


@pytest.mark.parametrize("bad", ["", " ", "x" * 10_000, "a\x00b", "a\r\nb"])
def test_bad_ids_are_refused(connect: Any, httpx_mock: HTTPXMock, bad: str) -> None:
    d = connect("rest", token=REST_TOKEN, base_url=BASE)
    with pytest.raises(userdir.InvalidArgumentError):
        d.get_user(bad)
    with pytest.raises(userdir.InvalidArgumentError):
        d.delete_user(bad)
    assert httpx_mock.get_requests() == []
