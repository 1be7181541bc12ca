"""Notion provider on the wire (pytest-httpx), sync and async, and every recorded fixture."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

import userdir
from userdir import UserKind, UserStatus
from userdir.providers.notion import ERROR_CODES, NotionDialect

from .concurrency import slow
from .conftest import TOKEN

FIXTURES = Path(__file__).parent / "fixtures" / "notion"
API = "https://api.notion.com/v1/users"
UID = "6794760a-1f15-45cd-9c65-0dfe42f5135a"


def person(uid: str, email: str | None, name: str | None = "P") -> dict[str, Any]:
    return {
        "object": "user",
        "id": uid,
        "type": "person",
        "name": name,
        "avatar_url": None,
        "person": {} if email is None else {"email": email},
    }


def listing(users: list[dict[str, Any]], next_cursor: str | None = None) -> dict[str, Any]:
    return {
        "object": "list",
        "results": users,
        "next_cursor": next_cursor,
        "has_more": next_cursor is not None,
        "type": "user",
        "user": {},
    }


def uid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


# -- every recorded fixture maps ---------------------------------------------------


def fixture_files() -> list[Path]:
    files = sorted(p for p in FIXTURES.glob("*.json") if "error" not in p.name)
    assert len(files) == 15
    return files


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_every_fixture_maps(path: Path) -> None:
    body = json.loads(path.read_text())
    dialect = NotionDialect(token=TOKEN)
    if body["object"] == "list":
        users = dialect.parse_list(body).users
        raws = body["results"]
    else:
        users = [dialect.parse_user(body)]
        raws = [body]
    assert len(users) == len(raws) > 0
    for user, raw in zip(users, raws, strict=False):
        assert user.id == raw["id"]
        assert user.provider == "notion"
        assert user.name == raw.get("name")
        assert user.avatar_url == raw.get("avatar_url")
        assert user.status is UserStatus.UNKNOWN
        assert dict(user.raw) == raw
        if raw["type"] == "bot":
            assert user.kind is UserKind.BOT
            assert user.email is None
            bot = raw["bot"]
            for key in ("owner", "workspace_name", "workspace_id", "workspace_limits"):
                assert user.extra.get(key) == bot.get(key)
        else:
            assert user.kind is UserKind.PERSON
            assert user.email == raw["person"].get("email")
        assert json.loads(json.dumps(user.to_dict())) == user.to_dict()


def test_fixture_details() -> None:
    dialect = NotionDialect(token=TOKEN)
    first = dialect.parse_list(json.loads((FIXTURES / "list_users_1.json").read_text()))
    ada, bot = first.users
    assert ada.email == "notion@ramnes.eu"
    assert ada.email_key == "notion@ramnes.eu"
    assert ada.extra == {"email_verified": True}
    assert bot.extra == {
        "owner": {"type": "workspace", "workspace": True},
        "workspace_name": "notion-sdk-py",
        "workspace_id": "231674b6-2cc1-46bc-b742-c5c9fe4b9c73",
        "workspace_limits": {"max_file_upload_size_in_bytes": 5242880},
    }
    hidden = dialect.parse_list(json.loads((FIXTURES / "list_users_5.json").read_text()))
    assert hidden.users[0].email is None  # person: {} without the email capability
    oldest = dialect.parse_list(json.loads((FIXTURES / "list_users_2.json").read_text()))
    assert oldest.users[1].kind is UserKind.BOT
    assert oldest.users[1].extra == {}
    many = dialect.parse_list(json.loads((FIXTURES / "list_users_7.json").read_text()))
    assert len(many.users) == 31
    assert sum(u.kind is UserKind.BOT for u in many.users) == 30


def test_401_fixture_maps(connect: Any, httpx_mock: HTTPXMock) -> None:
    body = (FIXTURES / "list_users_error_401_1.json").read_bytes()
    httpx_mock.add_response(url=f"{API}?page_size=100", status_code=401, content=body)
    with pytest.raises(userdir.AuthenticationError) as info:
        list(connect("notion", token=TOKEN).iter_users())
    assert info.value.code == "unauthorized"
    assert info.value.message == "API token is invalid."
    assert info.value.request_id == "13dc904a-8a91-49aa-9a52-4d3926cac0af"


# -- the wire ------------------------------------------------------------------------


def test_headers_and_default_version(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{API}/me", json=json.loads((FIXTURES / "me_1.json").read_text()))
    me = connect("notion", token=TOKEN).me()
    assert me.kind is UserKind.BOT
    request = httpx_mock.get_request()
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["notion-version"] == "2025-09-03"
    assert request.url.path == "/v1/users/me"


def test_notion_version_and_base_url_options(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url="https://proxy.test/notion/v1/users?page_size=100", json=listing([])
    )
    d = connect(
        "notion", token=TOKEN, notion_version="2022-06-28", base_url="https://proxy.test/notion"
    )
    assert list(d.iter_users()) == []
    assert httpx_mock.get_request().headers["notion-version"] == "2022-06-28"


def test_get_user(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{API}/{UID}", json=person(UID, "Ada@Example.com", "Ada"))
    user = connect("notion", token=TOKEN).get_user(UID)
    assert (user.id, user.email, user.name, user.kind) == (
        UID,
        "Ada@Example.com",
        "Ada",
        UserKind.PERSON,
    )


def test_undashed_id_is_accepted(connect: Any, httpx_mock: HTTPXMock) -> None:
    bare = UID.replace("-", "")
    httpx_mock.add_response(url=f"{API}/{bare}", json=person(UID, None))
    assert connect("notion", token=TOKEN).get_user(bare).email is None


@pytest.mark.parametrize(
    "bad", ["me2", "../admin", "6794760a-1f15-45cd-9c65", UID + "0", "", UID[:-1] + "g", "a/b"]
)
def test_bad_ids_never_leave(connect: Any, httpx_mock: HTTPXMock, bad: str) -> None:
    with pytest.raises(userdir.InvalidArgumentError):
        connect("notion", token=TOKEN).get_user(bad)
    assert httpx_mock.get_requests() == []


def test_cursor_is_carried_and_three_pages_yield_in_order(
    connect: Any, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=f"{API}?page_size=100",
        json=listing([person(uid(1), "a@x.io"), person(uid(2), None)], "cur-2"),
    )
    httpx_mock.add_response(
        url=f"{API}?page_size=100&start_cursor=cur-2",
        json=listing([person(uid(3), "c@x.io")], "cur-3"),
    )
    httpx_mock.add_response(
        url=f"{API}?page_size=100&start_cursor=cur-3", json=listing([person(uid(4), "d@x.io")])
    )
    users = list(connect("notion", token=TOKEN).iter_users())
    assert [u.id for u in users] == [uid(1), uid(2), uid(3), uid(4)]
    params = [dict(r.url.params) for r in httpx_mock.get_requests()]
    assert params == [
        {"page_size": "100"},
        {"page_size": "100", "start_cursor": "cur-2"},
        {"page_size": "100", "start_cursor": "cur-3"},
    ]


# -- cursor walks: one request per page, the page's own cursor ------------------------


def compact(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def cursor_pages(count: int, stray: dict[int, str]) -> dict[str | None, bytes]:
    """``count`` one-user pages chained by cursor; ``stray[n]`` puts a user's own
    ``next_cursor`` field after page n's real one, so reading the raw body guesses wrong."""
    bodies: dict[str | None, bytes] = {}
    for n in range(1, count + 1):
        user = person(uid(n), f"u{n}@x.io")
        if n in stray:
            user["next_cursor"] = stray[n]
        own = uid(n + 1) if n < count else None
        envelope = {"object": "list", "next_cursor": own, "has_more": own is not None}
        bodies[uid(n) if n > 1 else None] = compact({**envelope, "results": [user]})
    return bodies


