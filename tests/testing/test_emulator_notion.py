"""NotionEmulator: endpoints, shapes (against the recorded fixtures), auth, paging."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from userdir.testing import NotionEmulator

FIXTURES = Path(__file__).parents[1] / "fixtures" / "notion"
HEADERS = {"Authorization": "Bearer test-token", "Notion-Version": "2025-09-03"}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and value types, not values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def client(emu: NotionEmulator, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        transport=emu.transport,
        base_url="https://api.notion.com",
        headers=HEADERS if headers is None else headers,
    )


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"object", "status", "code", "message", "request_id"}
    assert body["object"] == "error"
    assert body["status"] == status
    assert body["code"] == code
    uuid.UUID(body["request_id"])
    return body


def test_list_has_the_recorded_shape() -> None:
    emu = NotionEmulator()
    emu.add_user(name="Ada Lovelace", email="ada@example.com", avatar_url="https://x/a.png")
    with client(emu) as c:
        body = c.get("/v1/users").json()
    recorded = fixture("list_users_1.json")
    assert list(body) == list(recorded)
    assert body["object"] == "list"
    assert body["type"] == "user"
    assert body["user"] == {}
    assert body["next_cursor"] is None
    assert body["has_more"] is False
    bot, person = body["results"]
    assert shape(bot) == shape(recorded["results"][1])
    assert shape(person) == shape(fixture("list_users_6.json")["results"][0])
    assert person["person"] == {"email": "ada@example.com"}


def test_me_has_the_recorded_shape_and_is_listed() -> None:
    emu = NotionEmulator()
    with client(emu) as c:
        me = c.get("/v1/users/me").json()
        listed = c.get("/v1/users").json()["results"]
    assert shape(me) == shape(fixture("me_1.json"))
    assert me["id"] == emu.bot_id
    assert me["name"] == "userdir test integration"
    assert me["bot"]["owner"] == {"type": "workspace", "workspace": True}
    assert me["bot"]["workspace_name"] == "Emulated Workspace"
    assert me["bot"]["workspace_id"] == emu.workspace_id
    assert me["bot"]["workspace_limits"] == {"max_file_upload_size_in_bytes": 5242880}
    assert [u["id"] for u in listed] == [emu.bot_id]
    del me["request_id"]
    assert listed[0] == me


def test_retrieve_by_dashed_and_plain_id() -> None:
    emu = NotionEmulator()
    user_id = emu.add_user(name="Ada", email="ada@example.com")
    with client(emu) as c:
        dashed = c.get(f"/v1/users/{user_id}")
        plain = c.get(f"/v1/users/{user_id.replace('-', '')}")
        bot = c.get(f"/v1/users/{emu.bot_id}").json()
    assert dashed.status_code == plain.status_code == 200
    assert dashed.json()["id"] == plain.json()["id"] == user_id
    assert set(dashed.json()) == {
        "object",
        "id",
        "name",
        "avatar_url",
        "type",
        "person",
        "request_id",
    }
    assert shape(bot) == shape(fixture("retrieve_user_1.json"))


def test_retrieve_errors() -> None:
    emu = NotionEmulator()
    missing = str(uuid.uuid4())
    with client(emu) as c:
        bad = assert_error(c.get("/v1/users/not-a-uuid"), 400, "validation_error")
        unknown = assert_error(c.get(f"/v1/users/{missing}"), 404, "object_not_found")
    assert bad["message"] == (
        'path failed validation: path.user_id should be a valid uuid, instead was `"not-a-uuid"`.'
    )
    assert unknown["message"] == f"Could not find user with ID: {missing}."


def test_auth_and_version() -> None:
    emu = NotionEmulator(token="secret")
    with client(emu, {"Notion-Version": "2025-09-03"}) as c:
        body = assert_error(c.get("/v1/users"), 401, "unauthorized")
        assert body["message"] == "API token is invalid."
        assert set(body) == set(fixture("list_users_error_401_1.json"))
        headers = {"Authorization": "Bearer wrong"}
        assert_error(c.get("/v1/users/me", headers=headers), 401, "unauthorized")
        headers = {"Authorization": "secret"}
        assert_error(c.get("/v1/users/me", headers=headers), 401, "unauthorized")
    with client(emu, {"Authorization": "Bearer secret"}) as c:
        body = assert_error(c.get("/v1/users"), 400, "missing_version")
        assert body["message"] == (
            "Notion-Version header failed validation: Notion-Version header should be defined, "
            "instead was `undefined`."
        )
        ok = c.get("/v1/users", headers={"Notion-Version": "2022-06-28"})
        assert ok.status_code == 200


def test_unknown_paths_and_methods() -> None:
    emu = NotionEmulator()
    with client(emu) as c:
        for response in (
            c.get("/v1/people"),
            c.post("/v1/users", json={}),
            c.delete("/v1/users/me"),
            c.get("/v1/users/me/extra"),
        ):
            body = assert_error(response, 400, "invalid_request_url")
            assert body["message"] == "Invalid request URL."


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "101",
            "body failed validation: body.page_size should be less than or equal to `100`, "
            "instead was `101`.",
        ),
        (
            "0",
            "body failed validation: body.page_size should be greater than or equal to `1`, "
            "instead was `0`.",
        ),
        ("abc", 'body failed validation: body.page_size should be a number, instead was `"abc"`.'),
    ],
)
def test_page_size_validation(value: str, message: str) -> None:
    emu = NotionEmulator()
    with client(emu) as c:
        body = assert_error(
            c.get("/v1/users", params={"page_size": value}), 400, "validation_error"
        )
    assert body["message"] == message


def test_unknown_cursor() -> None:
    emu = NotionEmulator()
    with client(emu) as c:
        for cursor in (str(uuid.uuid4()), "garbage"):
            response = c.get("/v1/users", params={"start_cursor": cursor})
            assert_error(response, 400, "validation_error")


def test_cursor_walk_yields_every_user_once() -> None:
    emu = NotionEmulator()
    emu.populate(249)
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    with client(emu) as c:
        while True:
            params: dict[str, Any] = {"page_size": 100}
            if cursor:
                params["start_cursor"] = cursor
            body = c.get("/v1/users", params=params).json()
            pages += 1
            seen.extend(user["id"] for user in body["results"])
            if not body["has_more"]:
                assert body["next_cursor"] is None
                break
            cursor = body["next_cursor"]
            assert cursor == [u["id"] for u in emu.users][len(seen)]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 250 == len(emu)
    assert seen == [u["id"] for u in emu.users]


def test_default_page_size_is_100() -> None:
    emu = NotionEmulator()
    emu.populate(150)
    with client(emu) as c:
        body = c.get("/v1/users").json()
    assert len(body["results"]) == 100
    assert body["has_more"] is True


def test_guests_are_neither_listed_nor_retrievable() -> None:
    emu = NotionEmulator()
    guest = emu.add_user(name="Guest", email="guest@example.com", guest=True)
    with client(emu) as c:
        ids = [u["id"] for u in c.get("/v1/users").json()["results"]]
        assert guest not in ids
        assert_error(c.get(f"/v1/users/{guest}"), 404, "object_not_found")
    assert len(emu) == 1


def test_people_without_visible_email_and_bots() -> None:
    emu = NotionEmulator()
    hidden = emu.add_user(name="Hidden", email="h@example.com", email_visible=False)
    no_email = emu.add_user(name="No Email")
    verified = emu.add_user(name="V", email="v@example.com", email_verified=True)
    bot = emu.add_user(name="Zapier", kind="bot")
    owned = emu.add_user(name="Other", kind="bot", workspace_name="Elsewhere")
    with client(emu) as c:
        by_id = {u["id"]: u for u in c.get("/v1/users").json()["results"]}
    assert by_id[hidden]["person"] == {}
    assert by_id[no_email]["person"] == {}
    assert by_id[verified]["person"] == {"email": "v@example.com", "email_verified": True}
    assert by_id[bot]["bot"] == {}
    assert list(by_id[bot]) == list(fixture("list_users_7.json")["results"][1])
    assert by_id[owned]["bot"] == {
        "owner": {"type": "workspace", "workspace": True},
        "workspace_name": "Elsewhere",
    }


def test_without_email_capability_no_email_is_shown() -> None:
    emu = NotionEmulator(email_capability=False)
    user_id = emu.add_user(name="Ada", email="ada@example.com")
    emu.populate(3)
    with client(emu) as c:
        listed = c.get("/v1/users").json()["results"]
        single = c.get(f"/v1/users/{user_id}").json()
    assert all(u["person"] == {} for u in listed if u["type"] == "person")
    assert single["person"] == {}
    assert "ada@example.com" not in json.dumps(emu.users)


def test_listing_follows_changes_after_a_page_was_served() -> None:
    emu = NotionEmulator()
    user_id = emu.add_user(name="Ada", email="ada@example.com", id="1" * 32)

    def listed() -> dict[str, Any]:
        with client(emu) as c:
            return {u["id"]: u for u in c.get("/v1/users").json()["results"]}

    assert listed()[user_id]["person"] == {"email": "ada@example.com"}
    emu.email_capability = False
    assert listed()[user_id]["person"] == {}
    emu.email_capability = True
    assert emu.remove_user(user_id)
    assert user_id not in listed()
    emu.add_user(name="Ada Lovelace", email="ada@new.example", id="1" * 32)
    assert listed()[user_id]["name"] == "Ada Lovelace"
    assert listed()[user_id]["person"] == {"email": "ada@new.example"}


def test_add_user_validation() -> None:
    emu = NotionEmulator()
    user_id = emu.add_user(name="A", id="0" * 32)
    assert user_id == "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ValueError, match="already exists"):
        emu.add_user(name="B", id=user_id)
    with pytest.raises(ValueError, match="kind"):
        emu.add_user(name="C", kind="robot")
    with pytest.raises(ValueError, match="valid Notion id"):
        emu.add_user(name="D", id="nope")


def test_remove_user() -> None:
    emu = NotionEmulator()
    ids = emu.populate(3)
    assert emu.remove_user(ids[1]) is True
    assert emu.remove_user(ids[1]) is False
    assert [u["id"] for u in emu.users] == [emu.bot_id, ids[0], ids[2]]
    with client(emu) as c:
        page = c.get("/v1/users", params={"page_size": 2}).json()
        assert page["next_cursor"] == ids[2]
        rest = c.get("/v1/users", params={"start_cursor": ids[2]}).json()
    assert [u["id"] for u in rest["results"]] == [ids[2]]
