"""Reconcile: plans from a source of truth, applied to REST emulators, sync and async.

The HR source is a REST emulator too (it has statuses); the target ("app") is the
REST emulator whose state every test checks after applying.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import userdir
from userdir import (
    Create,
    Deactivate,
    Delete,
    DirectoryUser,
    Limits,
    Plan,
    Protect,
    SafetyCheckError,
    Skip,
    Update,
    UserKind,
    UserStatus,
)
from userdir.testing import Fault, RestEmulator

from .conftest import Harness

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


def by_email(emulator: RestEmulator) -> dict[str, dict[str, Any]]:
    return {user["email"].lower(): user for user in emulator.users}


def writes(emulator: RestEmulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in emulator.requests if r.method != "GET"]


@pytest.fixture
def hr() -> RestEmulator:
    emu = RestEmulator(token="hr-token")
    emu.add_user(email="ada@example.com", name="Ada Lovelace", role="engineer")
    emu.add_user(email="grace@example.com", name="Grace Hopper", role="manager")
    emu.add_user(email="alan@example.com", name="Alan Turing", role="engineer")
    emu.add_user(email="kat@example.com", name="Katherine Johnson", role="engineer")
    emu.add_user(email="new.joiner@example.com", name="New Joiner", role="engineer")
    emu.add_user(email="left.recently@example.com", name="Left Recently", status="inactive")
    return emu


@pytest.fixture
def app() -> RestEmulator:
    emu = RestEmulator(token="app-token")
    emu.add_user(email="Ada@Example.com", name="Ada Lovelace", role="member")
    emu.add_user(email="grace@example.com", name="Grace Hopper", role="member")  # mover
    emu.add_user(email="alan@example.com", name="Alan M. Turing", role="member")  # renamed
    emu.add_user(
        email="kat@example.com", name="Katherine Johnson", role="member", status="inactive"
    )
    emu.add_user(email="mallory@example.com", name="Mallory Quinn", role="member")  # gone
    emu.add_user(email="left.recently@example.com", name="Left Recently", role="member")
    emu.add_user(email="root@example.com", name="Root", role="owner")  # protected role
    emu.add_user(email="svc-ci@example.com", name="CI", role="member")  # protected pattern
    return emu


ROLES = {"engineer": "member", "manager": "admin"}
PROTECT = Protect(emails=["svc-*@example.com"], roles=["owner"])


def test_joiners_movers_leavers(rc: Harness, hr: RestEmulator, app: RestEmulator) -> None:
    source, target = rc.connect(hr), rc.connect(app)
    plan = rc.plan(source, target, role_map=ROLES, protect=PROTECT)
    kinds = {(a.kind, a.email_key) for a in plan.changes}
    assert kinds == {
        ("create", "new.joiner@example.com"),
        ("update", "grace@example.com"),
        ("update", "alan@example.com"),
        ("update", "kat@example.com"),
        ("deactivate", "mallory@example.com"),
        ("deactivate", "left.recently@example.com"),
    }
    updates = {a.email_key: a for a in plan.actions if isinstance(a, Update)}
    assert dict(updates["grace@example.com"].changes) == {"role": "admin"}  # one Update
    assert dict(updates["alan@example.com"].changes) == {"name": "Alan Turing"}
    assert dict(updates["kat@example.com"].changes) == {"status": "active"}  # rehired
    assert updates["grace@example.com"].before["role"] == "member"
    assert [r.method for r in app.requests] == ["GET"] * len(app.requests)  # planning wrote nothing

    app.clear_requests()
    result = rc.apply(plan, target)
    assert result.ok
    assert result.counts == {"done": 6, "skipped": 2, "failed": 0, "not_run": 0}
    state = by_email(app)
    assert state["new.joiner@example.com"]["name"] == "New Joiner"
    assert state["new.joiner@example.com"]["role"] == "member"
    assert state["grace@example.com"]["role"] == "admin"
    assert state["alan@example.com"]["name"] == "Alan Turing"
    assert state["kat@example.com"]["status"] == "active"
    assert state["mallory@example.com"]["status"] == "inactive"
    assert state["left.recently@example.com"]["status"] == "inactive"
    assert state["root@example.com"]["status"] == "active"
    methods = sorted(method for method, _ in writes(app))
    assert methods == ["POST"] + ["PUT"] * 5  # no delete, no delete-and-create for movers
    puts = {r.path: r.json for r in app.requests if r.method == "PUT"}
    grace_id = updates["grace@example.com"].user_id
    assert puts[f"/api/v1/users/{grace_id}"] == {"role": "admin"}  # only the changed field

    again = rc.plan(source, target, role_map=ROLES, protect=PROTECT)
    assert again.counts["changes"] == 0


def test_protected_accounts_are_never_touched(
    rc: Harness, hr: RestEmulator, app: RestEmulator
) -> None:
    app.add_user(email="boss@example.com", name="Boss", role="Admin")  # default: admin protected
    source, target = rc.connect(hr), rc.connect(app)
    plan = rc.plan(source, target, role_map=ROLES, protect=PROTECT)
    skips = {a.email_key: a.reason for a in plan.actions if isinstance(a, Skip)}
    assert skips == {
        "root@example.com": "protected role owner: would deactivate",
        "svc-ci@example.com": "protected email svc-*@example.com: would deactivate",
    }
    # Protect(roles=["owner"]) replaced the default roles, so Boss may be deactivated:
    assert ("deactivate", "boss@example.com") in {(a.kind, a.email_key) for a in plan.actions}
    default = rc.plan(source, target, role_map=ROLES)
    assert "protected role Admin: would deactivate" in [
        a.reason for a in default.actions if isinstance(a, Skip)
    ]
    protected_ids = {
        u["id"] for u in app.users if u["email"] in ("root@example.com", "svc-ci@example.com")
    }
    app.clear_requests()
    result = rc.apply(plan, target)
    assert result.ok
    assert not [r for r in app.requests if r.path.rsplit("/", 1)[-1] in protected_ids]
    assert by_email(app)["root@example.com"]["status"] == "active"
    assert by_email(app)["svc-ci@example.com"]["status"] == "active"
    assert {r.reason for r in result.skipped} == set(skips.values())


def test_bots_are_protected_by_kind() -> None:
    source = [DirectoryUser(id="h1", provider="org_api", email="ada@example.com", name="Ada")]
    target = [
        DirectoryUser(id="a1", provider="rest", email="ada@example.com", name="Ada"),
        DirectoryUser(id="b1", provider="rest", email="bot@example.com", kind=UserKind.BOT),
        DirectoryUser(id="b2", provider="rest", kind=UserKind.BOT),
        DirectoryUser(id="x1", provider="rest", email=None, name="No Email"),
    ]
    plan = userdir.plan(source, target, now=NOW, limits=Limits.none())
    assert [(a.kind, a.user_id, getattr(a, "reason", None)) for a in plan.actions] == [
        ("skip", "x1", "no usable email: cannot be matched"),
        ("skip", "b1", "protected kind bot: would deactivate"),
    ]


def test_leavers_deleted_only_after_the_grace_period(rc: Harness, app: RestEmulator) -> None:
    hr = RestEmulator(token="hr-token")
    hr.add_user(email="ada@example.com", name="Ada", role="member")
    app.remove_user(next(u["id"] for u in app.users if u["email"] == "Ada@Example.com"))
    app.add_user(email="ada@example.com", name="Ada", role="member")
    source, target = rc.connect(hr), rc.connect(app)
    limits = Limits.none()

    first = rc.plan(source, target, limits=limits, delete_after="30d", protect=PROTECT)
    assert {a.kind for a in first.actions} == {"deactivate", "skip"}  # kat is inactive already
    assert not [a for a in first.actions if isinstance(a, Delete)]
    assert rc.apply(first, target).ok
    now = dt.datetime.now(dt.timezone.utc)

    soon = rc.plan(
        source,
        target,
        limits=limits,
        delete_after="30d",
        protect=PROTECT,
        now=now + dt.timedelta(days=1),
    )
    assert soon.counts["changes"] == 0  # deactivated, waiting out the grace period

    later = rc.plan(
        source,
        target,
        limits=limits,
        delete_after="30d",
        protect=PROTECT,
        now=now + dt.timedelta(days=31),
    )
    deletes = [a for a in later.actions if isinstance(a, Delete)]
    assert {a.email_key for a in deletes} == {
        "grace@example.com",
        "alan@example.com",
        "mallory@example.com",
        "left.recently@example.com",
    }  # root and svc-ci are protected; kat has no updated_at to measure by
    assert ("skip", "kat@example.com") in {(a.kind, a.email_key) for a in later.actions}
    assert all(a.reason.startswith("inactive since at least ") for a in deletes)
    app.clear_requests()
    assert rc.apply(later, target).ok
    assert sorted(by_email(app)) == [
        "ada@example.com",
        "kat@example.com",
        "root@example.com",
        "svc-ci@example.com",
    ]
    assert sorted(m for m, _ in writes(app)) == ["DELETE"] * 4


def test_delete_when_asked_and_ignore(rc: Harness, hr: RestEmulator, app: RestEmulator) -> None:
    source, target = rc.connect(hr), rc.connect(app)
    asked = rc.plan(source, target, role_map=ROLES, protect=PROTECT, on_missing="delete")
    deletes = {a.email_key for a in asked.actions if isinstance(a, Delete)}
    assert deletes == {"mallory@example.com", "left.recently@example.com"}
    ignored = rc.plan(source, target, role_map=ROLES, protect=PROTECT, on_missing="ignore")
    assert not [a for a in ignored.actions if isinstance(a, (Delete, Deactivate))]


def test_an_inactive_account_without_timestamps_is_not_deleted() -> None:
    target = [
        DirectoryUser(
            id="a1", provider="rest", email="gone@example.com", status=UserStatus.INACTIVE
        ),
        DirectoryUser(
            id="a2",
            provider="rest",
            email="old@example.com",
            status=UserStatus.INACTIVE,
            updated_at=NOW - dt.timedelta(days=90),
        ),
    ]
    source = [DirectoryUser(id="h1", provider="rest", email="x@example.com", name="X")]
    plan = userdir.plan(source, target, now=NOW, delete_after=30, limits=Limits.none())
    assert [(a.kind, a.user_id) for a in plan.actions] == [
        ("create", None),
        ("delete", "a2"),
        ("skip", "a1"),
    ]


def test_cap_exceeded_changes_nothing(rc: Harness, hr: RestEmulator, app: RestEmulator) -> None:
    source, target = rc.connect(hr), rc.connect(app)
    for cap in (5, "50%"):  # 6 changes; 50% of 8 accounts is 4
        with pytest.raises(SafetyCheckError) as caught:
            rc.plan(source, target, role_map=ROLES, protect=PROTECT, limits=Limits(max_changes=cap))
        error = caught.value
        assert error.check == "max_changes"
        assert error.counts["changes"] == 6
        assert error.counts["create"] == 1
        assert error.counts["update"] == 3
        assert error.counts["deactivate"] == 2
        assert error.counts["cap"] == (5 if cap == 5 else 4)
        assert "6 changes (1 create, 3 update, 2 deactivate)" in str(error)
    assert not writes(app)
    assert (
        rc.plan(
            source, target, role_map=ROLES, protect=PROTECT, limits=Limits(max_changes=6)
        ).counts["changes"]
        == 6
    )


def test_empty_or_shrunken_source_aborts(rc: Harness, app: RestEmulator) -> None:
    target = rc.connect(app)
    empty = RestEmulator(token="hr-token")
    with pytest.raises(SafetyCheckError) as caught:
        rc.plan(rc.connect(empty), target)
    assert caught.value.check == "empty_source"
    shrunk = RestEmulator(token="hr-token")
    shrunk.add_user(email="ada@example.com", name="Ada")
    shrunk.add_user(email="grace@example.com", name="Grace")
    with pytest.raises(SafetyCheckError) as caught:
        rc.plan(rc.connect(shrunk), target, protect=PROTECT)
    assert caught.value.check == "source_shrank"
    assert caught.value.counts["source_people"] == 2
    assert caught.value.counts["target_unprotected"] == 6
    assert "2 active people against 6 unprotected accounts" in str(caught.value)
    assert not writes(app)
    relaxed = rc.plan(
        rc.connect(shrunk), target, protect=PROTECT, limits=Limits(min_source_ratio=0.2)
    )
    assert relaxed.counts["deactivate"] == 3  # alan, mallory, left.recently


def test_a_source_of_leavers_only_counts_as_empty() -> None:
    source = [
        DirectoryUser(
            id=f"h{i}", provider="rest", email=f"p{i}@example.com", status=UserStatus.INACTIVE
        )
        for i in range(3)
    ]
    target = [DirectoryUser(id="a", provider="rest", email="p0@example.com")]
    with pytest.raises(SafetyCheckError) as caught:
        userdir.plan(source, target, now=NOW)
    assert caught.value.check == "empty_source"
    assert "lists nobody active" in str(caught.value)


def test_a_rehire_listed_twice_in_the_source_is_kept() -> None:
    source = [
        DirectoryUser(
            id="h1",
            provider="rest",
            email="ada@example.com",
            name="Ada",
            status=UserStatus.INACTIVE,
        ),  # the old record
        DirectoryUser(
            id="h2",
            provider="rest",
            email="ADA@example.com",
            name="Ada L.",
            status=UserStatus.ACTIVE,
        ),
    ]
    target = [
        DirectoryUser(
            id="a1", provider="rest", email="ada@example.com", name="Ada", status=UserStatus.ACTIVE
        )
    ]
    plan = userdir.plan(source, target, now=NOW)
    assert [(a.kind, dict(getattr(a, "changes", {}))) for a in plan.actions] == [
        ("update", {"name": "Ada L."})
    ]
    assert userdir.plan(source[::-1], target, now=NOW).actions == plan.actions


def test_a_failed_source_listing_never_makes_a_plan(
    rc: Harness, hr: RestEmulator, app: RestEmulator
) -> None:
    hr.populate(150)  # two pages
    hr.inject(Fault.status(500), start=1)  # the second page and its retries fail
    with pytest.raises(userdir.ServerError) as caught:
        rc.plan(rc.connect(hr), rc.connect(app), limits=Limits.none())
    assert str(caught.value).startswith("[rest] HTTP 500") and "hr: " in str(caught.value)
    assert not writes(app)


def test_target_changed_after_planning_is_skipped(
    rc: Harness, hr: RestEmulator, app: RestEmulator
) -> None:
    source, target = rc.connect(hr), rc.connect(app)
    plan = rc.plan(source, target, role_map=ROLES, protect=PROTECT)
    ids = {u["email"].lower(): u["id"] for u in app.users}
    with userdir.connect(
        "rest", base_url="https://e.test", transport=app.transport, **app.credentials
    ) as other:
        other.update_user(ids["grace@example.com"], userdir.UserChanges(role="viewer"))
    app.remove_user(ids["alan@example.com"])
    app.clear_requests()
    result = rc.apply(plan, target)
    reasons = {r.action.email_key: r.reason for r in result.skipped if r.action.changes_anything}
    assert reasons == {
        "grace@example.com": "changed since planning: role, updated_at",
        "alan@example.com": "the account is gone since planning",
    }
    assert by_email(app)["grace@example.com"]["role"] == "viewer"  # left as someone set it
    changed = {
        f"/api/v1/users/{ids['grace@example.com']}",
        f"/api/v1/users/{ids['alan@example.com']}",
    }
    assert not [p for m, p in writes(app) if p in changed]
    assert len(result.done) == 4


def test_an_edited_plan_is_refused(
    rc: Harness, hr: RestEmulator, app: RestEmulator, tmp_path: Path
) -> None:
    source, target = rc.connect(hr), rc.connect(app)
    plan = rc.plan(source, target, role_map=ROLES, protect=PROTECT)
    path = tmp_path / "plan.json"
    plan.save(path)
    document = json.loads(path.read_text())
    document["actions"][0]["fields"]["role"] = "admin"  # an edit after review
    path.write_text(json.dumps(document))
    edited = Plan.load(path)
    assert not edited.intact
    app.clear_requests()
    with pytest.raises(SafetyCheckError) as caught:
        rc.apply(edited, target)
    assert caught.value.check == "plan_hash"
    assert app.requests == []


def test_a_plan_for_another_provider_is_refused(rc: Harness, hr: RestEmulator) -> None:
    source = [DirectoryUser(id="h1", provider="org_api", email="ada@example.com", name="Ada")]
    target = [DirectoryUser(id="n1", provider="notion", email="bob@example.com", name="Bob")]
    plan = userdir.plan(source, target, limits=Limits.none(), now=NOW)
    with pytest.raises(SafetyCheckError) as caught:
        rc.apply(plan, rc.connect(hr))
    assert caught.value.check == "wrong_target"
    assert hr.requests == []


def test_plan_is_deterministic_and_reads_back() -> None:
    source = [
        DirectoryUser(
            id=f"h{i}",
            provider="org_api",
            email=f"p{i}@example.com",
            name=f"P {i}",
            role="Engineer",
        )
        for i in range(20)
    ]
    target = [
        DirectoryUser(
            id=f"a{i}",
            provider="rest",
            email=f"P{i}@example.com",
            name=f"P {i}",
            role="member",
            status=UserStatus.ACTIVE,
        )
        for i in range(5, 30)
    ]
    options: dict[str, Any] = {
        "now": NOW,
        "role_map": {"engineer": "member"},
        "limits": Limits.none(),
        "source_name": "hr",
        "target_name": "app",
    }
    plan = userdir.plan(source, target, **options)
    shuffled_source, shuffled_target = source[:], target[:]
    random.Random(7).shuffle(shuffled_source)
    random.Random(8).shuffle(shuffled_target)
    assert userdir.plan(shuffled_source, shuffled_target, **options).to_json() == plan.to_json()
    assert [a.kind for a in plan.actions] == ["create"] * 5 + ["deactivate"] * 10
    assert plan.actions[0] == Create(
        email="p0@example.com", email_key="p0@example.com", fields={"name": "P 0", "role": "member"}
    )
    assert [a.email_key for a in plan.actions[:5]] == sorted(a.email_key for a in plan.actions[:5])
    document = json.loads(plan.to_json())
    assert document["source"] == "hr" and document["target"] == "app"
    assert document["target_provider"] == "rest"
    assert document["created_at"] == NOW.isoformat()
    assert document["counts"]["create"] == 5 and document["counts"]["deactivate"] == 10
    assert document["hash"] == plan.hash == plan.content_hash()
    again = Plan.from_json(plan.to_json())
    assert again == plan and again.intact and again.actions == plan.actions


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fields": ["name", "salary"]}, "unknown field 'salary'"),
        ({"on_missing": "purge"}, "on_missing must be one of"),
        ({"match": "username"}, "match must be one of email, external_id, got 'username'"),
        ({"delete_after": "soon"}, "delete_after must be"),
        ({"limits": "none"}, "limits must be"),
        ({"role_map": {"a": 1}}, "role_map must map"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(userdir.InvalidArgumentError, match=message):
        userdir.plan([], [], **options)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Limits(max_changes=-1), "at least 0"),
        (lambda: Limits(max_changes="ten"), "not a percentage"),
        (lambda: Limits(min_source_ratio=2), "from 0 to 1"),
        (lambda: Protect(kinds=["robot"]), "unknown kind 'robot'"),
        (lambda: Protect(emails="a@b.c"), "list of strings"),
    ],
)
def test_bad_limits_and_protections_are_refused(build: Any, message: str) -> None:
    with pytest.raises(userdir.InvalidArgumentError, match=message):
        build()


def test_bad_plan_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(userdir.InvalidArgumentError, match="not valid JSON"):
        Plan.from_json("{")
    with pytest.raises(userdir.InvalidArgumentError, match="not a userdir plan"):
        Plan.from_json("{}")
    with pytest.raises(userdir.InvalidArgumentError, match="cannot read plan"):
        Plan.load(tmp_path / "missing.json")
    plan = userdir.plan(
        [DirectoryUser(id="1", provider="rest", email="a@example.com")],
        [],
        now=NOW,
        limits=Limits.none(),
    )
    document = plan.to_dict()
    document["actions"][0]["kind"] = "purge"
    with pytest.raises(userdir.InvalidArgumentError, match="unknown action kind 'purge'"):
        Plan.from_dict(document)
    update = {
        "kind": "update",
        "email": "a@example.com",
        "email_key": "a@example.com",
        "user_id": "u1",
        "before": {},
        "version": None,
        "changes": {"role": "admin"},
    }
    for edit, message in [
        ({"changes": {"password": "x"}}, r"actions\[0\]: changes: unknown field 'password'"),
        ({"changes": {"status": "gone"}}, "changes.status: active or inactive only"),
        ({"changes": {"role": 7}}, "changes.role: expected a non-empty string"),
        ({"user_id": None}, "update: needs the account's user_id"),
        ({"before": []}, "expected a mapping"),
    ]:
        document["actions"] = [{**update, **edit}]
        with pytest.raises(userdir.InvalidArgumentError, match=message):
            Plan.from_dict(document)


# -- apply: journal, resume, lost answers, concurrency -------------------------------


def journal_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_lost_create_answer_is_resolved_by_lookup(
    rc: Harness, hr: RestEmulator, app: RestEmulator, tmp_path: Path
) -> None:
    source, target = rc.connect(hr), rc.connect(app)
    plan = rc.plan(source, target, role_map=ROLES, protect=PROTECT)
    journal = tmp_path / "journal.jsonl"
    app.clear_requests()
    app.inject(Fault.drop_after_processing(), times=1)  # the first request: the create
    result = rc.apply(plan, target, journal=journal, concurrency=1)
    assert result.ok
    created = next(r for r in result.results if r.action.kind == "create")
    assert created.outcome == "done"
    assert created.reason == "answer lost; found by email"
    assert [r.method for r in app.requests].count("POST") == 1
    assert [u["email"] for u in app.users].count("new.joiner@example.com") == 1
    assert created.user_id == by_email(app)["new.joiner@example.com"]["id"]
    entries = [e for e in journal_lines(journal) if e["action"] == "create"]
    assert [(e["outcome"], e["reason"]) for e in entries] == [
        ("unknown", "create sent, no answer yet"),  # written ahead of every create
        ("unknown", "create sent, outcome unknown: " + entries[1]["reason"].split(": ", 1)[1]),
        ("done", "answer lost; found by email"),
    ]


def test_resume_after_a_lost_answer_sends_nothing_twice(
    rc: Harness, hr: RestEmulator, app: RestEmulator, tmp_path: Path
) -> None:
    source, target = rc.connect(hr), rc.connect(app, retries=False)
    plan = rc.plan(source, target, role_map=ROLES, protect=PROTECT)
    journal = tmp_path / "journal.jsonl"
    app.clear_requests()
    app.inject(Fault.drop_after_processing(), times=1)  # the create happens, its answer is lost
    app.inject(Fault.status(503), start=1)  # then the service is down: the lookup fails too
    first = rc.apply(plan, target, journal=journal, concurrency=1)
    assert not first.ok
    assert len(first.failed) == 6
    create = next(r for r in first.results if r.action.kind == "create")
    assert create.reason is not None and create.reason.startswith("outcome unknown")
    assert journal_lines(journal)[-1]["outcome"] == "failed"
    assert "unknown" in [e["outcome"] for e in journal_lines(journal) if e["action"] == "create"]

    app.clear_faults()
    app.clear_requests()
    second = rc.apply(plan, target, journal=journal, concurrency=1)
    assert second.ok
    assert [r.method for r in app.requests].count("POST") == 0  # found by email, not re-sent
    assert [u["email"] for u in app.users].count("new.joiner@example.com") == 1
    state = by_email(app)
    assert state["grace@example.com"]["role"] == "admin"
    assert state["mallory@example.com"]["status"] == "inactive"
    assert state["kat@example.com"]["status"] == "active"

    app.clear_requests()
    third = rc.apply(plan, target, journal=journal)
    assert third.ok and all(r.resumed for r in third.done)
    assert writes(app) == [] and app.requests == []


def test_a_run_that_died_after_sending_a_create_resumes_by_lookup(
    rc: Harness, hr: RestEmulator, app: RestEmulator, tmp_path: Path
) -> None:
    target = rc.connect(app)
    plan = rc.plan(rc.connect(hr), target, role_map=ROLES, protect=PROTECT)
    journal = tmp_path / "journal.jsonl"
    assert rc.apply(plan, target, journal=journal, concurrency=1).ok
    first = journal.read_text().splitlines()[0]
    assert json.loads(first)["outcome"] == "unknown"  # the create's entry, written ahead
    journal.write_text(first + "\n")  # as if the process died before the answer came
    app.clear_requests()
    result = rc.apply(plan, target, journal=journal)
    assert [r.method for r in app.requests].count("POST") == 0
    created = next(r for r in result.results if r.action.kind == "create")
    assert (created.outcome, created.reason) == (
        "done",
        "created by an earlier run (found by email)",
    )
    assert [u["email"] for u in app.users].count("new.joiner@example.com") == 1
    assert all(r.outcome != "failed" for r in result.results)


def test_stop_on_error_leaves_the_rest_for_a_resume(
    rc: Harness, hr: RestEmulator, app: RestEmulator, tmp_path: Path
) -> None:
    source, target = rc.connect(hr), rc.connect(app, retries=False)
    plan = rc.plan(source, target, role_map=ROLES, protect=PROTECT)
    journal = tmp_path / "journal.jsonl"
    app.inject(Fault.status(400), times=1)  # the create is refused
    first = rc.apply(plan, target, journal=journal, concurrency=1, stop_on_error=True)
    assert first.counts == {"done": 0, "skipped": 2, "failed": 1, "not_run": 5}
    assert "new.joiner@example.com" not in by_email(app)
    assert [e["outcome"] for e in journal_lines(journal)] == ["unknown", "failed"]
    second = rc.apply(plan, target, journal=journal, concurrency=1, stop_on_error=True)
    assert second.counts == {"done": 6, "skipped": 2, "failed": 0, "not_run": 0}
    assert "new.joiner@example.com" in by_email(app)


def test_a_failure_does_not_stop_the_others(
    rc: Harness, hr: RestEmulator, app: RestEmulator
) -> None:
    source, target = rc.connect(hr), rc.connect(app, retries=False)
    plan = rc.plan(source, target, role_map=ROLES, protect=PROTECT)
    app.inject(Fault.status(400), times=1)
    result = rc.apply(plan, target, concurrency=1)
    assert result.counts == {"done": 5, "skipped": 2, "failed": 1, "not_run": 0}
    (failed,) = result.failed
    assert failed.action.kind == "create"
    assert failed.reason is not None and "HTTP 400" in failed.reason


def test_the_journal_holds_no_secrets_and_belongs_to_one_plan(
    rc: Harness, hr: RestEmulator, app: RestEmulator, tmp_path: Path
) -> None:
    source, target = rc.connect(hr), rc.connect(app)
    plan = rc.plan(source, target, role_map=ROLES, protect=PROTECT)
    journal = tmp_path / "journal.jsonl"
    assert rc.apply(plan, target, journal=journal).ok
    joiner = by_email(app)["new.joiner@example.com"]["id"]
    password = app.password_of(joiner)
    assert password and len(password) >= 24  # a random one, as REST needs one
    text = journal.read_text()
    assert password not in text and "app-token" not in text
    entries = journal_lines(journal)
    assert {tuple(sorted(e)) for e in entries} == {
        ("action", "email_key", "index", "outcome", "plan", "reason", "time", "user_id")
    }
    assert {e["plan"] for e in entries} == {plan.hash}
    # one line per action, skips not journaled, and one written ahead of the create:
    assert sorted(e["index"] for e in entries) == [0, *range(6)]
    other = rc.plan(source, target, role_map=ROLES, protect=PROTECT)
    if other.counts["changes"] == 0:
        other = rc.plan(source, target, role_map={}, protect=PROTECT, limits=Limits.none())
    with pytest.raises(SafetyCheckError) as caught:
        rc.apply(other, target, journal=journal)
    assert caught.value.check == "journal"


def test_a_journal_that_cannot_be_written_stops_the_run_first(
    rc: Harness, hr: RestEmulator, app: RestEmulator, tmp_path: Path
) -> None:
    target = rc.connect(app)
    plan = rc.plan(rc.connect(hr), target, role_map=ROLES, protect=PROTECT)
    app.clear_requests()
    with pytest.raises(userdir.InvalidArgumentError, match="cannot write journal"):
        rc.apply(plan, target, journal=tmp_path / "missing" / "journal.jsonl")
    assert app.requests == []


def test_writes_run_concurrently_within_the_bound(rc: Harness) -> None:
    hr = RestEmulator(token="hr-token")
    app = RestEmulator(token="app-token", latency=0.02)
    for i in range(24):
        hr.add_user(email=f"p{i}@example.com", name=f"Person {i}", role="member")
        app.add_user(email=f"p{i}@example.com", name=f"Old {i}", role="member")
    source, target = rc.connect(hr), rc.connect(app)
    plan = rc.plan(source, target)
    assert plan.counts["update"] == 24
    app.clear_requests()
    result = rc.apply(plan, target, concurrency=4)
    assert result.ok
    events = sorted(
        [(r.started_at, 1) for r in app.requests] + [(r.finished_at, -1) for r in app.requests]
    )
    in_flight = peak = 0
    for _, delta in events:
        in_flight += delta
        peak = max(peak, in_flight)
    assert 2 <= peak <= 4
    assert all(u["name"].startswith("Person") for u in app.users)


# -- the property: apply makes the target agree, and a second plan is empty ----------

EMAILS = [f"person{i}@example.com" for i in range(10)]
account = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["Ada", "Grace", "Alan Turing"]),
        "role": st.sampled_from(["member", "viewer", "Editor", "owner"]),
        "status": st.sampled_from(["active", "inactive", "pending"]),
    }
)
population = st.dictionaries(st.sampled_from(EMAILS), account, max_size=len(EMAILS))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=population, target=population, cased=st.booleans())
def test_applying_a_plan_makes_the_target_agree(
    source: dict[str, dict[str, str]], target: dict[str, dict[str, str]], cased: bool
) -> None:
    hr, app = RestEmulator(token="hr-token"), RestEmulator(token="app-token")
    for email, fields in source.items():
        hr.add_user(email=email.upper() if cased else email, **fields)
    for email, fields in target.items():
        app.add_user(email=email, **fields)
    protected = {e for e, f in target.items() if f["role"] == "owner"}
    before = by_email(app)
    options: dict[str, Any] = {"limits": Limits.none(), "protect": Protect(roles=["owner"])}
    with (
        userdir.connect(
            "rest", base_url="https://h.test", transport=hr.transport, **hr.credentials
        ) as source_dir,
        userdir.connect(
            "rest", base_url="https://a.test", transport=app.transport, **app.credentials
        ) as target_dir,
    ):
        plan = userdir.plan(source_dir, target_dir, **options)
        result = userdir.apply(plan, target_dir, concurrency=3)
        assert result.ok, result.failed
        after = by_email(app)
        for email, fields in source.items():
            if email in protected:
                continue
            present = fields["status"] != "inactive"
            if not present:
                assert email not in after or after[email]["status"] == "inactive"
                continue
            assert after[email]["name"] == fields["name"]
            assert after[email]["role"] == fields["role"]
            assert after[email]["status"] in ("active", "pending")
        for email in target:
            if email in protected:
                assert after[email] == before[email]
            elif email not in source:
                assert after[email]["status"] == "inactive"
        app.clear_requests()
        again = userdir.plan(source_dir, target_dir, **options)
        assert again.counts["changes"] == 0
        assert userdir.apply(again, target_dir).counts["done"] == 0
        assert writes(app) == []


def test_readme_reconcile_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's "Reconcile" example, exactly as written."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("\n## Reconcile\n", 1)[1].split("\n## ", 1)[0]
    (code,) = [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    assert Plan.load(tmp_path / "plan.json").intact
    assert len(journal_lines(tmp_path / "plan.journal.jsonl")) == 4  # create: one ahead


# -- versions (ETags) and the journal's own checks -------------------------------------


BEFORE = {"email": "a@example.com", "name": "A", "role": "member", "status": "active"}


class Versioned:
    """A target with versions: writes carry the planned version; only a 412 re-reads."""

    provider = "versioned"
    concurrency = 2
    capabilities = userdir.Capabilities(update_user=True, delete_user=True)

    def __init__(self, current: dict[str, tuple[str, dict[str, str]]]) -> None:
        self.current = current  # user id -> (its version now, its fields now)
        self.calls: list[tuple[str, str, str | None]] = []

    def _check(self, user_id: str, version: str | None) -> None:
        if version != self.current[user_id][0]:
            raise userdir.APIError("precondition failed", provider="versioned", status_code=412)

    def update_user(self, user_id: str, changes: Any, *, version: str | None = None) -> Any:
        self.calls.append(("update", user_id, version))
        self._check(user_id, version)
        return DirectoryUser(id=user_id, provider="versioned")

    def delete_user(self, user_id: str, *, version: str | None = None) -> None:
        self.calls.append(("delete", user_id, version))
        self._check(user_id, version)

    def get_user(self, user_id: str) -> Any:
        self.calls.append(("get", user_id, None))
        fields = self.current[user_id][1]
        return DirectoryUser(
            id=user_id,
            provider="versioned",
            email=fields["email"],
            name=fields["name"],
            role=fields["role"],
            status=UserStatus(fields["status"]),
        )


class AsyncVersioned(Versioned):
    async def update_user(self, user_id: str, changes: Any, *, version: str | None = None) -> Any:
        return Versioned.update_user(self, user_id, changes, version=version)

    async def delete_user(self, user_id: str, *, version: str | None = None) -> None:
        Versioned.delete_user(self, user_id, version=version)

    async def get_user(self, user_id: str) -> Any:
        return Versioned.get_user(self, user_id)


def _versioned_plan() -> Plan:
    def update(user_id: str) -> Update:
        return Update(
            email="a@example.com",
            email_key=f"{user_id}@example.com",
            user_id=user_id,
            before=BEFORE,
            changes={"role": "admin"},
            version='W/"1"',
        )

    actions = (
        update("u1"),
        update("u2"),
        Delete(
            email="c@example.com",
            email_key="c@example.com",
            user_id="u3",
            before=BEFORE,
            version='W/"7"',
            reason="asked",
        ),
        update("u4"),
    )
    plan = Plan(
        source="hr",
        target="scim",
        target_provider="versioned",
        created_at=NOW,
        source_count=3,
        target_count=3,
        settings={},
        actions=actions,
    )
    return attrs.evolve(plan, hash=plan.content_hash())


def _versioned_target(kind: type[Versioned] = Versioned) -> Versioned:
    return kind(
        {
            "u1": ('W/"1"', BEFORE),
            "u2": ('W/"2"', {**BEFORE, "name": "Someone Else"}),  # changed since planning
            "u3": ('W/"7"', BEFORE),
            "u4": ('W/"2"', {**BEFORE, "role": "admin"}),  # our write went through already
        }
    )


@pytest.mark.parametrize("kind", [Versioned, AsyncVersioned])
def test_versions_go_with_the_writes_and_a_412_skips(kind: type[Versioned]) -> None:
    target = _versioned_target(kind)
    plan = _versioned_plan()
    if kind is Versioned:
        result = userdir.apply(plan, target)  # type: ignore[arg-type]
    else:
        result = asyncio.run(userdir.apply_async(plan, target))  # type: ignore[arg-type]
    assert sorted(target.calls) == [
        ("delete", "u3", 'W/"7"'),
        ("get", "u2", None),  # only after a 412: whose change was it?
        ("get", "u4", None),
        ("update", "u1", 'W/"1"'),
        ("update", "u2", 'W/"1"'),
        ("update", "u4", 'W/"1"'),
    ]
    assert [(r.action.user_id, r.outcome, r.reason) for r in result.results] == [
        ("u1", "done", None),
        ("u2", "skipped", "changed since planning (version differs)"),
        ("u3", "done", None),
        ("u4", "done", "already in the planned state"),
    ]


def test_a_plan_the_target_cannot_carry_out_is_refused() -> None:
    plan = _versioned_plan()
    target = Versioned({})
    target.capabilities = userdir.Capabilities(update_user=True)  # no deletes
    with pytest.raises(userdir.UnsupportedOperationError, match="1 delete action"):
        userdir.apply(plan, target)  # type: ignore[arg-type]
    assert target.calls == []


def test_a_journal_with_a_cut_last_line_resumes_and_a_bad_one_is_refused(
    tmp_path: Path,
) -> None:
    plan = _versioned_plan()
    journal = tmp_path / "j.jsonl"
    target = _versioned_target()
    userdir.apply(plan, target, journal=journal, concurrency=1)  # type: ignore[arg-type]
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])  # a crash mid-line
    target.calls.clear()
    result = userdir.apply(plan, target, journal=journal)  # type: ignore[arg-type]
    assert result.ok
    assert target.calls == [("update", "u4", 'W/"1"'), ("get", "u4", None)]  # no entry yet
    journal.write_text("garbage\n" + journal.read_text())
    with pytest.raises(userdir.InvalidArgumentError, match="line 1: not a journal entry"):
        userdir.apply(plan, target, journal=journal)  # type: ignore[arg-type]


def test_writes_keep_the_directory_rate_limit(rc: Harness) -> None:
    hr = RestEmulator(token="hr-token")
    app = RestEmulator(token="app-token")
    for i in range(8):
        hr.add_user(email=f"p{i}@example.com", name=f"Person {i}", role="member")
        app.add_user(email=f"p{i}@example.com", name=f"Old {i}", role="member")
    plan = rc.plan(rc.connect(hr), rc.connect(app))
    app.clear_requests()
    result = rc.apply(plan, rc.connect(app, max_requests_per_second=100), concurrency=8)
    assert result.ok
    starts = sorted(r.started_at for r in app.requests)
    assert len(starts) == 16  # a re-read and a write per update
    assert starts[-1] - starts[0] >= 15 * 0.01 * 0.9  # one request per 10 ms, never a burst


def test_a_federation_plans_between_its_directories(mode: str) -> None:
    from userdir.testing._demo import demo_company

    company = demo_company()
    roles = {"Admin": "admin", "Editor": "editor", "Viewer": "viewer", "Member": "member"}
    if mode == "sync":
        with userdir.Federation(company.directories()) as federation:
            plan = federation.plan("hr", "app", role_map=roles, now=NOW)
            direct = userdir.plan(
                federation.directories["hr"],
                federation.directories["app"],
                source_name="hr",
                target_name="app",
                role_map=roles,
                now=NOW,
            )
    else:

        async def run() -> Plan:
            options: dict[str, Any] = {"base_url": "https://x.test"}
            async with userdir.AsyncFederation(
                {
                    "hr": userdir.connect_async(
                        "org_api",
                        api_key=company.org_api.api_key,
                        transport=company.org_api.transport,
                        **options,
                    ),
                    "app": userdir.connect_async(
                        "rest",
                        token=company.rest.token,
                        transport=company.rest.transport,
                        **options,
                    ),
                }
            ) as federation:
                return await federation.plan("hr", "app", role_map=roles, now=NOW)

        plan = asyncio.run(run())
        with userdir.Federation(company.directories()) as federation:
            direct = federation.plan("hr", "app", role_map=roles, now=NOW)
    assert plan.to_json() == direct.to_json()
    assert (plan.source, plan.target) == ("hr", "app")
    assert [a.kind for a in plan.actions] == ["create", "update", "deactivate"]
    with (
        userdir.Federation(company.directories()) as federation,
        pytest.raises(userdir.InvalidArgumentError, match="no directory named 'payroll'"),
    ):
        federation.plan("payroll", "app")


def test_only_tries_the_plan_on_some_accounts_first(
    rc: Harness, hr: RestEmulator, app: RestEmulator
) -> None:
    source, target = rc.connect(hr), rc.connect(app)
    plan = rc.plan(source, target, role_map=ROLES, protect=PROTECT, only=["GRACE@example.com"])
    assert [(a.kind, a.email_key) for a in plan.actions] == [("update", "grace@example.com")]
    assert plan.counts["source_users"] == plan.counts["target_users"] == 1
    assert plan.settings["only"] == ["GRACE@example.com"]
    assert rc.apply(plan, target).ok
    state = by_email(app)
    assert state["grace@example.com"]["role"] == "admin"
    assert state["mallory@example.com"]["status"] == "active"  # not in the trial
    patterns = rc.plan(source, target, role_map=ROLES, protect=PROTECT, only=["*left*", "new.*"])
    assert {(a.kind, a.email_key) for a in patterns.actions} == {
        ("create", "new.joiner@example.com"),
        ("deactivate", "left.recently@example.com"),
    }
    with pytest.raises(userdir.InvalidArgumentError, match="list of strings"):
        rc.plan(source, target, only="grace@example.com")


def test_a_lost_update_answer_is_done_on_resume(
    rc: Harness, hr: RestEmulator, app: RestEmulator, tmp_path: Path
) -> None:
    target = rc.connect(app, retries=False)
    plan = rc.plan(rc.connect(hr), target, role_map=ROLES, protect=PROTECT, only=["grace@*"])
    journal = tmp_path / "journal.jsonl"
    app.inject(Fault.drop_after_processing(), start=1, times=1)  # the PUT, after its re-read
    first = rc.apply(plan, target, journal=journal)
    (failed,) = first.failed
    assert failed.action.kind == "update" and "RemoteProtocolError" in str(failed.reason)
    assert by_email(app)["grace@example.com"]["role"] == "admin"  # it was applied
    app.clear_requests()
    second = rc.apply(plan, target, journal=journal)
    assert [(r.outcome, r.reason) for r in second.results] == [
        ("done", "already in the planned state")
    ]
    assert writes(app) == []  # recognised from a re-read, not sent again


def test_a_create_is_sent_again_only_once_proved_absent(
    rc: Harness, hr: RestEmulator, app: RestEmulator, tmp_path: Path
) -> None:
    target = rc.connect(app, retries=False)
    plan = rc.plan(rc.connect(hr), target, only=["new.joiner@*"], limits=Limits.none())
    app.clear_requests()
    app.inject(Fault.status(500), times=1)  # the server fails the create (nothing stored)
    result = rc.apply(plan, target)
    assert result.ok  # looked up, not there, sent once more
    assert [r.method for r in app.requests] == ["POST", "GET", "POST"]
    assert [u["email"] for u in app.users].count("new.joiner@example.com") == 1

    app2 = RestEmulator(token="app-token")
    target2 = rc.connect(app2, retries=False)
    journal = tmp_path / "journal.jsonl"
    app2.inject(Fault.drop(), times=1)  # lost before the service saw it
    app2.inject(Fault.drop_after_processing(), start=2, times=1)  # the second create: lost
    first = rc.apply(plan, target2, journal=journal)
    (failed,) = first.failed
    assert failed.reason is not None and failed.reason.startswith("outcome unknown")
    assert journal_lines(journal)[-1]["outcome"] == "unknown"  # so a resume looks first
    app2.clear_requests()
    second = rc.apply(plan, target2, journal=journal)
    assert second.ok
    assert [r.method for r in app2.requests] == ["GET"]  # found by email, nothing re-sent
    assert len(app2) == 1
