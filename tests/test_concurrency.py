"""One directory object shared by 8 threads (sync) or 8 tasks (asyncio).

Each worker walks the whole directory, fetches users by id and looks them up by email,
all at once on the same directory (and so the same connection pool, thread pool and
rate state); every result must be complete and correct, for every provider, in-process
and over real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import userdir
from userdir.testing import Emulator

from .providers import NAMES as PROVIDERS
from .providers import named

WORKERS = 8
ROUNDS = 2
PAGE_SIZE = 20  # many pages per walk: more interleaving


def make_emulator(provider: str) -> Emulator:
    return named(provider).make(100)


@contextlib.contextmanager
def options(provider: str, emu: Emulator, over: str) -> Iterator[dict[str, Any]]:
    emu.latency = 0.001  # every request takes a moment: concurrent ones overlap
    if over == "http":
        with emu.serve() as url:
            yield emu.connect_options(url)
    else:
        yield emu.connect_options()


def people(provider: str, emu: Emulator) -> list[tuple[str, str]]:
    """(id, email) of every listed person with an email."""
    out = []
    for user in emu.users:
        email = emu.email_of(user)
        if email:
            out.append((str(user["id"]), str(email)))
    return out


def picks(everyone: list[tuple[str, str]], worker: int) -> list[tuple[str, str]]:
    """Different users for each worker and round, spread over the whole directory."""
    step = len(everyone) // (WORKERS * ROUNDS)
    return [everyone[(worker * ROUNDS + r) * step + 3] for r in range(ROUNDS)]


Result = tuple[list[str], str, str | None, dict[str, str | None]]


def check(results: list[list[Result]], emu: Emulator, everyone: list[tuple[str, str]]) -> None:
    expected = [str(u["id"]) for u in emu.users]
    assert len(results) == WORKERS
    for worker, rounds in enumerate(results):
        assert len(rounds) == ROUNDS
        for (ids, got, found, bulk), (user_id, email) in zip(
            rounds, picks(everyone, worker), strict=True
        ):
            assert ids == expected  # complete, in order, no duplicates
            assert got == user_id
            assert found == user_id
            assert bulk == {email.upper(): user_id, "nobody@example.com": None}
    log = sorted(emu.requests, key=lambda r: r.started_at)
    assert all(r.status == 200 or r.path == "/fetch-user" for r in log)
    # the workers really ran at the same time: some request began before another ended
    assert any(b.started_at < a.finished_at for a, b in itertools.pairwise(log))


@pytest.mark.parametrize("over", ["inprocess", "http"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_sync_directory_shared_by_8_threads(provider: str, over: str) -> None:
    emu = make_emulator(provider)
    everyone = people(provider, emu)
    start = threading.Barrier(WORKERS)

    def work(d: Any, worker: int) -> list[Result]:
        start.wait(timeout=10)
        out: list[Result] = []
        for user_id, email in picks(everyone, worker):
            ids = [u.id for u in d.iter_users(page_size=PAGE_SIZE)]
            got = d.get_user(user_id).id
            found = d.find_user_by_email(email.upper())
            bulk = d.find_users_by_email([email.upper(), "nobody@example.com"])
            out.append(
                (ids, got, found.id if found else None, {k: u and u.id for k, u in bulk.items()})
            )
        return out

    with (
        options(provider, emu, over) as opts,
        userdir.connect(provider, **opts) as d,
        ThreadPoolExecutor(WORKERS) as pool,
    ):
        results = list(pool.map(lambda w: work(d, w), range(WORKERS)))
    check(results, emu, everyone)


@pytest.mark.parametrize("over", ["inprocess", "http"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_async_directory_shared_by_8_tasks(provider: str, over: str) -> None:
    emu = make_emulator(provider)
    everyone = people(provider, emu)

    async def work(d: Any, worker: int) -> list[Result]:
        out: list[Result] = []
        for user_id, email in picks(everyone, worker):
            ids = [u.id async for u in d.iter_users(page_size=PAGE_SIZE)]
            got = (await d.get_user(user_id)).id
            found = await d.find_user_by_email(email.upper())
            bulk = await d.find_users_by_email([email.upper(), "nobody@example.com"])
            out.append(
                (ids, got, found.id if found else None, {k: u and u.id for k, u in bulk.items()})
            )
        return out

    async def main(opts: dict[str, Any]) -> list[list[Result]]:
        async with userdir.connect_async(provider, **opts) as d:
            return list(await asyncio.gather(*(work(d, w) for w in range(WORKERS))))

    with options(provider, emu, over) as opts:
        results = asyncio.run(main(opts))
    check(results, emu, everyone)


def test_a_request_handed_to_a_worker_has_left_before_the_caller_maps() -> None:
    # Every request the blocking walk hands to its pool has been taken by a worker
    # before the caller goes on to map a page: a caller busy mapping must not hold the
    # next requests back for the interpreter's switch interval.
    import threading

    from userdir import _http, _walk
    from userdir.testing import RestEmulator

    emu = RestEmulator()
    emu.populate(2000)  # 20 pages
    started: set[str] = set()
    lock = threading.Lock()
    fetch, users = _http.SyncEngine.fetch, _walk.Walk.users
    not_started: list[list[str]] = []

    def recording_fetch(self: Any, request: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            with lock:
                started.add(dict(request.params)["page"])
        return fetch(self, request)

    def checking_users(self: Any, page: Any) -> Any:
        with lock:
            waiting = [dict(r.params)["page"] for _, r in self.in_flight]
            not_started.append([p for p in waiting if p not in started])
        return users(self, page)

    patch = pytest.MonkeyPatch()
    patch.setattr(_http.SyncEngine, "fetch", recording_fetch)
    patch.setattr(_walk.Walk, "users", checking_users)
    try:
        with userdir.connect(
            "rest",
            token=emu.token,
            base_url="https://r.test",
            transport=emu.transport,
            concurrency=4,
        ) as d:
            assert len(list(d.iter_users())) == 2000
    finally:
        patch.undo()
    assert not_started == [[]] * 20
