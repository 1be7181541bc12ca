"""Every emulator's ``add_user`` takes the provider-neutral fields: email, name, role, status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from userdir import UserStatus
from userdir.testing import Emulator, NotionEmulator, OrgApiEmulator, RestEmulator, ScimEmulator

NEUTRAL: dict[str, Any] = {
    "email": "Ada.Lovelace@example.com",
    "name": "Ada King Lovelace",
    "role": "admin",
    "status": "inactive",
}
EMULATORS: dict[str, type[Emulator]] = {
    "notion": NotionEmulator,
    "org_api": OrgApiEmulator,
    "rest": RestEmulator,
    "scim": ScimEmulator,
}


@pytest.mark.parametrize(
    ("provider", "role", "status"),
    [
        # Notion users have neither a role nor a status; the org API has no status
        ("notion", None, UserStatus.UNKNOWN),
        ("org_api", "admin", UserStatus.UNKNOWN),
        ("rest", "admin", UserStatus.INACTIVE),
        ("scim", "admin", UserStatus.INACTIVE),
    ],
)
@pytest.mark.parametrize("given_status", ["inactive", UserStatus.INACTIVE])
def test_neutral_fields_map_back_through_connect(
    connect: Callable[..., Any],
    provider: str,
    role: str | None,
    status: UserStatus,
    given_status: str,
) -> None:
    emulator: Any = EMULATORS[provider]()
    user_id = emulator.add_user(**{**NEUTRAL, "status": given_status})
    d = connect(provider, **emulator.connect_options())
    found = d.find_user_by_email("ada.lovelace@EXAMPLE.com")
    assert (found.id, found.email, found.name, found.role, found.status) == (
        user_id,
        NEUTRAL["email"],
        NEUTRAL["name"],
        role,
        status,
    )
    people = [u for u in d.iter_users() if u.email]  # Notion lists its integration's bot too
    assert people == [found]


def test_org_api_stores_neutral_fields_in_its_native_ones() -> None:
    emulator = OrgApiEmulator()
    emulator.add_user(**NEUTRAL)
    emulator.add_user(email="cher@example.com", name="Cher")
    emulator.add_user(email="bo@example.com", first_name="Bo", user_role="Owner")
    assert [
        (u["first_name"], u["last_name"], u["user_role"], u["username"]) for u in emulator.users
    ] == [
        ("Ada", "King Lovelace", "admin", "Ada.Lovelace"),
        ("Cher", "", "Member", "cher"),
        ("Bo", "", "Owner", "bo"),
    ]
    assert all("status" not in u for u in emulator.users)


def test_rest_stores_a_user_status_as_its_plain_value() -> None:
    emulator = RestEmulator()
    emulator.add_user(email="a@example.com", name="A", status=UserStatus.PENDING)
    (stored,) = emulator.users
    assert type(stored["status"]) is str
    assert stored["status"] == "pending"


def test_notion_checks_but_does_not_store_role_and_status() -> None:
    emulator = NotionEmulator()
    emulator.add_user(**NEUTRAL)
    person = emulator.users[-1]
    assert person["person"] == {"email": NEUTRAL["email"]}
    assert "role" not in person
    assert "status" not in person


@pytest.mark.parametrize("provider", sorted(EMULATORS))
def test_unknown_status_is_refused_naming_it(provider: str) -> None:
    emulator: Any = EMULATORS[provider]()
    with pytest.raises(ValueError, match=r"status must be one of .*got 'retired'"):
        emulator.add_user(email="a@example.com", name="A", status="retired")
    assert [u for u in emulator.users if u.get("type") != "bot"] == []


def test_rest_refuses_unknown_which_it_cannot_answer() -> None:
    with pytest.raises(ValueError, match="status must be one of active, inactive, pending"):
        RestEmulator().add_user(email="a@example.com", name="A", status=UserStatus.UNKNOWN)


def test_scim_refuses_pending_which_it_cannot_answer() -> None:
    with pytest.raises(ValueError, match="no pending state"):
        ScimEmulator().add_user(email="a@example.com", name="A", status=UserStatus.PENDING)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Ada Lovelace", "first_name": "Ada"}, "give name or first_name/last_name"),
        ({"name": "Ada Lovelace", "last_name": "Lovelace"}, "give name or first_name/last_name"),
        ({"role": "admin", "user_role": "Admin"}, "give role or user_role"),
    ],
)
def test_org_api_refuses_a_neutral_field_with_its_native_twin(
    fields: dict[str, str], message: str
) -> None:
    emulator = OrgApiEmulator()
    with pytest.raises(ValueError, match=message):
        emulator.add_user(email="ada@example.com", **fields)
    assert len(emulator) == 0


def test_notion_refuses_a_role_that_is_not_text() -> None:
    with pytest.raises(ValueError, match="role must be a string"):
        NotionEmulator().add_user(name="A", role=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", sorted(EMULATORS))
def test_credentials_are_the_connect_option(provider: str) -> None:
    default = EMULATORS[provider]()
    custom: Any = EMULATORS[provider]("s3cret")
    option = "api_key" if provider == "org_api" else "token"
    assert default.credentials == {option: "test-key" if provider == "org_api" else "test-token"}
    assert custom.credentials == {option: "s3cret"}
