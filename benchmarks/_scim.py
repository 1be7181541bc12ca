"""The SCIM benchmarks (issue 16): listing against the startIndex loop, email batches."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx

import userdir

from ._baselines import BareLoop, auth_headers
from ._measure import Contender, compare
from ._report import Row, fmt_seconds
from ._server import EmulatorServer

__all__ = ["scim_emails_case", "scim_listing_case"]

LATENCY = 0.020
USERS = 10_000
CONCURRENCY = 8
SERVER_CAP = 100  # filter.maxResults: no page holds more, whatever is asked
EMAILS = 1000


def _serve(users: int, log: Callable[[str], None]) -> EmulatorServer:
    server = EmulatorServer(
        "scim", users=users, latency=LATENCY, options=("--max-results", str(SERVER_CAP))
    )
    server.start()
    log(
        f"  served scim: {users:,} users, cap {SERVER_CAP}/page, "
        f"{LATENCY * 1000:g} ms at {server.url}"
    )
    return server


def _connect(server: EmulatorServer) -> userdir.HttpDirectory:
    return userdir.connect(
        "scim", base_url=server.url, concurrency=CONCURRENCY, **server.credentials
    )


def _counter(server: EmulatorServer) -> Contender:
    @contextmanager
    def open_() -> Iterator[Callable[[], int]]:
        with _connect(server) as directory:
            directory.list_page(page_size=1)  # the /ServiceProviderConfig read, untimed
            yield lambda: sum(1 for _ in directory.iter_users())

    return open_


def scim_listing_case(cfg: Any) -> list[Row]:
    """10,000 users at 20 ms, 100 per page at most: userdir (concurrency 8) vs the loop."""
    with _serve(USERS, cfg.log) as server:
        series = compare(
            cfg.runs,
            {
                "userdir": _counter(server),
                "startIndex loop": lambda: BareLoop("scim", server.url, server.token),
            },
        )
    lib, loop = series["userdir"], series["startIndex loop"]
    lib.expect(USERS)
    loop.expect(USERS)
    return [
        Row(
            "16a",
            f"SCIM: list {USERS:,} users @{LATENCY * 1000:g} ms, server cap {SERVER_CAP}/page, "
            f"concurrency={CONCURRENCY}: speed-up",
            fmt_seconds(lib.wall),
            f"startIndex loop {fmt_seconds(loop.wall)}",
            loop.wall / lib.wall,
            6.0,
            ">=",
            runs=lib.runs,
            note="speed-up = sequential httpx `startIndex` loop / userdir wall time; once "
            "`totalResults` is known the remaining pages go out concurrently, stepping by "
            "what the server returned.",
        )
    ]


def _one_request_per_email(server: EmulatorServer, emails: list[str]) -> Contender:
    """A client that sends one ``emails[value eq ...]`` filter per email (8 at a time)."""

    @contextmanager
    def open_() -> Iterator[Callable[[], int]]:
        client = httpx.Client(headers=auth_headers("scim", server.token), timeout=60.0)
        pool = ThreadPoolExecutor(CONCURRENCY)

        def lookup(email: str) -> bool:
            text = f"emails[value eq {userdir.providers.scim.filter_value(email)}]"
            response = client.get(f"{server.url}/Users", params={"filter": text})
            response.raise_for_status()
            return bool(response.json().get("Resources"))

        try:
            yield lambda: sum(pool.map(lookup, emails))
        finally:
            pool.shutdown()
            client.close()

    return open_


def scim_emails_case(cfg: Any) -> list[Row]:
    """1,000 emails on 10,000 users: ``find_users_by_email`` vs one request per email."""
    with _serve(USERS, cfg.log) as server:
        with BareLoop("scim", server.url, server.token) as loop:
            raw = loop.raw_users()
        rng = random.Random(16)
        picked = [u["emails"][0]["value"] for u in rng.sample(raw, EMAILS - 10)]
        picked = [e.upper() if i % 7 == 0 else e for i, e in enumerate(picked)]
        emails = picked + [f"absent.person{i}@example.com" for i in range(10)]
        rng.shuffle(emails)

        @contextmanager
        def find_many() -> Iterator[Callable[[], int]]:
            with _connect(server) as directory:
                directory.list_page(page_size=1)  # the /ServiceProviderConfig read, untimed
                yield lambda: sum(
                    u is not None for u in directory.find_users_by_email(emails).values()
                )

        series = compare(
            cfg.runs,
            {
                "find_users_by_email": find_many,
                "one request per email": _one_request_per_email(server, emails),
            },
        )
    lib, each = series["find_users_by_email"], series["one request per email"]
    lib.expect(EMAILS - 10)
    each.expect(EMAILS - 10)
    return [
        Row(
            "16b",
            f"SCIM: {EMAILS:,} emails by find_users_by_email, {USERS:,} users "
            f"@{LATENCY * 1000:g} ms",
            fmt_seconds(lib.wall),
            f"one request per email {fmt_seconds(each.wall)}",
            lib.wall / each.wall,
            0.2,
            "<=",
            runs=lib.runs,
            note="`or` filters of at most 50 emails (bounded length) against one "
            f"`emails[value eq ...]` request per email, both {CONCURRENCY} at a time; "
            "990 present (every 7th upper-cased), 10 absent.",
        )
    ]
