"""Fault descriptions and the rules that decide which request gets which fault."""

from __future__ import annotations

import attrs

__all__ = ["Fault"]

#: Faults answered with an error response instead of touching the emulator's state.
RESPONSE_KINDS = frozenset({"rate_limited", "status", "html"})
#: Faults where no answer at all is given (the request is not processed).
SILENT_KINDS = frozenset({"drop", "read_timeout"})
#: Faults applied after the request has been processed normally.
AFTER_KINDS = frozenset({"drop_after_processing", "timeout_after_processing"})
KINDS = RESPONSE_KINDS | SILENT_KINDS | AFTER_KINDS | {"delay"}


def _check_kind(_instance: object, _attribute: object, value: str) -> None:
    if value not in KINDS:
        raise ValueError(f"unknown fault kind {value!r}; expected one of {sorted(KINDS)}")


@attrs.frozen
class Fault:
    """One kind of misbehaviour an emulator can inject (see `Emulator.inject`).

    Build instances with the class methods, not the constructor:

    - `Fault.rate_limited(retry_after=1)`: the service's own 429 body plus a
      ``Retry-After`` header.
    - `Fault.status(code)`: an error status (usually 5xx) with the service's JSON error body.
    - `Fault.html(status=502)`: an HTML error page as a reverse proxy would send it.
    - `Fault.drop()`: the connection closes before any answer; the request is not processed.
    - `Fault.read_timeout()`: no answer ever comes; the request is not processed.
    - `Fault.delay(seconds)`: a normal answer, ``seconds`` later than usual.
    - `Fault.drop_after_processing()` / `Fault.timeout_after_processing()`: the request IS
      processed (a POST creates its user), then the connection drops / no answer comes.

    ``kind`` is the fault's name as recorded in `RecordedRequest.fault`.
    """

    kind: str = attrs.field(validator=_check_kind)
    code: int | None = None
    retry_after: int | str | None = None
    seconds: float = 0.0

    @classmethod
    def rate_limited(cls, retry_after: int | str = 1) -> Fault:
        """A 429 with the service's rate-limit body and ``Retry-After: <retry_after>``.

        ``retry_after`` is a number of seconds or any string (e.g. an HTTP date), sent verbatim.
        """
        return cls("rate_limited", code=429, retry_after=retry_after)

    @classmethod
    def status(cls, code: int) -> Fault:
        """An error response with HTTP status ``code`` (400-599) and the service's error body."""
        if not 400 <= code <= 599:
            raise ValueError(f"status fault needs a 4xx or 5xx code, not {code}")
        return cls("status", code=code)

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        """An HTML error page (``Content-Type: text/html``) with HTTP status ``status``."""
        if not 400 <= status <= 599:
            raise ValueError(f"html fault needs a 4xx or 5xx status, not {status}")
        return cls("html", code=status)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without answering; the request is not processed."""
        return cls("drop")

    @classmethod
    def read_timeout(cls) -> Fault:
        """Never answer (the client's read times out); the request is not processed."""
        return cls("read_timeout")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally, but only after ``seconds`` more than the emulator's latency."""
        if seconds < 0:
            raise ValueError("delay must be >= 0")
        return cls("delay", seconds=float(seconds))

    @classmethod
    def drop_after_processing(cls) -> Fault:
        """Process the request (state changes happen), then close without answering."""
        return cls("drop_after_processing")

    @classmethod
    def timeout_after_processing(cls) -> Fault:
        """Process the request (state changes happen), then never answer."""
        return cls("timeout_after_processing")


@attrs.define
class Rule:
    """An injected fault plus the schedule deciding which requests it hits."""

    fault: Fault
    times: int | None
    every: int | None
    start: int
    seen: int = 0
    fired: int = 0

    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self) -> bool:
        """Whether the request just counted in ``seen`` falls on this rule's schedule."""
        if self.exhausted():
            return False
        n = self.seen - self.start
        if n <= 0:
            return False
        return self.every is None or n % self.every == 0


def pick_fault(rules: list[Rule]) -> Fault | None:
    """Count one incoming request against every rule; return the first matching fault.

    Must be called with the emulator's lock held. Exhausted rules are removed.
    """
    for rule in rules:
        rule.seen += 1
    chosen: Fault | None = None
    for rule in rules:
        if rule.matches():
            rule.fired += 1
            chosen = rule.fault
            break
    rules[:] = [r for r in rules if not r.exhausted()]
    return chosen
