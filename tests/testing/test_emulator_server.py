"""Real HTTP serving: ``Emulator.serve()`` and ``python -m userdir.testing serve``."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import userdir
import userdir.testing
from userdir import cli
from userdir.federation import Diff
from userdir.testing import Fault, NotionEmulator, OrgApiEmulator, RestEmulator
from userdir.testing.__main__ import main as serve_main
from userdir.testing._demo import demo_company

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
            option = "api_key" if service == "org_api" else "token"
            assert line.split()[2:] == [service, f"{option}=cli-token"]  # what to connect with
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


READY = re.compile(
    r"READY (http://127\.0\.0\.1:\d+(?:/scim/v2)?) (notion|org_api|rest|scim) (token|api_key)=(\S+)"
)
DEMO_NAMES = {"notion": "wiki", "org_api": "hr", "rest": "app", "scim": "idp"}


@contextlib.contextmanager
def _serving(lines: int, *args: str) -> Iterator[list[tuple[str, str, str, str]]]:
    """``python -m userdir.testing serve *args`` in a child process, stopped with SIGTERM.

    Yields its ``lines`` READY lines as ``(url, provider, option, credential)``.
    """
    command = [sys.executable, "-m", "userdir.testing", "serve", *args]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    ) as proc:
        try:
            assert proc.stdout is not None
            ready = []
            for _ in range(lines):
                line = proc.stdout.readline()
                match = READY.fullmatch(line.rstrip("\n"))
                assert match, line + (proc.communicate()[1] if not line else "")
                url, provider, option, credential = match.groups()
                ready.append((url, provider, option, credential))
            yield ready
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert out == ""  # one line per emulator, nothing else


def _config(ready: list[tuple[str, str, str, str]]) -> dict[str, Any]:
    """A userdir config built from nothing but the printed lines."""
    return {
        "directories": {
            DEMO_NAMES[provider]: {"provider": provider, "base_url": url, option: credential}
            for url, provider, option, credential in ready
        }
    }


def _view(user: userdir.DirectoryUser | None) -> tuple[Any, ...] | None:
    # ids (Notion's are random) and creation times differ between two seedings
    if user is None:
        return None
    return (user.provider, user.email, user.name, user.kind, user.role, user.status)


def _diff_view(diff: Diff) -> dict[str, Any]:
    return {
        "counts": diff.counts,
        "in_both": [(_view(a), _view(b)) for a, b in diff.in_both],
        "only_in_a": [_view(u) for u in diff.only_in_a],
        "only_in_b": [_view(u) for u in diff.only_in_b],
        "differing": [(d.email_key, d.fields) for d in diff.differing],
    }


def _demo_views() -> tuple[dict[str, Any], dict[str, Any]]:
    """What ``userdir demo`` finds for its lookups, and its hr/app diff."""
    company = demo_company()
    with userdir.Federation(company.directories()) as federation:
        found = federation.find_many(company.lookups)
        diff = federation.diff("hr", "app")
    return _find_view(found), _diff_view(diff)


def _find_view(found: dict[str, userdir.FindResult]) -> dict[str, Any]:
    return {email: {n: _view(lk.user) for n, lk in r.lookups.items()} for email, r in found.items()}


def test_serve_company_demo_prints_what_to_connect_with_and_holds_the_demo() -> None:
    demo_found, demo_diff = _demo_views()
    # the demo company shows overlaps: found in several directories, in both hr and app
    assert sum(1 for users in demo_found.values() if len([u for u in users.values() if u]) > 1)
    assert demo_diff["counts"]["in_both"] == 7
    lookups = list(demo_found)

    async def with_asyncio(config: dict[str, Any]) -> tuple[dict[str, Any], Diff]:
        async with userdir.AsyncFederation(userdir.load_config_async(config)) as federation:
            return await federation.find_many(lookups), await federation.diff("hr", "app")

    with _serving(4, "--company", "demo") as ready:
        assert [line[1:] for line in ready] == [
            ("notion", "token", "test-token"),
            ("org_api", "api_key", "test-key"),
            ("rest", "token", "test-token"),
            ("scim", "token", "test-token"),
        ]
        assert len({url for url, *_ in ready}) == 4
        with userdir.Federation(userdir.load_config(_config(ready))) as federation:
            blocking = federation.find_many(lookups), federation.diff("hr", "app")
        for found, diff in (blocking, asyncio.run(with_asyncio(_config(ready)))):
            assert _find_view(found) == demo_found
            assert _diff_view(diff) == demo_diff


def test_emulators_served_separately_hold_the_same_company() -> None:
    _, demo_diff = _demo_views()
    with (
        _serving(1, "org_api", "--company", "demo", "--token", "hr-key") as (hr,),
        _serving(1, "rest", "--company", "demo") as (app,),
    ):
        assert hr[1:] == ("org_api", "api_key", "hr-key")
        assert app[1:] == ("rest", "token", "test-token")
        config = _config([hr, app])
        with userdir.Federation(userdir.load_config(config)) as federation:
            diff = federation.diff("hr", "app")
    assert _diff_view(diff) == demo_diff


def _readme_blocks() -> list[tuple[str, str]]:
    """``(language, text)`` of every fenced block in the README's testing section."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Testing your code with userdir", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)


