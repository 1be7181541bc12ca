"""The HTTP engine, sync and async: headers, retries, Retry-After, errors, encoding."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import stamina
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpx import HTTPXMock

import userdir
from userdir._http import TokenBucket, encode_query, encode_segment, parse_retry_after
from userdir.testing import RestEmulator

from .conftest import TOKEN
from .dummy import BASE, DummyDialect, page


@pytest.fixture(autouse=True)
def _dummy_provider() -> None:
    userdir.register_provider("dummy", DummyDialect, replace=True)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Real stamina backoff, with sleeping replaced by recording; yields the waits."""
    recorded: list[float] = []
    hook_waits: list[float] = []

    def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    async def fake_async_sleep(seconds: float, *args: Any) -> None:
        recorded.append(seconds)

    stamina.set_testing(False)
    stamina.instrumentation.set_on_retry_hooks(
        [lambda details: hook_waits.append(details.wait_for)]
    )
    monkeypatch.setattr(time, "sleep", fake_sleep)
    monkeypatch.setattr(asyncio, "sleep", fake_async_sleep)
    yield recorded
    stamina.instrumentation.set_on_retry_hooks(None)
    # stamina's own hook saw the same waits the engine slept
    assert hook_waits == recorded


def test_headers_user_agent_and_timeouts(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/users/u1", json={"id": "u1"})
    d = connect("dummy", token=TOKEN, headers={"X-Trace": "t1"})
    assert d.get_user("u1").id == "u1"
    request = httpx_mock.get_request()
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["user-agent"] == f"userdir/{userdir.__version__}"
    assert request.headers["x-trace"] == "t1"
    assert request.extensions["timeout"] == {
        "connect": 5.0,
        "read": 30.0,
        "write": 30.0,
        "pool": 30.0,
    }


def test_timeout_option_is_sent(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/users/u1", json={"id": "u1"})
    connect("dummy", token=TOKEN, timeout=2.5).get_user("u1")
    assert httpx_mock.get_request().extensions["timeout"]["read"] == 2.5


def test_retry_after_seconds_is_waited(
    connect: Any, httpx_mock: HTTPXMock, waits: list[float]
) -> None:
    httpx_mock.add_response(url=f"{BASE}/users/u1", status_code=429, headers={"Retry-After": "7"})
    httpx_mock.add_response(url=f"{BASE}/users/u1", json={"id": "u1"})
    assert connect("dummy", token=TOKEN).get_user("u1").id == "u1"
    assert waits == [7.0]
    assert len(httpx_mock.get_requests()) == 2


def test_retry_after_http_date_is_waited(
    connect: Any, httpx_mock: HTTPXMock, waits: list[float]
) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    httpx_mock.add_response(url=f"{BASE}/users/u1", status_code=429, headers={"Retry-After": when})
    httpx_mock.add_response(url=f"{BASE}/users/u1", json={"id": "u1"})
    connect("dummy", token=TOKEN).get_user("u1")
    assert len(waits) == 1
    assert 25.0 <= waits[0] <= 30.0


def test_retry_after_is_capped(connect: Any, httpx_mock: HTTPXMock, waits: list[float]) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/users/u1", status_code=503, headers={"Retry-After": "3600"}
    )
    httpx_mock.add_response(url=f"{BASE}/users/u1", json={"id": "u1"})
    # a budget with room for the capped wait (a wait that fills it is not taken)
    connect("dummy", token=TOKEN, retries={"timeout": 120}).get_user("u1")
    assert waits == [60.0]


def test_503_is_retried_then_server_error(connect: Any, httpx_mock: HTTPXMock) -> None:
    for _ in range(3):
        httpx_mock.add_response(url=f"{BASE}/users/u1", status_code=503, json={"message": "down"})
    with pytest.raises(userdir.ServerError) as info:
        connect("dummy", token=TOKEN).get_user("u1")
    assert info.value.status_code == 503
    assert info.value.message == "down"
    assert len(httpx_mock.get_requests()) == 3  # the three attempts of testing mode


def test_429_exhausted_is_rate_limited_error(connect: Any, httpx_mock: HTTPXMock) -> None:
    for _ in range(3):
        httpx_mock.add_response(
            url=f"{BASE}/users/u1", status_code=429, headers={"Retry-After": "2"}
        )
    with pytest.raises(userdir.RateLimitedError) as info:
        connect("dummy", token=TOKEN).get_user("u1")
    assert info.value.retry_after == 2.0


def test_retries_false_sends_once(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/users/u1", status_code=503)
    with pytest.raises(userdir.ServerError):
        connect("dummy", token=TOKEN, retries=False).get_user("u1")
    assert len(httpx_mock.get_requests()) == 1


def test_get_transport_error_is_retried(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=f"{BASE}/users/u1")
    httpx_mock.add_response(url=f"{BASE}/users/u1", json={"id": "u1"})
    assert connect("dummy", token=TOKEN).get_user("u1").id == "u1"
    assert len(httpx_mock.get_requests()) == 2


def test_transport_error_after_attempts(connect: Any, httpx_mock: HTTPXMock) -> None:
    for _ in range(3):
        httpx_mock.add_exception(httpx.ConnectError("refused"), url=f"{BASE}/users/u1")
    with pytest.raises(userdir.TransportError) as info:
        connect("dummy", token=TOKEN).get_user("u1")
    assert "ConnectError" in str(info.value)


def test_post_read_timeout_is_not_sent_again(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=f"{BASE}/users", method="POST")
    with pytest.raises(userdir.TransportError) as info:
        connect("dummy", token=TOKEN).create_user(
            userdir.NewUser(email="a@example.com", name="A", password="pw-S3CR3T")
        )
    assert len(httpx_mock.get_requests()) == 1
    assert "outcome is unknown" in str(info.value)
    assert "pw-S3CR3T" not in str(info.value)


def test_post_connect_error_is_retried(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=f"{BASE}/users", method="POST")
    httpx_mock.add_response(url=f"{BASE}/users", method="POST", json={"id": "u9"})
    user = connect("dummy", token=TOKEN).create_user(
        userdir.NewUser(email="a@example.com", name="A")
    )
    assert user.id == "u9"
    assert len(httpx_mock.get_requests()) == 2


def test_post_429_is_retried_but_503_is_not(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/users", method="POST", status_code=429)
    httpx_mock.add_response(url=f"{BASE}/users", method="POST", status_code=503)
    d = connect("dummy", token=TOKEN)
    with pytest.raises(userdir.ServerError):
        d.create_user(userdir.NewUser(email="a@example.com", name="A"))
    assert len(httpx_mock.get_requests()) == 2


def test_malformed_json_body(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/users/u1", content=b'{"id": "u1"', status_code=200)
    with pytest.raises(userdir.MalformedResponseError, match="not valid JSON"):
        connect("dummy", token=TOKEN).get_user("u1")


def test_non_utf8_body(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/users/u1", content=b'{"id": "\xff\xfe"}')
    with pytest.raises(userdir.MalformedResponseError):
        connect("dummy", token=TOKEN).get_user("u1")


def test_body_over_the_cap(connect: Any, httpx_mock: HTTPXMock) -> None:
    big = b'{"id": "' + b"x" * 5000 + b'"}'
    httpx_mock.add_response(url=f"{BASE}/users/u1", content=big)
    with pytest.raises(userdir.MalformedResponseError, match="max_response_bytes=1024"):
        connect("dummy", token=TOKEN, max_response_bytes=1024).get_user("u1")


@pytest.mark.parametrize(
    ("segment", "encoded"),
    [
        ("../x?y#z", "..%2Fx%3Fy%23z"),
        ("..", "%2E%2E"),
        ("a/b", "a%2Fb"),
        ("%2F", "%252F"),
    ],
)
def test_path_segments_are_percent_encoded(
    connect: Any, httpx_mock: HTTPXMock, segment: str, encoded: str
) -> None:
    httpx_mock.add_response(json={"id": "x"})
    connect("dummy", token=TOKEN).get_user(segment)
    request = httpx_mock.get_request()
    assert request.url.raw_path == f"/users/{encoded}".encode()
    assert request.url.query == b""


def test_repeated_cursor_stops(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/users?limit=100", json=page(["a"], "c1"))
    httpx_mock.add_response(url=f"{BASE}/users?limit=100&cursor=c1", json=page(["b"], "c1"))
    d = connect("dummy", token=TOKEN)
    with pytest.raises(userdir.MalformedResponseError, match="cursor 'c1' twice"):
        list(d.iter_users())
    assert len(httpx_mock.get_requests()) == 2


def test_empty_pages_with_has_more_stop(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/users?limit=100", json=page([], "c1"))
    httpx_mock.add_response(url=f"{BASE}/users?limit=100&cursor=c1", json=page([], "c2"))
    httpx_mock.add_response(url=f"{BASE}/users?limit=100&cursor=c2", json=page([], "c3"))
    with pytest.raises(userdir.MalformedResponseError, match="does not advance"):
        list(connect("dummy", token=TOKEN).iter_users())
    assert len(httpx_mock.get_requests()) == 3


def test_cursor_pages_in_order(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/users?limit=100", json=page(["a", "b"], "c1"))
    httpx_mock.add_response(url=f"{BASE}/users?limit=100&cursor=c1", json=page(["c"], "c2"))
    httpx_mock.add_response(url=f"{BASE}/users?limit=100&cursor=c2", json=page(["d"]))
    ids = [u.id for u in connect("dummy", token=TOKEN).iter_users()]
    assert ids == ["a", "b", "c", "d"]


def test_user_transport_passes_through(mode: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "u1"})

    transport = httpx.MockTransport(handler)
    if mode == "sync":
        with userdir.connect("dummy", token=TOKEN, transport=transport) as d:
            d.get_user("u1")
    else:

        async def main() -> None:
            async with userdir.connect_async("dummy", token=TOKEN, transport=transport) as d:
                await d.get_user("u1")

        asyncio.run(main())
    assert [r.url.path for r in seen] == ["/users/u1"]


def test_debug_log_per_request(
    connect: Any, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    httpx_mock.add_response(url=f"{BASE}/users/u1", status_code=503)
    httpx_mock.add_response(url=f"{BASE}/users/u1", json={"id": "u1"})
    with caplog.at_level(logging.DEBUG, logger="userdir"):
        connect("dummy", token=TOKEN).get_user("u1")
    lines = [r.getMessage() for r in caplog.records if r.name == "userdir"]
    assert len(lines) == 3
    assert lines[0].startswith("dummy GET /users/u1 -> 503 in ")
    assert lines[0].endswith("(attempt 1)")
    assert lines[1] == "dummy GET /users/u1: retrying after HTTP 503 (attempt 2 of 5)"
    assert lines[2].endswith("(attempt 2)")


def test_no_secret_anywhere_on_a_failing_run(
    connect: Any, httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    # the server even echoes the token back in its message
    for _ in range(3):
        httpx_mock.add_response(
            url=f"{BASE}/users/u1", status_code=500, json={"message": f"bad token {TOKEN}"}
        )
    httpx_mock.add_exception(httpx.ConnectError(f"refused {BASE}"), url=f"{BASE}/users/u2")
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=f"{BASE}/users/u2")
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=f"{BASE}/users/u2")
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        d = connect("dummy", token=TOKEN)
        texts += [repr(d), str(d)]
        for user_id in ("u1", "u2"):
            with pytest.raises(userdir.DirectoryError) as info:
                d.get_user(user_id)
            texts += [str(info.value), repr(info.value), info.value.message]
            texts += [str(a) for a in info.value.args]
    texts += [r.getMessage() for r in caplog.records]
    texts += [repr(r.args) for r in caplog.records]
    assert len(caplog.records) >= 6
    for text in texts:
        assert TOKEN not in text
    assert any("***" in t for t in texts)


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    date = email.utils.formatdate(1_000_100, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == 100.0
    assert parse_retry_after(date, now=2_000_000) == 0.0


def test_encode_segment() -> None:
    assert encode_segment(".") == "%2E"
    assert encode_segment("usr_1") == "usr_1"
    assert encode_segment("a b\r\n") == "a%20b%0D%0A"


def test_encode_query_examples() -> None:
    assert encode_query((("page", "2"), ("limit", "100"))) == "page=2&limit=100"
    assert encode_query((("email", "a+b@x.org"),)) == "email=a%2Bb%40x.org"
    assert encode_query((("q", "a&b=c#d e/%"),)) == "q=a%26b%3Dc%23d%20e%2F%25"


_SENDABLE_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(st.lists(st.tuples(_SENDABLE_TEXT.filter(bool), _SENDABLE_TEXT), max_size=5))
def test_encode_query_round_trips_through_httpx(params: list[tuple[str, str]]) -> None:
    query = encode_query(tuple(params))
    assert not set(query) - set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%=&"
    )
    url = httpx.URL("http://x/p?" + query)
    assert url.path == "/p"
    # what a server reads back (httpx's own QueryParams groups repeated names)
    assert parse_qsl(url.query.decode("ascii"), keep_blank_values=True) == params


def test_token_bucket_books_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    bucket = TokenBucket(4)
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]
    clock[0] += 10
    assert bucket.reserve() == 0.0
    with pytest.raises(userdir.InvalidArgumentError):
        TokenBucket(0)


def test_rate_limit_makes_requests_wait(
    connect: Any, httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    slept: list[float] = []

    async def fake_async_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr(asyncio, "sleep", fake_async_sleep)
    for _ in range(3):
        httpx_mock.add_response(url=f"{BASE}/users/u1", json={"id": "u1"})
    d = connect("dummy", token=TOKEN, max_requests_per_second=2)
    for _ in range(3):
        d.get_user("u1")
    assert len(slept) == 2
    assert 0.4 <= slept[0] <= 0.5
    assert 0.9 <= slept[1] <= 1.0


def test_retries_option_forms() -> None:
    from userdir._http import Retries

    assert Retries.coerce(False) is None
    assert Retries.coerce(None) == Retries()
    assert Retries.coerce(2).attempts == 2
    assert Retries.coerce({"attempts": 4, "timeout": 9}).timeout == 9
    with pytest.raises(userdir.InvalidArgumentError, match="unknown retries option"):
        Retries.coerce({"attempt": 4})
    with pytest.raises(userdir.InvalidArgumentError):
        Retries.coerce(0)


def test_base_url_must_be_http() -> None:
    with pytest.raises(userdir.InvalidArgumentError, match="http"):
        userdir.connect("dummy", token=TOKEN, base_url="ftp://x")


def test_no_cookie_is_kept_between_requests(connect: Any, httpx_mock: HTTPXMock) -> None:
    # Requests go straight to the transport: a directory API authenticates with its
    # credential, and a cookie a server sets is never sent back.
    httpx_mock.add_response(
        url=f"{BASE}/users/u1", json={"id": "u1"}, headers={"Set-Cookie": "session=s1; Path=/"}
    )
    httpx_mock.add_response(url=f"{BASE}/users/u2", json={"id": "u2"})
    d = connect("dummy", token=TOKEN)
    assert [d.get_user("u1").id, d.get_user("u2").id] == ["u1", "u2"]
    _first, second = httpx_mock.get_requests()
    assert "cookie" not in second.headers
    assert second.headers["authorization"] == f"Bearer {TOKEN}"


def test_a_proxy_from_the_environment_is_still_used(
    connect: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import http.server
    import json
    import threading

    seen: list[tuple[str, str | None]] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            body = json.dumps({"id": "u1"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.warns(UserWarning, match="unencrypted"):
            d = connect("dummy", token=TOKEN, base_url="http://directory.invalid")
        assert d.get_user("u1").id == "u1"
    finally:
        server.shutdown()
        server.server_close()
    # the proxy got the request in absolute form, credential included
    assert seen == [("http://directory.invalid/users/u1", f"Bearer {TOKEN}")]


def _without_transport_routing(monkeypatch: pytest.MonkeyPatch) -> None:
    """As with an httpx whose clients no longer have ``_transport_for_url``."""
    from userdir._http import _EngineBase

    original = _EngineBase.send_headers

    def send_headers(self: Any, client: Any) -> None:
        original(self, client)
        self._route = None

    monkeypatch.setattr(_EngineBase, "send_headers", send_headers)


def test_an_httpx_without_transport_routing_still_sends_through_the_client(
    connect: Any, httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_transport_routing(monkeypatch)
    httpx_mock.add_response(url=f"{BASE}/users/u1", json={"id": "u1"})
    d = connect("dummy", token=TOKEN, headers={"X-Trace": "t1"})
    assert d.get_user("u1").id == "u1"
    sent = httpx_mock.get_request()
    assert sent.headers.get_list("authorization") == [f"Bearer {TOKEN}"]
    assert sent.headers["x-trace"] == "t1"


def test_basic_auth_from_the_url_is_sent_once_either_way(
    connect: Any, httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    expected = "Basic " + base64.b64encode("ann:pä ss".encode()).decode()
    httpx_mock.add_response(json={"id": "u1"}, is_reusable=True)
    direct = connect("dummy", token=TOKEN, base_url="https://ann:p%C3%A4%20ss@dummy.test")
    direct.get_user("u1")
    _without_transport_routing(monkeypatch)
    through_client = connect("dummy", token=TOKEN, base_url="https://ann:p%C3%A4%20ss@dummy.test")
    through_client.get_user("u1")
    sent = httpx_mock.get_requests()
    assert len(sent) == 2
    for request in sent:
        assert request.headers.get_list("authorization") == [expected]


class _ImportRecorder:
    """A meta-path finder that records every module the interpreter searches for."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        self.searched.append(name)


def test_an_async_listing_over_http_searches_for_no_module() -> None:
    # httpcore imports sniffio at every async lock it sets up; a failed import is not
    # cached, so without sniffio installed (a dependency for that reason) each request
    # would search sys.path again
    emu = RestEmulator()
    emu.populate(250)
    recorder = _ImportRecorder()

    async def listing(url: str) -> list[Any]:
        options = emu.connect_options(url)
        async with userdir.connect_async("rest", concurrency=4, **options) as directory:
            await directory.list_page()  # first use: whatever is imported lazily, once
            sys.meta_path.insert(0, recorder)
            try:
                return [user async for user in directory.iter_users()]
            finally:
                sys.meta_path.remove(recorder)

    with emu.serve() as url:
        users = asyncio.run(listing(url))
    assert len(users) == 250
    assert recorder.searched == []
