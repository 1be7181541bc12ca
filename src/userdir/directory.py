"""Directories: the protocols users code against and the HTTP-backed implementations.

``HttpDirectory`` and ``AsyncHttpDirectory`` drive a pure provider dialect through an
engine. Everything that is not I/O — argument checks, filters, the pagination plans
and their loop guards, bulk email matching — lives in ``_DirectoryBase`` and the plan
classes, shared by both.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, runtime_checkable

import attrs

from ._http import Answer, AsyncEngine, Request, SyncEngine, redact_url
from ._secrets import Scrubber, quote
from .emails import email_key
from .errors import (
    APIError,
    DirectoryError,
    InvalidArgumentError,
    InvalidRequestError,
    MalformedResponseError,
    UnsupportedOperationError,
    UserNotFoundError,
)
from .models import Capabilities, DirectoryUser, NewUser, Page, UserChanges, UserStatus
from .providers._base import Dialect, Envelope, ListPage, check_email, check_page_size

__all__ = [
    "AsyncDirectory",
    "AsyncHttpDirectory",
    "Directory",
    "HttpDirectory",
]

log = logging.getLogger("userdir")
T = TypeVar("T")

DEFAULT_CONCURRENCY = 4
# How long an asyncio cursor walk waits for the next page's request to be on the wire
# before it maps the current page (mapping holds the event loop). Transports that cannot
# tell when a request is sent cost at most this much per page.
SEND_WAIT = 0.005
# Pages a blocking cursor walk may fetch ahead of its caller.
PREFETCH_PAGES = 2
# Walks overlap requests once answers take GROW_AFTER seconds or more (see WaitDetector);
# page-number walks then double their window, from START_WINDOW, each time the next
# page is not there after GROW_AFTER seconds.
START_WINDOW = 1
GROW_AFTER = 0.002
# How many pages in a row may bring nothing new while the service says there is more.
MAX_STALLED_PAGES = 3
# How often a page-number walk starts re-reading again when the directory keeps changing
# while it re-reads the pages that may have moved (see PagePlan).
MAX_REREAD_RESTARTS = 8


@runtime_checkable
class Directory(Protocol):
    """A user directory, blocking API."""

    provider: str
    capabilities: Capabilities

    def iter_users(
        self, *, status: UserStatus | str | None = None, role: str | None = None
    ) -> Iterator[DirectoryUser]:
        """Every user, lazily, page after page, in the service's order."""
        ...

    def list_page(
        self,
        cursor: str | None = None,
        page_size: int = 100,
        *,
        status: UserStatus | str | None = None,
        role: str | None = None,
    ) -> Page:
        """One page; pass ``page.next_cursor`` back for the next."""
        ...

    def get_user(self, user_id: str) -> DirectoryUser:
        """One user by id; raises :class:`~userdir.UserNotFoundError`."""
        ...

    def find_user_by_email(self, email: str) -> DirectoryUser | None:
        """The user with this email (matched by ``email_key``), or None."""
        ...

    def find_users_by_email(self, emails: Iterable[str]) -> dict[str, DirectoryUser | None]:
        """Many emails at once: one scan where the service has no lookup."""
        ...

    def me(self) -> DirectoryUser:
        """The token's own user, where the service has one."""
        ...

    def create_user(self, new_user: NewUser) -> DirectoryUser:
        """Create a user; returns it as the service stored it."""
        ...

    def update_user(
        self, user_id: str, changes: UserChanges, *, version: str | None = None
    ) -> DirectoryUser:
        """Change the fields set in ``changes``; returns the updated user.

        With ``version`` (a user's ``version``), only if the user has not changed since:
        :class:`~userdir.PreconditionFailedError` otherwise.
        """
        ...

    def delete_user(self, user_id: str, *, version: str | None = None) -> None:
        """Delete a user (with ``version``: only if unchanged since)."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...


@runtime_checkable
class AsyncDirectory(Protocol):
    """A user directory, asyncio API: the same names as :class:`Directory`, awaited."""

    provider: str
    capabilities: Capabilities

    def iter_users(
        self, *, status: UserStatus | str | None = None, role: str | None = None
    ) -> AsyncIterator[DirectoryUser]:
        """Every user, lazily, page after page, in the service's order."""
        ...

    async def list_page(
        self,
        cursor: str | None = None,
        page_size: int = 100,
        *,
        status: UserStatus | str | None = None,
        role: str | None = None,
    ) -> Page:
        """One page; pass ``page.next_cursor`` back for the next."""
        ...

    async def get_user(self, user_id: str) -> DirectoryUser:
        """One user by id; raises :class:`~userdir.UserNotFoundError`."""
        ...

    async def find_user_by_email(self, email: str) -> DirectoryUser | None:
        """The user with this email (matched by ``email_key``), or None."""
        ...

    async def find_users_by_email(self, emails: Iterable[str]) -> dict[str, DirectoryUser | None]:
        """Many emails at once: one scan where the service has no lookup."""
        ...

    async def me(self) -> DirectoryUser:
        """The token's own user, where the service has one."""
        ...

    async def create_user(self, new_user: NewUser) -> DirectoryUser:
        """Create a user; returns it as the service stored it."""
        ...

    async def update_user(
        self, user_id: str, changes: UserChanges, *, version: str | None = None
    ) -> DirectoryUser:
        """Change the fields set in ``changes``; returns the updated user.

        With ``version`` (a user's ``version``), only if the user has not changed since:
        :class:`~userdir.PreconditionFailedError` otherwise.
        """
        ...

    async def delete_user(self, user_id: str, *, version: str | None = None) -> None:
        """Delete a user (with ``version``: only if unchanged since)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


# -- pagination plans (shared, no I/O) ------------------------------------------


class _Sightings:
    """The ids a walk has yielded, and how many pages in a row brought none new.

    Both plans share it: a walk never yields an id twice, and pages that keep bringing
    only users already yielded while the service says there is more are a loop.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.seen_ids: set[str] = set()
        self.stalled = 0

    def first_sightings(self, users: list[DirectoryUser]) -> list[DirectoryUser]:
        """The users whose id was not yielded before (first sightings only); records them."""
        seen = self.seen_ids
        ids = [user.id for user in users]
        if seen.isdisjoint(ids):  # the usual case: no id seen before; take them at once
            before = len(seen)
            seen.update(ids)
            repeats_within = len(seen) - before != len(ids)
            return _first_sightings(users, set()) if repeats_within else users
        return _first_sightings(users, seen)

    def progress(self, fresh: list[DirectoryUser], more: bool) -> None:
        """Count a page that brought nothing new while ``more``; raise once it loops."""
        if fresh or not more:
            self.stalled = 0
            return
        self.stalled += 1
        if self.stalled >= MAX_STALLED_PAGES:
            raise MalformedResponseError(
                f"pagination does not advance: {self.stalled} pages in a row brought "
                "no new user while the service says there is more",
                provider=self.provider,
            )


