"""Timing: wall and CPU time of one call, and side-by-side repeated runs."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Contender", "Sample", "Series", "compare", "measure"]

#: Something that opens a client (untimed) and hands back the call to time.
Contender = Callable[[], AbstractContextManager[Callable[[], Any]]]


@dataclass(frozen=True)
class Sample:
    """One timed call: wall seconds, CPU seconds of this process (all threads), result."""

    wall: float
    cpu: float
    value: Any


@dataclass
class Series:
    """Every sample of one contender; the report uses medians."""

    name: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def wall(self) -> float:
        """Median wall time, seconds."""
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        """Median CPU time (``time.process_time``) of the client process, seconds."""
        return statistics.median(s.cpu for s in self.samples)

    @property
    def values(self) -> list[Any]:
        """What each run returned."""
        return [s.value for s in self.samples]

    @property
    def runs(self) -> int:
        """How many runs were timed."""
        return len(self.samples)

    def expect(self, count: int) -> None:
        """Raise unless every run returned ``count`` (a wrong answer voids the timing)."""
        wrong = [v for v in self.values if v != count]
        if wrong:
            raise RuntimeError(f"{self.name}: expected {count} per run, got {wrong}")


def measure(call: Callable[[], Any]) -> Sample:
    """Time one call: wall clock and ``time.process_time`` around it (GC settled first)."""
    gc.collect()
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    value = call()
    wall1 = time.perf_counter()
    cpu1 = time.process_time()
    return Sample(wall1 - wall0, cpu1 - cpu0, value)


def compare(
    runs: int, contenders: Mapping[str, Contender], *, warmup: bool = True
) -> dict[str, Series]:
    """Run every contender ``runs`` times, interleaved, rotating who goes first.

    Each run opens a fresh client outside the timed region and times only the call it
    returns. With ``warmup`` one untimed run of each comes first (imports, lazy set-up).
    """
    names = list(contenders)
    out = {name: Series(name) for name in names}
    if warmup:
        for name in names:
            with contenders[name]() as call:
                call()
    for run in range(runs):
        shift = run % len(names)
        for name in names[shift:] + names[:shift]:
            with contenders[name]() as call:
                out[name].samples.append(measure(call))
    return out
