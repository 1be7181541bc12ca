"""No token, API key or password anywhere: errors, reprs, log records, CLI output.

One failing scenario after another runs for every provider at DEBUG logging (root,
``userdir``, ``httpx``, ``httpcore``, ``stamina``), in-process and over real HTTP:
401s, 5xx answers that echo the credentials back in every field they can, transport
errors (dropped, timed out, refused), a REST create with a password that fails with
409, times out, or is echoed back. Then every text a user could see is scanned.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import userdir
from userdir import NewUser, UserChanges
from userdir.cli import main as cli_main
from userdir.testing import Fault, NotionEmulator, OrgApiEmulator, RestEmulator

from .conftest import API_KEY, REST_TOKEN, TOKEN

PASSWORD = "pw-S3CR3T-password-000"
NEW_PASSWORD = "pw-S3CR3T-changed-111"
SECRETS = (TOKEN, API_KEY, REST_TOKEN, PASSWORD, NEW_PASSWORD)
PROVIDERS = ["notion", "org_api", "rest"]
LOGGERS = ["userdir", "httpx", "httpcore", "stamina", "hpack", "h11"]
UUID = "3f9a1d2e-5b7c-4e8f-9a0b-1c2d3e4f5a6b"


def credentials(provider: str) -> dict[str, str]:
    if provider == "notion":
        return {"token": TOKEN}
    if provider == "org_api":
        return {"api_key": API_KEY, "base_url": "https://org.test"}
    return {"token": REST_TOKEN, "base_url": "https://rest.test"}


def emulator(provider: str, secret: str) -> Any:
    if provider == "notion":
        return NotionEmulator(token=secret)
    if provider == "org_api":
        return OrgApiEmulator(api_key=secret)
    return RestEmulator(token=secret)


def echo_everything(status: int) -> Callable[[httpx.Request], httpx.Response]:
    """A server that puts the credentials and the request body in every error field."""

    def answer(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        sent = request.content.decode("utf-8", "replace")
        text = f"credentials {auth!r} rejected; you sent {sent}"
        if status == 502:
            page = f"<html><body>{text}</body></html>".encode()
            return httpx.Response(status, headers={"content-type": "text/html"}, content=page)
        body = {
            "object": "error",
            "status": status,
            "code": auth,
            "message": text,
            "request_id": auth,
            "detail": text,
        }
        if status == 409:
            body = {"error": {"code": auth, "message": text}}
        return httpx.Response(status, headers={"x-request-id": auth, "retry-after": "0"}, json=body)

    return answer


class Echo500Handler(BaseHTTPRequestHandler):
    """Over real HTTP: a 500 whose JSON body echoes the Authorization header."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        sent = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        auth = self.headers.get("authorization", "")
        payload = {"code": auth, "message": f"bad credentials {auth} for {sent}"}
        body = json.dumps(payload).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


