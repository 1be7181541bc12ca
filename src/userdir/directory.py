"""Directories: the protocols users code against and the HTTP-backed implementations.

``HttpDirectory`` and ``AsyncHttpDirectory`` drive a pure provider dialect through an
engine. Everything that is not I/O — argument checks, filters, the walk over a listing
(``userdir._walk``), bulk email matching — is shared by both; the two classes only
send, wait and cancel.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Iterator,
)
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, runtime_checkable

import attrs

from ._http import AsyncEngine, SyncEngine
from ._secrets import Scrubber
from ._walk import Walk, keep
from .emails import email_key
from .errors import (
    APIError,
    DirectoryError,
    DuplicateEmailError,
    InvalidArgumentError,
    InvalidRequestError,
    UnsupportedOperationError,
    UserNotFoundError,
)
from .models import UNSET, Capabilities, DirectoryUser, NewUser, Page, UserChanges, UserStatus
from .providers._base import Dialect, check_email, check_page_size, paging_of, user_parser
from .providers._paging import ListPage
from .providers._wire import Reply, Request, redact_url

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "AsyncDirectory",
    "AsyncHttpDirectory",
    "Directory",
    "HttpDirectory",
]

DEFAULT_CONCURRENCY = 4
#: A lone request with nothing in flight goes from the calling thread, not a worker
#: (a speed mechanism; its gain is measured by ``python -m benchmarks.mechanisms``).
INLINE_LONE_REQUESTS = True
#: A request handed to a worker is waited for until the worker has it (a speed mechanism,
#: measured by ``python -m benchmarks.mechanisms hand-over``): otherwise a caller busy
#: mapping holds the GIL and the request waits up to the interpreter's switch interval
#: (5 ms) before it goes out.
HAND_OVER = True


def _first_requests(
    walk: Walk, answered: tuple[Request, Reply] | None, line: deque[Any]
) -> list[Request]:
    """The walk's first requests to send; without the first when ``answered`` holds it
    and its answer (a request sent before the walk), which then joins ``line``."""
    requests = walk.requests()
    if answered is not None and requests and requests[0] == answered[0]:
        line.append(answered[1])
        return requests[1:]
    return requests


def _set_event(event: threading.Event, _: object) -> None:
    event.set()


def _started(fetch: Callable[[Request], Reply], request: Request, event: threading.Event) -> Reply:
    event.set()
    return fetch(request)


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


# -- bulk email matching (shared, no I/O) ---------------------------------------


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


T = TypeVar("T")
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
    """What both directory kinds share: checks, filters, requests and the walk."""

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
        self.capabilities = dialect.capabilities
        self.paging = paging_of(dialect)
        # a dialect that learns its capabilities from the service asks once, first
        self._discovery = dialect.discovery_request()
        self._discovery_lock = threading.Lock()
        self._user_of = user_parser(dialect)
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

    def _walk(
        self, status: UserStatus | str | None, role: str | None, page_size: int | None
    ) -> Walk:
        """A new walk over the listing; arguments are checked before any request."""
        server, local = self._filters(status, role)
        size = self.capabilities.max_page_size if page_size is None else page_size
        check_page_size(self.provider, size, self.capabilities.max_page_size)
        self.dialect.page_request(self.paging.start(), size, server)  # validate now
        return Walk(
            self.dialect,
            self.paging,
            page_size=size,
            filters=server,
            local=local,
            window=self.concurrency,
        )

    def _first_guess(
        self, status: UserStatus | str | None, role: str | None, page_size: int | None
    ) -> Request | None:
        """The listing's first request as it stands before discovery (None if there is
        none yet). It is sent alongside the discovery request and its answer used only if
        the walk, once the service has been read, asks for exactly that request: a round
        trip saved on the first listing of a directory, at most one request wasted. Not
        with ``concurrency=1``: one request at a time means one."""
        if self.concurrency < 2:
            return None
        try:
            requests = self._walk(status, role, page_size).requests()
        except DirectoryError:  # the arguments may only be valid after discovery
            return None
        return requests[0] if requests else None

    def _page_request(
        self, cursor: str | None, page_size: int, status: UserStatus | str | None, role: str | None
    ) -> tuple[Any, Request, dict[str, str]]:
        server, local = self._filters(status, role)
        check_page_size(self.provider, page_size, self.capabilities.max_page_size)
        position = self.paging.position(self.provider, cursor) if cursor is not None else None
        if position is None:
            position = self.paging.start()
        request = self.dialect.page_request(position, page_size, server)
        return position, attrs.evolve(request, endpoint_404=True), local

    def _me_request(self) -> Request:
        return attrs.evolve(self.dialect.me_request(), endpoint_404=True)

    def _page(self, position: Any, request: Request, reply: Reply, local: dict[str, str]) -> Page:
        body = reply.json(request.where(), self.provider)
        page: ListPage = self.dialect.parse_page(body, reply)
        users = keep(self.dialect.map_items(page), local)
        return Page(users, self.paging.next_cursor(position, page))

    def _discovered(self, request: Request, reply: Reply | None) -> None:
        """Hand the discovery answer to the dialect; take its capabilities and paging.

        ``reply`` is None where the service has no such document (404, 405, 501): the
        dialect keeps its defaults.
        """
        body = None if reply is None else reply.json(request.where(), self.provider)
        self.dialect.discover(body, reply)
        self.capabilities = self.dialect.capabilities
        self.paging = paging_of(self.dialect)
        self._discovery = None

    @staticmethod
    def _not_announced(error: APIError) -> bool:
        """Whether a discovery request's error means "nothing to discover"."""
        return error.status_code in (404, 405, 501)

    def _check_external_id(self, value: NewUser | UserChanges) -> None:
        """An ``external_id`` for a service that keeps none is refused, naming it."""
        external_id = getattr(value, "external_id", None)
        if external_id not in (None, UNSET) and not self.capabilities.external_id:
            raise UnsupportedOperationError(
                f"external_id: the {self.provider} service keeps no external id on its "
                "accounts (Capabilities.external_id is False)",
                provider=self.provider,
            )

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

    def _halves(self, group: tuple[str, ...]) -> list[tuple[tuple[str, ...], Request]]:
        """The batches asking again for ``group`` in two halves (its answer was capped)."""
        half = len(group) // 2
        return [
            b for part in (group[:half], group[half:]) for b in self.dialect.lookup_batches(part)
        ]

    def _batched(
        self, matcher: EmailMatcher, found: list[list[DirectoryUser]]
    ) -> dict[str, DirectoryUser | None]:
        """The result of batched lookups; several users with one wanted email is an error."""
        ids: dict[str, set[str]] = {}
        for users in found:
            for user in users:
                key = user.email_key
                if key is not None and key in matcher.wanted:
                    ids.setdefault(key, set()).add(user.id)
                    matcher.feed(user)
        for key, same in ids.items():
            if len(same) > 1:
                raise DuplicateEmailError(
                    f"{len(same)} users share the email {matcher.wanted[key][0]!r}: "
                    "refusing to pick one",
                    provider=self.provider,
                    count=len(same),
                )
        return matcher.result()

    def _batch_users(self, request: Request, reply: Reply) -> tuple[list[DirectoryUser], bool]:
        return self.dialect.parse_batch(reply.json(request.where(), self.provider), reply)

    def _check_open(self) -> None:
        """Raise DirectoryClosedError once closed (a walk checks before each page)."""
        if self.engine.closed:
            raise self.engine.closed_error()

    def _parse_user(self, request: Request, reply: Reply) -> DirectoryUser:
        return self._user_of(reply.json(request.where(), self.provider), reply)

    def _matches(self, email: str, request: Request, reply: Reply) -> DirectoryUser | None:
        """The one user a native lookup found for ``email``; several is an error."""
        found = self.dialect.parse_lookup(reply.json(request.where(), self.provider), reply)
        key = email_key(email)
        by_id = {user.id: user for user in found if user.email_key == key}
        if len(by_id) > 1:
            raise DuplicateEmailError(
                f"{len(by_id)} users share the email {email!r}: refusing to pick one",
                provider=self.provider,
                count=len(by_id),
            )
        return next(iter(by_id.values()), None)


