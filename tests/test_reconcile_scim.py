"""Reconcile end to end against scim2-server, a real SCIM 2.0 server (one per test,
served on 127.0.0.1 by its own command), blocking and asyncio. Writes there carry
the account's ETag as ``If-Match``; the HR source is a REST emulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import userdir
from userdir import Delete, Limits, Protect, SafetyCheckError, Update, UserChanges
from userdir.testing import RestEmulator

pytestmark = [
    pytest.mark.scim2,
    pytest.mark.skipif(sys.version_info < (3, 11), reason="scim2-server needs Python >= 3.11"),
    pytest.mark.skipif(
        "scim" not in {info.name for info in userdir.available_providers()},
        reason="the SCIM provider is not in this checkout",
    ),
    pytest.mark.skipif(
        shutil.which("scim2-server", path=os.path.dirname(sys.executable)) is None,
        reason="scim2-server is not installed",
    ),
]

TOKEN = "scim-S3CR3T-token"


@pytest.fixture
def scim_url() -> Iterator[str]:
    """A fresh scim2-server on a free port; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = shutil.which("scim2-server", path=os.path.dirname(sys.executable))
    assert command is not None
    process = subprocess.Popen(
        [command, "--hostname", "127.0.0.1", "--port", str(port), "--bearer-token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Serving SCIM on "), line
        yield f"http://127.0.0.1:{port}/v2"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


class LoseAnswers(httpx.HTTPTransport):
    """Sends every request; loses the answer of the first ``method`` request, and is
    then ``down`` (refuses to connect) until told otherwise."""

    def __init__(self, method: str = "POST") -> None:
        super().__init__()
        self.method = method
        self.lost = 0
        self.down = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        response = super().handle_request(request)
        if request.method == self.method and not self.lost:
            self.lost += 1
            response.read()
            response.close()
            self.down = True
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        return response


class AsyncLoseAnswers(httpx.AsyncHTTPTransport):
    """:class:`LoseAnswers` for asyncio."""

    def __init__(self, method: str = "POST") -> None:
        super().__init__()
        self.method = method
        self.lost = 0
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        response = await super().handle_async_request(request)
        if request.method == self.method and not self.lost:
            self.lost += 1
            await response.aread()
            await response.aclose()
            self.down = True
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        return response


class Scim:
    """A SCIM target and a REST HR source in the test's mode."""

    def __init__(self, mode: str, url: str) -> None:
        self.mode, self.url = mode, url
        self.loop = asyncio.new_event_loop()
        self.opened: list[Any] = []
        self.hr = RestEmulator(token="hr-token")
        self.admin = userdir.connect("scim", base_url=url, token=TOKEN)  # seeds and checks

    def run(self, value: Any) -> Any:
        return self.loop.run_until_complete(value) if self.mode == "async" else value

    def target(self, *, lossy: str | None = None, **options: Any) -> Any:
        transport: Any = None
        if lossy:
            transport = LoseAnswers(lossy) if self.mode == "sync" else AsyncLoseAnswers(lossy)
            options["transport"] = transport
        connect = userdir.connect if self.mode == "sync" else userdir.connect_async
        directory = connect("scim", base_url=self.url, token=TOKEN, **options)
        self.opened.append(directory)
        return (directory, transport) if lossy else directory

    def source(self) -> Any:
        connect = userdir.connect if self.mode == "sync" else userdir.connect_async
        directory = connect(
            "rest", base_url="https://hr.test", transport=self.hr.transport, **self.hr.credentials
        )
        self.opened.append(directory)
        return directory

    def plan(self, target: Any, **settings: Any) -> userdir.Plan:
        settings.setdefault("source_name", "hr")
        settings.setdefault("target_name", "scim")
        make = userdir.plan if self.mode == "sync" else userdir.plan_async
        return self.run(make(self.source(), target, **settings))  # type: ignore[no-any-return]

    def apply(self, plan: userdir.Plan, target: Any, **options: Any) -> userdir.ApplyResult:
        make = userdir.apply if self.mode == "sync" else userdir.apply_async
        return self.run(make(plan, target, **options))  # type: ignore[no-any-return]

    def seed(self, email: str, name: str, role: str, *, active: bool = True) -> str:
        user = self.admin.create_user(userdir.NewUser(email=email, name=name, role=role))
        if not active:
            self.admin.update_user(user.id, UserChanges(status="inactive"))
        return user.id

    def state(self) -> dict[str, userdir.DirectoryUser]:
        return {u.email_key: u for u in self.admin.iter_users() if u.email_key}

    def close(self) -> None:
        for directory in self.opened:
            closing = directory.close()
            if closing is not None:
                self.loop.run_until_complete(closing)
        self.admin.close()
        self.loop.close()


@pytest.fixture
def scim(mode: str, scim_url: str) -> Iterator[Scim]:
    world = Scim(mode, scim_url)
    world.hr.add_user(email="ada@example.com", name="Ada Lovelace", role="engineer")
    world.hr.add_user(email="grace@example.com", name="Grace Hopper", role="manager")
    world.hr.add_user(email="alan@example.com", name="Alan Turing", role="engineer")
    world.hr.add_user(email="new.joiner@example.com", name="New Joiner", role="engineer")
    world.seed("ada@example.com", "Ada Lovelace", "member")
    world.seed("grace@example.com", "Grace Hopper", "member")  # a mover
    world.seed("alan@example.com", "Alan Turing", "member", active=False)  # rehired
    world.seed("mallory@example.com", "Mallory Quinn", "member")  # a leaver
    world.seed("root@example.com", "Root", "owner")  # protected
    yield world
    world.close()


ROLES = {"engineer": "member", "manager": "admin"}
PROTECT = Protect(roles=["owner"])


def test_scim_joiners_movers_leavers(scim: Scim) -> None:
    target = scim.target()
    plan = scim.plan(target, role_map=ROLES, protect=PROTECT)
    assert {(a.kind, a.email_key) for a in plan.changes} == {
        ("create", "new.joiner@example.com"),
        ("update", "grace@example.com"),
        ("update", "alan@example.com"),
        ("deactivate", "mallory@example.com"),
    }
    updates = {a.email_key: a for a in plan.actions if isinstance(a, Update)}
    assert dict(updates["grace@example.com"].changes) == {"role": "admin"}
    assert dict(updates["alan@example.com"].changes) == {"status": "active"}
    assert all(a.version for a in plan.changes if a.kind != "create")  # the ETags
    result = scim.apply(plan, target)
    assert result.ok, result.failed
    state = scim.state()
    assert state["new.joiner@example.com"].name == "New Joiner"
    assert state["new.joiner@example.com"].role == "member"
    assert state["grace@example.com"].role == "admin"
    assert state["alan@example.com"].status is userdir.UserStatus.ACTIVE
    assert state["mallory@example.com"].status is userdir.UserStatus.INACTIVE
    assert state["root@example.com"].status is userdir.UserStatus.ACTIVE
    assert len(state) == 6
    assert scim.plan(target, role_map=ROLES, protect=PROTECT).counts["changes"] == 0


def test_scim_leavers_are_deleted_after_the_grace_period(scim: Scim) -> None:
    target = scim.target()
    options: dict[str, Any] = {"role_map": ROLES, "protect": PROTECT, "delete_after": "30d"}
    assert scim.apply(scim.plan(target, **options), target).ok
    now = dt.datetime.now(dt.timezone.utc)
    assert scim.plan(target, now=now + dt.timedelta(days=1), **options).counts["changes"] == 0
    later = scim.plan(target, now=now + dt.timedelta(days=31), **options)
    assert [(a.kind, a.email_key) for a in later.changes] == [("delete", "mallory@example.com")]
    (delete,) = later.changes
    assert isinstance(delete, Delete) and delete.version
    assert scim.apply(later, target).ok
    assert "mallory@example.com" not in scim.state()


def test_scim_safety_checks_change_nothing(scim: Scim) -> None:
    target = scim.target()
    before = scim.state()
    with pytest.raises(SafetyCheckError) as caught:
        scim.plan(target, role_map=ROLES, protect=PROTECT, limits=Limits(max_changes=2))
    assert caught.value.check == "max_changes" and caught.value.counts["changes"] == 4
    for user in list(scim.hr.users):
        scim.hr.remove_user(user["id"])
    with pytest.raises(SafetyCheckError) as caught:
        scim.plan(target)
    assert caught.value.check == "empty_source"
    assert scim.state() == before


def test_scim_target_changed_after_planning_is_refused_by_its_etag(scim: Scim) -> None:
    target = scim.target()
    plan = scim.plan(target, role_map=ROLES, protect=PROTECT)
    grace = scim.state()["grace@example.com"]
    scim.admin.update_user(grace.id, UserChanges(name="Grace B. Hopper"))  # a new ETag
    result = scim.apply(plan, target)
    (skipped,) = [r for r in result.skipped if r.action.changes_anything]
    assert skipped.action.email_key == "grace@example.com"
    assert skipped.reason == "changed since planning (version differs)"
    state = scim.state()
    assert state["grace@example.com"].role == "member"  # untouched
    assert state["grace@example.com"].name == "Grace B. Hopper"
    assert state["mallory@example.com"].status is userdir.UserStatus.INACTIVE
    assert len(result.done) == 3


def test_scim_lost_answer_then_resume_creates_once(scim: Scim, tmp_path: Path) -> None:
    target, transport = scim.target(lossy="POST", retries=False)
    plan = scim.plan(target, role_map=ROLES, protect=PROTECT)
    journal = tmp_path / "journal.jsonl"

    first = scim.apply(plan, target, journal=journal, concurrency=1, stop_on_error=True)
    assert not first.ok
    (failed,) = first.failed
    assert failed.action.kind == "create"
    assert failed.reason is not None and failed.reason.startswith("outcome unknown")
    assert len(first.not_run) == 3
    assert "new.joiner@example.com" in scim.state()  # created, though the answer was lost
    transport.down = False
    second = scim.apply(plan, target, journal=journal)
    assert second.ok
    created = next(r for r in second.results if r.action.kind == "create")
    assert created.reason == "created by an earlier run (found by email)"
    state = scim.state()
    emails = [u.email_key for u in scim.admin.iter_users()]
    assert emails.count("new.joiner@example.com") == 1  # no duplicate
    assert state["grace@example.com"].role == "admin"
    assert state["mallory@example.com"].status is userdir.UserStatus.INACTIVE
    assert state["alan@example.com"].status is userdir.UserStatus.ACTIVE


def test_scim_lost_update_answer_then_resume(scim: Scim, tmp_path: Path) -> None:
    target, transport = scim.target(lossy="PATCH", retries=False)
    plan = scim.plan(target, role_map=ROLES, protect=PROTECT)
    journal = tmp_path / "journal.jsonl"
    first = scim.apply(plan, target, journal=journal, concurrency=1, stop_on_error=True)
    (failed,) = first.failed
    assert failed.action.kind == "update"  # the first write after the create
    transport.down = False
    second = scim.apply(plan, target, journal=journal)
    assert second.ok
    again = next(r for r in second.results if r.index == failed.index)
    assert again.outcome == "done"
    assert again.reason == "already in the planned state"  # its ETag moved: our own write
    state = scim.state()
    assert state["alan@example.com"].status is userdir.UserStatus.ACTIVE
    assert state["grace@example.com"].role == "admin"
    assert state["mallory@example.com"].status is userdir.UserStatus.INACTIVE


def test_scim_matched_by_external_id_a_mover_keeps_the_account(scim: Scim) -> None:
    target = scim.target(user_name_follows_email=True)  # the server's userName is the email
    hr_ids = {u["email"]: u["id"] for u in scim.hr.users}
    plan = scim.plan(target, match="external_id", role_map=ROLES, protect=PROTECT)
    updates = {a.email_key: dict(a.changes) for a in plan.actions if isinstance(a, Update)}
    assert updates == {  # the accounts found by email are linked to their HR id
        "ada@example.com": {"external_id": hr_ids["ada@example.com"]},
        "grace@example.com": {"role": "admin", "external_id": hr_ids["grace@example.com"]},
        "alan@example.com": {"status": "active", "external_id": hr_ids["alan@example.com"]},
    }
    assert scim.apply(plan, target).ok
    state = scim.state()
    grace = state["grace@example.com"]
    assert grace.external_id == hr_ids["grace@example.com"]
    assert state["new.joiner@example.com"].external_id == hr_ids["new.joiner@example.com"]
    assert state["root@example.com"].external_id is None  # protected: not linked

    # Grace's email changes in HR: the same account is updated, on the real server
    with userdir.connect("rest", **scim.hr.connect_options()) as hr_admin:
        hr_admin.update_user(
            hr_ids["grace@example.com"], UserChanges(email="grace.hopper@example.com")
        )
    plan = scim.plan(target, match="external_id", role_map=ROLES, protect=PROTECT)
    (update,) = plan.changes
    assert isinstance(update, Update) and update.user_id == grace.id
    assert dict(update.changes) == {"email": "grace.hopper@example.com"}
    assert update.version  # its ETag goes with the write
    assert scim.apply(plan, target).ok
    state = scim.state()
    assert "grace@example.com" not in state
    moved = state["grace.hopper@example.com"]
    assert (moved.id, moved.external_id, moved.role) == (grace.id, grace.external_id, "admin")
    assert moved.username == "grace.hopper@example.com"
    again = scim.plan(target, match="external_id", role_map=ROLES, protect=PROTECT)
    assert again.counts["changes"] == 0
