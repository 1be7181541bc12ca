"""The memory probe, run in a fresh process so that ``ru_maxrss`` means something.

``python -m benchmarks._memory PROVIDER URL TOKEN`` counts every user of the directory
at ``URL`` (without keeping them) and prints one JSON object: the users counted, the
``tracemalloc`` peak minus the traced memory at the start, and the growth of the
process's maximum resident set size, in bytes.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
import tracemalloc

import userdir

from ._server import credentials

__all__ = ["probe"]


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux says KiB


def probe(provider: str, url: str, token: str, *, concurrency: int = 8) -> dict[str, float]:
    """Count every user while tracing allocations; return the figures."""
    directory = userdir.connect(
        provider, base_url=url, concurrency=concurrency, **credentials(provider, token)
    )
    with directory:
        directory.list_page(page_size=1)  # imports, converters, the connection: not counted
        gc.collect()
        rss0 = _maxrss_bytes()
        tracemalloc.start()
        start, _ = tracemalloc.get_traced_memory()
        wall0 = time.perf_counter()
        count = 0
        for _user in directory.iter_users():
            count += 1
        wall = time.perf_counter() - wall0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss1 = _maxrss_bytes()
    return {
        "users": count,
        "peak_growth": peak - start,
        "maxrss_growth": rss1 - rss0,
        "wall": wall,
    }


def main(argv: list[str]) -> int:
    """Entry point of the child process."""
    provider, url, token = argv
    sys.stdout.write(json.dumps(probe(provider, url, token)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
