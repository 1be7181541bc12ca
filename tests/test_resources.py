"""Resources a hostile server or an impatient caller must not exhaust.

Decompression is bounded by ``max_response_bytes`` as it happens; every call has a
deadline (``timeout=`` per read, ``Retries.timeout`` in all); ``close()`` is prompt and
final; cancelling an async walk always cancels it.
"""

from __future__ import annotations

import asyncio
import gzip
import random
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
from userdir.testing import Emulator, Fault, RestEmulator

from .test_faults import make_emulator, options
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
def test_a_dripping_body_ends_within_the_budget(connect: Callable[..., Any], provider: str) -> None:
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
            **_over_http(
                provider, server.url, timeout=1.0, retries=userdir.Retries(timeout=BUDGET)
            ),
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


def test_a_rate_limit_wait_beyond_the_budget_is_not_taken(
    connect: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # one request per 10 s, a budget of 0.5 s: the second call would have to wait
    # 10 s for its slot; it ends at once instead, nothing sent
    slept: list[float] = []

    async def fake_async_sleep(seconds: float, *args: Any) -> None:
        slept.append(seconds)

    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr(asyncio, "sleep", fake_async_sleep)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": {"id": "usr_1"}})

    retries = userdir.Retries(timeout=BUDGET)
    d = connect(
        "rest",
        **_options_for(
            "rest", httpx.MockTransport(answer), retries=retries, max_requests_per_second=0.1
        ),
    )
    assert d.get_user("usr_1").id == "usr_1"
    with pytest.raises(userdir.TransportError, match=r"time budget of 0\.5 s") as caught:
        d.get_user("usr_1")
    assert caught.value.request_not_sent
    assert len(seen) == 1
    assert all(wait < BUDGET for wait in slept)


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


# -- close() -----------------------------------------------------------------------------------

CLOSE_READ_TIMEOUT = 1.0


def _emulator(provider: str, users: int = 40, latency: float = 0.0) -> Emulator:
    emu = make_emulator(provider)
    emu.latency = latency
    for i in range(users):
        if provider == "org_api":
            emu.add_user(email=f"u{i}@example.com", first_name="U", last_name=str(i))  # type: ignore[attr-defined]
        else:
            emu.add_user(email=f"u{i}@example.com", name=f"U{i}")  # type: ignore[attr-defined]
    return emu


def _calls_after_close(d: Any) -> list[Callable[[], Any]]:
    return [
        lambda: d.get_user(UUID),
        lambda: d.list_page(),
        lambda: list(d.iter_users()),
        lambda: d.find_users_by_email(["a@example.com", "b@example.com"]),
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_closed_directory_says_so(connect: Callable[..., Any], provider: str) -> None:
    emu = _emulator(provider, users=3)
    d = connect(provider, **options(provider, emu))
    list(d.iter_users())  # the directory has been used (and, sync, may own a pool)
    before = len(emu.requests)
    directory = getattr(d, "_directory", d)  # async: close it, not the test's event loop
    closing = directory.close()
    if closing is not None:
        d.run(closing)
    for call in _calls_after_close(d):
        with pytest.raises(userdir.DirectoryClosedError, match="directory closed"):
            call()
    assert len(emu.requests) == before


def _hanging_after(provider: str, answered: int) -> Emulator:
    """An emulator whose first ``answered`` requests are answered and the rest never."""
    emu = _emulator(provider, latency=0.01)
    emu.inject(Fault.read_timeout(), start=answered)
    return emu


def _connect_hanging(mode: str, provider: str, url: str, emu: Emulator) -> Any:
    kw = options(provider, emu, base_url=url)
    kw.update(timeout=CLOSE_READ_TIMEOUT, retries=userdir.Retries(timeout=30))
    if mode == "sync":
        return userdir.connect(provider, **kw)
    return userdir.connect_async(provider, **kw)


def _wait_for(condition: Callable[[], bool]) -> None:
    ends = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < ends, "timed out waiting"
        time.sleep(0.005)


async def _until(condition: Callable[[], bool]) -> None:
    ends = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < ends, "timed out waiting"
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_close_is_prompt_with_an_abandoned_walk_in_flight_sync(provider: str) -> None:
    emu = _hanging_after(provider, answered=6)
    with emu.serve() as url:
        d = _connect_hanging("sync", provider, url, emu)
        walk = d.iter_users(page_size=2)
        for _ in range(10):  # five pages: a page walk now fetches ahead, into the hang
            next(walk)
        # a cursor walk asks for each page when the caller needs it: nothing is ahead
        _wait_for(lambda: len(emu.requests) >= (5 if provider == "notion" else 7))
        start = time.monotonic()
        d.close()
        took = time.monotonic() - start
        time.sleep(0.1)  # requests in flight are logged once the emulator decides them
        sent = len(emu.requests)
        time.sleep(CLOSE_READ_TIMEOUT + 0.3)
        assert len(emu.requests) == sent  # what was in flight was not retried
        with pytest.raises(userdir.DirectoryClosedError):
            list(walk)
    assert took < CLOSE_READ_TIMEOUT + 0.8


@pytest.mark.parametrize("provider", PROVIDERS)
def test_close_is_prompt_with_an_abandoned_walk_in_flight_async(provider: str) -> None:
    emu = _hanging_after(provider, answered=6)

    async def main() -> float:
        d = _connect_hanging("async", provider, url, emu)
        walk = d.iter_users(page_size=2)
        for _ in range(12):  # six pages: a page walk's request for the seventh is in flight
            await walk.__anext__()
        # a cursor walk asks for each page when the caller needs it: nothing is ahead
        await _until(lambda: len(emu.requests) >= (6 if provider == "notion" else 7))
        start = time.monotonic()
        await d.close()
        took = time.monotonic() - start
        await asyncio.sleep(0.1)
        sent = len(emu.requests)
        await asyncio.sleep(CLOSE_READ_TIMEOUT + 0.3)
        assert len(emu.requests) == sent
        with pytest.raises(userdir.DirectoryClosedError):
            async for _ in walk:
                pass
        return took

    with emu.serve() as url:
        took = asyncio.run(main())
    assert took < CLOSE_READ_TIMEOUT + 0.8


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_walk_in_another_thread_ends_when_closed(provider: str) -> None:
    emu = _hanging_after(provider, answered=6)
    outcome: list[BaseException | None] = []

    def walk(d: Any) -> None:
        try:
            list(d.iter_users(page_size=2))
            outcome.append(None)
        except BaseException as exc:  # what the walk ended with, whatever it is
            outcome.append(exc)

    with emu.serve() as url:
        d = _connect_hanging("sync", provider, url, emu)
        thread = threading.Thread(target=walk, args=(d,))
        thread.start()
        _wait_for(lambda: len(emu.requests) >= 7)
        d.close()
        thread.join(CLOSE_READ_TIMEOUT + 1.0)
        assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], userdir.DirectoryClosedError), repr(outcome[0])


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_walk_in_another_task_ends_when_closed(provider: str) -> None:
    emu = _hanging_after(provider, answered=6)

    async def main() -> BaseException | None:
        d = _connect_hanging("async", provider, url, emu)

        async def walk() -> None:
            async for _ in d.iter_users(page_size=2):
                pass

        task = asyncio.ensure_future(walk())
        await _until(lambda: len(emu.requests) >= 7)
        await d.close()
        done, _ = await asyncio.wait({task}, timeout=CLOSE_READ_TIMEOUT + 1.0)
        assert done, "the walk did not end"
        return task.exception()

    with emu.serve() as url:
        error = asyncio.run(main())
    assert isinstance(error, userdir.DirectoryClosedError), repr(error)