@contextlib.contextmanager
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo500Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Scan:
    """Collects every text a user could see, then looks for the secrets in them."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.errors: list[BaseException] = []

    def add(self, *objects: object) -> None:
        for obj in objects:
            self.texts += [str(obj), repr(obj)]

    def error(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.add(exc)
        self.texts += [str(a) for a in exc.args]
        self.texts += [repr(v) for v in vars(exc).values()]
        self.texts.append("".join(traceback.format_exception(exc)))

    def expect(self, error: type[BaseException], call: Callable[[], Any]) -> None:
        with pytest.raises(error) as info:
            call()
        self.error(info.value)

    def records(self, records: list[logging.LogRecord]) -> None:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        for record in records:
            self.texts += [record.getMessage(), str(record.msg), repr(record.args)]
            self.texts.append(formatter.format(record))
            self.texts.append(repr(vars(record)))

    def check(self) -> None:
        assert self.texts
        for text in self.texts:
            for secret in SECRETS:
                assert secret not in text, f"secret in: {text[:500]}"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_secret_in_a_failing_run(
    connect: Callable[..., Any], debug_logs: pytest.LogCaptureFixture, provider: str
) -> None:
    scan = Scan()
    creds = credentials(provider)
    user_id = UUID if provider == "notion" else "usr_100001"

    # 401: the service does not know the credentials (in-process and over HTTP)
    emu = emulator(provider, "another-secret")
    d = connect(provider, transport=emu.transport, **creds)
    scan.add(d, d.dialect, d.engine, d.capabilities)
    scan.expect(userdir.AuthenticationError, d.list_page)
    scan.expect(userdir.AuthenticationError, lambda: d.get_user(user_id))
    with emu.serve() as url:
        d = connect(provider, timeout=0.3, **{**creds, "base_url": url})
        scan.expect(userdir.AuthenticationError, d.list_page)
        # a dropped connection and a read timeout over a real socket
        emu.inject(Fault.drop(), times=3)
        scan.expect(userdir.TransportError, d.list_page)
        emu.inject(Fault.read_timeout(), times=1)
        d = connect(provider, timeout=0.1, retries=False, **{**creds, "base_url": url})
        scan.expect(userdir.TransportError, lambda: d.get_user(user_id))

    # answers that echo the credentials in every field, in-process (headers too)
    for status, error in [
        (500, userdir.ServerError),
        (502, userdir.ServerError),
        (400, userdir.InvalidRequestError),
        (429, userdir.RateLimitedError),
    ]:
        d = connect(provider, transport=httpx.MockTransport(echo_everything(status)), **creds)
        scan.expect(error, lambda d=d: d.get_user(user_id))
        scan.expect(error, lambda d=d: d.find_user_by_email("ada@example.com"))

    # ... and over real HTTP (the body only: httpcore logs response headers at DEBUG)
    with echo_server() as url:
        d = connect(provider, **{**creds, "base_url": url})
        scan.expect(userdir.ServerError, lambda: d.get_user(user_id))

    # nobody listening
    d = connect(provider, timeout=0.5, **{**creds, "base_url": closed_port_url()})
    scan.add(d, d.dialect, d.engine)
    scan.expect(userdir.TransportError, d.list_page)

    scan.records(debug_logs.records)
    assert any(r.name.startswith("httpcore") for r in debug_logs.records)
    assert any(r.name == "userdir" for r in debug_logs.records)
    scan.check()
    assert any("***" in t for t in scan.texts)  # the echoes were there, and were scrubbed


def test_no_password_in_a_failing_rest_write(
    connect: Callable[..., Any], debug_logs: pytest.LogCaptureFixture
) -> None:
    scan = Scan()
    new = NewUser(email="taken@example.com", name="Taken", password=PASSWORD)
    changes = UserChanges(password=NEW_PASSWORD, name="Renamed")
    scan.add(new, changes)

    emu = RestEmulator(token=REST_TOKEN)
    existing = emu.add_user(email="taken@example.com", name="Taken")
    d = connect("rest", token=REST_TOKEN, base_url="https://rest.test", transport=emu.transport)
    # 409: the email is taken
    scan.expect(userdir.ConflictError, lambda: d.create_user(new))
    # the answer never comes: the outcome is unknown, and said without the password
    emu.inject(Fault.timeout_after_processing(), times=1)
    fresh = NewUser(email="fresh@example.com", name="Fresh", password=PASSWORD)
    scan.expect(userdir.TransportError, lambda: d.create_user(fresh))
    emu.inject(Fault.drop_after_processing(), times=1)
    scan.expect(userdir.TransportError, lambda: d.create_user(new))
    emu.inject(Fault.status(503))
    scan.expect(userdir.ServerError, lambda: d.update_user(existing, changes))
    emu.clear_faults()
    assert emu.password_of(existing) != NEW_PASSWORD

    # a server that echoes the request body (with the password) in its error message
    for status, error in [(409, userdir.ConflictError), (400, userdir.InvalidRequestError)]:
        transport = httpx.MockTransport(echo_everything(status))
        d = connect("rest", token=REST_TOKEN, base_url="https://rest.test", transport=transport)
        scan.expect(error, lambda d=d: d.create_user(new))
        scan.expect(error, lambda d=d: d.update_user(existing, changes))
    with echo_server() as url:
        d = connect("rest", token=REST_TOKEN, base_url=url)
        scan.expect(userdir.ServerError, lambda: d.create_user(new))
        scan.expect(userdir.ServerError, lambda: d.update_user(existing, changes))

    scan.records(debug_logs.records)
    scan.check()


def test_no_secret_in_base_url_user_info(
    connect: Callable[..., Any], debug_logs: pytest.LogCaptureFixture
) -> None:
    url = f"https://admin:{PASSWORD}@rest.test"
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, json={"message": f"down for admin:{PASSWORD}"})

    d = connect("rest", token=REST_TOKEN, base_url=url, transport=httpx.MockTransport(answer))
    scan = Scan()
    scan.add(d, d.dialect, d.engine)
    scan.expect(userdir.ServerError, d.list_page)
    scan.records(debug_logs.records)  # httpx logs every URL at INFO
    scan.check()
    # the user-info still authenticates as it always did (httpx's Basic auth) ...
    basic = httpx.Request("GET", url)
    httpx.BasicAuth("admin", PASSWORD).sync_auth_flow(basic).send(None)
    assert {r.headers["authorization"] for r in seen} == {basic.headers["authorization"]}
    # ... but never travels in the URL
    assert all(r.url.userinfo == b"" for r in seen)


# -- the command line ---------------------------------------------------------------------


def _cli(argv: list[str], loader: Callable[[str | None], dict[str, Any]]) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli_main(argv, stdout=out, stderr=err, loader=loader)
    assert code != 0
    return out.getvalue(), err.getvalue()


def test_no_secret_in_cli_output(debug_logs: pytest.LogCaptureFixture) -> None:
    def directories(transport: httpx.BaseTransport) -> dict[str, Any]:
        return {
            "wiki": userdir.connect("notion", token=TOKEN, transport=transport),
            "hr": userdir.connect(
                "org_api", api_key=API_KEY, base_url="https://hr.test", transport=transport
            ),
            "app": userdir.connect(
                "rest", token=REST_TOKEN, base_url="https://app.test", transport=transport
            ),
        }

    texts: list[str] = []
    for status in (401, 500, 502):
        transport = httpx.MockTransport(echo_everything(status))
        for debug in ([], ["--debug"]):
            for command in (
                ["get", "app", "usr_1"],
                ["get", "wiki", UUID],
                ["list", "hr"],
                ["whoami", "wiki"],
                ["find", "ada@example.com"],
                ["diff", "hr", "app"],
            ):
                texts += _cli([*debug, *command], lambda path, t=transport: directories(t))
    refused = closed_port_url()

    def unreachable(path: str | None) -> dict[str, Any]:
        return {"app": userdir.connect("rest", token=REST_TOKEN, base_url=refused, timeout=0.5)}

    texts += _cli(["--debug", "list", "app"], unreachable)
    assert any("***" in t for t in texts)
    scan = Scan()
    scan.texts += texts
    scan.records(debug_logs.records)
    scan.check()