class HttpDirectory(_DirectoryBase):
    """A blocking :class:`Directory` over HTTP, driving a provider dialect.

    Safe to share between threads. A walk that can overlap requests (numbered pages,
    offsets) gets its own pool of at most ``concurrency`` threads, shut down when the
    walk ends, is abandoned or the directory closes; cursor walks and single requests
    run in the calling thread.
    """

    engine: SyncEngine

    def __init__(
        self, dialect: Dialect, engine: SyncEngine, *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        super().__init__(dialect, concurrency=concurrency, scrubber=engine.scrubber)
        self.engine = engine
        self._pools: set[ThreadPoolExecutor] = set()
        self._pools_lock = threading.Lock()

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
        with self._pools_lock:
            pools, self._pools = self._pools, set()
            self.engine.closed = True
        self.engine.close()
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)

    def _pool(self, workers: int) -> ThreadPoolExecutor:
        pool = ThreadPoolExecutor(
            max_workers=min(workers, self.concurrency),
            thread_name_prefix=f"userdir-{self.provider}",
        )
        with self._pools_lock:
            if self.engine.closed:
                raise self.engine.closed_error()
            self._pools.add(pool)
        return pool

    def _submit(self, pool: ThreadPoolExecutor, call: Callable[..., T], *args: Any) -> Future[T]:
        """``pool.submit``; DirectoryClosedError once the directory is closed."""
        with self._pools_lock:
            if self.engine.closed:
                raise self.engine.closed_error()
            return pool.submit(call, *args)

    def _hand_over(self, pool: ThreadPoolExecutor, request: Request) -> Future[Reply]:
        """Submit ``request`` and wait until a worker has it (see ``HAND_OVER``)."""
        started = threading.Event()
        future = self._submit(pool, _started, self.engine.fetch, request, started)
        # a task cancelled before it ran (close()) never sets it: its end does
        future.add_done_callback(functools.partial(_set_event, started))
        started.wait()
        return future

    def _outcome(self, future: Future[T]) -> T:
        """``future.result()``, but one that close() cancelled ends in DirectoryClosedError."""
        try:
            return future.result()
        except CancelledError:
            raise self.engine.closed_error() from None

    def _discover(self) -> None:
        """Send the dialect's discovery request, once, before what depends on it."""
        if self._discovery is None:
            return
        with self._discovery_lock:
            request = self._discovery
            if request is not None:
                try:
                    reply: Reply | None = self.engine.fetch(request)
                except APIError as exc:
                    if not self._not_announced(exc):
                        raise
                    reply = None
                self._discovered(request, reply)

    def _release(self, pool: ThreadPoolExecutor | None, *, wait: bool = False) -> None:
        if pool is None:
            return
        with self._pools_lock:
            self._pools.discard(pool)
        pool.shutdown(wait=wait, cancel_futures=True)

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
        position, request, local = self._page_request(cursor, page_size, status, role)
        return self._page(position, request, self.engine.fetch(request), local)

    @_scrubbed
    def iter_users(
        self,
        *,
        status: UserStatus | str | None = None,
        role: str | None = None,
        page_size: int | None = None,
    ) -> Generator[DirectoryUser, None, None]:
        """Every user, lazily, in order; filters go to the server where it has them."""
        guess = None if self._discovery is None else self._first_guess(status, role, page_size)
        if guess is None:
            self._discover()
            return self._drive(self._walk(status, role, page_size))
        pool = self._pool(1)
        try:
            first = self._submit(pool, self.engine.fetch_once, guess)
            try:
                self._discover()
                walk = self._walk(status, role, page_size)
            finally:
                wait_for([first])
        finally:
            self._release(pool, wait=True)  # its one request is over: no thread outlives it
        reply = first.result()
        return self._drive(walk, None if reply is None else (guess, reply))

    def _drive(
        self, walk: Walk, answered: tuple[Request, Reply] | None = None
    ) -> Generator[DirectoryUser, None, None]:
        # A lone request with nothing else in flight is sent from this thread when its
        # answer is needed; requests that can overlap go to the walk's pool.
        # ``answered``: a request and its answer, used if the walk's first is that one.
        line: deque[Request | Future[Reply] | Reply] = deque()
        pool: ThreadPoolExecutor | None = None

        def send(requests: list[Request]) -> None:
            nonlocal pool
            if INLINE_LONE_REQUESTS and len(requests) == 1 and not line:
                line.append(requests[0])
                return
            for request in requests:
                if pool is None:
                    pool = self._pool(self.concurrency)
                if HAND_OVER:
                    line.append(self._hand_over(pool, request))
                else:
                    line.append(self._submit(pool, self.engine.fetch, request))

        try:
            send(_first_requests(walk, answered, line))
            while True:
                send(walk.requests())
                if not line:
                    return
                head = line.popleft()
                if isinstance(head, Request):
                    reply = self.engine.fetch(head)
                elif isinstance(head, Reply):
                    reply = head
                else:
                    reply = self._outcome(head)
                page = walk.take(reply)
                send(walk.requests())
                for i in reversed(walk.drop()):
                    dropped = line[i]
                    del line[i]
                    if isinstance(dropped, Future):
                        dropped.cancel()
                users = walk.users(page)
                self._check_open()
                yield from users
        except DirectoryError as exc:
            self._scrub(exc)
            raise
        finally:
            for item in line:
                if isinstance(item, Future):
                    item.cancel()
            self._release(pool)

    @_scrubbed
    def get_user(self, user_id: str) -> DirectoryUser:
        """One user by id; raises :class:`~userdir.UserNotFoundError`."""
        request = self.dialect.get_request(user_id)
        return self._parse_user(request, self.engine.fetch(request))

    @_scrubbed
    def me(self) -> DirectoryUser:
        """The token's own user (Notion's bot); unsupported elsewhere."""
        request = self._me_request()
        return self._parse_user(request, self.engine.fetch(request))

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
                pool = self._pool(len(batches))
                asked: list[Future[list[DirectoryUser]]] = []
                try:
                    asked = [self._submit(pool, self._batch, *batch) for batch in batches]
                    found = [self._outcome(one) for one in asked]
                finally:
                    for one in asked:
                        one.cancel()
                    self._release(pool)
            return self._batched(matcher, found)
        if self.capabilities.email_lookup == "native":
            keys = matcher.distinct()
            if len(keys) == 1:
                results = [self._lookup(keys[0])]
            else:
                pool = self._pool(len(keys))
                futures = []
                try:
                    futures = [self._submit(pool, self._lookup, key) for key in keys]
                    results = [self._outcome(future) for future in futures]
                finally:
                    for future in futures:
                        future.cancel()
                    self._release(pool)
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
        request = self.dialect.email_request(email)
        try:
            reply = self.engine.fetch(request)
        except UserNotFoundError:
            return None
        return self._matches(email, request, reply)

    def _batch(self, group: tuple[str, ...], request: Request) -> list[DirectoryUser]:
        """The users one batched lookup finds; a capped answer is asked again in halves."""
        try:
            reply = self.engine.fetch(request)
        except InvalidRequestError as exc:
            if not self.dialect.lookup_refused(exc):
                raise
            return [u for b in self.dialect.lookup_batches(group) for u in self._batch(*b)]
        users, complete = self._batch_users(request, reply)
        if complete or len(group) == 1:
            return users
        return [u for b in self._halves(group) for u in self._batch(*b)]

    # -- writing -------------------------------------------------------------

    @_scrubbed
    def create_user(self, new_user: NewUser) -> DirectoryUser:
        """Create a user (never retried once sent); returns it as stored."""
        self._check_external_id(new_user)
        request = self.dialect.create_request(new_user)
        return self._parse_user(request, self.engine.fetch(request))

    @_scrubbed
    def update_user(
        self, user_id: str, changes: UserChanges, *, version: str | None = None
    ) -> DirectoryUser:
        """Send only the fields set in ``changes``; returns the updated user.

        With ``version``, the change is made only if the user has not changed since
        (``If-Match``): :class:`~userdir.PreconditionFailedError` otherwise. PATCH and
        POST are never sent twice.
        """
        self._check_external_id(changes)
        options = self._write_options(version)
        self._discover()
        if self.dialect.update_reads_first:
            options["current"] = self.get_user(user_id)
        request = self.dialect.update_request(user_id, changes, **options)
        reply = self.engine.fetch(request)
        if reply.json(request.where(), self.provider) is None:  # SCIM's 204: read it back
            return self.get_user(user_id)
        return self._parse_user(request, reply)

    @_scrubbed
    def delete_user(self, user_id: str, *, version: str | None = None) -> None:
        """Delete a user (with ``version``: only if it has not changed since)."""
        self.engine.fetch(self.dialect.delete_request(user_id, **self._write_options(version)))


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

    async def __aenter__(self) -> AsyncHttpDirectory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close connections; walks and calls still running end with DirectoryClosedError.

        Requests that walks sent ahead are cancelled, never retried; once closed, every
        call raises :class:`~userdir.DirectoryClosedError`.
        """
        import asyncio

        self.engine.closed = True
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self.engine.close()

    def _spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coroutine`` as a task of this directory's (cancelled by close())."""
        import asyncio

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
        import asyncio

        if not task.done():
            await asyncio.wait({task})
        if task.cancelled():
            raise self.engine.closed_error()
        return task.result()

    async def _discover(self) -> None:
        """Send the dialect's discovery request, once, before what depends on it."""
        request = self._discovery
        if request is not None:
            try:
                reply: Reply | None = await self.engine.fetch(request)
            except APIError as exc:
                if not self._not_announced(exc):
                    raise
                reply = None
            if self._discovery is not None:  # another task may have been first
                self._discovered(request, reply)

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
        position, request, local = self._page_request(cursor, page_size, status, role)
        return self._page(position, request, await self.engine.fetch(request), local)

    @_scrubbed
    def iter_users(
        self,
        *,
        status: UserStatus | str | None = None,
        role: str | None = None,
        page_size: int | None = None,
    ) -> AsyncGenerator[DirectoryUser, None]:
        """Every user, lazily, in order; filters go to the server where it has them."""
        if self._discovery is not None:  # checks wait for what the service says
            return self._discover_then_drive(status, role, page_size)
        return self._drive(self._walk(status, role, page_size))

    async def _discover_then_drive(
        self, status: UserStatus | str | None, role: str | None, page_size: int | None
    ) -> AsyncGenerator[DirectoryUser, None]:
        guess = self._first_guess(status, role, page_size)
        first = None if guess is None else self._spawn(self.engine.fetch_once(guess))
        try:
            await self._discover()
            walk = self._walk(status, role, page_size)
            reply = None if first is None else await self._outcome(first)
        except BaseException:
            if first is not None:
                await _cancel(first)
            raise
        users = self._drive(walk, None if guess is None or reply is None else (guess, reply))
        try:
            async for user in users:
                yield user
        finally:
            await users.aclose()

    async def _drive(
        self, walk: Walk, answered: tuple[Request, Reply] | None = None
    ) -> AsyncGenerator[DirectoryUser, None]:
        # The same loop as the blocking directory's, with tasks for threads.
        line: deque[Request | asyncio.Task[Reply] | Reply] = deque()

        def send(requests: list[Request]) -> None:
            if len(requests) == 1 and not line:
                line.append(requests[0])
                return
            for request in requests:
                line.append(self._spawn(self.engine.fetch(request)))

        try:
            send(_first_requests(walk, answered, line))
            while True:
                send(walk.requests())
                if not line:
                    return
                head = line.popleft()
                if isinstance(head, Request):
                    reply = await self.engine.fetch(head)
                elif isinstance(head, Reply):
                    reply = head
                else:
                    reply = await self._outcome(head)
                page = walk.take(reply)
                send(walk.requests())
                for i in reversed(walk.drop()):
                    dropped = line[i]
                    del line[i]
                    if not isinstance(dropped, (Request, Reply)):
                        await _cancel(dropped)
                users = walk.users(page)
                self._check_open()
                for user in users:
                    yield user
        except DirectoryError as exc:
            self._scrub(exc)
            raise
        finally:
            for item in line:
                if not isinstance(item, (Request, Reply)):
                    await _cancel(item)

    @_scrubbed_async
    async def get_user(self, user_id: str) -> DirectoryUser:
        """One user by id; raises :class:`~userdir.UserNotFoundError`."""
        request = self.dialect.get_request(user_id)
        return self._parse_user(request, await self.engine.fetch(request))

    @_scrubbed_async
    async def me(self) -> DirectoryUser:
        """The token's own user (Notion's bot); unsupported elsewhere."""
        request = self._me_request()
        return self._parse_user(request, await self.engine.fetch(request))

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
            import asyncio

            gate = asyncio.Semaphore(self.concurrency)

            async def batch(group: tuple[str, ...], request: Request) -> list[DirectoryUser]:
                async with gate:
                    return await self._batch(group, request)

            batches = self.dialect.lookup_batches(matcher.distinct())
            found = await asyncio.gather(*(batch(*b) for b in batches))
            return self._batched(matcher, found)
        if self.capabilities.email_lookup == "native":
            import asyncio

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
        request = self.dialect.email_request(email)
        try:
            reply = await self.engine.fetch(request)
        except UserNotFoundError:
            return None
        return self._matches(email, request, reply)

    async def _batch(self, group: tuple[str, ...], request: Request) -> list[DirectoryUser]:
        """The users one batched lookup finds; a capped answer is asked again in halves."""
        try:
            reply = await self.engine.fetch(request)
        except InvalidRequestError as exc:
            if not self.dialect.lookup_refused(exc):
                raise
            return [u for b in self.dialect.lookup_batches(group) for u in await self._batch(*b)]
        users, complete = self._batch_users(request, reply)
        if complete or len(group) == 1:
            return users
        return [u for b in self._halves(group) for u in await self._batch(*b)]

    @_scrubbed_async
    async def create_user(self, new_user: NewUser) -> DirectoryUser:
        """Create a user (never retried once sent); returns it as stored."""
        self._check_external_id(new_user)
        request = self.dialect.create_request(new_user)
        return self._parse_user(request, await self.engine.fetch(request))

    @_scrubbed_async
    async def update_user(
        self, user_id: str, changes: UserChanges, *, version: str | None = None
    ) -> DirectoryUser:
        """Send only the fields set in ``changes``; returns the updated user.

        With ``version``, the change is made only if the user has not changed since
        (``If-Match``): :class:`~userdir.PreconditionFailedError` otherwise. PATCH and
        POST are never sent twice.
        """
        self._check_external_id(changes)
        options = self._write_options(version)
        await self._discover()
        if self.dialect.update_reads_first:
            options["current"] = await self.get_user(user_id)
        request = self.dialect.update_request(user_id, changes, **options)
        reply = await self.engine.fetch(request)
        if reply.json(request.where(), self.provider) is None:  # SCIM's 204: read it back
            return await self.get_user(user_id)
        return self._parse_user(request, reply)

    @_scrubbed_async
    async def delete_user(self, user_id: str, *, version: str | None = None) -> None:
        """Delete a user (with ``version``: only if it has not changed since)."""
        await self.engine.fetch(
            self.dialect.delete_request(user_id, **self._write_options(version))
        )


async def _cancel(task: asyncio.Task[Any]) -> None:
    if task.done():
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not warn about it
        return
    import asyncio

    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()
