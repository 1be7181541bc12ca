"""Start-up probes, each run in a fresh interpreter: imports, connect(), a first request.

``python -m benchmarks._startup imports`` prints the seconds ``import userdir`` takes
against importing its four dependencies (in two fresh processes is the caller's job);
``connect`` prints the first and second ``connect()`` times of one process.
"""

from __future__ import annotations

import sys
import time

_DEPENDENCIES = "import httpx, attrs, cattrs, stamina"


def main(argv: list[str]) -> None:
    """Run one probe and print its result on one line."""
    what = argv[0]
    if what == "deps":
        t0 = time.perf_counter()
        exec(_DEPENDENCIES)
        print(time.perf_counter() - t0)
    elif what == "userdir":
        t0 = time.perf_counter()
        import userdir

        print(time.perf_counter() - t0)
    elif what == "connect":
        import userdir

        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            userdir.connect("notion", token="probe-token").close()
            times.append(time.perf_counter() - t0)
        print(times[0], times[1])


if __name__ == "__main__":
    main(sys.argv[1:])
