"""``python -m benchmarks.mechanisms``: what each speed mechanism gains, switched off and on.

Every mechanism that exists for speed is measured on the workload it is for, with the
mechanism and without it (the library patched back to the plain way), interleaved
runs, medians. providers.md lists the results; a mechanism gaining under 2% goes.

- ``lone-inline``: a lone request (cursor pages, the first page) sent from the calling
  thread instead of a worker: client CPU listing 10,000 Notion users over HTTP
  (with and without in turn, as for ``window``: the load of a shared machine drifts).
- ``trusted``: ``DirectoryUser._trusted`` instead of the attrs ``__init__``: mapping CPU.
- ``inline-checks``: the common fields checked inline, the typed reader called only to
  raise, instead of one reader call per field: mapping CPU (Notion).
- ``flat-nesting``: a flat object's nesting checked in one pass (only JSON scalars in
  it) instead of level by level: mapping CPU (REST's ``settings``, SCIM's ``extra``).
- ``query``: the engine's own query encoding instead of httpx's ``params=``.
- ``stamina-first``: the first attempt outside stamina's retry context.
- ``direct-send``: requests handed to the client's transport, not through
  ``httpx.Client.send``: client CPU listing 10,000 REST users at ``concurrency=1``.
- ``hand-over``: a request handed to a worker waited for until the worker has it: wall
  time @20 ms and client CPU with no latency, SCIM, 10,000 users, ``concurrency=8``.
- ``sniffio``: the ``sniffio`` dependency installed, against it missing (a finder that
  searches ``sys.path`` for it as a missing module costs, then fails): httpcore imports
  it at every async lock it sets up, and a failed import is never cached. Client CPU of
  an async listing of 10,000 REST users, no latency, ``concurrency=8``.
- ``window``: numbered pages in a window of ``concurrency=8`` instead of one at a time
  (REST, 10,000 users @20 ms).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import stamina

import userdir
from userdir import directory as directory_module
from userdir.models import DirectoryUser
from userdir.providers import ListPage, NotionDialect
from userdir.providers import _fields as fields_module
from userdir.providers import notion as notion_module
from userdir.providers import rest as rest_module
from userdir.providers import scim as scim_module
from userdir.testing import NotionEmulator, RestEmulator, ScimEmulator

from ._server import EmulatorServer

RUNS = 7


def median_of(
    call: Callable[[], Any], runs: int = RUNS, clock: Callable[[], float] = time.process_time
) -> float:
    values = []
    for _ in range(runs):
        t0 = clock()
        call()
        values.append(clock() - t0)
    return statistics.median(values)


def medians_interleaved(
    with_: Callable[[], Any],
    without: Callable[[], Any],
    runs: int = RUNS,
    clock: Callable[[], float] = time.process_time,
) -> tuple[float, float]:
    """Medians of ``with_`` and ``without``, run in turn (the load of a shared machine
    drifts; runs side by side see the same)."""
    values: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for call, out in ((with_, values[0]), (without, values[1])):
            t0 = clock()
            call()
            out.append(clock() - t0)
    return statistics.median(values[0]), statistics.median(values[1])


def gain(without: float, with_: float) -> str:
    return (
        f"{(without - with_) / without * 100:+.1f}% ({without * 1e3:.2f} -> {with_ * 1e3:.2f} ms)"
    )


@contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def notion_payloads(n: int = 1000) -> list[dict[str, Any]]:
    emu = NotionEmulator()
    emu.populate(n)
    return emu.users


def lone_inline() -> str:
    with EmulatorServer("notion", users=10_000, latency=0.0) as server:

        def listing() -> None:
            with userdir.connect("notion", base_url=server.url, token=server.token) as d:
                sum(1 for _ in d.iter_users())

        listing()  # warm up

        def pooled() -> None:
            # the same loop, with the lone request submitted to a worker like the others
            with patched(directory_module, "INLINE_LONE_REQUESTS", False):
                listing()

        with_, without = medians_interleaved(listing, pooled, RUNS * 2)
    return gain(without, with_)


def trusted() -> str:
    dialect = NotionDialect(token="t")
    page = ListPage(notion_payloads())
    with_ = median_of(lambda: dialect.map_items(page))
    plain = classmethod(lambda cls, values: cls(**values))
    with patched(DirectoryUser, "_trusted", plain):
        without = median_of(lambda: dialect.map_items(page))
    return gain(without, with_)


def inline_checks() -> str:
    dialect = NotionDialect(token="t")
    page = ListPage(notion_payloads())
    with_ = median_of(lambda: dialect.map_items(page))
    readers = notion_module.F

    def every_field(payload: Any, what: str = "user") -> DirectoryUser:
        for key in ("type", "name", "avatar_url"):
            readers.opt_str(payload, key, what)
        readers.id(payload, what)
        return notion_module.parse_user(payload, what)

    with patched(type(dialect), "parse_item", staticmethod(every_field)):
        without = median_of(lambda: dialect.map_items(page))
    return gain(without, with_) + " (reader calls added on top of the inline checks)"


def _mapping_cpu(dialect: Any, page: ListPage) -> tuple[float, float]:
    """Median CPU of mapping ``page``, with the flat-object pass and without it."""

    def mapping() -> None:
        dialect.map_items(page)

    def level_by_level() -> None:
        with (
            patched(fields_module, "nesting_exceeds", fields_module.levels_exceed),
            patched(scim_module, "nesting_exceeds", fields_module.levels_exceed),
        ):
            dialect.map_items(page)

    return medians_interleaved(mapping, level_by_level, RUNS * 3)


def flat_nesting() -> str:
    rest, scim = RestEmulator(), ScimEmulator()
    rest.populate(1000)
    scim.populate(1000)
    results = []
    for name, dialect, emulator in (
        ("rest", rest_module.RestDialect(token="t", base_url="https://r.test"), rest),
        ("scim", scim_module.ScimDialect(token="t", base_url="https://s.test/v2"), scim),
    ):
        with_, without = _mapping_cpu(dialect, ListPage(emulator.users))
        results.append(f"{name} {gain(without, with_)}")
    return "; ".join(results) + " (mapping 1,000 users as the emulators serve them)"


def query() -> str:
    from userdir._http import encode_query

    client = httpx.Client()
    params = (("page_size", "100"), ("start_cursor", "6794760a-1f15-45cd-9c65-0dfe42f5135a"))
    url = "https://api.example/v1/users"

    def ours() -> None:
        for _ in range(1000):
            client.build_request("GET", url + "?" + encode_query(params))

    def httpx_params() -> None:
        for _ in range(1000):
            client.build_request("GET", url, params=params)

    return gain(median_of(httpx_params), median_of(ours)) + " per 1,000 requests"


def stamina_first() -> str:
    def bare() -> None:
        for _ in range(1000):
            pass

    def in_context() -> None:
        for _ in range(1000):
            for attempt in stamina.retry_context(on=Exception, attempts=5, timeout=60):
                with attempt:
                    break

    return gain(median_of(in_context), median_of(bare)) + " per 1,000 requests"


def direct_send() -> str:
    from userdir._http import SyncEngine

    with EmulatorServer("rest", users=10_000, latency=0.0) as server:

        def listing() -> None:
            with userdir.connect(
                "rest", base_url=server.url, token=server.token, concurrency=1
            ) as d:
                sum(1 for _ in d.iter_users())

        listing()  # warm up

        def through_client() -> None:
            # the same requests through httpx.Client.send (auth flow, redirects, cookies)
            send = lambda self, request: self._client.send(request, stream=True)  # noqa: E731
            with patched(SyncEngine, "_send", send):
                listing()

        with_, without = medians_interleaved(listing, through_client, RUNS * 2)
    return gain(without, with_) + " (REST, 10,000 users, no latency, client CPU)"


def hand_over() -> str:
    results = []
    for latency, clock, what in (
        (0.020, time.perf_counter, "wall @20 ms (benchmark 16a's workload)"),
        (0.0, time.process_time, "client CPU, no latency (benchmark 4's)"),
    ):
        with EmulatorServer(
            "scim", users=10_000, latency=latency, options=("--max-results", "100")
        ) as server:

            def listing() -> None:
                with userdir.connect(
                    "scim", base_url=server.url, token=server.token, concurrency=8
                ) as d:
                    sum(1 for _ in d.iter_users())

            def unconfirmed() -> None:
                # submitted to the pool without waiting for a worker to take it
                with patched(directory_module, "HAND_OVER", False):
                    listing()

            listing()  # warm up
            with_, without = medians_interleaved(listing, unconfirmed, RUNS * 2, clock)
        results.append(f"{gain(without, with_)} {what}")
    return "; ".join(results) + " (SCIM, 10,000 users, cap 100, concurrency=8)"


class _MissingSniffio:
    """A meta-path finder for which ``sniffio`` is not installed: the search, then a miss."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "sniffio":
            import importlib.machinery

            importlib.machinery.PathFinder.find_spec(name, path)  # what a miss searches
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@contextmanager
def sniffio_missing() -> Iterator[None]:
    """``import sniffio`` fails as when it is not installed, for the duration."""
    saved = sys.modules.pop("sniffio", None)
    finder = _MissingSniffio()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        if saved is not None:
            sys.modules["sniffio"] = saved


