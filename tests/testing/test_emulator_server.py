"""Real HTTP serving: ``Emulator.serve()`` and ``python -m userdir.testing serve``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import userdir.testing
from userdir.testing import Fault, NotionEmulator, OrgApiEmulator, RestEmulator

NOTION_HEADERS = {"Authorization": "Bearer test-token", "Notion-Version": "2025-09-03"}


def test_serve_each_emulator() -> None:
    notion, org, rest = NotionEmulator(), OrgApiEmulator(), RestEmulator()
    notion.populate(3)
    org.populate(3)
    with notion.serve() as base_url, httpx.Client(base_url=base_url) as c:
        assert base_url.startswith("http://127.0.0.1:")
        response = c.get("/v1/users", headers=NOTION_HEADERS)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert int(response.headers["content-length"]) == len(response.content)
        assert len(response.json()["results"]) == 4
    with org.serve() as base_url, httpx.Client(base_url=base_url) as c:
        response = c.get("/list-users", headers={"Authorization": "test-key"})
        assert [u["id"] for u in response.json()["users"]] == [u["id"] for u in org.users]
        assert c.get("/list-users").status_code == 401
    with rest.serve() as base_url, httpx.Client(base_url=base_url) as c:
        headers = {"Authorization": "Bearer test-token"}
        created = c.post(
            "/api/v1/users",
            json={"email": "a@example.com", "name": "A", "password": "p"},
            headers=headers,
        )
        assert created.status_code == 201
        deleted = c.delete(f"/api/v1/users/{created.json()['data']['id']}", headers=headers)
        assert deleted.status_code == 200
        assert c.put("/api/v1/users/usr_1", json={}, headers=headers).status_code == 404
    assert len(rest) == 0


def test_chunked_request_body() -> None:
    emu = RestEmulator()

    def chunks() -> Iterator[bytes]:
        yield b'{"email": "c@example.com", '
        yield b'"name": "C", "password": "p"}'

    with emu.serve() as base_url, httpx.Client(base_url=base_url) as c:
        response = c.post(
            "/api/v1/users", content=chunks(), headers={"Authorization": "Bearer test-token"}
        )
        assert response.status_code == 201
    assert emu.requests[0].headers["transfer-encoding"] == "chunked"
    assert emu.users[0]["email"] == "c@example.com"


def test_keep_alive_reuses_the_connection() -> None:
    emu = NotionEmulator()
    with emu.serve() as base_url, httpx.Client(base_url=base_url, headers=NOTION_HEADERS) as c:
        ports = set()
        for _ in range(5):
            response = c.get("/v1/users/me")
            stream = response.extensions["network_stream"]
            ports.add(stream.get_extra_info("client_addr")[1])
        assert len(ports) == 1


def test_log_over_http() -> None:
    emu = OrgApiEmulator()
    emu.add_user(email="a+b@example.com")
    with emu.serve() as base_url, httpx.Client(base_url=base_url) as c:
        response = c.get(
            "/fetch-user",
            params={"email": "A+B@example.com"},
            headers={"Authorization": "test-key"},
        )
        assert response.status_code == 200
        c.get("/some%2Fthing?x=1", headers={"X-Trace": "t1"})
    first, second = emu.requests
    assert first.params == {"email": "A+B@example.com"}
    assert first.query == "email=A%2BB%40example.com"
    assert first.headers["authorization"] == "test-key"
    assert second.raw_path == "/some%2Fthing"
    assert second.path == "/some/thing"
    assert second.headers["x-trace"] == "t1"
    assert second.status == 401


def test_faults_over_http() -> None:
    emu = RestEmulator()
    emu.inject(Fault.rate_limited(retry_after=3), times=1)
    emu.inject(Fault.status(503), times=1)
    emu.inject(Fault.html(502), times=1)
    emu.inject(Fault.drop(), times=1)
    emu.inject(Fault.delay(0.1), times=1)
    headers = {"Authorization": "Bearer test-token"}
    with emu.serve() as base_url, httpx.Client(base_url=base_url, headers=headers) as c:
        limited = c.get("/api/v1/users")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "3"
        assert limited.json()["error"]["code"] == "rate_limited"
        assert c.get("/api/v1/users").json()["error"]["code"] == "internal_error"
        page = c.get("/api/v1/users")
        assert (page.status_code, page.headers["content-type"]) == (502, "text/html")
        with pytest.raises(httpx.RemoteProtocolError):
            c.get("/api/v1/users")
        assert c.get("/api/v1/users").status_code == 200
    assert [r.status for r in emu.requests] == [429, 503, 502, None, 200]
    assert [r.delay for r in emu.requests] == [0.0, 0.0, 0.0, 0.0, 0.1]


def emulator_threads() -> list[threading.Thread]:
    """The emulator server's threads still alive (its accept loop and its connections)."""
    return [t for t in threading.enumerate() if t.name.startswith("userdir-emulator-")]


