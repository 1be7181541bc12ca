"""Federation over the three emulators: find, find_many, identities, diff; sync and async."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import userdir
from userdir import LookupStatus, UserStatus
from userdir.testing import Fault, NotionEmulator, OrgApiEmulator, RestEmulator

PEOPLE = [
    # (first, last, email as HR has it, in notion?, app email or None, app status)
    ("Ada", "Lovelace", "ada@example.com", True, "Ada@Example.com", "active"),
    ("Grace", "Hopper", "grace@example.com", True, "GRACE@EXAMPLE.COM", "active"),
    ("Alan", "Turing", "alan@example.com", False, "alan@example.com", "inactive"),
    ("Edsger", "Dijkstra", "edsger@example.com", True, None, None),
]
LEFT = ("Mallory", "Gone", "mallory@example.com")  # left HR, still active in the app


@pytest.fixture
def world() -> dict[str, Any]:
    notion, org, rest = NotionEmulator(), OrgApiEmulator(), RestEmulator()
    for first, last, email, in_notion, app_email, app_status in PEOPLE:
        org.add_user(email=email, first_name=first, last_name=last, user_role="Member")
        if in_notion:
            notion.add_user(name=f"{first} {last}", email=email.upper())
        if app_email:
            rest.add_user(email=app_email, name=f"{first} {last}", role="member", status=app_status)
    rest.add_user(email=LEFT[2], name="Mallory Gone", role="admin", status="active")
    notion.add_user(name="Hidden Person", email=None)
    return {"notion": notion, "org": org, "rest": rest}


def directories(world: dict[str, Any], mode: str, **kw: Any) -> dict[str, Any]:
    connect = userdir.connect if mode == "sync" else userdir.connect_async
    return {
        "wiki": connect(
            "notion", token=world["notion"].token, transport=world["notion"].transport, **kw
        ),
        "hr": connect(
            "org_api",
            api_key=world.get("org_key", world["org"].api_key),
            base_url="https://hr.test",
            transport=world["org"].transport,
            **kw,
        ),
        "app": connect(
            "rest",
            token=world.get("rest_token", world["rest"].token),
            base_url="https://app.test",
            transport=world["rest"].transport,
            **kw,
        ),
    }


def run(mode: str, world: dict[str, Any], method: str, *args: Any, **kw: Any) -> Any:
    if mode == "sync":
        with userdir.Federation(directories(world, mode, **kw)) as fed:
            return getattr(fed, method)(*args)

    async def main() -> Any:
        async with userdir.AsyncFederation(directories(world, mode, **kw)) as fed:
            return await getattr(fed, method)(*args)

    return asyncio.run(main())


def test_find_everywhere_with_different_case(world: dict[str, Any], mode: str) -> None:
    result = run(mode, world, "find", "GRACE@example.COM")
    assert {n: u.name for n, u in result.users.items()} == {
        "wiki": "Grace Hopper",
        "hr": "Grace Hopper",
        "app": "Grace Hopper",
    }
    assert result.email_key == "grace@example.com"
    assert list(result.lookups) == ["wiki", "hr", "app"]


def test_find_not_there(world: dict[str, Any], mode: str) -> None:
    result = run(mode, world, "find", "alan@example.com")
    assert result.lookups["wiki"].status is LookupStatus.MISSING
    assert result.missing == ["wiki"]
    assert sorted(result.users) == ["app", "hr"]


@pytest.mark.parametrize("fault", ["auth", "drop"])
def test_one_directory_down_never_hides_the_others(
    world: dict[str, Any], mode: str, fault: str
) -> None:
    if fault == "auth":
        world["org_key"] = "revoked"  # every request now gets the service's 401
        expected: type = userdir.AuthenticationError
    else:
        world["org"].inject(Fault.drop(), times=100)
        expected = userdir.TransportError
    result = run(mode, world, "find", "ada@example.com")
    assert sorted(result.users) == ["app", "wiki"]
    assert result.lookups["hr"].status is LookupStatus.ERROR
    assert isinstance(result.errors["hr"], expected)
    assert json.loads(json.dumps(result.to_dict()))["lookups"]["hr"]["status"] == "error"


def test_find_asks_directories_concurrently(world: dict[str, Any], mode: str) -> None:
    for name, latency in (("notion", 0.05), ("org", 0.1), ("rest", 0.2)):
        world[name].latency = latency
    run(mode, world, "find", "ada@example.com")
    logs = [world[n].requests[0] for n in ("notion", "org", "rest")]
    # every directory's first request started before any other finished: they overlapped
    assert max(r.started_at for r in logs) < min(r.finished_at for r in logs)


def test_find_many(world: dict[str, Any], mode: str) -> None:
    emails = ["ADA@example.com", "mallory@example.com", "nobody@example.com"]
    results = run(mode, world, "find_many", emails)
    assert list(results) == emails
    assert sorted(results["ADA@example.com"].users) == ["app", "hr", "wiki"]
    assert sorted(results["mallory@example.com"].users) == ["app"]
    assert results["nobody@example.com"].users == {}
    # the org API looked each distinct email up once; the scanning ones listed once
    assert len([r for r in world["org"].requests if r.path == "/fetch-user"]) == 3
    assert len(world["rest"].requests) == 1


def test_identities(world: dict[str, Any], mode: str) -> None:
    identities = run(mode, world, "identities")
    merged = {i.email_key: sorted(i.directories) for i in identities if i.email_key}
    assert merged == {
        "ada@example.com": ["app", "hr", "wiki"],
        "grace@example.com": ["app", "hr", "wiki"],
        "alan@example.com": ["app", "hr"],
        "edsger@example.com": ["hr", "wiki"],
        "mallory@example.com": ["app"],
    }
    loose = [i for i in identities if i.email_key is None]
    # the hidden-email person and the integration's bot are kept apart, not merged
    assert sorted(u.name for i in loose for _, u in i.accounts) == [
        "Hidden Person",
        "userdir test integration",
    ]
    assert all(len(i.accounts) == 1 for i in loose)


def test_diff_is_the_offboarding_audit(world: dict[str, Any], mode: str) -> None:
    diff = run(mode, world, "diff", "hr", "app")
    assert [u.email for u in diff.only_in_b] == [LEFT[2]]
    assert diff.only_in_b[0].status is UserStatus.ACTIVE
    assert [u.email for u in diff.only_in_a] == ["edsger@example.com"]
    assert diff.differing == ()  # HR says nothing of status; roles agree ignoring case
    # (HR's account, the app's account) of everyone in both, in the app's order
    assert [(a.provider, a.email, b.provider, b.email) for a, b in diff.in_both] == [
        ("org_api", "ada@example.com", "rest", "Ada@Example.com"),
        ("org_api", "grace@example.com", "rest", "GRACE@EXAMPLE.COM"),
        ("org_api", "alan@example.com", "rest", "alan@example.com"),
    ]
    assert [b.status for _, b in diff.in_both] == [UserStatus.ACTIVE] * 2 + [UserStatus.INACTIVE]
    assert not diff.clean


def test_diff_reports_status_and_role_changes(mode: str) -> None:
    a, b = RestEmulator(token="a"), RestEmulator(token="b")
    a.add_user(email="x@example.com", name="X", role="admin", status="active")
    b.add_user(email="X@example.com", name="X", role="member", status="inactive")
    a.add_user(email="y@example.com", name="Y", role="member", status="active")
    b.add_user(email="y@example.com", name="Y", role="MEMBER", status="active")
    connect = userdir.connect if mode == "sync" else userdir.connect_async
    dirs = {
        "a": connect("rest", token="a", base_url="https://a.test", transport=a.transport),
        "b": connect("rest", token="b", base_url="https://b.test", transport=b.transport),
    }
    if mode == "sync":
        diff = userdir.Federation(dirs).diff("a", "b")
    else:
        diff = asyncio.run(userdir.AsyncFederation(dirs).diff("a", "b"))
    assert [(d.email_key, d.fields) for d in diff.differing] == [
        ("x@example.com", ("status", "role"))
    ]
    # the differing person is in both too
    pairs = [(a.role, b.role) for a, b in diff.in_both]
    assert pairs == [("admin", "member"), ("member", "MEMBER")]
    as_json = json.loads(json.dumps(diff.to_dict()))
    assert as_json["differing"][0]["fields"] == ["status", "role"]
    assert [(p["email_key"], p["a"]["email"], p["b"]["email"]) for p in as_json["in_both"]] == [
        ("x@example.com", "x@example.com", "X@example.com"),
        ("y@example.com", "y@example.com", "y@example.com"),
    ]
    assert as_json["counts"] == {
        "only_in_a": 0,
        "only_in_b": 0,
        "differing": 1,
        "in_both": 2,
        "unmatched_a": 0,
        "unmatched_b": 0,
    }
    assert diff.counts == as_json["counts"]


def test_identities_raise_naming_the_failing_directory(world: dict[str, Any], mode: str) -> None:
    world["rest_token"] = "revoked"
    with pytest.raises(userdir.AuthenticationError, match="app: "):
        run(mode, world, "identities")


def test_unknown_directory_in_diff(world: dict[str, Any], mode: str) -> None:
    with pytest.raises(userdir.InvalidArgumentError, match="no directory named 'payroll'"):
        run(mode, world, "diff", "hr", "payroll")


def test_bad_email_is_refused(world: dict[str, Any], mode: str) -> None:
    with pytest.raises(userdir.InvalidArgumentError):
        run(mode, world, "find", "not-an-email")