def sniffio() -> str:
    import asyncio

    with EmulatorServer("rest", users=10_000, latency=0.0) as server:

        async def alisting() -> None:
            async with userdir.connect_async(
                "rest", base_url=server.url, token=server.token, concurrency=8
            ) as d:
                async for _ in d.iter_users():
                    pass

        def listing() -> None:
            asyncio.run(alisting())

        def missing() -> None:
            with sniffio_missing():
                listing()

        listing()  # warm up
        with_, without = medians_interleaved(listing, missing, RUNS * 2)
    return gain(without, with_) + " (async REST, 10,000 users, no latency, client CPU)"


def window() -> str:
    with EmulatorServer("rest", users=10_000, latency=0.020) as server:

        def listing(concurrency: int) -> Callable[[], None]:
            def run() -> None:
                with userdir.connect(
                    "rest", base_url=server.url, token=server.token, concurrency=concurrency
                ) as d:
                    sum(1 for _ in d.iter_users())

            return run

        with_, without = medians_interleaved(listing(8), listing(1), 3, time.perf_counter)
    return gain(without, with_) + " wall"


MECHANISMS: dict[str, Callable[[], str]] = {
    "lone-inline": lone_inline,
    "trusted": trusted,
    "inline-checks": inline_checks,
    "flat-nesting": flat_nesting,
    "query": query,
    "stamina-first": stamina_first,
    "direct-send": direct_send,
    "hand-over": hand_over,
    "sniffio": sniffio,
    "window": window,
}


def main(argv: list[str]) -> None:
    """Measure the named mechanisms (all by default) and print one line each."""
    for name in argv or list(MECHANISMS):
        print(f"{name:14} {MECHANISMS[name]()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
