"""Flow tests against the emulators: sync and async, in-process and over real HTTP.

The same assertions as the pytest-httpx suites, against stateful fakes of the services.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

import userdir
from userdir import NewUser, UserChanges, UserKind, UserStatus
from userdir.testing import Emulator, NotionEmulator, OrgApiEmulator, RestEmulator

from .conftest import Blocking


@pytest.fixture(params=["in-process", "http"])
def wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_dir(mode: str, wire: str) -> Iterator[Any]:
    """``open_dir(emulator, provider, **options)``: a directory over the emulator."""
    stack = contextlib.ExitStack()

    def _open(emulator: Emulator, provider: str, **options: Any) -> Any:
        if wire == "http":
            options["base_url"] = stack.enter_context(emulator.serve())
        else:
            options.setdefault("base_url", "https://emulated.test")
            options["transport"] = emulator.transport
        if mode == "sync":
            directory: Any = userdir.connect(provider, **options)
        else:
            directory = Blocking(userdir.connect_async(provider, **options))
        stack.callback(directory.close)
        return directory

    with stack:
        yield _open


def credentials(emulator: Emulator) -> dict[str, str]:
    if isinstance(emulator, OrgApiEmulator):
        return {"api_key": emulator.api_key}
    return {"token": emulator.token}  # type: ignore[attr-defined]


# -- Notion ---------------------------------------------------------------------------


def test_notion_flow(open_dir: Any) -> None:
    emu = NotionEmulator()
    emu.populate(250)
    ada = emu.add_user(name="Ada Lovelace", email="Ada@Example.com")
    hidden = emu.add_user(name="No Email", email=None)
    d = open_dir(emu, "notion", token=emu.token)

    users = list(d.iter_users())
    assert [u.id for u in users] == [u["id"] for u in emu.users]
    assert len({u.id for u in users}) == len(users) == 253
    by_id = {u.id: u for u in users}
    assert by_id[emu.bot_id].kind is UserKind.BOT
    assert by_id[hidden].email is None
    assert by_id[ada].email == "Ada@Example.com"

    list_requests = [r for r in emu.requests if r.path == "/v1/users"]
    assert len(list_requests) == 3
    assert all(r.params["page_size"] == "100" for r in list_requests)
    assert "start_cursor" not in list_requests[0].params
    assert all(r.headers["notion-version"] == "2025-09-03" for r in emu.requests)
    assert all(r.headers["authorization"] == f"Bearer {emu.token}" for r in emu.requests)

    assert d.get_user(ada) == by_id[ada]
    assert d.get_user(ada.replace("-", "")).id == ada
    assert d.me().id == emu.bot_id
    assert d.find_user_by_email("ada@EXAMPLE.com").id == ada
    found = d.find_users_by_email(["ADA@example.com", "missing@example.com"])
    assert found["ADA@example.com"].id == ada
    assert found["missing@example.com"] is None

    with pytest.raises(userdir.UserNotFoundError) as info:
        d.get_user("00000000-0000-4000-8000-000000000000")
    assert info.value.code == "object_not_found"
    assert info.value.request_id

    first = d.list_page(page_size=2)
    second = d.list_page(first.next_cursor, page_size=2)
    assert [u.id for u in first.users + second.users] == [u.id for u in users[:4]]


def test_notion_wrong_token(open_dir: Any) -> None:
    emu = NotionEmulator()
    d = open_dir(emu, "notion", token="wrong")
    with pytest.raises(userdir.AuthenticationError) as info:
        list(d.iter_users())
    assert info.value.code == "unauthorized"
    assert info.value.status_code == 401


def test_notion_without_email_capability(open_dir: Any) -> None:
    emu = NotionEmulator(email_capability=False)
    emu.add_user(name="Ada", email="ada@example.com")
    d = open_dir(emu, "notion", token=emu.token)
    assert d.find_user_by_email("ada@example.com") is None
    assert all(u.email is None for u in d.iter_users())


# -- org API ----------------------------------------------------------------------------


def test_org_api_flow(open_dir: Any) -> None:
    emu = OrgApiEmulator()
    emu.populate(250)
    alice = emu.add_user(
        email="Alice+Ops@Example.com",
        first_name="Alice",
        last_name="Smith",
        user_role="Admin",
        calendar_link="https://cal.example/alice",
    )
    d = open_dir(emu, "org_api", api_key=emu.api_key, concurrency=3)

    users = list(d.iter_users())
    assert [u.id for u in users] == [u["id"] for u in emu.users]
    assert len(users) == 251
    list_requests = [r for r in emu.requests if r.path == "/list-users"]
    assert list_requests[0].params == {"page": "0", "page_size": "100"}
    assert all(r.headers["authorization"] == emu.api_key for r in emu.requests)

    emu.clear_requests()
    user = d.find_user_by_email("alice+ops@example.COM")
    assert user.id == alice
    assert (user.name, user.role, user.extra["calendar_link"]) == (
        "Alice Smith",
        "Admin",
        "https://cal.example/alice",
    )
    # one request (speculative list pages of the walk above may still be landing)
    assert [r.params for r in emu.requests if r.path == "/fetch-user"] == [
        {"email": "alice+ops@example.COM"}
    ]
    assert d.get_user(alice) == user
    assert d.find_user_by_email("nobody@example.com") is None
    with pytest.raises(userdir.UserNotFoundError) as info:
        d.get_user("00000000-0000-4000-8000-000000000000")
    assert info.value.status_code == 400


def test_org_api_wrong_key(open_dir: Any) -> None:
    d = open_dir(OrgApiEmulator(), "org_api", api_key="wrong")
    with pytest.raises(userdir.AuthenticationError):
        d.get_user("x")


# -- REST -------------------------------------------------------------------------------


def test_rest_flow(open_dir: Any) -> None:
    emu = RestEmulator()
    emu.populate(250)
    d = open_dir(emu, "rest", token=emu.token)

    users = list(d.iter_users())
    assert [u.id for u in users] == [u["id"] for u in emu.users]
    pages = sorted(int(r.params["page"]) for r in emu.requests)
    assert pages == [1, 2, 3]

    expected = [u["id"] for u in emu.users if u["status"] == "active" and u["role"] == "admin"]
    emu.clear_requests()
    filtered = [u.id for u in d.iter_users(status=UserStatus.ACTIVE, role="admin")]
    assert filtered == expected
    assert all(r.params["status"] == "active" and r.params["role"] == "admin" for r in emu.requests)

    created = d.create_user(
        NewUser(
            email="New@Example.com",
            name="New Person",
            role="editor",
            password="pw-123456",
            settings={"theme": "dark"},
        )
    )
    assert created.status is UserStatus.PENDING
    assert emu.password_of(created.id) == "pw-123456"
    with pytest.raises(userdir.ConflictError):
        d.create_user(NewUser(email="new@example.com", name="Twin", password="pw-2"))

    updated = d.update_user(created.id, UserChanges(role="admin", status=UserStatus.ACTIVE))
    assert (updated.role, updated.status, updated.name) == (
        "admin",
        UserStatus.ACTIVE,
        "New Person",
    )
    assert updated.updated_at is not None
    put = [r for r in emu.requests if r.method == "PUT"][-1]
    assert put.json == {"role": "admin", "status": "active"}

    assert d.get_user(created.id).extra["settings"] == {"theme": "dark"}
    assert d.find_user_by_email("NEW@example.com").id == created.id
    d.delete_user(created.id)
    with pytest.raises(userdir.UserNotFoundError):
        d.get_user(created.id)
    with pytest.raises(userdir.UserNotFoundError):
        d.delete_user(created.id)


def test_rest_wrong_token(open_dir: Any) -> None:
    d = open_dir(RestEmulator(), "rest", token="wrong")
    with pytest.raises(userdir.AuthenticationError):
        list(d.iter_users())


@pytest.mark.parametrize("provider", ["notion", "org_api", "rest"])
def test_empty_directories(open_dir: Any, provider: str) -> None:
    emu = {"notion": NotionEmulator, "org_api": OrgApiEmulator, "rest": RestEmulator}[provider]()
    users = list(open_dir(emu, provider, **credentials(emu)).iter_users())
    assert len(users) == (1 if provider == "notion" else 0)  # Notion lists its own bot


# -- a cursor walk on a slow network (blocking directory) -------------------------------------


def slow_notion(pages: int, latency: float = 0.004) -> NotionEmulator:
    emu = NotionEmulator(latency=latency)
    emu.populate(pages * 100 - 1)  # plus the integration's bot: exactly `pages` pages
    return emu


def test_slow_cursor_walk_fetches_as_the_caller_goes() -> None:
    import time

    emu = slow_notion(8)
    with userdir.connect("notion", token=emu.token, transport=emu.transport) as d:
        users = d.iter_users()
        first = [next(users) for _ in range(300)]  # three pages consumed
        time.sleep(0.2)  # the caller is busy; a cursor walk asks for nothing meanwhile
        assert len(emu.requests) == 3
        rest = list(users)
    ids = [u.id for u in first + rest]
    assert ids == [u["id"] for u in emu.users]
    assert len(emu.requests) == 8


def test_slow_cursor_walk_stops_when_the_caller_does() -> None:
    import threading
    import time

    emu = slow_notion(20)
    before = threading.active_count()
    with userdir.connect("notion", token=emu.token, transport=emu.transport) as d:
        users = d.iter_users()
        for _ in range(350):
            next(users)
        users.close()
        time.sleep(0.3)
        settled = len(emu.requests)
        time.sleep(0.2)
        assert len(emu.requests) == settled < 20  # nothing more is fetched
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before  # the walker thread is gone


def test_slow_cursor_walk_raises_the_workers_error_in_the_caller() -> None:
    from userdir.testing import Fault

    emu = slow_notion(10)
    with userdir.connect("notion", token=emu.token, transport=emu.transport) as d:
        users = d.iter_users()
        got = [next(users) for _ in range(250)]
        emu.inject(Fault.status(400))  # every request from now on
        with pytest.raises(userdir.InvalidRequestError):
            got.extend(users)
    assert len(got) >= 250