# -- cancellation ------------------------------------------------------------------------------

TRIALS = 200


@pytest.mark.parametrize("operation", ["walk", "lookup"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_cancelling_an_async_walk_always_cancels_it(provider: str, operation: str) -> None:
    emu = _emulator(provider, users=30)
    rng = random.Random(13)

    async def run(d: Any) -> None:
        if operation == "walk":
            async for _ in d.iter_users(page_size=2):
                pass
        else:
            await d.find_users_by_email(["nobody@example.com", "none@example.com"])

    async def steps(d: Any) -> int:
        """How many event-loop steps the operation takes when left alone."""
        task, count = asyncio.ensure_future(run(d)), 0
        while not task.done():
            await asyncio.sleep(0)
            count += 1
        return count

    async def trial(d: Any, within: int) -> tuple[bool, bool]:
        task = asyncio.ensure_future(run(d))
        for _ in range(rng.randrange(0, within)):
            await asyncio.sleep(0)
        asked = task.cancel()
        await asyncio.wait({task})
        return asked, task.cancelled()

    async def main() -> int:
        d = userdir.connect_async(provider, **options(provider, emu))
        within = await steps(d)
        cancelled_mid_way = 0
        for _ in range(TRIALS):
            asked, cancelled = await trial(d, within)
            assert cancelled or not asked, "a cancellation was swallowed"
            cancelled_mid_way += asked
            # nothing the walk started is left running
            assert asyncio.all_tasks() == {asyncio.current_task()}
        await d.close()
        return cancelled_mid_way

    assert asyncio.run(main()) > TRIALS // 4  # the cancellations did land mid-walk