def test_read_timeout_over_http_does_not_block_shutdown() -> None:
    emu = NotionEmulator()
    emu.inject(Fault.read_timeout(), times=1)
    with (
        emu.serve() as base_url,
        httpx.Client(base_url=base_url, headers=NOTION_HEADERS, timeout=0.3) as c,
    ):
        with pytest.raises(httpx.ReadTimeout):
            c.get("/v1/users")
        assert c.get("/v1/users").status_code == 200
    assert emulator_threads() == []  # the handler that never answers was released
    assert emu.requests[0].fault == "read_timeout"
    assert emu.requests[0].status is None


def test_hanging_request_is_released_on_shutdown() -> None:
    emu = NotionEmulator()
    emu.inject(Fault.timeout_after_processing(), times=1)
    with emu.serve() as base_url, httpx.Client(base_url=base_url, timeout=10) as c:
        errors: list[Exception] = []

        def call() -> None:
            try:
                c.get("/v1/users", headers=NOTION_HEADERS)
            except httpx.TransportError as exc:
                errors.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        while not emu.requests:
            time.sleep(0.01)
    caller.join(5)  # a guard against hanging the suite, not a speed check
    assert not caller.is_alive()
    assert emulator_threads() == []
    assert len(errors) == 1


def test_a_long_latency_is_cut_short_by_shutdown() -> None:
    emu = NotionEmulator(latency=60.0)
    with emu.serve() as base_url, httpx.Client(base_url=base_url, timeout=30) as c:
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(c.get("/v1/users", headers=NOTION_HEADERS).status_code)
            except httpx.TransportError as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        while emu._seq == 0:  # until the request has arrived (and waits out its latency)
            time.sleep(0.01)
    caller.join(10)  # a guard against hanging the suite, not a speed check
    assert not caller.is_alive()
    assert emulator_threads() == []
    assert len(outcome) == 1


@pytest.mark.parametrize("fault", [Fault.drop_after_processing(), Fault.timeout_after_processing()])
def test_after_processing_over_http(fault: Fault) -> None:
    emu = RestEmulator()
    emu.inject(fault, times=1)
    payload = {"email": "a@example.com", "name": "A", "password": "p"}
    headers = {"Authorization": "Bearer test-token"}
    with emu.serve() as base_url, httpx.Client(base_url=base_url, timeout=0.3) as c:
        with pytest.raises(httpx.TransportError):
            c.post("/api/v1/users", json=payload, headers=headers)
        assert c.post("/api/v1/users", json=payload, headers=headers).status_code == 409
    assert len(emu) == 1


def test_async_clients_overlap_over_http() -> None:
    emu = NotionEmulator(latency=0.2)

    async def run(base_url: str) -> None:
        async with httpx.AsyncClient(base_url=base_url, headers=NOTION_HEADERS) as c:
            responses = await asyncio.gather(*(c.get("/v1/users") for _ in range(6)))
            assert all(r.status_code == 200 for r in responses)

    with emu.serve() as base_url:
        asyncio.run(run(base_url))
    log = emu.requests
    assert len(log) == 6
    # every request arrived before any was answered: the latencies overlapped
    assert max(r.started_at for r in log) < min(r.finished_at for r in log)


def _env() -> dict[str, str]:
    src = str(Path(userdir.testing.__file__).parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def _rest_total(body: dict[str, Any]) -> int:
    total: int = body["meta"]["total"]
    return total


def _org_count(body: dict[str, Any]) -> int:
    return len(body["users"]) if not body["has_more"] else -1


def _notion_count(body: dict[str, Any]) -> int:
    return len(body["results"])


@pytest.mark.parametrize(
    ("service", "path", "headers", "count", "expected", "stop"),
    [
        ("rest", "/api/v1/users", {"Authorization": "Bearer cli-token"}, _rest_total, 25, "TERM"),
        (
            "org_api",
            "/list-users?page_size=100",
            {"Authorization": "cli-token"},
            _org_count,
            25,
            "TERM",
        ),
        (
            "notion",
            "/v1/users",
            {"Authorization": "Bearer cli-token", "Notion-Version": "2025-09-03"},
            _notion_count,
            26,  # the integration's bot is listed too
            "INT",
        ),
    ],
)
def test_cli_serve(
    service: str,
    path: str,
    headers: dict[str, str],
    count: Callable[[dict[str, Any]], int],
    expected: int,
    stop: str,
) -> None:
    command = [sys.executable, "-m", "userdir.testing", "serve", service]
    command += ["--users", "25", "--latency", "0", "--token", "cli-token", "--seed", "3"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("READY http://127.0.0.1:"), line + proc.communicate()[1]
            base_url = line.split()[1]
            with httpx.Client(base_url=base_url, headers=headers) as c:
                response = c.get(path)
            assert response.status_code == 200
            assert count(response.json()) == expected
            proc.send_signal(signal.SIGTERM if stop == "TERM" else signal.SIGINT)
            out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert out == ""