class CursorPlan(_Sightings):
    """Cursor paging: follow ``next_cursor``; a repeated cursor is a loop."""

    def __init__(self, provider: str) -> None:
        super().__init__(provider)
        self.seen: set[str] = set()
        self.empty = 0

    def next_cursor(self, page: Envelope) -> str | None:
        """The cursor to ask for next, or None when done; raises on a loop.

        Runs before the page is mapped (maybe in a worker thread): empty pages stop the
        walk here, before the next request; pages of users already yielded stop it in
        :meth:`fresh`, once mapped.
        """
        if not page.has_more or page.next_cursor is None:
            return None
        cursor = page.next_cursor
        if cursor in self.seen:
            raise MalformedResponseError(
                f"pagination loop: the service gave cursor {quote(cursor)} twice",
                provider=self.provider,
            )
        self.seen.add(cursor)
        self.empty = self.empty + 1 if not page.items else 0
        if self.empty >= MAX_STALLED_PAGES:
            raise MalformedResponseError(
                f"pagination does not advance: {self.empty} empty pages in a row say has_more",
                provider=self.provider,
            )
        return cursor

    def fresh(self, users: list[DirectoryUser], page: Envelope) -> list[DirectoryUser]:
        """The mapped users of ``page`` not yielded before; raises when pages loop."""
        fresh = self.first_sightings(users)
        self.progress(fresh, page.has_more and page.next_cursor is not None)
        return fresh


class _CursorStep:
    """One page of a cursor walk: its answer, decoded once, and the cursor after it.

    A decoding error is kept, not raised, so that a walk may decode from a callback
    (the engine's ``on_sent``) and raise it later, in its own time.
    """

    def __init__(
        self,
        engine: SyncEngine | AsyncEngine,
        dialect: Dialect,
        plan: CursorPlan,
        request: Request,
        answer: Answer,
    ) -> None:
        self.engine = engine
        self.dialect = dialect
        self.plan = plan
        self.request = request
        self.answer = answer
        self.guessed: str | None = None
        self.envelope: Envelope | None = None
        self.cursor: str | None = None
        self.error: Exception | None = None

    def decode(self) -> None:
        """Decode the page and find its ``next_cursor`` (once; errors are kept)."""
        if self.envelope is not None or self.error is not None:
            return
        try:
            body = self.engine.decode(self.request, self.answer)
            self.envelope = self.dialect.parse_envelope(body)
            self.cursor = self.plan.next_cursor(self.envelope)
        except Exception as exc:
            self.error = exc

    def result(self) -> Envelope:
        """The decoded page; raises its decoding error."""
        self.decode()
        if self.error is not None:
            raise self.error
        assert self.envelope is not None
        return self.envelope


