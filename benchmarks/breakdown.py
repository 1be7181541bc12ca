"""``python -m benchmarks.breakdown``: where benchmark 4's extra CPU goes, per provider.

No latency, 10,000 users, the client process's ``time.process_time()``, interleaved
runs, medians, each against the bare decode-only loop of the same run:

- ``walk, no mapping``: ``concurrency=1``, with ``Walk.users`` stubbed out (no mapping,
  no dedupe): the engine, the envelope and the paging plan;
- ``concurrency=1``: the whole walk in the calling thread (what mapping adds);
- ``concurrency=4`` (the default) and ``concurrency=8`` (benchmark 4's setting): the same
  walk with its window on worker threads (what the threads add; Notion's cursor pages
  never use them).

It ends with what one hand-off between threads costs on this machine (a
``ThreadPoolExecutor`` submit and its result, the round trip each page of a window
pays at least once): the part of benchmark 4 no walk that overlaps requests on threads
can avoid.

``python -m benchmarks.breakdown [--runs N] [provider ...]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import userdir
from userdir import _walk

from ._baselines import BareLoop
from ._server import EmulatorServer

USERS = 10_000
PROVIDERS = ("notion", "org_api", "rest", "scim")


def _walker(server: EmulatorServer, concurrency: int, mapping: bool = True) -> Callable[[], Any]:
    def run() -> float:
        users = _walk.Walk.users
        if not mapping:
            _walk.Walk.users = lambda self, page: []  # type: ignore[method-assign]
        try:
            with userdir.connect(
                server.provider,
                base_url=server.url,
                concurrency=concurrency,
                **server.credentials,
            ) as d:
                t0 = time.process_time()
                sum(1 for _ in d.iter_users())
                return time.process_time() - t0
        finally:
            _walk.Walk.users = users  # type: ignore[method-assign]

    return run


def _bare(server: EmulatorServer) -> Callable[[], float]:
    def run() -> float:
        with BareLoop(server.provider, server.url, server.token) as loop:
            t0 = time.process_time()
            loop()
            return time.process_time() - t0

    return run


def breakdown(provider: str, runs: int) -> str:
    """One line per contender: median CPU and its ratio to the bare loop."""
    with EmulatorServer(provider, users=USERS, latency=0.0) as server:
        contenders = {
            "bare decode-only loop": _bare(server),
            "walk, no mapping": _walker(server, 1, mapping=False),
            "concurrency=1": _walker(server, 1),
            "concurrency=4": _walker(server, 4),
            "concurrency=8": _walker(server, 8),
        }
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for run in contenders.values():  # warm up
            run()
        for _ in range(runs):
            for name, run in contenders.items():
                samples[name].append(run())
    base = statistics.median(samples["bare decode-only loop"])
    lines = [f"{provider}:"]
    for name, values in samples.items():
        median = statistics.median(values)
        lines.append(f"  {name:22} {median * 1e3:7.1f} ms  {median / base:5.2f}x")
    return "\n".join(lines)


def hand_off(rounds: int = 2000) -> str:
    """CPU and wall time of one submit-and-result round trip to a worker thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(int).result()  # the thread is started
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(rounds):
            pool.submit(int).result()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return (
        f"thread hand-off (submit + result): {cpu / rounds * 1e6:.0f} µs CPU, "
        f"{wall / rounds * 1e6:.0f} µs wall per round trip"
    )


def main(argv: list[str] | None = None) -> None:
    """Print the breakdown for the named providers (all four by default)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.breakdown")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("providers", nargs="*", metavar="provider", help=", ".join(PROVIDERS))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.providers) - set(PROVIDERS))
    if unknown:
        parser.error(f"unknown provider(s): {', '.join(unknown)}")
    for provider in args.providers or PROVIDERS:
        print(breakdown(provider, args.runs), flush=True)
    print(hand_off(), flush=True)


if __name__ == "__main__":
    main()
