"""Hostile input and hostile servers: every request stays where it belongs.

Ids, emails and cursors with ``/``, ``..``, ``?``, ``#``, ``%2F``, NUL, CR/LF and
10 kB values go through every provider: either a userdir error before anything is
sent, or requests whose raw path and query are exactly the documented ones. Bodies
that are not UTF-8, truncated, over ``max_response_bytes`` or never come end in the
right userdir error, within bounded attempts.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx
import pytest

import userdir
from userdir import UserChanges
from userdir.testing import Emulator, NotionEmulator, OrgApiEmulator, RestEmulator
from userdir.testing import RecordedRequest as Recorded

PROVIDERS = ["notion", "org_api", "rest"]
ATTEMPTS = 3  # stamina testing mode (conftest)
TEN_KB = "x" * 10_000
UUID = "3f9a1d2e-5b7c-4e8f-9a0b-1c2d3e4f5a6b"

HOSTILE_IDS = [
    "/",
    ".",
    "..",
    "../admin",
    "../../v1/users/me",
    "a/b",
    "a?b=c",
    "a#b",
    "?",
    "#",
    "%2F",
    "a%2Fb",
    "%2e%2e",
    "..%2F..%2Fadmin",
    "a&id=other",
    "a&email=x@example.com",
    "a=b",
    "a+b",
    "a b",
    "a;b",
    "\\..\\admin",
    "é",
    "ユーザー",
    "\u202eevil",
    "me",
    "x" * 256,
    f"{UUID}/../me",
    f"{UUID}?x=1",
    f"{UUID}#x",
    # refused before sending
    "",
    "   ",
    "\x00",
    "a\x00b",
    "a\r\nb",
    "\r\nX-Injected: 1",
    f"{UUID}\n",
    "a\tb",
    "\ud800",
    "x" * 257,
    TEN_KB,
]
MUST_REFUSE = {"", "   ", "\x00", "a\x00b", "a\r\nb", "\r\nX-Injected: 1", f"{UUID}\n"}
MUST_REFUSE |= {"a\tb", "\ud800", "x" * 257, TEN_KB}

HOSTILE_EMAILS = [
    "a/b@example.com",
    "../admin@example.com",
    "a?b=c@example.com",
    "a#b@example.com",
    "a%2Fb@example.com",
    "a&email=other@example.com",
    "a&id=x@example.com",
    "a+tag@example.com",
    "a=b@example.com",
    "é@exämple.com",
    '"a@b"@example.com',
    "a@example.com/../x",
    TEN_KB + "@example.com",
    # refused before sending
    "a\x00b@example.com",
    "a\r\nb@example.com",
    "a b@example.com",
    "a@b@example.com",
    "@example.com",
    "a@",
    "",
    "\ud800@example.com",
]


def make_emulator(provider: str) -> Emulator:
    if provider == "notion":
        return NotionEmulator()
    if provider == "org_api":
        return OrgApiEmulator()
    return RestEmulator()


def options(provider: str, emu: Any) -> dict[str, Any]:
    if provider == "org_api":
        return {"api_key": emu.api_key, "base_url": "https://org.test", "transport": emu.transport}
    if provider == "rest":
        return {"token": emu.token, "base_url": "https://rest.test", "transport": emu.transport}
    return {"token": emu.token, "transport": emu.transport}


def one_param(request: Recorded) -> tuple[str, str]:
    """The single query parameter of a request (fails if there are more or none)."""
    pairs = parse_qsl(request.query, keep_blank_values=True)
    assert len(pairs) == 1, f"expected exactly one query parameter: {request.query!r}"
    return pairs[0]


def check_confined(provider: str, request: Recorded, user_id: str) -> None:
    """The request went to the documented path for ``user_id`` and nowhere else."""
    raw = request.raw_path
    if provider == "notion":
        assert request.method == "GET"
        assert re.fullmatch(r"/v1/users/[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}", raw)
        assert raw == f"/v1/users/{user_id}"
        assert request.query == ""
    elif provider == "org_api":
        assert request.method == "GET"
        assert raw == "/fetch-user"
        assert one_param(request) == ("id", user_id)
    else:
        prefix = "/api/v1/users/"
        assert raw.startswith(prefix), raw
        segment = raw[len(prefix) :]
        assert segment
        assert not set(segment) & set("/?#\\"), raw
        assert segment not in (".", ".."), raw
        assert unquote(segment) == user_id
        assert request.query == ""


def attempt(call: Callable[[], Any]) -> BaseException | None:
    try:
        call()
    except userdir.DirectoryError as exc:
        str(exc)
        return exc
    return None


# -- ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["get_user", "update_user", "delete_user"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_hostile_ids_stay_on_the_documented_path(
    connect: Callable[..., Any], provider: str, operation: str
) -> None:
    emu = make_emulator(provider)
    emu.populate(3)
    before = len(emu)
    d = connect(provider, **options(provider, emu))
    calls = {
        "get_user": lambda i: d.get_user(i),
        "update_user": lambda i: d.update_user(i, UserChanges(name="New Name")),
        "delete_user": lambda i: d.delete_user(i),
    }
    writes = operation != "get_user"
    for user_id in HOSTILE_IDS:
        emu.clear_requests()
        error = attempt(lambda i=user_id: calls[operation](i))
        sent = emu.requests
        context = f"{provider} {operation}({user_id[:40]!r})"
        if isinstance(error, (userdir.InvalidArgumentError, userdir.UnsupportedOperationError)):
            assert sent == [], context
        else:
            assert error is None or isinstance(error, userdir.APIError), context
            assert sent, context
        if user_id in MUST_REFUSE or (writes and provider != "rest"):
            assert isinstance(
                error, (userdir.InvalidArgumentError, userdir.UnsupportedOperationError)
            ), context
        if provider == "notion" and not writes and not re.fullmatch(r"[0-9a-f-]{36}", user_id):
            assert isinstance(error, userdir.InvalidArgumentError), context  # not a UUID
        for request in sent:
            if provider == "rest":
                assert request.method == {"get_user": "GET"}.get(operation, request.method)
            check_confined(provider, request, user_id)
    assert len(emu) == before  # nothing was deleted nor created by any of it


@pytest.mark.parametrize("provider", PROVIDERS)
def test_hostile_ids_over_http(connect: Callable[..., Any], provider: str) -> None:
    emu = make_emulator(provider)
    emu.populate(2)
    with emu.serve() as url:
        opts = {**options(provider, emu), "base_url": url}
        del opts["transport"]
        d = connect(provider, **opts)
        for user_id in HOSTILE_IDS:
            emu.clear_requests()
            error = attempt(lambda i=user_id: d.get_user(i))
            for request in emu.requests:
                check_confined(provider, request, user_id)
            assert error is not None  # none of them exists


def test_hostile_ids_in_rest_writes_never_hit_another_user(connect: Callable[..., Any]) -> None:
    emu = RestEmulator()
    victim = emu.add_user(email="victim@example.com", name="Victim")
    d = connect("rest", **options("rest", emu))
    hostile = [f"{victim}/..", f"x/../{victim}", f"../users/{victim}", f"{victim}?", f"{victim}#"]
    for user_id in hostile:
        with pytest.raises(userdir.UserNotFoundError):
            d.delete_user(user_id)
        with pytest.raises(userdir.UserNotFoundError):
            d.update_user(user_id, UserChanges(role="admin"))
    assert [u["id"] for u in emu.users] == [victim]
    assert emu.users[0]["role"] == "member"


# -- emails ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_hostile_emails_stay_on_the_documented_path(
    connect: Callable[..., Any], provider: str
) -> None:
    emu = make_emulator(provider)
    emu.populate(3)
    d = connect(provider, **options(provider, emu))
    for email in HOSTILE_EMAILS:
        emu.clear_requests()
        context = f"{provider} find_user_by_email({email[:40]!r})"
        try:
            found = d.find_user_by_email(email)
        except userdir.InvalidArgumentError:
            assert emu.requests == [], context
            continue
        assert found is None, context
        assert email.isprintable(), context
        for request in emu.requests:
            if provider == "org_api":
                assert request.raw_path == "/fetch-user", context
                assert one_param(request) == ("email", email.strip()), context
            elif provider == "notion":
                assert request.raw_path == "/v1/users", context
                assert [k for k, _ in parse_qsl(request.query)] == ["page_size"], context
            else:
                assert request.raw_path == "/api/v1/users", context
                assert [k for k, _ in parse_qsl(request.query)] == ["page", "limit"], context


def test_hostile_values_in_rest_writes(connect: Callable[..., Any]) -> None:
    emu = RestEmulator()
    user_id = emu.add_user(email="someone@example.com", name="Someone")
    d = connect("rest", **options("rest", emu))
    for email in ["a\r\nb@example.com", "a\x00@example.com", "", "no-at-sign", TEN_KB]:
        with pytest.raises(userdir.InvalidArgumentError):
            d.update_user(user_id, UserChanges(email=email))
        with pytest.raises(userdir.InvalidArgumentError):
            d.create_user(userdir.NewUser(email=email, name="X", password="pw-123456"))
    # values no request body can carry: refused, not a UnicodeEncodeError or a ValueError
    unsendable: list[dict[str, Any]] = [
        {"name": "\ud800"},
        {"password": "pw-\udfff"},
        {"settings": {"x": float("nan")}},
        {"settings": {"x": {1, 2}}},
        {"settings": {"\ud800": 1}},
    ]
    for fields in unsendable:
        with pytest.raises(userdir.InvalidArgumentError):
            d.update_user(user_id, UserChanges(**fields))
        new = {"email": "x@example.com", "name": "X", "password": "pw-123456", **fields}
        with pytest.raises(userdir.InvalidArgumentError):
            d.create_user(userdir.NewUser(**new))
    with pytest.raises(userdir.InvalidArgumentError):
        list(d.iter_users(role="\ud800"))
    assert emu.requests == []


# -- cursors --------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "cursor",
    ["²", "١", "-1", "1e3", "0x10", " 1", "1 ", "1/../2", "1&page=2", "\ud800", "9" * 10, TEN_KB],
)
def test_hostile_page_cursors_are_refused_or_confined(
    connect: Callable[..., Any], provider: str, cursor: str
) -> None:
    emu = make_emulator(provider)
    emu.populate(3)
    d = connect(provider, **options(provider, emu))
    error = attempt(lambda: d.list_page(cursor=cursor))
    if provider != "notion" or cursor in ("\ud800", TEN_KB):
        # page numbers are ASCII digits this directory gave out; nothing else is sent
        assert isinstance(error, userdir.InvalidArgumentError), error
        assert emu.requests == []
        return
    (request,) = emu.requests
    assert request.raw_path == "/v1/users"
    pairs = parse_qsl(request.query, keep_blank_values=True)
    assert pairs == [("page_size", "100"), ("start_cursor", cursor)]


@pytest.mark.parametrize(
    "next_cursor", ["\ud800", "a\x00b", "x" * 300, TEN_KB, "a&page_size=1&start_cursor=b"]
)
def test_a_servers_hostile_notion_cursor(connect: Callable[..., Any], next_cursor: str) -> None:
    seen: list[httpx.Request] = []
    user = {"object": "user", "id": UUID, "type": "person", "person": {}}

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        more = len(seen) == 1
        body = {
            "object": "list",
            "results": [user] if more else [],
            "has_more": more,
            "next_cursor": next_cursor if more else None,
        }
        return httpx.Response(200, content=json.dumps(body).encode())

    d = connect("notion", token="ntn_x", transport=httpx.MockTransport(answer))
    error = attempt(lambda: list(d.iter_users()))
    if next_cursor.isprintable() and len(next_cursor) <= 256:
        assert error is None
    else:  # it cannot be sent back: the answer is malformed, not the caller's argument
        assert isinstance(error, userdir.MalformedResponseError), error
        assert len(seen) == 1
        return
    assert len(seen) == 2
    pairs = parse_qsl(seen[1].url.query.decode(), keep_blank_values=True)
    assert pairs == [("page_size", "100"), ("start_cursor", next_cursor)]


# -- bodies ---------------------------------------------------------------------------------

BAD_BODIES = {
    "not utf-8": b'{"data": {"id": "\xff\xfe\xfd"}}',
    "latin-1": '{"data": {"id": "café"}}'.encode("latin-1"),
    "truncated": b'{"data": {"id": "usr_1", "email": "a@exam',
    "cut in a character": '{"data": {"id": "é'.encode()[:-1],
    "html": b"<html><body>Welcome</body></html>",
    "nested too deep": b"[" * 100_000,
    "NUL": b"\x00",
}


def _options_for(provider: str, transport: httpx.MockTransport, **kw: Any) -> dict[str, Any]:
    base = {
        "notion": {"token": "ntn_x"},
        "org_api": {"api_key": "k", "base_url": "https://org.test"},
        "rest": {"token": "t", "base_url": "https://rest.test"},
    }[provider]
    return {**base, "transport": transport, **kw}


@pytest.mark.parametrize("body", list(BAD_BODIES))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_bad_bodies_are_malformed(connect: Callable[..., Any], provider: str, body: str) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=BAD_BODIES[body]))
    d = connect(provider, **_options_for(provider, transport))
    with pytest.raises(userdir.MalformedResponseError):
        d.list_page()
    with pytest.raises(userdir.MalformedResponseError):
        d.get_user(UUID)


def _json_of_size(size: int) -> bytes:
    """A valid REST single-user answer of exactly ``size`` bytes."""
    head, tail = b'{"data": {"id": "usr_1", "name": "', b'"}}'
    return head + b"n" * (size - len(head) - len(tail)) + tail


MIB = 1024 * 1024


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body streamed in chunks without a Content-Length, for both engines."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


@pytest.mark.parametrize("framing", ["content-length", "chunked", "gzip"])
def test_body_over_the_cap(connect: Callable[..., Any], framing: str) -> None:
    body = _json_of_size(5000)

    def answer(request: httpx.Request) -> httpx.Response:
        if framing == "content-length":
            return httpx.Response(200, content=body)
        if framing == "chunked":
            return httpx.Response(
                200, stream=Chunks([body[i : i + 512] for i in range(0, 5000, 512)])
            )
        # 5000 bytes on the wire are far less: the cap is on the decompressed size
        return httpx.Response(
            200, headers={"content-encoding": "gzip"}, content=gzip.compress(body)
        )

    d = connect(
        "rest", **_options_for("rest", httpx.MockTransport(answer), max_response_bytes=4096)
    )
    with pytest.raises(userdir.MalformedResponseError, match="max_response_bytes=4096"):
        d.get_user("usr_1")


def test_error_answer_over_the_cap(connect: Callable[..., Any]) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(500, content=b"x" * 10_000))
    d = connect("rest", **_options_for("rest", transport, max_response_bytes=1000))
    with pytest.raises(userdir.MalformedResponseError, match="max_response_bytes=1000"):
        d.get_user("usr_1")


@pytest.mark.parametrize(("size", "fits"), [(MIB, True), (MIB + 1, False)])
def test_one_mib_cap(connect: Callable[..., Any], size: int, fits: bool) -> None:
    body = _json_of_size(size)
    assert len(body) == size
    transport = httpx.MockTransport(lambda r: httpx.Response(200, stream=Chunks([body])))
    d = connect("rest", **_options_for("rest", transport, max_response_bytes=MIB))
    if fits:
        assert d.get_user("usr_1").name == json.loads(body)["data"]["name"]
    else:
        with pytest.raises(userdir.MalformedResponseError, match=f"max_response_bytes={MIB}"):
            d.get_user("usr_1")


def test_redirects_are_not_followed(connect: Callable[..., Any]) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"location": "https://evil.test/steal"})

    d = connect("rest", **_options_for("rest", httpx.MockTransport(answer)))
    with pytest.raises(userdir.RedirectError, match=r"evil\.test/steal"):
        d.get_user("usr_1")
    assert [r.url.host for r in seen] == ["rest.test"]


# -- servers that misbehave on the socket ------------------------------------------------------


class RawServer:
    """A TCP server on 127.0.0.1 running ``handle(conn, stop)`` for each connection.

    ``with RawServer(handle) as server:`` serves on ``server.url``; on exit every
    connection is closed and every thread joined.
    """

    def __init__(self, handle: Callable[[socket.socket, threading.Event], None]) -> None:
        self.handle = handle
        self.stop = threading.Event()
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.02)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, name="raw-server", daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join()
        for thread in self._threads:
            thread.join()
        for conn in self._conns:
            conn.close()
        self._listener.close()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5.0)
            self.accepted += 1
            self._conns.append(conn)
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):  # the client went away
            self.handle(conn, self.stop)


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def hold(conn: socket.socket, stop: threading.Event) -> None:
    """Accept, read the request, and never answer."""
    read_request(conn)
    stop.wait()


@pytest.fixture
def silent_server() -> Iterator[RawServer]:
    with RawServer(hold) as server:
        yield server


def test_a_server_that_never_answers(connect: Callable[..., Any], silent_server: RawServer) -> None:
    d = connect("rest", token="t", base_url=silent_server.url, timeout=0.3, retries=False)
    with pytest.raises(userdir.TransportError, match="ReadTimeout"):
        d.get_user("usr_1")
    assert silent_server.accepted == 1


def test_a_server_that_never_answers_with_retries(
    connect: Callable[..., Any], silent_server: RawServer
) -> None:
    d = connect("rest", token="t", base_url=silent_server.url, timeout=0.1)
    with pytest.raises(userdir.TransportError, match="ReadTimeout"):
        d.list_page()
    assert silent_server.accepted == ATTEMPTS
    new = userdir.NewUser(email="a@example.com", name="A", password="pw-123456")
    with pytest.raises(userdir.TransportError, match="outcome is unknown"):
        d.create_user(new)
    assert silent_server.accepted == ATTEMPTS + 1  # the POST went out once


def _answer_with(raw: bytes) -> Callable[[socket.socket, threading.Event], None]:
    def handle(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(raw)
        conn.shutdown(socket.SHUT_RDWR)

    return handle


def test_a_body_cut_short_on_the_wire(connect: Callable[..., Any]) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    with RawServer(_answer_with(head + b'{"data": {"id": "usr_1"')) as server:
        d = connect("rest", token="t", base_url=server.url)
        # the connection broke mid-answer: a transport failure, retried like one
        with pytest.raises(userdir.TransportError):
            d.get_user("usr_1")
        assert server.accepted == ATTEMPTS


def test_a_truncated_body_on_a_clean_close(connect: Callable[..., Any]) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    with RawServer(_answer_with(head + b'{"data": {"id": "usr_1"')) as server:
        d = connect("rest", token="t", base_url=server.url)
        with pytest.raises(userdir.MalformedResponseError, match="not valid JSON"):
            d.get_user("usr_1")
        assert server.accepted == 1


def test_a_body_over_one_mib_on_the_wire(connect: Callable[..., Any]) -> None:
    body = _json_of_size(MIB + 1)
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    with RawServer(_answer_with(head + body)) as server:
        d = connect("rest", token="t", base_url=server.url, max_response_bytes=MIB)
        with pytest.raises(userdir.MalformedResponseError, match=f"max_response_bytes={MIB}"):
            d.get_user("usr_1")