def serve_pages(httpx_mock: HTTPXMock, mode: str, bodies: dict[str | None, bytes]) -> None:
    def answer(request: Any) -> Any:
        import httpx

        cursor = request.url.params.get("start_cursor")
        if cursor not in bodies:
            return httpx.Response(
                400,
                json={
                    "object": "error",
                    "status": 400,
                    "code": "validation_error",
                    "message": f"The start_cursor provided is invalid: {cursor}",
                },
            )
        return httpx.Response(200, content=bodies[cursor])

    httpx_mock.add_callback(slow(answer, mode, 0.005), is_reusable=True)


def sent_cursors(httpx_mock: HTTPXMock) -> list[str | None]:
    return [r.url.params.get("start_cursor") for r in httpx_mock.get_requests()]


def test_right_guesses_cost_no_extra_request(
    connect: Any, httpx_mock: HTTPXMock, mode: str
) -> None:
    serve_pages(httpx_mock, mode, cursor_pages(7, {}))
    users = list(connect("notion", token=TOKEN).iter_users())
    assert [u.id for u in users] == [uid(n) for n in range(1, 8)]
    assert sent_cursors(httpx_mock) == [None] + [uid(n) for n in range(2, 8)]


def test_a_users_own_next_cursor_field_is_never_followed(
    connect: Any, httpx_mock: HTTPXMock, mode: str
) -> None:
    serve_pages(httpx_mock, mode, cursor_pages(7, {5: "stray-cursor", 7: "stray-last"}))
    users = list(connect("notion", token=TOKEN).iter_users())
    assert [u.id for u in users] == [uid(n) for n in range(1, 8)]
    assert sent_cursors(httpx_mock) == [None] + [uid(n) for n in range(2, 8)]


