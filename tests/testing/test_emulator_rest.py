"""RestEmulator: CRUD endpoints, validation, error bodies, paging and filters."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from userdir.testing import RestEmulator

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def client(emu: RestEmulator, token: str | None = "test-token") -> httpx.Client:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.Client(transport=emu.transport, base_url="https://rest.example", headers=headers)


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert list(body["error"]) == ["code", "message"]
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    return message


def new_user(**extra: Any) -> dict[str, Any]:
    return {"email": "jane@example.com", "name": "Jane Smith", "password": "pw123", **extra}


def test_create_get_update_delete() -> None:
    emu = RestEmulator()
    with client(emu) as c:
        created = c.post(
            "/api/v1/users",
            json=new_user(role="editor", settings={"theme": "dark", "notifications": True}),
        )
        assert created.status_code == 201
        data = created.json()["data"]
        assert data["id"] == "usr_100001"
        assert data["status"] == "pending"
        assert data["role"] == "editor"
        assert ISO.match(data["created_at"])
        assert set(data) == {"id", "email", "name", "role", "status", "created_at"}
        assert emu.password_of("usr_100001") == "pw123"

        got = c.get("/api/v1/users/usr_100001").json()["data"]
        assert got["settings"] == {"theme": "dark", "notifications": True}
        assert "password" not in got

        updated = c.put(
            "/api/v1/users/usr_100001",
            json={"name": "Jane Smith-Johnson", "status": "active", "password": "new"},
        )
        assert updated.status_code == 200
        data = updated.json()["data"]
        assert data["name"] == "Jane Smith-Johnson"
        assert data["status"] == "active"
        assert ISO.match(data["updated_at"])
        assert "password" not in data
        assert emu.password_of("usr_100001") == "new"

        deleted = c.delete("/api/v1/users/usr_100001")
        assert deleted.status_code == 200
        assert deleted.json() == {"success": True, "message": "User deleted successfully"}
        assert_error(c.get("/api/v1/users/usr_100001"), 404, "not_found")
        assert_error(c.delete("/api/v1/users/usr_100001"), 404, "not_found")
        assert_error(c.put("/api/v1/users/usr_100001", json={}), 404, "not_found")
    assert len(emu) == 0


def test_sequential_ids_and_default_settings() -> None:
    emu = RestEmulator()
    with client(emu) as c:
        a = c.post("/api/v1/users", json=new_user()).json()["data"]["id"]
        b = c.post("/api/v1/users", json=new_user(email="b@example.com")).json()["data"]["id"]
        got = c.get(f"/api/v1/users/{b}").json()["data"]
    assert (a, b) == ("usr_100001", "usr_100002")
    assert got["settings"] == {"theme": "light", "notifications": True}
    assert "last_login" not in got
    assert "updated_at" not in got


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "x", "password": "p"},
        {"email": "nope", "name": "x", "password": "p"},
        {"email": "a@example.com", "password": "p"},
        {"email": "a@example.com", "name": "x"},
        {"email": "a@example.com", "name": "", "password": "p"},
        {"email": "a@example.com", "name": "x", "password": "p", "status": "active"},
        {"email": "a@example.com", "name": "x", "password": "p", "settings": []},
        ["not", "an", "object"],
    ],
)
def test_create_validation(payload: Any) -> None:
    emu = RestEmulator()
    with client(emu) as c:
        assert_error(c.post("/api/v1/users", json=payload), 400, "bad_request")
    assert len(emu) == 0


def test_invalid_json_body() -> None:
    emu = RestEmulator()
    user_id = emu.add_user(email="a@example.com", name="A")
    with client(emu) as c:
        message = assert_error(c.post("/api/v1/users", content=b"{nope"), 400, "bad_request")
        assert message == "Invalid JSON body"
        assert_error(c.put(f"/api/v1/users/{user_id}", content=b"]"), 400, "bad_request")


def test_email_conflicts() -> None:
    emu = RestEmulator()
    first = emu.add_user(email="taken@example.com", name="A")
    second = emu.add_user(email="other@example.com", name="B")
    with client(emu) as c:
        dup = c.post("/api/v1/users", json=new_user(email="TAKEN@example.com"))
        assert assert_error(dup, 409, "conflict") == "Email already in use"
        clash = c.put(f"/api/v1/users/{second}", json={"email": "taken@example.com"})
        assert_error(clash, 409, "conflict")
        same = c.put(f"/api/v1/users/{first}", json={"email": "Taken@example.com"})
        assert same.status_code == 200
        moved = c.put(f"/api/v1/users/{second}", json={"email": "new@example.com"})
        assert moved.status_code == 200
        reuse = c.post("/api/v1/users", json=new_user(email="other@example.com"))
        assert reuse.status_code == 201


@pytest.mark.parametrize(
    "payload",
    [{"nickname": "x"}, {"status": "banned"}, {"email": "bad"}, {"settings": "dark"}, {"name": 3}],
)
def test_update_validation(payload: dict[str, Any]) -> None:
    emu = RestEmulator()
    user_id = emu.add_user(email="a@example.com", name="A")
    before = emu.users
    with client(emu) as c:
        assert_error(c.put(f"/api/v1/users/{user_id}", json=payload), 400, "bad_request")
    assert emu.users == before


def test_list_shape_and_page_math() -> None:
    emu = RestEmulator()
    ids = emu.populate(45)
    seen: list[str] = []
    with client(emu) as c:
        first = c.get("/api/v1/users").json()
        assert list(first) == ["data", "meta"]
        assert first["meta"] == {"total": 45, "page": 1, "limit": 20, "pages": 3}
        for page in (1, 2, 3):
            body = c.get("/api/v1/users", params={"page": page, "limit": 20}).json()
            seen.extend(user["id"] for user in body["data"])
        past = c.get("/api/v1/users", params={"page": 9}).json()
    assert seen == ids
    assert past["data"] == []
    assert past["meta"]["pages"] == 3
    item = first["data"][0]
    assert "settings" not in item
    assert {"id", "email", "name", "role", "status", "created_at", "last_login"} == set(item)


def test_empty_list_has_zero_pages() -> None:
    with client(RestEmulator()) as c:
        body = c.get("/api/v1/users").json()
    assert body == {"data": [], "meta": {"total": 0, "page": 1, "limit": 20, "pages": 0}}


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "x"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "many"},
        {"status": "deleted"},
    ],
)
def test_list_validation(params: dict[str, str]) -> None:
    with client(RestEmulator()) as c:
        assert_error(c.get("/api/v1/users", params=params), 400, "bad_request")


def test_filters() -> None:
    emu = RestEmulator()
    emu.add_user(email="a@example.com", name="A", role="admin", status="active")
    emu.add_user(email="b@example.com", name="B", role="member", status="inactive")
    emu.add_user(email="c@example.com", name="C", role="admin", status="pending")
    emu.add_user(email="d@example.com", name="D", role="admin", status="active")
    with client(emu) as c:
        admins = c.get("/api/v1/users", params={"role": "admin", "limit": 2}).json()
        active_admins = c.get("/api/v1/users", params={"role": "admin", "status": "active"}).json()
        inactive = c.get("/api/v1/users", params={"status": "inactive"}).json()
    assert [u["name"] for u in admins["data"]] == ["A", "C"]
    assert admins["meta"] == {"total": 3, "page": 1, "limit": 2, "pages": 2}
    assert [u["name"] for u in active_admins["data"]] == ["A", "D"]
    assert [u["name"] for u in inactive["data"]] == ["B"]


def test_auth_and_unknown_paths() -> None:
    emu = RestEmulator(token="t0k")
    for token in (None, "wrong"):
        with client(emu, token) as c:
            message = assert_error(c.get("/api/v1/users"), 401, "unauthorized")
            assert message == "Authentication required"
    with httpx.Client(transport=emu.transport, headers={"Authorization": "t0k"}) as c:
        assert_error(c.get("http://x/api/v1/users"), 401, "unauthorized")
    with client(emu, "t0k") as c:
        assert_error(c.get("/api/v2/users"), 404, "not_found")
        assert_error(c.patch("/api/v1/users/usr_1", json={}), 404, "not_found")
        assert_error(c.get("/api/v1/users/a/b"), 404, "not_found")


def test_add_user_fields() -> None:
    emu = RestEmulator()
    user_id = emu.add_user(
        email="x@example.com",
        name="X",
        created_at="2023-01-15T08:30:00Z",
        last_login="2023-06-20T14:22:10Z",
        id="usr_123456",
    )
    assert user_id == "usr_123456"
    assert emu.users == [
        {
            "id": "usr_123456",
            "email": "x@example.com",
            "name": "X",
            "role": "member",
            "status": "active",
            "created_at": "2023-01-15T08:30:00Z",
            "last_login": "2023-06-20T14:22:10Z",
            "settings": {"theme": "light", "notifications": True},
        }
    ]
    with pytest.raises(ValueError, match="status"):
        emu.add_user(email="y@example.com", name="Y", status="gone")
    with pytest.raises(ValueError, match="email"):
        emu.add_user(email="X@example.com", name="Y")


def test_state_changes_between_pages_are_visible() -> None:
    emu = RestEmulator()
    ids = emu.populate(30)
    with client(emu) as c:
        first = c.get("/api/v1/users", params={"page": 1, "limit": 10}).json()
        assert [u["id"] for u in first["data"]] == ids[:10]
        emu.remove_user(ids[0])
        adder = threading.Thread(
            target=emu.add_user, kwargs={"email": "n@example.com", "name": "N"}
        )
        adder.start()
        adder.join()
        second = c.get("/api/v1/users", params={"page": 2, "limit": 10}).json()
        last = c.get("/api/v1/users", params={"page": 3, "limit": 10}).json()
    # Deleting a user of page 1 moves every later user one place up.
    assert [u["id"] for u in second["data"]] == ids[11:21]
    assert second["meta"]["total"] == 30
    assert last["data"][-1]["email"] == "n@example.com"


def test_concurrent_creates_from_threads() -> None:
    emu = RestEmulator()

    def create(i: int) -> str:
        with client(emu) as c:
            response = c.post("/api/v1/users", json=new_user(email=f"u{i}@example.com"))
            assert response.status_code == 201
            user_id: str = response.json()["data"]["id"]
            return user_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(create, range(64)))
    assert len(set(ids)) == 64 == len(emu)
    assert sorted(ids) == [f"usr_{100001 + i}" for i in range(64)]
