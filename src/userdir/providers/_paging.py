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

import logging
from typing import Any, ClassVar

import attrs

from .._secrets import quote
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
#: How often a page-number walk starts re-reading again when the directory keeps changing
#: while it re-reads the pages that may have moved (see PageNumberPaging).
MAX_REREAD_RESTARTS = 8

log = logging.getLogger("userdir")


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

    #: Set once the last page has been taken back.
    finished: bool = False
    #: Whether the page just taken counts for the walk's stall guard (not a re-read).
    counts_progress: bool = True

    @property
    def done(self) -> bool:
        """Whether every page up to the last has been taken back."""
        return self.finished

    @property
    def awaiting_users(self) -> bool:
        """Whether the page just taken must be shown to :meth:`decide` before more is asked."""
        return False

    def reaches_back(self, users: list[Any], seen: set[str]) -> bool:
        """Whether the page just taken holds users yielded before (for :meth:`decide`)."""
        return False

    def decide(self, settled: bool, fresh: list[Any]) -> None:
        """Take the page's first sightings into account (only when awaiting users)."""

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
            self.finished = True
            return
        if following in self.seen:
            raise MalformedResponseError(
                f"pagination loop: the service gave {self.what} {quote(following)} twice",
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


@attrs.frozen
class PageNumberPaging(Paging):
    """Numbered pages from ``first``; ``totals`` when answers give the page count.

    With totals the window opens to its full width after the first answer and never
    asks past the last page; with ``has_more`` only, up to ``window - 1`` requests may
    go past it (their answers are dropped). Where answers also give ``total_items``, a
    count that changes mid-walk makes the walk re-read the pages that may have moved,
    so that no user present throughout is missed.
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


class _PagePlan(Plan):
    """Page numbers in a fixed window, re-reading pages that moved when the count changed.

    Where answers say how many users there are (``total_items``), a count that changes
    between pages means users may have moved across the pages already read: a deletion
    before them moves later users back onto a page already read, where the walk would
    never see them. The walk then drops its pages in flight and re-reads the pages
    before, one at a time and going back, until a page holds a user yielded before the
    change (every user before that one has been yielded) or the first page; then it goes
    on. A change seen while re-reading starts the re-reading again from the highest page
    read, at most ``MAX_REREAD_RESTARTS`` times for one change.
    """

    def __init__(self, paging: PageNumberPaging, window: int) -> None:
        self.first = paging.first
        self.window = max(1, window)
        self.totals = paging.totals
        self.next_to_schedule = self.first
        self.next_to_accept = self.first
        self.last: int | None = None
        # Re-reading after the directory changed: the page to read next (going back),
        # the ids first seen since the change, and how often re-reading started again.
        self.total: int | None = None
        self.rewind: int | None = None
        self.recent: set[str] = set()
        self.restarts = 0
        self.deciding: tuple[int, bool, bool, int] | None = None

    @property
    def done(self) -> bool:
        """Whether every page up to the last has been taken (and none is to be re-read)."""
        return (
            self.rewind is None
            and self.deciding is None
            and self.last is not None
            and self.next_to_accept > self.last
        )

    @property
    def awaiting_users(self) -> bool:
        """Whether the last page's users decide what to read next (see :meth:`decide`)."""
        return self.deciding is not None

    def schedule(self, in_flight: int) -> list[Position]:
        if self.deciding is not None:
            return []
        if self.rewind is not None:  # re-reading goes one page at a time
            return [self.rewind] if in_flight == 0 else []
        out: list[Position] = []
        if self.next_to_accept == self.first:  # nothing known before the first answer
            limit = self.first
        elif self.last is not None:
            limit = self.last
        else:
            limit = self.next_to_accept + self.window - 1
        while in_flight + len(out) < self.window and self.next_to_schedule <= limit:
            out.append(self.next_to_schedule)
            self.next_to_schedule += 1
        return out

    def accept(self, position: Position, page: ListPage) -> None:
        rereading = self.rewind is not None
        assert position == (self.rewind if rereading else self.next_to_accept)
        if not rereading:
            self.next_to_accept += 1
        highest = self.next_to_accept - 1
        if self.totals and page.total_pages is not None:
            # every answer updates the end: the directory may change during the walk
            self.last = max(highest, self.first + page.total_pages - 1)
        if not page.has_more and not rereading:
            self.last = position
        changed = self._count_changed(page)
        self.counts_progress = not rereading
        if changed and not rereading:
            self.next_to_schedule = self.next_to_accept  # pages in flight may predate it
        if changed or rereading:
            self.deciding = (position, changed, rereading, highest)

    def reaches_back(self, users: list[Any], seen: set[str]) -> bool:
        """Whether ``users`` (the page just taken) hold one yielded before the change."""
        recent = self.recent
        return any(user.id in seen and user.id not in recent for user in users)

    def decide(self, settled: bool, fresh: list[Any]) -> None:
        """Given the page's users (``settled``: it reaches back), what to read next."""
        assert self.deciding is not None
        position, changed, rereading, highest = self.deciding
        self.deciding = None
        if changed and not rereading:
            self.restarts = 0
            self.recent = {user.id for user in fresh}
            if not settled:
                self.rewind = position - 1
        elif rereading:
            self.recent.update(user.id for user in fresh)
            if changed and self.restarts < MAX_REREAD_RESTARTS:
                self.restarts += 1
                self.rewind = highest  # the pages re-read so far may have moved again
            elif settled or position == self.first or changed:
                if changed:
                    log.warning(
                        "the directory kept changing while pages were read again; "
                        "the walk goes on, but users may be missing"
                    )
                self.rewind = None
                self.recent = set()
            else:
                self.rewind = position - 1

    def _count_changed(self, page: ListPage) -> bool:
        """Record the directory's size; return whether it changed since the last page."""
        if not self.totals or page.total_items is None:
            return False
        changed = self.total is not None and page.total_items != self.total
        self.total = page.total_items
        return changed

    def wanted(self, position: Position) -> bool:
        """Whether a page in flight is still needed (not past the known end, not dropped)."""
        return bool(position < self.next_to_schedule) and (
            self.last is None or position <= self.last
        )


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


class _OffsetPlan(Plan):
    """Offsets ``first, first + step, ...`` ahead in a fixed window.

    Before the first answer one request goes; once the step is known (the first
    answer's size), up to ``window`` are in flight. Where the answers give a total, no
    request goes past it; where they only say ``has_more``, at most ``window - 1`` do.
    """

    def __init__(self, first: int, window: int) -> None:
        self.first = first
        self.window = max(1, window)
        self.step = 0  # unknown until the first answer
        self.next_to_schedule = first
        self.end: int | None = None  # offsets >= end are past the last item
        self.scheduled: set[int] = set()

    def schedule(self, in_flight: int) -> list[Position]:
        if self.done:
            return []
        out: list[Position] = []
        limit = self.window if self.step else 1
        while in_flight + len(out) < limit and (
            self.end is None or self.next_to_schedule < self.end
        ):
            out.append(self.next_to_schedule)
            self.scheduled.add(self.next_to_schedule)
            self.next_to_schedule += self.step
        return out

    def wanted(self, position: Position) -> bool:
        return position in self.scheduled and (self.end is None or position < self.end)

    def accept(self, position: Position, page: ListPage) -> None:
        self.scheduled.discard(position)
        count = len(page.items)
        following = position + count
        if page.total_items is not None:
            self.end = max(following, self.first + page.total_items)
        if (page.total_items is None and not page.has_more) or (
            self.end is not None and following >= self.end
        ):
            self.end = following
            self.finished = True
        elif count != self.step:
            # the first answer, or one whose size differs from the step: plan again
            # from where it ended; the requests in flight are no longer wanted. No
            # items although more should come means asking again (the walk's stall
            # guard stops a service that keeps doing so).
            self.step = count
            self.scheduled.clear()
            self.next_to_schedule = following