def test_a_bad_page_raises_and_nothing_more_is_asked(
    connect: Any, httpx_mock: HTTPXMock, mode: str
) -> None:
    bodies = cursor_pages(7, {})
    bodies[uid(5)] = bodies[uid(5)] + b"garbage"  # its cursor is readable; it is not JSON
    serve_pages(httpx_mock, mode, bodies)
    got: list[str] = []
    with pytest.raises(userdir.MalformedResponseError, match="not valid JSON"):
        got.extend(u.id for u in connect("notion", token=TOKEN).iter_users())
    if mode == "sync":  # (the async adapter collects the whole walk first)
        assert got == [uid(n) for n in range(1, 5)]
    assert sent_cursors(httpx_mock)[-1] == uid(5)


def test_list_page(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{API}?page_size=2", json=listing([person(uid(1), None)], "next-1")
    )
    httpx_mock.add_response(
        url=f"{API}?page_size=2&start_cursor=next-1", json=listing([person(uid(2), None)])
    )
    d = connect("notion", token=TOKEN)
    page = d.list_page(page_size=2)
    assert [u.id for u in page.users] == [uid(1)]
    assert page.next_cursor == "next-1"
    last = d.list_page(page.next_cursor, page_size=2)
    assert last.next_cursor is None


def test_page_size_bounds(connect: Any, httpx_mock: HTTPXMock) -> None:
    d = connect("notion", token=TOKEN)
    for bad in (0, 101, "10"):
        with pytest.raises(userdir.InvalidArgumentError, match="page_size"):
            d.list_page(page_size=bad)
    assert httpx_mock.get_requests() == []


def test_repeated_next_cursor(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{API}?page_size=100", json=listing([person(uid(1), None)], "same")
    )
    httpx_mock.add_response(
        url=f"{API}?page_size=100&start_cursor=same", json=listing([person(uid(2), None)], "same")
    )
    with pytest.raises(userdir.MalformedResponseError, match="twice"):
        list(connect("notion", token=TOKEN).iter_users())


@pytest.mark.parametrize(("code", "cls"), sorted(ERROR_CODES.items()))
def test_every_error_code(connect: Any, httpx_mock: HTTPXMock, code: str, cls: type) -> None:
    status = {
        "unauthorized": 401,
        "restricted_resource": 403,
        "object_not_found": 404,
        "conflict_error": 409,
        "rate_limited": 429,
        "internal_server_error": 500,
        "service_unavailable": 503,
        "gateway_timeout": 504,
        "service_overload": 529,
        "database_connection_unavailable": 503,
    }.get(code, 400)
    body = {
        "object": "error",
        "status": status,
        "code": code,
        "message": f"msg {code}",
        "request_id": "rid-1",
    }
    httpx_mock.add_response(url=f"{API}/{UID}", status_code=status, json=body, is_reusable=True)
    with pytest.raises(cls) as info:
        connect("notion", token=TOKEN).get_user(UID)
    assert type(info.value) is cls
    assert (info.value.code, info.value.message, info.value.request_id) == (
        code,
        f"msg {code}",
        "rid-1",
    )
    assert info.value.status_code == status


def test_529_without_body_is_server_error(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{API}/{UID}", status_code=529, is_reusable=True)
    with pytest.raises(userdir.ServerError):
        connect("notion", token=TOKEN).get_user(UID)
    assert len(httpx_mock.get_requests()) == 3  # retried


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (502, userdir.ServerError),
        (403, userdir.PermissionDeniedError),
        (404, userdir.UserNotFoundError),
    ],
)
def test_html_error_from_a_proxy(
    connect: Any, httpx_mock: HTTPXMock, status: int, cls: type
) -> None:
    httpx_mock.add_response(
        url=f"{API}/{UID}",
        status_code=status,
        is_reusable=True,
        content=b"<html><body><h1>Bad Gateway</h1></body></html>",
        headers={"Content-Type": "text/html"},
    )
    with pytest.raises(cls) as info:
        connect("notion", token=TOKEN).get_user(UID)
    assert "not Notion's JSON error (text/html)" in info.value.message
    assert info.value.code is None


