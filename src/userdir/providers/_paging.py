"""Paging strategies: how a listing moves from page to page, with no I/O and no clock.

A provider names one strategy (``paging = PageNumberPaging(first=1, totals=True)``);
each walk of the directory gets a fresh :class:`Plan` from it. A plan says which
positions (a cursor, a page number, an item offset, a next link) to ask for now,
takes the answers back strictly in order, and knows when the walk is done. The walk
(``userdir._walk``) does the rest — requests, dedupe, the stall guard — the same way
for every strategy.

Decisions depend only on what the service answered, never on measured time: a
walk behaves the same on any machine.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from ..errors import InvalidArgumentError, MalformedResponseError

__all__ = [
    "CursorPaging",
    "ListPage",
    "NextLinkPaging",
    "OffsetPaging",
    "PageNumberPaging",
    "Paging",
    "Plan",
]

#: A cursor token or next link (str), a page number or offset (int); None: the start.
Position = Any


@attrs.frozen
class ListPage:
    """What a provider reads off one list answer, before its users are mapped.

    ``items`` are the raw user payloads (or users already mapped, for a provider that
    maps them itself). ``next_cursor`` is the cursor token or the next link the answer
    gave; ``total_pages`` and ``total_items`` are the totals it announced, if any;
    ``has_more`` whether it says more pages follow.
    """

    items: list[Any]
    has_more: bool = False
    next_cursor: str | None = None
    total_pages: int | None = None
    total_items: int | None = None

    @property
    def users(self) -> list[Any]:
        """The items (the name of 0.1's field, when ``parse_list`` maps them)."""
        return self.items


class Plan:
    """One walk's paging state; pages are taken back strictly in the order asked."""

    #: Whether every page up to the last has been taken back.
    done: bool = False

    def schedule(self, in_flight: int) -> list[Position]:
        """Positions to ask for now, given how many requests are in flight."""
        raise NotImplementedError

    def accept(self, position: Position, page: ListPage) -> None:
        """Take the answer for ``position`` (the oldest in flight)."""
        raise NotImplementedError

    def wanted(self, position: Position) -> bool:
        """Whether a position in flight is still needed (not past the end, not replanned)."""
        return True


class Paging:
    """Base of the paging strategies: turns positions into public cursors and back."""

    #: The label :attr:`~userdir.Capabilities.paging` shows for this style.
    kind: ClassVar[str] = ""

    def start(self) -> Position:
        """The position of the first page."""
        return None

    def position(self, provider: str, cursor: str | None) -> Position:
        """The position a public cursor (``Page.next_cursor``) stands for; validates it."""
        return cursor

    def next_cursor(self, position: Position, page: ListPage) -> str | None:
        """The public cursor of the page after ``page`` (at ``position``), or None."""
        raise NotImplementedError

    def plan(self, provider: str, window: int) -> Plan:
        """A fresh plan for one walk with at most ``window`` requests in flight."""
        raise NotImplementedError


# -- cursor tokens and next links: one request at a time -------------------------------


class _ChainPlan(Plan):
    """Each page names the next; a token or link given twice is a loop."""

    def __init__(self, provider: str, what: str) -> None:
        self.provider = provider
        self.what = what
        self.next: Position = None
        self.started = False
        self.seen: set[str] = set()

    def schedule(self, in_flight: int) -> list[Position]:
        if self.done or in_flight or (self.started and self.next is None):
            return []
        self.started = True
        position, self.next = self.next, None
        return [position]

    def accept(self, position: Position, page: ListPage) -> None:
        following = page.next_cursor if page.has_more else None
        if not following:
            self.done = True
            return
        if following in self.seen:
            raise MalformedResponseError(
                f"pagination loop: the service gave {self.what} {following[:60]!r} twice",
                provider=self.provider,
            )
        self.seen.add(following)
        self.next = following


@attrs.frozen
class CursorPaging(Paging):
    """Opaque cursor tokens: each answer gives the next (Notion, Slack, SCIM cursors).

    Sequential by nature: the next request can only leave once an answer names it.
    """

    kind: ClassVar[str] = "cursor"

    def next_cursor(self, position: Position, page: ListPage) -> str | None:
        """The answer's own cursor, when it says more follow."""
        return page.next_cursor if page.has_more else None

    def plan(self, provider: str, window: int) -> Plan:
        """A chain of cursors."""
        return _ChainPlan(provider, "cursor")


@attrs.frozen
class NextLinkPaging(Paging):
    """Next-page links (``@odata.nextLink``, a ``Link: rel="next"`` header).

    The provider puts the link in :attr:`ListPage.next_cursor` and builds the request
    with ``Request("GET", url=link)``; the engine refuses a link to another origin.
    """

    kind: ClassVar[str] = "next_link"

    def next_cursor(self, position: Position, page: ListPage) -> str | None:
        """The next link, when the answer gives one."""
        return page.next_cursor if page.has_more else None

    def plan(self, provider: str, window: int) -> Plan:
        """A chain of links."""
        return _ChainPlan(provider, "next link")


# -- numbered positions: a window of requests ahead -------------------------------------


def _read_int(provider: str, cursor: str | None, first: int, what: str) -> int:
    if cursor is None:
        return first
    if (
        not isinstance(cursor, str)
        or not (cursor.isascii() and cursor.isdigit())  # "²".isdigit() but int("²") fails
        or len(cursor) > 9
    ):
        raise InvalidArgumentError(
            f"not a cursor this {provider} directory gave out: {str(cursor)[:40]!r}",
            provider=provider,
        )
    value = int(cursor)
    if value < first:
        raise InvalidArgumentError(f"{what} cursor below the first: {cursor}", provider=provider)
    return value


class _NumberedPlan(Plan):
    """Positions ``first, first + step, ...`` scheduled ahead in a fixed window.

    Before the first answer one request goes; once an answer says more follow, up to
    ``window`` are in flight. Where the answers give a total, no request goes past the
    last position; where they only say ``has_more``, at most ``window - 1`` do.
    """

    def __init__(self, first: int, window: int) -> None:
        self.first = first
        self.window = max(1, window)
        self.step = 1
        self.next_to_schedule = first
        self.end: int | None = None  # positions >= end are past the last page
        self.answered = False
        self.scheduled: set[int] = set()

    def schedule(self, in_flight: int) -> list[Position]:
        if self.done:
            return []
        out: list[Position] = []
        limit = self.window if self.answered and self.step else 1
        while in_flight + len(out) < limit and (
            self.end is None or self.next_to_schedule < self.end
        ):
            out.append(self.next_to_schedule)
            self.scheduled.add(self.next_to_schedule)
            self.next_to_schedule += self.step
        return out

    def wanted(self, position: Position) -> bool:
        return position in self.scheduled and (self.end is None or position < self.end)

    def _taken(self, position: int) -> None:
        self.answered = True
        self.scheduled.discard(position)


@attrs.frozen
class PageNumberPaging(Paging):
    """Numbered pages from ``first``; ``totals`` when answers give the page count.

    With totals the window opens to its full width after the first answer and never
    asks past the last page; with ``has_more`` only, up to ``window - 1`` requests may
    go past it (their answers are dropped).
    """

    first: int = 1
    totals: bool = False

    @property
    def kind(self) -> str:  # type: ignore[override]
        """``pages_total`` or ``pages_has_more``."""
        return "pages_total" if self.totals else "pages_has_more"

    def start(self) -> Position:
        """The first page number."""
        return self.first

    def position(self, provider: str, cursor: str | None) -> Position:
        """A page-number cursor (an opaque str to callers)."""
        return _read_int(provider, cursor, self.first, "page")

    def next_cursor(self, position: Position, page: ListPage) -> str | None:
        """The next page number, when the answer says there is one."""
        return str(position + 1) if page.has_more else None

    def plan(self, provider: str, window: int) -> Plan:
        """Page numbers ahead in a window."""
        return _PagePlan(self, window)


class _PagePlan(_NumberedPlan):
    def __init__(self, paging: PageNumberPaging, window: int) -> None:
        super().__init__(paging.first, window)
        self.totals = paging.totals

    def accept(self, position: Position, page: ListPage) -> None:
        self._taken(position)
        if self.totals and page.total_pages is not None:
            # every answer updates the end: the directory may change during the walk
            self.end = max(position + 1, self.first + page.total_pages)
        if not page.has_more:
            self.end = position + 1
        self.done = self.end is not None and position + 1 >= self.end


@attrs.frozen
class OffsetPaging(Paging):
    """Item offsets from ``start`` (SCIM's 1-based ``startIndex``/``count``).

    The step is the number of items the first answer actually held — a server may cap
    the page size below the one asked — and once ``total_items`` is known the rest
    goes out in a window. An answer holding fewer items than the step (the cap
    changed, or users were removed) replans from where it ended: the requests in
    flight past it are dropped and asked again with the new step, so no user is
    skipped. Without ``total_items``, ``has_more`` decides, as for page numbers.
    """

    start_at: int = attrs.field(default=1, alias="start")

    kind: ClassVar[str] = "offset"

    def start(self) -> Position:
        """The first offset."""
        return self.start_at

    def position(self, provider: str, cursor: str | None) -> Position:
        """An offset cursor (an opaque str to callers)."""
        return _read_int(provider, cursor, self.start_at, "offset")

    def next_cursor(self, position: Position, page: ListPage) -> str | None:
        """The offset after this page's items, when more follow."""
        following = position + len(page.items)
        if page.total_items is not None:
            more = following < self.start_at + page.total_items and bool(page.items)
        else:
            more = page.has_more
        return str(following) if more else None

    def plan(self, provider: str, window: int) -> Plan:
        """Offsets ahead in a window, stepping by what the service really returns."""
        return _OffsetPlan(self.start_at, window)


class _OffsetPlan(_NumberedPlan):
    def __init__(self, first: int, window: int) -> None:
        super().__init__(first, window)
        self.step = 0  # unknown until the first answer

    def accept(self, position: Position, page: ListPage) -> None:
        self._taken(position)
        count = len(page.items)
        following = position + count
        if page.total_items is not None:
            self.end = max(following, self.first + page.total_items)
        if (page.total_items is None and not page.has_more) or (
            self.end is not None and following >= self.end
        ):
            self.end = following
            self.done = True
        elif count != self.step:
            # the first answer, or one whose size differs from the step: plan again
            # from where it ended; the requests in flight are no longer wanted. No
            # items although more should come means asking again (the walk's stall
            # guard stops a service that keeps doing so).
            self.step = count
            self.scheduled.clear()
            self.next_to_schedule = following
