"""Resources a hostile server or an impatient caller must not exhaust.

Decompression is bounded by ``max_response_bytes`` as it happens; every call has a
deadline (``timeout=`` per read, ``Retries.timeout`` in all); ``close()`` is prompt and
final; cancelling an async walk always cancels it.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stamina

import userdir
from userdir.testing import RestEmulator

from .test_hostile import Chunks, RawServer, _options_for, hold, read_request

PROVIDERS = ["notion", "org_api", "rest"]
MIB = 1024 * 1024
UUID = "3f9a1d2e-5b7c-4e8f-9a0b-1c2d3e4f5a6b"


def _compress(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data, mtime=0)
    return zlib.compress(data)  # deflate: zlib-wrapped, as RFC 9110 says


def _encode(data: bytes, header: str) -> bytes:
    """``data`` with each encoding of a ``Content-Encoding`` header applied, in order."""
    for encoding in header.split(","):
        data = _compress(data, encoding.strip())
    return data


def _zeros_gzip(size: int) -> bytes:
    """``size`` zero bytes, gzipped without ever holding them all."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b"\0" * MIB
    parts = [packer.compress(block) for _ in range(size // MIB)]
    return b"".join([*parts, packer.flush()])


# -- decompression ------------------------------------------------------------------------------

BOMB = 64 * MIB


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """64 MiB of zeros: gzip, deflate, and stacked twice (gzip, gzip; deflate, gzip)."""
    once = _zeros_gzip(BOMB)
    deflated = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
    block = b"\0" * MIB
    deflate = b"".join([*(deflated.compress(block) for _ in range(BOMB // MIB)), deflated.flush()])
    return {
        "gzip": once,
        "deflate": deflate,
        "gzip, gzip": _compress(once, "gzip"),
        "deflate, gzip": _compress(deflate, "gzip"),
    }


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "gzip, gzip", "deflate, gzip"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_decompression_bomb_stays_within_the_cap(
    connect: Callable[..., Any], bombs: dict[str, bytes], provider: str, encoding: str
) -> None:
    bomb = bombs[encoding]
    assert len(bomb) < 100_000  # a small answer on the wire ...

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": encoding}, stream=Chunks([bomb]))

    d = connect(
        provider,
        **_options_for(provider, httpx.MockTransport(answer), max_response_bytes=MIB),
    )
    tracemalloc.start()
    try:
        with pytest.raises(userdir.MalformedResponseError, match=f"max_response_bytes={MIB}"):
            d.get_user(UUID)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # ... that would be 64 MiB inflated: the client never holds much more than the cap
    assert peak < 2 * MIB


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "gzip, gzip", "deflate, gzip", "identity"])
def test_compressed_answers_decode(connect: Callable[..., Any], encoding: str) -> None:
    body = b'{"data": {"id": "usr_1", "name": "' + b"n" * 200_000 + b'"}}'
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        content = body if encoding == "identity" else _encode(body, encoding)
        chunks = [content[i : i + 100] for i in range(0, len(content), 100)]
        return httpx.Response(200, headers={"content-encoding": encoding}, stream=Chunks(chunks))

    d = connect("rest", **_options_for("rest", httpx.MockTransport(answer)))
    assert d.get_user("usr_1").name == "n" * 200_000
    assert seen[0].headers["accept-encoding"] == "gzip, deflate"


def test_raw_deflate_decodes(connect: Callable[..., Any]) -> None:
    packer = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = packer.compress(b'{"data": {"id": "usr_1"}}') + packer.flush()
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-encoding": "deflate"}, stream=Chunks([raw]))
    )
    d = connect("rest", **_options_for("rest", transport))
    assert d.get_user("usr_1").id == "usr_1"


@pytest.mark.parametrize(
    ("encoding", "named"),
    [("br", "'br'"), ("gzip, zstd", "'zstd'"), ("gzip, " * 5 + "gzip", "6 stacked")],
)
def test_encodings_not_decoded_are_refused(
    connect: Callable[..., Any], encoding: str, named: str
) -> None:
    transport = httpx.MockTransport(
        lambda r: httpx.Response(
            200, headers={"content-encoding": encoding}, stream=Chunks([b"{}"])
        )
    )
    d = connect("rest", **_options_for("rest", transport))
    with pytest.raises(userdir.MalformedResponseError, match=named):
        d.get_user("usr_1")


def test_a_body_that_does_not_decode_is_malformed(connect: Callable[..., Any]) -> None:
    transport = httpx.MockTransport(
        lambda r: httpx.Response(
            200, headers={"content-encoding": "gzip"}, stream=Chunks([b"not gzip at all"])
        )
    )
    d = connect("rest", **_options_for("rest", transport))
    with pytest.raises(userdir.MalformedResponseError, match="does not decode"):
        d.get_user("usr_1")


# -- deadlines ---------------------------------------------------------------------------------

READ_TIMEOUT = 0.3
BUDGET = 0.5
SLACK = 1.0  # generous: a loaded machine, thread start-up


def _drip(conn: socket.socket, stop: threading.Event) -> None:
    """Answer 200 and then a byte every 50 ms: each read is quick, the body never ends."""
    read_request(conn)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    ends = time.monotonic() + 10
    while not stop.is_set() and time.monotonic() < ends:
        conn.sendall(b" ")
        stop.wait(0.05)


def _over_http(provider: str, url: str, **kw: Any) -> dict[str, Any]:
    creds = {"org_api": {"api_key": "k"}}.get(provider, {"token": "t"})
    return {**creds, "base_url": url, **kw}


def _timed(call: Callable[[], Any]) -> tuple[BaseException | None, float]:
    start = time.monotonic()
    try:
        call()
    except userdir.DirectoryError as exc:
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_dripping_body_ends_within_the_budget(
    connect: Callable[..., Any], provider: str
) -> None:
    with RawServer(_drip) as server:
        d = connect(
            provider,
            **_over_http(
                provider,
                server.url,
                timeout=READ_TIMEOUT,
                retries=userdir.Retries(timeout=BUDGET),
            ),
        )
        error, took = _timed(lambda: d.get_user(UUID))
    assert isinstance(error, userdir.TransportError)
    assert "time budget of 0.5 s" in str(error)
    assert took < BUDGET + READ_TIMEOUT + SLACK


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_directory_that_never_answers_ends_within_the_budget(
    connect: Callable[..., Any], provider: str
) -> None:
    # each read may take 1 s, the whole call 0.5 s: reads are cut to what is left
    with RawServer(hold) as server:
        d = connect(
            provider,
            **_over_http(provider, server.url, timeout=1.0, retries=userdir.Retries(timeout=BUDGET)),
        )
        error, took = _timed(lambda: list(d.iter_users()))
    assert isinstance(error, userdir.TransportError)
    assert took < BUDGET + SLACK


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_retry_after_beyond_the_budget_is_not_waited(
    connect: Callable[..., Any], provider: str
) -> None:
    stamina.set_testing(False)  # real waits
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(429, headers={"retry-after": "3600"}, json={})

    retries = userdir.Retries(timeout=BUDGET, attempts=2)
    d = connect(provider, **_options_for(provider, httpx.MockTransport(answer), retries=retries))
    error, took = _timed(lambda: d.get_user(UUID))
    assert isinstance(error, userdir.RateLimitedError)
    assert error.retry_after == 3600
    assert len(seen) == 1
    assert took < SLACK


def test_a_backoff_beyond_the_budget_is_not_waited(connect: Callable[..., Any]) -> None:
    stamina.set_testing(False)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, json={"error": {"message": "down"}})

    retries = userdir.Retries(timeout=BUDGET, wait_initial=1.0)
    d = connect("rest", **_options_for("rest", httpx.MockTransport(answer), retries=retries))
    error, took = _timed(lambda: d.get_user("usr_1"))
    assert isinstance(error, userdir.ServerError)
    assert len(seen) == 1
    assert took < SLACK


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_federation_find_with_one_hung_directory(mode: str) -> None:
    emu = RestEmulator()
    emu.add_user(email="ada@example.com", name="Ada")
    with RawServer(hold) as server:
        ok = {"token": emu.token, "base_url": "https://rest.test", "transport": emu.transport}
        hung = _over_http("rest", server.url, timeout=1.0, retries=userdir.Retries(timeout=BUDGET))
        start = time.monotonic()
        if mode == "sync":
            with userdir.Federation(
                {"ok": userdir.connect("rest", **ok), "hung": userdir.connect("rest", **hung)}
            ) as fed:
                result = fed.find("ada@example.com")
        else:

            async def find() -> userdir.FindResult:
                async with userdir.AsyncFederation(
                    {
                        "ok": userdir.connect_async("rest", **ok),
                        "hung": userdir.connect_async("rest", **hung),
                    }
                ) as fed:
                    return await fed.find("ada@example.com")

            result = asyncio.run(find())
        took = time.monotonic() - start
    assert took < BUDGET + SLACK
    assert result.users["ok"].email == "ada@example.com"
    assert isinstance(result.errors["hung"], userdir.TransportError)