def test_readme_walkthrough_of_the_served_demo(tmp_path: Path) -> None:
    """The README's serve command, its printed lines, its userdir.toml and commands."""
    blocks = _readme_blocks()
    (serve_block,) = [t for lang, t in blocks if lang == "console" and "serve --company" in t]
    (toml,) = [t for lang, t in blocks if lang == "toml"]
    (commands,) = [t for lang, t in blocks if lang == "console" and "userdir diff" in t]
    command, *shown = serve_block.strip().splitlines()
    args = shlex.split(command.removeprefix("$ "))
    assert args[:4] == ["python", "-m", "userdir.testing", "serve"]
    assert args[4:] == ["--company", "demo", "--port", "8701"]
    with _serving(4, "--company", "demo") as ready:  # a free port, not 8701
        readme_urls = [f"http://127.0.0.1:{8701 + i}" for i in range(4)]
        readme_urls[3] += "/scim/v2"  # SCIM's endpoints live under its base path
        printed = [
            f"READY {u} {p} {o}={c}" for u, (_, p, o, c) in zip(readme_urls, ready, strict=True)
        ]
        assert printed == shown
        for readme_url, (url, *_) in zip(readme_urls, ready, strict=True):
            toml = toml.replace(readme_url, url)
        (tmp_path / "userdir.toml").write_text(toml)
        outputs = {}
        for line in commands.strip().splitlines():
            argv, _, comment = line.partition("#")
            out, err = io.StringIO(), io.StringIO()
            config = ["--config", str(tmp_path / "userdir.toml"), "--format", "table"]
            code = cli.main([*config, *shlex.split(argv)[1:]], stdout=out, stderr=err)
            assert (code, err.getvalue()) == (0, ""), line
            outputs[shlex.split(argv)[1]] = (comment.strip(), out.getvalue())
    comment, out = outputs["find"]
    assert comment == "found in wiki, hr, app and idp"
    rows = [row.split()[:3] for row in out.splitlines()[1:]]
    assert rows == [
        ["ADA.LOVELACE@northwind.example", name, "found"] for name in DEMO_NAMES.values()
    ]
    comment, out = outputs["diff"]
    assert out.endswith(f"{comment}\n")  # the README shows the summary line


def test_serve_help_gives_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        serve_main(["serve", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "host 127.0.0.1" in text
    assert "port 0 (a free port for each" in text
    assert "notion token=test-token, org_api api_key=test-key, rest token=test-token" in text
    assert "READY <base URL> <provider> <connect() option>=<credential>" in text
    assert "--company {demo}" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["payroll"], "unknown service 'payroll' (choose from notion, org_api, rest, scim)"),
        (["--token", "two words"], "argument --token: must be non-empty and without whitespace"),
        (["--token", ""], "argument --token: must be non-empty and without whitespace"),
        (["--company", "acme"], "argument --company: invalid choice: 'acme'"),
        (["--port", "65534"], "--port must be 0, or 1 to 65532 for 4 services"),
        (["rest", "--port", "-1"], "--port must be 0, or 1 to 65535 for 1 services"),
        (["--users", "-1"], "--users must be >= 0"),
        (["--latency", "-0.5"], "--latency must be >= 0"),
    ],
)
def test_serve_usage_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        serve_main(["serve", *args])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert message in err
    assert "usage: python -m userdir.testing serve" in err


def test_serve_on_a_port_in_use_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exited:
            serve_main(["serve", "rest", "--port", str(port)])
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"cannot serve rest on 127.0.0.1:{port}: ")
