"""Fault injection through the in-process transport, sync and async."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx
import pytest

from userdir.testing import Fault, NotionEmulator, OrgApiEmulator, RestEmulator

NOTION_HEADERS = {"Authorization": "Bearer test-token", "Notion-Version": "2025-09-03"}
REST_HEADERS = {"Authorization": "Bearer test-token"}


def notion_client(emu: NotionEmulator) -> httpx.Client:
    return httpx.Client(transport=emu.transport, base_url="http://n", headers=NOTION_HEADERS)


def rest_client(emu: RestEmulator) -> httpx.Client:
    return httpx.Client(transport=emu.transport, base_url="http://r", headers=REST_HEADERS)


def statuses(c: httpx.Client, n: int, path: str = "/v1/users/me") -> list[int]:
    return [c.get(path).status_code for _ in range(n)]


def test_times() -> None:
    emu = NotionEmulator()
    emu.inject(Fault.status(503), times=2)
    with notion_client(emu) as c:
        assert statuses(c, 4) == [503, 503, 200, 200]
    assert [r.fault for r in emu.requests] == ["status", "status", None, None]


def test_every() -> None:
    emu = NotionEmulator()
    emu.inject(Fault.rate_limited(), every=7)
    with notion_client(emu) as c:
        got = statuses(c, 21)
    assert [i + 1 for i, s in enumerate(got) if s == 429] == [7, 14, 21]


def test_every_with_times_and_start() -> None:
    emu = NotionEmulator()
    emu.inject(Fault.status(500), every=2, times=2, start=3)
    with notion_client(emu) as c:
        got = statuses(c, 10)
    assert [i + 1 for i, s in enumerate(got) if s == 500] == [5, 7]


def test_start_skips_requests() -> None:
    emu = NotionEmulator()
    emu.inject(Fault.status(502), times=1, start=2)
    with notion_client(emu) as c:
        assert statuses(c, 4) == [200, 200, 502, 200]


def test_without_times_lasts_until_cleared() -> None:
    emu = NotionEmulator()
    emu.inject(Fault.status(500))
    with notion_client(emu) as c:
        assert statuses(c, 3) == [500, 500, 500]
        emu.clear_faults()
        assert statuses(c, 1) == [200]


def test_first_matching_rule_wins() -> None:
    emu = NotionEmulator()
    emu.inject(Fault.status(503), times=1)
    emu.inject(Fault.status(500), times=2)
    with notion_client(emu) as c:
        assert statuses(c, 4) == [503, 500, 500, 200]


def test_every_counts_all_requests_whatever_the_path() -> None:
    emu = NotionEmulator()
    emu.inject(Fault.status(503), every=2)
    with notion_client(emu) as c:
        got = [c.get(p).status_code for p in ("/v1/users", "/v1/users/me", "/nope", "/v1/users")]
    assert got == [200, 503, 400, 503]


def test_inject_validation() -> None:
    emu = NotionEmulator()
    with pytest.raises(ValueError, match="times"):
        emu.inject(Fault.drop(), times=0)
    with pytest.raises(ValueError, match="every"):
        emu.inject(Fault.drop(), every=0)
    with pytest.raises(ValueError, match="start"):
        emu.inject(Fault.drop(), start=-1)
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Fault.status(200)
    with pytest.raises(ValueError, match="kind"):
        Fault("explode")


@pytest.mark.parametrize(
    ("code", "slug"),
    [
        (500, "internal_server_error"),
        (502, "internal_server_error"),
        (503, "service_unavailable"),
        (504, "gateway_timeout"),
        (529, "service_overload"),
    ],
)
def test_notion_status_bodies(code: int, slug: str) -> None:
    emu = NotionEmulator()
    emu.inject(Fault.status(code), times=1)
    with notion_client(emu) as c:
        response = c.get("/v1/users")
    assert response.status_code == code
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"object", "status", "code", "message", "request_id"}
    assert (body["object"], body["status"], body["code"]) == ("error", code, slug)


@pytest.mark.parametrize("retry_after", [1, 30, "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_rate_limited_bodies_and_retry_after(retry_after: int | str) -> None:
    fault = Fault.rate_limited(retry_after=retry_after)
    notion, org, rest = NotionEmulator(), OrgApiEmulator(), RestEmulator()
    for emu in (notion, org, rest):
        emu.inject(fault, times=1)
    with notion_client(notion) as c:
        n = c.get("/v1/users")
    with httpx.Client(transport=org.transport, headers={"Authorization": "test-key"}) as c:
        o = c.get("http://o/list-users")
    with rest_client(rest) as c:
        r = c.get("/api/v1/users")
    for response in (n, o, r):
        assert response.status_code == 429
        assert response.headers["retry-after"] == str(retry_after)
        assert response.headers["content-type"] == "application/json"
    assert n.json()["code"] == "rate_limited"
    assert n.json()["message"] == "You have been rate limited. Please try again in a few minutes."
    assert o.json() == {"error": "Too many requests"}
    assert r.json()["error"]["code"] == "rate_limited"


def test_org_and_rest_5xx_bodies() -> None:
    org, rest = OrgApiEmulator(), RestEmulator()
    org.inject(Fault.status(503), times=1)
    rest.inject(Fault.status(500), times=1)
    with httpx.Client(transport=org.transport, headers={"Authorization": "test-key"}) as c:
        o = c.get("http://o/list-users")
    with rest_client(rest) as c:
        r = c.get("/api/v1/users")
    assert (o.status_code, o.json()) == (503, {"error": "Internal server error"})
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "internal_error", "message": "Internal server error"}}


def test_html_fault() -> None:
    emu = OrgApiEmulator()
    emu.inject(Fault.html(), times=1)
    emu.inject(Fault.html(status=504), times=1)
    with httpx.Client(transport=emu.transport, headers={"Authorization": "test-key"}) as c:
        first = c.get("http://o/list-users")
        second = c.get("http://o/list-users")
    assert first.status_code == 502
    assert first.headers["content-type"] == "text/html"
    assert "502 Bad Gateway" in first.text
    assert first.text.lstrip().startswith("<html>")
    assert second.status_code == 504
    assert "504 Gateway Timeout" in second.text


def test_drop_and_read_timeout_sync() -> None:
    emu = NotionEmulator()
    emu.inject(Fault.drop(), times=1)
    emu.inject(Fault.read_timeout(), times=1)
    with notion_client(emu) as c:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            c.get("/v1/users")
        with pytest.raises(httpx.ReadTimeout):
            c.get("/v1/users")
        assert c.get("/v1/users").status_code == 200
    log = emu.requests
    assert [(r.fault, r.status) for r in log] == [
        ("drop", None),
        ("read_timeout", None),
        (None, 200),
    ]


def test_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    emu = NotionEmulator(latency=0.05)
    emu.inject(Fault.delay(0.2), times=1)
    with notion_client(emu) as c:
        assert c.get("/v1/users").status_code == 200
        assert c.get("/v1/users").status_code == 200
    assert slept == [0.25, 0.05]  # the delay comes on top of the latency, once
    assert [(r.fault, r.delay) for r in emu.requests] == [("delay", 0.25), (None, 0.05)]


def test_faulted_requests_do_not_change_state() -> None:
    emu = RestEmulator()
    for fault in (
        Fault.status(503),
        Fault.rate_limited(),
        Fault.html(),
        Fault.drop(),
        Fault.read_timeout(),
    ):
        emu.inject(fault, times=1)
    with rest_client(emu) as c:
        for _ in range(5):
            with contextlib.suppress(httpx.TransportError):
                c.post("/api/v1/users", json={"email": "a@b.co", "name": "A", "password": "p"})
    assert len(emu) == 0
    assert [r.fault for r in emu.requests] == [
        "status",
        "rate_limited",
        "html",
        "drop",
        "read_timeout",
    ]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.drop_after_processing(), httpx.RemoteProtocolError),
        (Fault.timeout_after_processing(), httpx.ReadTimeout),
    ],
)
def test_after_processing_faults_apply_the_request(
    fault: Fault, error: type[httpx.TransportError]
) -> None:
    emu = RestEmulator()
    emu.inject(fault, times=1)
    payload = {"email": "a@example.com", "name": "A", "password": "p"}
    with rest_client(emu) as c:
        with pytest.raises(error):
            c.post("/api/v1/users", json=payload)
        retry = c.post("/api/v1/users", json=payload)
    assert len(emu) == 1
    assert emu.users[0]["email"] == "a@example.com"
    assert retry.status_code == 409
    assert emu.requests[0].status is None
    assert emu.requests[0].fault == fault.kind


def test_faults_over_async_transport() -> None:
    emu = NotionEmulator()
    emu.inject(Fault.rate_limited(retry_after=2), times=1)
    emu.inject(Fault.drop(), times=1)
    emu.inject(Fault.read_timeout(), times=1)
    emu.inject(Fault.delay(0.1), times=1)

    async def run() -> list[Any]:
        async with httpx.AsyncClient(
            transport=emu.transport, base_url="http://n", headers=NOTION_HEADERS
        ) as c:
            results: list[Any] = []
            for _ in range(5):
                try:
                    response = await c.get("/v1/users")
                    results.append((response.status_code, response.headers.get("retry-after")))
                except httpx.TransportError as exc:
                    results.append(type(exc))
            return results

    assert asyncio.run(run()) == [
        (429, "2"),
        httpx.RemoteProtocolError,
        httpx.ReadTimeout,
        (200, None),
        (200, None),
    ]


def test_async_after_processing() -> None:
    emu = RestEmulator()
    emu.inject(Fault.drop_after_processing(), times=1)

    async def run() -> None:
        async with httpx.AsyncClient(
            transport=emu.transport, base_url="http://r", headers=REST_HEADERS
        ) as c:
            with pytest.raises(httpx.RemoteProtocolError):
                await c.post(
                    "/api/v1/users", json={"email": "a@b.co", "name": "A", "password": "p"}
                )

    asyncio.run(run())
    assert len(emu) == 1
