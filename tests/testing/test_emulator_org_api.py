"""OrgApiEmulator: endpoints, error bodies, auth, paging and email lookups."""

from __future__ import annotations

import uuid

import httpx
import pytest

from userdir.testing import OrgApiEmulator

USER_KEYS = [
    "id",
    "email",
    "username",
    "first_name",
    "last_name",
    "picture_url",
    "user_role",
    "calendar_link",
]


def client(emu: OrgApiEmulator, key: str | None = "test-key") -> httpx.Client:
    headers = {} if key is None else {"Authorization": key}
    return httpx.Client(transport=emu.transport, base_url="https://org.example", headers=headers)


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": message}


def test_list_shape_and_defaults() -> None:
    emu = OrgApiEmulator()
    alice = emu.add_user(
        email="alice@example.com",
        first_name="Alice",
        last_name="Smith",
        username="alice",
        user_role="Admin",
        picture_url="https://example.com/alice.jpg",
        calendar_link="https://calendly.com/alice",
    )
    emu.populate(12)
    with client(emu) as c:
        body = c.get("/list-users").json()
    assert list(body) == ["users", "page", "page_size", "has_more"]
    assert body["page"] == 0
    assert body["page_size"] == 10
    assert body["has_more"] is True
    assert len(body["users"]) == 10
    assert body["users"][0] == {
        "id": alice,
        "email": "alice@example.com",
        "username": "alice",
        "first_name": "Alice",
        "last_name": "Smith",
        "picture_url": "https://example.com/alice.jpg",
        "user_role": "Admin",
        "calendar_link": "https://calendly.com/alice",
    }
    assert all(list(user) == USER_KEYS for user in body["users"])
    uuid.UUID(alice)


def test_page_math() -> None:
    emu = OrgApiEmulator()
    ids = emu.populate(25)
    seen: list[str] = []
    with client(emu) as c:
        for page in range(3):
            body = c.get("/list-users", params={"page": page, "page_size": 10}).json()
            assert body["page"] == page
            assert body["has_more"] is (page < 2)
            seen.extend(user["id"] for user in body["users"])
        past = c.get("/list-users", params={"page": 3, "page_size": 10}).json()
        exact = c.get("/list-users", params={"page": 0, "page_size": 25}).json()
        big = c.get("/list-users", params={"page_size": 100}).json()
    assert seen == ids
    assert past == {"users": [], "page": 3, "page_size": 10, "has_more": False}
    assert exact["has_more"] is False
    assert len(big["users"]) == 25


@pytest.mark.parametrize("page_size", ["0", "101", "-1", "ten", "1.5", ""])
def test_invalid_page_size(page_size: str) -> None:
    with client(OrgApiEmulator()) as c:
        response = c.get("/list-users", params={"page_size": page_size})
    assert_error(response, 400, "page_size must be between 1 and 100")


@pytest.mark.parametrize("page", ["-1", "x", "0.5"])
def test_invalid_page(page: str) -> None:
    with client(OrgApiEmulator()) as c:
        response = c.get("/list-users", params={"page": page})
    assert_error(response, 400, "page must be a non-negative integer")


def test_fetch_by_id_and_email() -> None:
    emu = OrgApiEmulator()
    plus = emu.add_user(email="Bob+Tag@Example.com", first_name="Bob")
    with client(emu) as c:
        by_id = c.get("/fetch-user", params={"id": plus})
        by_email = c.get("/fetch-user", params={"email": "bob+tag@example.COM"})
        encoded = c.get("/fetch-user?email=bob%2Btag%40example.com")
        # An unencoded '+' in a query string means a space, so this is another address.
        literal_plus = c.get("/fetch-user?email=bob+tag@example.com")
    assert by_id.status_code == 200
    assert list(by_id.json()) == ["user"]
    assert by_id.json()["user"]["id"] == plus
    assert by_email.json() == by_id.json() == encoded.json()
    assert_error(literal_plus, 400, "User not found")
    assert emu.requests[-1].params == {"email": "bob tag@example.com"}
    assert emu.requests[-2].params == {"email": "bob+tag@example.com"}


def test_fetch_errors() -> None:
    emu = OrgApiEmulator()
    user_id = emu.add_user(email="a@example.com")
    with client(emu) as c:
        assert_error(c.get("/fetch-user"), 400, "Provide exactly one of id or email")
        both = c.get("/fetch-user", params={"id": user_id, "email": "a@example.com"})
        assert_error(both, 400, "Provide exactly one of id or email")
        missing = c.get("/fetch-user", params={"id": str(uuid.uuid4())})
        assert_error(missing, 400, "User not found")
        assert_error(c.get("/fetch-user", params={"email": "b@example.com"}), 400, "User not found")


def test_auth() -> None:
    emu = OrgApiEmulator(api_key="k-123")
    for key in (None, "Bearer k-123", "k-12", "wrong"):
        with client(emu, key) as c:
            assert_error(c.get("/list-users"), 401, "Invalid or missing API key")
    with client(emu, "k-123") as c:
        assert c.get("/list-users").status_code == 200


def test_unknown_paths_and_methods() -> None:
    with client(OrgApiEmulator()) as c:
        assert_error(c.get("/users"), 404, "Not found")
        assert_error(c.post("/list-users"), 405, "Method not allowed")


def test_add_user_defaults_and_uniqueness() -> None:
    emu = OrgApiEmulator()
    emu.add_user(email="carol@example.com")
    assert emu.users[0]["username"] == "carol"
    assert emu.users[0]["user_role"] == "Member"
    assert emu.users[0]["calendar_link"] is None
    with pytest.raises(ValueError, match="email"):
        emu.add_user(email="CAROL@example.com")
    assert len(emu) == 1


def test_remove_user() -> None:
    emu = OrgApiEmulator()
    ids = emu.populate(3)
    email = emu.users[1]["email"]
    assert emu.remove_user(ids[1])
    assert not emu.remove_user(ids[1])
    with client(emu) as c:
        assert_error(c.get("/fetch-user", params={"email": email}), 400, "User not found")
    assert [u["id"] for u in emu.users] == [ids[0], ids[2]]