class PagePlan(_Sightings):
    """Page-number paging, with totals (``pages_total``) or ``has_more`` only.

    Pages are scheduled ahead (a window of ``window`` in flight) and accepted strictly
    in order. With totals, the last page is known after the first answer and updated
    by every later one (the directory may change during the walk); with ``has_more``
    only, pages past the end are speculative and dropped. Ids already yielded are
    never yielded again.

    Where answers say how many users there are (``total_items``), a count that changes
    between pages means users may have moved across the pages already read: a deletion
    before them moves later users back onto a page already read, where the walk would
    never see them. The walk then drops its pages in flight and re-reads the pages
    before, one at a time and going back, until a page holds a user yielded before the
    change (every user before that one has been yielded) or the first page; then it goes
    on. A change seen while re-reading starts the re-reading again from the highest page
    read, at most ``MAX_REREAD_RESTARTS`` times for one change.
    """

    def __init__(self, provider: str, first: int, window: int, *, totals: bool) -> None:
        super().__init__(provider)
        self.first = first
        # The window starts small and doubles whenever the next page keeps the caller
        # waiting (the network, not the CPU, is the bottleneck), up to ``window``.
        self.max_window = max(1, window)
        self.window = min(START_WINDOW, self.max_window)
        self.totals = totals
        self.next_to_schedule = first
        self.next_to_accept = first
        self.last: int | None = None
        # Re-reading after the directory changed: the page to read next (going back),
        # the ids first seen since the change, and how often re-reading started again.
        self.total: int | None = None
        self.rewind: int | None = None
        self.recent: set[str] = set()
        self.restarts = 0

    @property
    def done(self) -> bool:
        """Whether every page up to the last has been accepted (and none is to be re-read)."""
        return self.rewind is None and self.last is not None and self.next_to_accept > self.last

    def schedule(self, in_flight: int) -> list[int]:
        """Page numbers to request now, given how many are already in flight."""
        if self.rewind is not None:  # re-reading goes one page at a time
            return [self.rewind] if in_flight == 0 else []
        out: list[int] = []
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

    def accept(self, page_no: int, page: ListPage) -> list[DirectoryUser]:
        """Take the answer for ``page_no`` (the next in order); return the new users."""
        rereading = self.rewind is not None
        assert page_no == (self.rewind if rereading else self.next_to_accept)
        if not rereading:
            self.next_to_accept += 1
        highest = self.next_to_accept - 1
        if self.totals and page.total_pages is not None:
            self.last = max(highest, self.first + page.total_pages - 1)
        if not page.has_more and not rereading:
            self.last = page_no
        changed = self._count_changed(page)
        settled = (changed or rereading) and self._reaches_back(page)
        fresh = self.first_sightings(page.users)
        if not rereading:
            self.progress(fresh, not self.done)
        if changed and not rereading:
            self.restarts = 0
            self.recent = {user.id for user in fresh}
            self.next_to_schedule = self.next_to_accept  # pages in flight may predate it
            if not settled:
                self.rewind = page_no - 1
        elif rereading:
            self.recent.update(user.id for user in fresh)
            if changed and self.restarts < MAX_REREAD_RESTARTS:
                self.restarts += 1
                self.rewind = highest  # the pages re-read so far may have moved again
            elif settled or page_no == self.first or changed:
                if changed:
                    log.warning(
                        "%s: the directory kept changing while pages were read again; "
                        "the walk goes on, but users may be missing",
                        self.provider,
                    )
                self.rewind = None
                self.recent = set()
            else:
                self.rewind = page_no - 1
        return fresh

    def _count_changed(self, page: ListPage) -> bool:
        """Record the directory's size; return whether it changed since the last page."""
        if not self.totals or page.total_items is None:
            return False
        changed = self.total is not None and page.total_items != self.total
        self.total = page.total_items
        return changed

    def _reaches_back(self, page: ListPage) -> bool:
        """Whether ``page`` holds a user yielded before the directory changed."""
        seen, recent = self.seen_ids, self.recent
        return any(user.id in seen and user.id not in recent for user in page.users)

    def wanted(self, page_no: int) -> bool:
        """Whether an in-flight page is still needed (not past the known end, not dropped)."""
        return page_no < self.next_to_schedule and (self.last is None or page_no <= self.last)

    @property
    def can_grow(self) -> bool:
        """Whether more pages could go in flight if the caller is kept waiting."""
        return self.window < self.max_window and not self.done

    def grow(self) -> None:
        """The caller waited on the network: allow twice as many pages in flight."""
        self.window = min(self.max_window, self.window * 2)


def _first_sightings(users: list[DirectoryUser], taken: set[str]) -> list[DirectoryUser]:
    """The users whose id is not in ``taken`` yet, first sightings only; adds their ids."""
    kept = []
    for user in users:
        if user.id not in taken:
            taken.add(user.id)
            kept.append(user)
    return kept


class WaitDetector:
    """Tells a network that keeps us waiting from a quick one, ignoring one-off hiccups.

    Three answers in a row that took ``GROW_AFTER`` or longer mean that overlapping
    requests will pay off; until then, fetching in the calling thread is cheaper.
    """

    def __init__(self, threshold: float = GROW_AFTER, streak: int = 3) -> None:
        self.threshold = threshold
        self.streak = streak
        self.slow_in_a_row = 0

    def observe(self, seconds: float) -> bool:
        """Record one answer's wait; return whether the network is now deemed slow."""
        self.slow_in_a_row = self.slow_in_a_row + 1 if seconds >= self.threshold else 0
        return self.slow_in_a_row >= self.streak


class EmailMatcher:
    """Resolves many emails in one scan: feed it users until it is satisfied."""

    def __init__(self, provider: str, emails: Iterable[str]) -> None:
        self.wanted: dict[str, list[str]] = {}
        self.given: list[str] = []
        if isinstance(emails, str):
            emails = [emails]
        for email in emails:
            check_email(provider, email)
            self.given.append(email)
            self.wanted.setdefault(email_key(email), []).append(email)
        self.found: dict[str, DirectoryUser] = {}

    @property
    def satisfied(self) -> bool:
        """Whether every wanted email has been found."""
        return len(self.found) == len(self.wanted)

    def feed(self, user: DirectoryUser) -> None:
        """Look at one user; the first match of each key wins."""
        key = user.email_key
        if key is not None and key in self.wanted and key not in self.found:
            self.found[key] = user

    def result(self) -> dict[str, DirectoryUser | None]:
        """Every given email (as given) mapped to its user or None."""
        return {email: self.found.get(email_key(email)) for email in self.given}

    def distinct(self) -> list[str]:
        """One representative email per distinct key (for native lookups)."""
        return [emails[0] for emails in self.wanted.values()]


# -- shared directory logic ----------------------------------------------------