def test_find_by_email_scans_and_stops_at_first_match(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{API}?page_size=100", json=listing([person(uid(1), "a@x.io")], "c2")
    )
    httpx_mock.add_response(
        url=f"{API}?page_size=100&start_cursor=c2", json=listing([person(uid(2), "Bob@X.io")], "c3")
    )
    httpx_mock.add_response(
        url=f"{API}?page_size=100&start_cursor=c3",
        json=listing([person(uid(3), "c@x.io")]),
        is_optional=True,
    )
    user = connect("notion", token=TOKEN).find_user_by_email("bob@x.IO")
    assert user is not None
    assert user.id == uid(2)


def test_find_many_in_one_scan(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{API}?page_size=100",
        json=listing([person(uid(1), "a@x.io"), person(uid(2), "b@x.io")], "c2"),
    )
    httpx_mock.add_response(
        url=f"{API}?page_size=100&start_cursor=c2", json=listing([person(uid(3), "c@x.io")])
    )
    found = connect("notion", token=TOKEN).find_users_by_email(
        ["C@x.io", "a@x.io", "zz@x.io", "A@X.IO"]
    )
    assert {k: (v.id if v else None) for k, v in found.items()} == {
        "C@x.io": uid(3),
        "a@x.io": uid(1),
        "zz@x.io": None,
        "A@X.IO": uid(1),
    }
    assert len(httpx_mock.get_requests()) == 2


def test_bad_email_is_refused_before_sending(connect: Any, httpx_mock: HTTPXMock) -> None:
    with pytest.raises(userdir.InvalidArgumentError):
        connect("notion", token=TOKEN).find_user_by_email("not-an-email")
    assert httpx_mock.get_requests() == []


def test_writes_are_unsupported_without_a_request(connect: Any, httpx_mock: HTTPXMock) -> None:
    d = connect("notion", token=TOKEN)
    with pytest.raises(userdir.UnsupportedOperationError):
        d.create_user(userdir.NewUser(email="a@b.co", name="A"))
    with pytest.raises(userdir.UnsupportedOperationError):
        d.update_user(UID, userdir.UserChanges(name="B"))
    with pytest.raises(userdir.UnsupportedOperationError):
        d.delete_user(UID)
    assert httpx_mock.get_requests() == []


def test_capabilities() -> None:
    caps = userdir.connect("notion", token=TOKEN).capabilities
    assert caps.email_lookup == "scan"
    assert caps.me
    assert not caps.writes
    assert caps.paging == "cursor"
    assert caps.server_filters == frozenset()


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"object": "user", "type": "person"}, "id"),
        ({"object": "page", "id": UID}, "expected object 'user'"),
        ({"object": "user", "id": 5}, "id"),
        ({"object": "user", "id": UID, "person": {"email": 7}}, "person.email"),
        ("nope", "expected a JSON object"),
    ],
)
def test_malformed_users(payload: Any, where: str) -> None:
    with pytest.raises(userdir.MalformedResponseError, match=where.replace(".", r"\.")):
        NotionDialect(token=TOKEN).parse_user(payload)


def test_unknown_fields_are_ignored() -> None:
    user = NotionDialect(token=TOKEN).parse_user(
        {**person(UID, "a@x.io"), "future_field": {"x": 1}, "type": "person"}
    )
    assert user.email == "a@x.io"


def test_has_more_without_cursor_is_malformed() -> None:
    with pytest.raises(userdir.MalformedResponseError, match="next_cursor"):
        NotionDialect(token=TOKEN).parse_list(
            {"object": "list", "results": [], "has_more": True, "next_cursor": None}
        )


def test_token_required() -> None:
    with pytest.raises(userdir.ConfigError, match="token"):
        userdir.connect("notion")
    with pytest.raises(userdir.InvalidArgumentError, match="token"):
        userdir.connect("notion", token="  ")
    assert TOKEN not in repr(userdir.connect("notion", token=TOKEN))


def test_notion_version_is_not_treated_as_a_secret(connect: Any, httpx_mock: HTTPXMock) -> None:
    body = {
        "object": "error",
        "status": 400,
        "code": "validation_error",
        "message": "Notion-Version 2025-09-03 does not allow this",
    }
    httpx_mock.add_response(url=f"{API}/{UID}", status_code=400, json=body)
    with pytest.raises(userdir.InvalidRequestError) as info:
        connect("notion", token=TOKEN).get_user(UID)
    assert info.value.message == "Notion-Version 2025-09-03 does not allow this"
