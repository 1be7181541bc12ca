"""Request log, latency and overlap, populate, and the transport's general behaviour."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from userdir.testing import (
    Emulator,
    Fault,
    NotionEmulator,
    OrgApiEmulator,
    RecordedRequest,
    RestEmulator,
)


def test_log_records_everything() -> None:
    emu = OrgApiEmulator()
    with httpx.Client(transport=emu.transport, headers={"Authorization": "test-key"}) as c:
        c.get("http://any-host.example/fetch-user?email=a%2Bb%40example.com&email=c%40d.co")
        c.post("http://other/list-users", json={"k": 1}, headers={"X-Custom": "Yes"})
    first, second = emu.requests
    assert isinstance(first, RecordedRequest)
    assert first.method == "GET"
    assert first.path == "/fetch-user"
    assert first.raw_path == "/fetch-user"
    assert first.query == "email=a%2Bb%40example.com&email=c%40d.co"
    assert first.params == {"email": "c@d.co"}
    assert first.headers["authorization"] == "test-key"
    assert first.status == 400
    assert first.fault is None
    assert first.body == b""
    assert first.json is None
    assert first.started_at <= first.finished_at <= second.started_at
    assert second.method == "POST"
    assert second.status == 405
    assert second.headers["x-custom"] == "Yes"
    assert second.json == {"k": 1}
    assert all(name == name.lower() for name in second.headers)


def test_raw_path_keeps_percent_encoding() -> None:
    emu = NotionEmulator()
    headers = {"Authorization": "Bearer test-token", "Notion-Version": "2025-09-03"}
    with httpx.Client(transport=emu.transport, headers=headers) as c:
        c.get("http://n/v1/users/a%2Fb%20c?start_cursor=x%2By")
    (request,) = emu.requests
    assert request.raw_path == "/v1/users/a%2Fb%20c"
    assert request.path == "/v1/users/a/b c"
    assert request.params == {"start_cursor": "x+y"}
    assert request.query == "start_cursor=x%2By"


def test_clear_requests() -> None:
    emu = RestEmulator()
    with httpx.Client(transport=emu.transport) as c:
        c.get("http://r/api/v1/users")
        emu.clear_requests()
        assert emu.requests == []
        c.get("http://r/api/v1/users")
    assert len(emu.requests) == 1


def test_invalid_json_body_property() -> None:
    emu = RestEmulator()
    with httpx.Client(transport=emu.transport) as c:
        c.post("http://r/api/v1/users", content=b"{oops")
    assert emu.requests[0].json is None
    assert emu.requests[0].body == b"{oops"


def test_latency_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    emu = RestEmulator(latency=0.1)
    assert emu.latency == 0.1
    with httpx.Client(transport=emu.transport) as c:
        c.get("http://r/api/v1/users")
        assert slept == [0.1]
        emu.latency = 0.0
        c.get("http://r/api/v1/users")
        assert slept == [0.1]  # no latency: no wait at all
    assert [r.delay for r in emu.requests] == [0.1, 0.0]
    with pytest.raises(ValueError, match="latency"):
        RestEmulator(latency=-1)


def test_async_requests_overlap() -> None:
    emu = NotionEmulator(latency=0.2)
    headers = {"Authorization": "Bearer test-token", "Notion-Version": "2025-09-03"}

    async def run() -> None:
        async with httpx.AsyncClient(transport=emu.transport, headers=headers) as c:
            responses = await asyncio.gather(*(c.get("http://n/v1/users/me") for _ in range(8)))
            assert all(r.status_code == 200 for r in responses)

    asyncio.run(run())
    log = emu.requests
    assert len(log) == 8
    assert all(r.delay == 0.2 for r in log)
    # every request arrived before any was answered: the latencies overlapped
    assert max(r.started_at for r in log) < min(r.finished_at for r in log)


def test_populate_is_deterministic_and_unique() -> None:
    for cls in (NotionEmulator, OrgApiEmulator, RestEmulator):
        a: Emulator = cls()
        b: Emulator = cls()
        ids_a = a.populate(50, seed=7)
        ids_b = b.populate(50, seed=7)
        assert ids_a == ids_b
        if cls is NotionEmulator:  # the integration's bot differs between instances
            assert a.users[1:] == b.users[1:]
        else:
            assert a.users == b.users
        other: Emulator = cls()
        other.populate(50, seed=8)
        assert [u["id"] if cls is not RestEmulator else u["email"] for u in other.users] != [
            u["id"] if cls is not RestEmulator else u["email"] for u in a.users
        ]
        more = a.populate(50, seed=7)
        assert not set(more) & set(ids_a)

    emu = OrgApiEmulator()
    emu.populate(10_000)
    emails = [u["email"] for u in emu.users]
    assert len(set(emails)) == 10_000
    assert emails[0].endswith("1@example.com")
    assert all(e.count(".") == 2 and e.endswith("@example.com") for e in emails)


def test_populate_realistic_values() -> None:
    notion = NotionEmulator()
    notion.populate(5, seed=1)
    person = notion.users[1]
    assert person["type"] == "person"
    first, last = person["name"].split(" ")
    assert person["person"]["email"] == f"{first.lower()}.{last.lower()}1@example.com"

    rest = RestEmulator()
    rest.populate(40, seed=1)
    users = rest.users
    assert {u["status"] for u in users} == {"active", "inactive", "pending"}
    assert "admin" in {u["role"] for u in users}
    assert all(u["id"].startswith("usr_") and len(u["id"]) == 10 for u in users)
    assert any(u["last_login"] is None for u in users)


def test_users_are_copies() -> None:
    emu = RestEmulator()
    emu.add_user(email="a@example.com", name="A")
    emu.users[0]["settings"]["theme"] = "changed"
    assert emu.users[0]["settings"]["theme"] == "light"


def test_transport_is_sync_and_async() -> None:
    emu = RestEmulator()
    assert isinstance(emu.transport, httpx.BaseTransport)
    assert isinstance(emu.transport, httpx.AsyncBaseTransport)


def test_fault_names_in_log() -> None:
    emu = RestEmulator()
    emu.inject(Fault.html(503), times=1)
    with httpx.Client(transport=emu.transport) as c:
        c.get("http://r/api/v1/users")
    assert (emu.requests[0].fault, emu.requests[0].status) == ("html", 503)