_D = TypeVar("_D", bound="_DirectoryBase")
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _scrubbed(
    method: Callable[Concatenate[_D, _P], _R],
) -> Callable[Concatenate[_D, _P], _R]:
    """Every DirectoryError a public method raises leaves scrubbed (see ``_scrub``)."""

    def call(self: _D, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except DirectoryError as exc:
            self._scrub(exc, args)
            raise

    functools.update_wrapper(call, method)
    return call


def _scrubbed_async(
    method: Callable[Concatenate[_D, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[_D, _P], Coroutine[Any, Any, _R]]:
    """:func:`_scrubbed` for coroutine methods."""

    async def call(self: _D, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await method(self, *args, **kwargs)
        except DirectoryError as exc:
            self._scrub(exc, args)
            raise

    functools.update_wrapper(call, method)
    return call


def check_concurrency(value: object) -> int:
    """Refuse a ``concurrency`` that is not an int from 1 to 64."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        raise InvalidArgumentError(f"concurrency must be an int from 1 to 64, got {value!r}")
    return value


class _DirectoryBase:
    """What both directory kinds share: checks, filters and request building."""

    engine: SyncEngine | AsyncEngine

    def __init__(
        self,
        dialect: Dialect,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        scrubber: Scrubber | None = None,
    ) -> None:
        self.dialect = dialect
        self.provider = dialect.name
        # for a server read at the first request (SCIM), what it announced from then on
        self.capabilities = dialect.capabilities
        self.concurrency = check_concurrency(concurrency)
        self._scrubber = scrubber or Scrubber()

    def _scrub(self, error: DirectoryError, args: tuple[Any, ...] = ()) -> None:
        """Scrub an error leaving the directory: the credentials, and any password that
        ``args`` (a NewUser, UserChanges) carried, then bound its texts."""
        passwords = [
            a.password
            for a in args
            if isinstance(a, (NewUser, UserChanges)) and isinstance(a.password, str)
        ]
        self._scrubber.plus(passwords).finish(error)

    def _write_options(self, version: str | None) -> dict[str, Any]:
        """The keyword arguments of a write's request: ``version`` where given."""
        if version is None:
            return {}
        if not self.dialect.conditional_writes:
            raise UnsupportedOperationError(
                f"conditional writes (version=) are not supported by the {self.provider} provider",
                provider=self.provider,
            )
        return {"version": version}

    def _discovered(self, request: Request, error: APIError | None, body: Any) -> None:
        """Hand the discovery answer over; a server without the document gives None."""
        if error is not None:
            if error.status_code not in (404, 405, 501):
                raise error
            body = None
        self.dialect.discover(body)
        self.capabilities = self.dialect.capabilities

    def _halves(self, group: tuple[str, ...]) -> list[tuple[tuple[str, ...], Request]]:
        half = len(group) // 2
        return [
            b for part in (group[:half], group[half:]) for b in self.dialect.lookup_batches(part)
        ]

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} provider={self.provider!r} "
            f"base_url={redact_url(self.dialect.base_url)!r}>"
        )

    def _filters(
        self, status: UserStatus | str | None, role: str | None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Split the filters into (sent to the server, applied here)."""
        filters: dict[str, str] = {}
        if status is not None:
            try:
                filters["status"] = UserStatus(status).value
            except ValueError:
                raise InvalidArgumentError(
                    f"status must be one of {', '.join(s.value for s in UserStatus)}, "
                    f"got {status!r}",
                    provider=self.provider,
                ) from None
        if role is not None:
            if not isinstance(role, str) or not role:
                raise InvalidArgumentError(
                    "role must be a non-empty string", provider=self.provider
                )
            filters["role"] = role
        server = {k: v for k, v in filters.items() if k in self.capabilities.server_filters}
        local = {k: v for k, v in filters.items() if k not in server}
        return server, local

    @staticmethod
    def _keep(users: list[DirectoryUser], local: Mapping[str, str]) -> list[DirectoryUser]:
        if not local:
            return users
        status, role = local.get("status"), local.get("role")
        return [
            u
            for u in users
            if (status is None or u.status.value == status) and (role is None or u.role == role)
        ]

    def _list_request(
        self, cursor: str | None, page_size: int, server: Mapping[str, str]
    ) -> Request:
        check_page_size(self.provider, page_size, self.capabilities.max_page_size)
        return attrs.evolve(self.dialect.list_request(cursor, page_size, server), endpoint_404=True)

    def _me_request(self) -> Request:
        return attrs.evolve(self.dialect.me_request(), endpoint_404=True)

    def _page(self, cursor: str | None, page: ListPage, local: Mapping[str, str]) -> Page:
        users = self._keep(page.users, local)
        if self.dialect.paging == "cursor":
            return Page(users, page.next_cursor if page.has_more else None)
        current = self.dialect.first_page if cursor is None else int(cursor)
        return Page(users, str(current + 1) if page.has_more else None)

    def _guess_next(self, step: _CursorStep, size: int, server: dict[str, str]) -> Request | None:
        """The request for the page after ``step``'s, guessed from its raw body, or None."""
        guessed = self.dialect.peek_next_cursor(step.answer.body)
        if guessed is None or guessed in step.plan.seen:
            return None
        try:
            request = self._list_request(guessed, size, server)
        except DirectoryError:
            return None
        step.guessed = guessed
        return request

    def _page_plan(self) -> PagePlan:
        return PagePlan(
            self.provider,
            self.dialect.first_page,
            self.concurrency,
            totals=self.dialect.paging == "pages_total",
        )

    def _cursor(self, page_no: int) -> str:
        return str(page_no)

    def _check_open(self) -> None:
        """Raise DirectoryClosedError once closed (a walk checks before each page)."""
        if self.engine.closed:
            raise self.engine.closed_error()


class HttpDirectory(_DirectoryBase):
    """A blocking :class:`Directory` over HTTP, driving a provider dialect.

    Safe to share between threads. Page prefetch and concurrent page fetches run on
    a small thread pool owned by the directory (``concurrency`` threads).
    """

    engine: SyncEngine

    def __init__(
        self, dialect: Dialect, engine: SyncEngine, *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        super().__init__(dialect, concurrency=concurrency, scrubber=engine.scrubber)
        self.engine = engine
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._discovery_lock = threading.Lock()

    def _discover(self) -> None:
        """Read what the server supports, once, before the first operation needs it."""
        if self.dialect.discovery_request() is None:
            return
        with self._discovery_lock:
            request = self.dialect.discovery_request()
            if request is None:
                return
            try:
                body = self.engine.request(request)
            except APIError as exc:
                self._discovered(request, exc, None)
            else:
                self._discovered(request, None, body)

    def __enter__(self) -> HttpDirectory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and stop the worker threads.

        Requests in flight (a walk's, abandoned or running in another thread) end at
        their next read, at the latest after one read timeout, and are not retried;
        whatever was using them gets :class:`~userdir.DirectoryClosedError`, as does
        every later call.
        """
        with self._pool_lock:
            pool, self._pool = self._pool, None
            self.engine.closed = True
        self.engine.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, call: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``call(*args)`` on the directory's pool; DirectoryClosedError once closed."""
        with self._pool_lock:
            if self.engine.closed:
                raise self.engine.closed_error()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix=f"userdir-{self.provider}"
                )
            return self._pool.submit(call, *args)

    def _outcome(self, future: Future[T], timeout: float | None = None) -> T:
        """``future.result()``, but one that close() cancelled ends in DirectoryClosedError."""
        try:
            return future.result(timeout)
        except CancelledError:
            raise self.engine.closed_error() from None

    def _fetch(self, request: Request) -> ListPage:
        return self.dialect.parse_list(self.engine.request(request))

    # -- reading -------------------------------------------------------------

    @_scrubbed
    def list_page(
        self,
        cursor: str | None = None,
        page_size: int = 100,
        *,
        status: UserStatus | str | None = None,
        role: str | None = None,
    ) -> Page:
        """One page; pass ``page.next_cursor`` back for the next."""
        self._discover()
        server, local = self._filters(status, role)
        page = self._fetch(self._list_request(cursor, page_size, server))
        return self._page(cursor, page, local)

    @_scrubbed
    def iter_users(
        self,
        *,
        status: UserStatus | str | None = None,
        role: str | None = None,
        page_size: int | None = None,
    ) -> Generator[DirectoryUser, None, None]:
        """Every user, lazily, in order; filters go to the server where it has them."""
        self._discover()
        server, local = self._filters(status, role)
        size = self.capabilities.max_page_size if page_size is None else page_size
        self._list_request(None, size, server)  # validate before the generator starts
        if self.dialect.paging == "cursor":
            return self._scrubbed_iter(self._iter_cursor(size, server, local))
        return self._scrubbed_iter(self._iter_pages(size, server, local))

    def _scrubbed_iter(
        self, users: Generator[DirectoryUser, None, None]
    ) -> Generator[DirectoryUser, None, None]:
        try:
            yield from users
        except DirectoryError as exc:
            self._scrub(exc)
            raise

    def _timed(self, request: Request, waits: WaitDetector) -> tuple[Any, bool]:
        """Fetch in the calling thread; also say whether the network keeps us waiting."""
        start = time.monotonic()
        body = self.engine.request(request)
        return body, waits.observe(time.monotonic() - start)

    def _iter_cursor(
        self, size: int, server: dict[str, str], local: dict[str, str]
    ) -> Generator[DirectoryUser, None, None]:
        # Pages come in the calling thread while answers are quick (no thread hand-offs
        # to pay for). Once answers keep us waiting, a worker walks the cursors ahead —
        # each next request leaves as soon as the previous answer is in — while this
        # thread maps and yields; at most PREFETCH_PAGES pages wait in between.
        plan = CursorPlan(self.provider)
        waits = WaitDetector()
        body, slow = self._timed(self._list_request(None, size, server), waits)
        while True:
            envelope = self.dialect.parse_envelope(body)
            cursor = plan.next_cursor(envelope)
            if cursor is not None and slow:
                break
            yield from self._keep(plan.fresh(self.dialect.users_of(envelope), envelope), local)
            if cursor is None:
                return
            body, slow = self._timed(self._list_request(cursor, size, server), waits)
        pages: queue.Queue[Envelope | BaseException | None] = queue.Queue(PREFETCH_PAGES)
        stop = threading.Event()
        # A thread of its own, not the pool's: a paused walk must never hold a worker
        # that another walk or lookup is waiting for.
        threading.Thread(
            target=self._walk_ahead,
            args=(plan, cursor, size, server, pages, stop),
            name=f"userdir-{self.provider}-walk",
            daemon=True,
        ).start()
        try:
            yield from self._keep(plan.fresh(self.dialect.users_of(envelope), envelope), local)
            while (item := pages.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                self._check_open()
                yield from self._keep(plan.fresh(self.dialect.users_of(item), item), local)
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                pages.get_nowait()  # free the worker if it is waiting to hand a page over

    def _walk_ahead(
        self,
        plan: CursorPlan,
        cursor: str | None,
        size: int,
        server: dict[str, str],
        pages: queue.Queue[Envelope | BaseException | None],
        stop: threading.Event,
    ) -> None:
        """The worker side of a cursor walk: fetch page after page, hand each over."""

        def hand_over(item: Envelope | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    pages.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    if self.engine.closed:  # the pages waiting are moot: make room
                        with contextlib.suppress(queue.Empty):
                            pages.get_nowait()
            return False

        # Each page is handed over once the next page's request is on the wire, so the
        # caller's mapping never holds the GIL while that request is being sent.
        pending: list[Envelope] = []

        def release() -> None:
            if pending and not hand_over(pending.pop()):
                stop.set()

        try:
            request = self._list_request(cursor, size, server)
            answer = self.engine.fetch(request, on_sent=release)
            while not stop.is_set():
                step = _CursorStep(self.engine, self.dialect, plan, request, answer)
                guess = self._guess_next(step, size, server)
                if guess is None:
                    pending.append(step.result())
                else:
                    # The guessed next request goes first; this page is decoded while it
                    # travels (or after, where the transport cannot tell it was sent).
                    def decode_and_release(step: _CursorStep = step) -> None:
                        step.decode()
                        if step.error is None:
                            pending.append(step.result())
                            release()

                    failure: DirectoryError | None = None
                    try:
                        next_answer = self.engine.fetch(guess, on_sent=decode_and_release)
                    except DirectoryError as exc:
                        failure = exc
                    step.result()  # this page's own error, if it had one
                    if step.cursor == step.guessed:
                        if failure is not None:
                            raise failure
                        request, answer = guess, next_answer
                        continue
                    # a wrong guess: its answer is dropped
                if step.cursor is None:
                    break
                request = self._list_request(step.cursor, size, server)
                answer = self.engine.fetch(request, on_sent=release)
            release()
            hand_over(None)
        except Exception as exc:  # raised in the caller's thread by the consumer
            release()
            hand_over(exc)

    def _iter_pages(
        self, size: int, server: dict[str, str], local: dict[str, str]
    ) -> Generator[DirectoryUser, None, None]:
        plan = self._page_plan()
        in_flight: deque[tuple[int, Future[Any]]] = deque()

        def fill() -> None:
            for page_no in plan.schedule(len(in_flight)):
                request = self._list_request(self._cursor(page_no), size, server)
                in_flight.append((page_no, self._submit(self.engine.request, request)))

        try:
            # While answers are quick, pages come one by one in the calling thread;
            # once answers keep us waiting, the concurrent window opens.
            waits = WaitDetector()
            while not plan.done and plan.window == 1:
                scheduled = plan.schedule(0)
                if not scheduled:
                    return
                body, slow = self._timed(
                    self._list_request(self._cursor(scheduled[0]), size, server), waits
                )
                users = plan.accept(scheduled[0], self.dialect.parse_list(body))
                if slow:
                    plan.grow()
                yield from self._keep(users, local)
            while not plan.done:
                fill()
                if not in_flight:
                    break
                page_no, future = in_flight[0]
                while plan.can_grow:
                    try:
                        self._outcome(future, GROW_AFTER)
                        break
                    except FuturesTimeout:
                        plan.grow()
                        fill()
                in_flight.popleft()
                # Workers only fetch; pages are mapped here, so they do not fight over
                # the GIL while others wait on the network.
                users = plan.accept(page_no, self.dialect.parse_list(self._outcome(future)))
                self._check_open()
                yield from self._keep(users, local)
                while in_flight and not plan.wanted(in_flight[-1][0]):
                    in_flight.pop()[1].cancel()
        finally:
            for _, future in in_flight:
                future.cancel()

    @_scrubbed
    def get_user(self, user_id: str) -> DirectoryUser:
        """One user by id; raises :class:`~userdir.UserNotFoundError`."""
        request = self.dialect.get_request(user_id)
        self._discover()
        return self.dialect.parse_user(self.engine.request(request))

    @_scrubbed
    def me(self) -> DirectoryUser:
        """The token's own user (Notion's bot); unsupported elsewhere."""
        return self.dialect.parse_user(self.engine.request(self._me_request()))

    @_scrubbed
    def find_user_by_email(self, email: str) -> DirectoryUser | None:
        """The user with this email, or None: one request where native, else a scan."""
        return self.find_users_by_email([email])[email]

    @_scrubbed
    def find_users_by_email(self, emails: Iterable[str]) -> dict[str, DirectoryUser | None]:
        """Many emails: concurrent native lookups, or one scan that stops when all match."""
        matcher = EmailMatcher(self.provider, emails)
        if not matcher.wanted:
            return {}
        self._discover()
        if self.capabilities.email_lookup == "batch":
            batches = self.dialect.lookup_batches(matcher.distinct())
            if len(batches) == 1:
                found = [self._batch(*batches[0])]
            else:
                asked = [self._submit(self._batch, *batch) for batch in batches]
                try:
                    found = [self._outcome(one) for one in asked]
                finally:
                    for one in asked:
                        one.cancel()
            for batch_users in found:
                for found_user in batch_users:
                    matcher.feed(found_user)
            return matcher.result()
        if self.capabilities.email_lookup == "native":
            keys = matcher.distinct()
            if len(keys) == 1:
                results = [self._lookup(keys[0])]
            else:
                futures = [self._submit(self._lookup, key) for key in keys]
                try:
                    results = [self._outcome(future) for future in futures]
                finally:
                    for future in futures:
                        future.cancel()
            for user in results:
                if user is not None:
                    matcher.feed(user)
            return matcher.result()
        users = self.iter_users()
        try:
            for user in users:
                matcher.feed(user)
                if matcher.satisfied:
                    break
        finally:
            users.close()
        return matcher.result()

    def _lookup(self, email: str) -> DirectoryUser | None:
        try:
            return self.dialect.parse_user(self.engine.request(self.dialect.email_request(email)))
        except UserNotFoundError:
            return None

    def _batch(self, group: tuple[str, ...], request: Request) -> list[DirectoryUser]:
        """The users one batched lookup finds; a capped answer is asked again in halves."""
        try:
            body = self.engine.request(request)
        except InvalidRequestError as exc:
            if not self.dialect.lookup_refused(exc):
                raise
            return [u for b in self.dialect.lookup_batches(group) for u in self._batch(*b)]
        users, complete = self.dialect.parse_batch(body)
        if complete or len(group) == 1:
            return users
        return [u for b in self._halves(group) for u in self._batch(*b)]

    # -- writing -------------------------------------------------------------

    @_scrubbed
    def create_user(self, new_user: NewUser) -> DirectoryUser:
        """Create a user (never retried once sent); returns it as stored."""
        request = self.dialect.create_request(new_user)
        self._discover()
        return self.dialect.parse_user(self.engine.request(request))

    @_scrubbed
    def update_user(
        self, user_id: str, changes: UserChanges, *, version: str | None = None
    ) -> DirectoryUser:
        """Send only the fields set in ``changes``; returns the updated user.

        With ``version``, the change is made only if the user has not changed since
        (``If-Match``): :class:`~userdir.PreconditionFailedError` otherwise.
        """
        options = self._write_options(version)
        self._discover()
        if self.dialect.update_reads_first:
            options["current"] = self.get_user(user_id)
        request = self.dialect.update_request(user_id, changes, **options)
        body = self.engine.request(request)
        if body is None:  # answered without the user (SCIM's 204): read it back
            return self.get_user(user_id)
        return self.dialect.parse_user(body)

    @_scrubbed
    def delete_user(self, user_id: str, *, version: str | None = None) -> None:
        """Delete a user (with ``version``: only if it has not changed since)."""
        request = self.dialect.delete_request(user_id, **self._write_options(version))
        self._discover()
        self.engine.request(request)


class AsyncHttpDirectory(_DirectoryBase):
    """An asyncio :class:`AsyncDirectory` over HTTP, driving a provider dialect."""

    engine: AsyncEngine

    def __init__(
        self, dialect: Dialect, engine: AsyncEngine, *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        super().__init__(dialect, concurrency=concurrency, scrubber=engine.scrubber)
        self.engine = engine
        # the requests walks send ahead, cancelled by close()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._discovery_lock: asyncio.Lock | None = None

    async def _discover(self) -> None:
        """Read what the server supports, once, before the first operation needs it."""
        if self.dialect.discovery_request() is None:
            return
        if self._discovery_lock is None:
            self._discovery_lock = asyncio.Lock()
        async with self._discovery_lock:
            request = self.dialect.discovery_request()
            if request is None:
                return
            try:
                body = await self.engine.request(request)
            except APIError as exc:
                self._discovered(request, exc, None)
            else:
                self._discovered(request, None, body)

    async def __aenter__(self) -> AsyncHttpDirectory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close connections; walks and calls still running end with DirectoryClosedError.

        Requests that walks sent ahead are cancelled, never retried; once closed, every
        call raises :class:`~userdir.DirectoryClosedError`.
        """
        self.engine.closed = True
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self.engine.close()

    def _spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coroutine`` as a task of this directory's (cancelled by close())."""
        if self.engine.closed:
            coroutine.close()
            raise self.engine.closed_error()
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _outcome(self, task: asyncio.Task[T]) -> T:
        """``await task``, but a task cancelled by close() ends in DirectoryClosedError.

        A cancellation of the caller itself goes through unchanged.
        """
        if not task.done():
            await asyncio.wait({task})
        if task.cancelled():
            raise self.engine.closed_error()
        return task.result()

    async def _fetch(self, request: Request) -> ListPage:
        return self.dialect.parse_list(await self.engine.request(request))

    @_scrubbed_async
    async def list_page(
        self,
        cursor: str | None = None,
        page_size: int = 100,
        *,
        status: UserStatus | str | None = None,
        role: str | None = None,
    ) -> Page:
        """One page; pass ``page.next_cursor`` back for the next."""
        await self._discover()
        server, local = self._filters(status, role)
        page = await self._fetch(self._list_request(cursor, page_size, server))
        return self._page(cursor, page, local)

    @_scrubbed
    def iter_users(
        self,
        *,
        status: UserStatus | str | None = None,
        role: str | None = None,
        page_size: int | None = None,
    ) -> AsyncGenerator[DirectoryUser, None]:
        """Every user, lazily, in order; filters go to the server where it has them."""
        if self.dialect.discovery_request() is not None:
            return self._scrubbed_iter(self._iter_discovered(status, role, page_size))
        server, local = self._filters(status, role)
        size = self.capabilities.max_page_size if page_size is None else page_size
        self._list_request(None, size, server)
        if self.dialect.paging == "cursor":
            return self._scrubbed_iter(self._iter_cursor(size, server, local))
        return self._scrubbed_iter(self._iter_pages(size, server, local))

    async def _scrubbed_iter(
        self, users: AsyncGenerator[DirectoryUser, None]
    ) -> AsyncGenerator[DirectoryUser, None]:
        try:
            async for user in users:
                yield user
        except DirectoryError as exc:
            self._scrub(exc)
            raise
        finally:
            await users.aclose()

    async def _iter_discovered(
        self, status: UserStatus | str | None, role: str | None, page_size: int | None
    ) -> AsyncGenerator[DirectoryUser, None]:
        """``iter_users`` once the server has been read (an async walk can only read it here)."""
        await self._discover()
        users = self.iter_users(status=status, role=role, page_size=page_size)
        try:
            async for user in users:
                yield user
        finally:
            await users.aclose()

    async def _iter_cursor(
        self, size: int, server: dict[str, str], local: dict[str, str]
    ) -> AsyncGenerator[DirectoryUser, None]:
        plan = CursorPlan(self.provider)
        request = self._list_request(None, size, server)
        task: asyncio.Task[Answer] | None = self._spawn(self.engine.fetch(request))
        try:
            while task is not None:
                answer = await self._outcome(task)
                step = _CursorStep(self.engine, self.dialect, plan, request, answer)
                task = None
                # The next request goes before this page is decoded when its cursor can
                # be read off the raw body (checked below), else once it is decoded;
                # either way it reaches the wire before mapping blocks the event loop.
                next_request = self._guess_next(step, size, server)
                if next_request is not None:
                    task = await self._send_soon(next_request)
                envelope = step.result()
                if task is not None and step.cursor != step.guessed:
                    await _cancel(task)  # a wrong guess: its answer is dropped
                    task = None
                if task is None and step.cursor is not None:
                    next_request = self._list_request(step.cursor, size, server)
                    task = await self._send_soon(next_request)
                if task is not None:
                    assert next_request is not None
                    request = next_request
                self._check_open()
                for user in self._keep(
                    plan.fresh(self.dialect.users_of(envelope), envelope), local
                ):
                    yield user
        finally:
            if task is not None:
                await _cancel(task)

    async def _send_soon(self, request: Request) -> asyncio.Task[Answer]:
        """Start fetching ``request``; return once it is on the wire (or shortly after)."""
        sent = asyncio.Event()
        task = self._spawn(self.engine.fetch(request, on_sent=sent.set))
        # asyncio.wait, not wait_for: on 3.10/3.11 wait_for swallows a cancellation that
        # arrives as the event is set, and the walk would run on to its end.
        waiter = asyncio.ensure_future(sent.wait())
        try:
            await asyncio.wait({waiter}, timeout=SEND_WAIT)
        except BaseException:
            await _cancel(task)
            raise
        finally:
            waiter.cancel()
        return task

    async def _iter_pages(
        self, size: int, server: dict[str, str], local: dict[str, str]
    ) -> AsyncGenerator[DirectoryUser, None]:
        plan = self._page_plan()
        in_flight: deque[tuple[int, asyncio.Task[Any]]] = deque()

        def fill() -> None:
            for page_no in plan.schedule(len(in_flight)):
                request = self._list_request(self._cursor(page_no), size, server)
                in_flight.append((page_no, self._spawn(self.engine.request(request))))

        try:
            while not plan.done:
                fill()
                if not in_flight:
                    break
                page_no, task = in_flight[0]
                while plan.can_grow:
                    done, _ = await asyncio.wait({task}, timeout=GROW_AFTER)
                    if done:
                        break
                    plan.grow()
                    fill()
                in_flight.popleft()
                users = plan.accept(page_no, self.dialect.parse_list(await self._outcome(task)))
                self._check_open()
                for user in self._keep(users, local):
                    yield user
                while in_flight and not plan.wanted(in_flight[-1][0]):
                    await _cancel(in_flight.pop()[1])
        finally:
            for _, task in in_flight:
                await _cancel(task)

    @_scrubbed_async
    async def get_user(self, user_id: str) -> DirectoryUser:
        """One user by id; raises :class:`~userdir.UserNotFoundError`."""
        request = self.dialect.get_request(user_id)
        await self._discover()
        return self.dialect.parse_user(await self.engine.request(request))

    @_scrubbed_async
    async def me(self) -> DirectoryUser:
        """The token's own user (Notion's bot); unsupported elsewhere."""
        return self.dialect.parse_user(await self.engine.request(self._me_request()))

    @_scrubbed_async
    async def find_user_by_email(self, email: str) -> DirectoryUser | None:
        """The user with this email, or None: one request where native, else a scan."""
        return (await self.find_users_by_email([email]))[email]

    @_scrubbed_async
    async def find_users_by_email(self, emails: Iterable[str]) -> dict[str, DirectoryUser | None]:
        """Many emails: concurrent native lookups, or one scan that stops when all match."""
        matcher = EmailMatcher(self.provider, emails)
        if not matcher.wanted:
            return {}
        await self._discover()
        if self.capabilities.email_lookup == "batch":
            gate = asyncio.Semaphore(self.concurrency)

            async def batch(group: tuple[str, ...], request: Request) -> list[DirectoryUser]:
                async with gate:
                    return await self._batch(group, request)

            batches = self.dialect.lookup_batches(matcher.distinct())
            for batch_users in await asyncio.gather(*(batch(*b) for b in batches)):
                for found_user in batch_users:
                    matcher.feed(found_user)
            return matcher.result()
        if self.capabilities.email_lookup == "native":
            limit = asyncio.Semaphore(self.concurrency)

            async def bounded(email: str) -> DirectoryUser | None:
                async with limit:
                    return await self._lookup(email)

            for user in await asyncio.gather(*(bounded(e) for e in matcher.distinct())):
                if user is not None:
                    matcher.feed(user)
            return matcher.result()
        users = self.iter_users()
        try:
            async for user in users:
                matcher.feed(user)
                if matcher.satisfied:
                    break
        finally:
            await users.aclose()
        return matcher.result()

    async def _lookup(self, email: str) -> DirectoryUser | None:
        try:
            request = self.dialect.email_request(email)
            return self.dialect.parse_user(await self.engine.request(request))
        except UserNotFoundError:
            return None

    async def _batch(self, group: tuple[str, ...], request: Request) -> list[DirectoryUser]:
        """The users one batched lookup finds; a capped answer is asked again in halves."""
        try:
            body = await self.engine.request(request)
        except InvalidRequestError as exc:
            if not self.dialect.lookup_refused(exc):
                raise
            return [u for b in self.dialect.lookup_batches(group) for u in await self._batch(*b)]
        users, complete = self.dialect.parse_batch(body)
        if complete or len(group) == 1:
            return users
        return [u for b in self._halves(group) for u in await self._batch(*b)]

    @_scrubbed_async
    async def create_user(self, new_user: NewUser) -> DirectoryUser:
        """Create a user (never retried once sent); returns it as stored."""
        request = self.dialect.create_request(new_user)
        await self._discover()
        return self.dialect.parse_user(await self.engine.request(request))

    @_scrubbed_async
    async def update_user(
        self, user_id: str, changes: UserChanges, *, version: str | None = None
    ) -> DirectoryUser:
        """Send only the fields set in ``changes``; returns the updated user.

        With ``version``, the change is made only if the user has not changed since
        (``If-Match``): :class:`~userdir.PreconditionFailedError` otherwise.
        """
        options = self._write_options(version)
        await self._discover()
        if self.dialect.update_reads_first:
            options["current"] = await self.get_user(user_id)
        request = self.dialect.update_request(user_id, changes, **options)
        body = await self.engine.request(request)
        if body is None:  # answered without the user (SCIM's 204): read it back
            return await self.get_user(user_id)
        return self.dialect.parse_user(body)

    @_scrubbed_async
    async def delete_user(self, user_id: str, *, version: str | None = None) -> None:
        """Delete a user (with ``version``: only if it has not changed since)."""
        request = self.dialect.delete_request(user_id, **self._write_options(version))
        await self._discover()
        await self.engine.request(request)


async def _cancel(task: asyncio.Task[Any]) -> None:
    if task.done():
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not warn about it
        return
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()
