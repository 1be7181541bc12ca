"""Many directories as one: lookups everywhere at once, identities, the offboarding diff.

``Federation`` drives blocking directories on a thread pool; ``AsyncFederation`` drives
asyncio directories with ``asyncio.gather``. The merging and comparing are shared.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import attrs

from .directory import AsyncDirectory, Directory
from .emails import email_key
from .errors import DirectoryError, InvalidArgumentError
from .models import DirectoryUser, UserStatus

__all__ = [
    "AsyncFederation",
    "Diff",
    "Difference",
    "Federation",
    "FindResult",
    "Identity",
    "Lookup",
    "LookupStatus",
]

T = TypeVar("T")


class LookupStatus(str, enum.Enum):
    """The outcome of a lookup in one directory."""

    FOUND = "found"
    MISSING = "missing"
    ERROR = "error"


def _error_dict(error: DirectoryError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "type": type(error).__name__,
        "message": str(error),
        "status_code": error.status_code,
        "code": error.code,
        "request_id": error.request_id,
    }


@attrs.frozen
class Lookup:
    """One directory's answer: the user found, "not there", or the error that stopped it."""

    directory: str
    status: LookupStatus
    user: DirectoryUser | None = None
    error: DirectoryError | None = attrs.field(default=None, eq=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "directory": self.directory,
            "status": self.status.value,
            "user": self.user.to_dict() if self.user else None,
            "error": _error_dict(self.error),
        }


@attrs.frozen
class FindResult:
    """Where one email was found, directory by directory (in the federation's order)."""

    email: str
    email_key: str
    lookups: dict[str, Lookup]

    @property
    def users(self) -> dict[str, DirectoryUser]:
        """The directories that have this person, and their account there."""
        return {n: lk.user for n, lk in self.lookups.items() if lk.user is not None}

    @property
    def missing(self) -> list[str]:
        """The directories that answered "not there"."""
        return [n for n, lk in self.lookups.items() if lk.status is LookupStatus.MISSING]

    @property
    def errors(self) -> dict[str, DirectoryError]:
        """The directories that could not answer, and why."""
        return {n: lk.error for n, lk in self.lookups.items() if lk.error is not None}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "email": self.email,
            "email_key": self.email_key,
            "lookups": {n: lk.to_dict() for n, lk in self.lookups.items()},
        }


@attrs.frozen
class Identity:
    """One person (or one email-less account) and their accounts across directories.

    ``email_key`` is None for an account without a usable email (a bot, a hidden
    email): such accounts are never merged, each is an identity of its own.
    """

    email_key: str | None
    accounts: tuple[tuple[str, DirectoryUser], ...]

    @property
    def directories(self) -> list[str]:
        """The directories this identity has an account in."""
        return list(dict.fromkeys(name for name, _ in self.accounts))

    def accounts_in(self, directory: str) -> list[DirectoryUser]:
        """This identity's accounts in one directory."""
        return [user for name, user in self.accounts if name == directory]

    @property
    def name(self) -> str | None:
        """A display name from the first account that has one."""
        return next((u.name for _, u in self.accounts if u.name), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "email_key": self.email_key,
            "name": self.name,
            "accounts": [{"directory": n, "user": u.to_dict()} for n, u in self.accounts],
        }


@attrs.frozen
class Difference:
    """A person in both directories whose status or role differs."""

    email_key: str
    a: DirectoryUser
    b: DirectoryUser
    fields: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "email_key": self.email_key,
            "fields": list(self.fields),
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
        }


@attrs.frozen
class Diff:
    """Two directories compared by ``email_key``: the offboarding audit.

    ``only_in_b`` with an active status is the classic finding: gone from the HR
    directory (``a``), still active in the app (``b``). ``in_both`` pairs the two
    accounts, ``(user in a, user in b)``, of everyone both directories have (those in
    ``differing`` too), in ``b``'s order; ``len(diff.in_both)`` counts them. Accounts
    without a usable email cannot be compared and are listed in
    ``unmatched_a``/``unmatched_b``.
    """

    a: str
    b: str
    only_in_a: tuple[DirectoryUser, ...]
    only_in_b: tuple[DirectoryUser, ...]
    differing: tuple[Difference, ...]
    in_both: tuple[tuple[DirectoryUser, DirectoryUser], ...]
    unmatched_a: tuple[DirectoryUser, ...] = ()
    unmatched_b: tuple[DirectoryUser, ...] = ()

    @property
    def clean(self) -> bool:
        """Whether the two directories agree on everyone they can compare."""
        return not (self.only_in_a or self.only_in_b or self.differing)

    @property
    def counts(self) -> dict[str, int]:
        """How many accounts each finding holds, by field name."""
        return {
            "only_in_a": len(self.only_in_a),
            "only_in_b": len(self.only_in_b),
            "differing": len(self.differing),
            "in_both": len(self.in_both),
            "unmatched_a": len(self.unmatched_a),
            "unmatched_b": len(self.unmatched_b),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "a": self.a,
            "b": self.b,
            "only_in_a": [u.to_dict() for u in self.only_in_a],
            "only_in_b": [u.to_dict() for u in self.only_in_b],
            "differing": [d.to_dict() for d in self.differing],
            "in_both": [
                {"email_key": a.email_key, "a": a.to_dict(), "b": b.to_dict()}
                for a, b in self.in_both
            ],
            "unmatched_a": [u.to_dict() for u in self.unmatched_a],
            "unmatched_b": [u.to_dict() for u in self.unmatched_b],
            "counts": self.counts,
        }


# -- shared logic (no I/O) --------------------------------------------------------------


def _as_error(exc: BaseException, directory: str) -> DirectoryError:
    if isinstance(exc, DirectoryError):
        return exc
    return DirectoryError(f"{directory}: unexpected {type(exc).__name__}")


def _lookup(directory: str, outcome: DirectoryUser | BaseException | None) -> Lookup:
    if isinstance(outcome, BaseException):
        return Lookup(directory, LookupStatus.ERROR, error=_as_error(outcome, directory))
    if outcome is None:
        return Lookup(directory, LookupStatus.MISSING)
    return Lookup(directory, LookupStatus.FOUND, user=outcome)


def _keys(emails: Iterable[str]) -> list[tuple[str, str]]:
    if isinstance(emails, str):
        emails = [emails]
    return [(email, email_key(email)) for email in emails]


def _merge(listings: Mapping[str, list[DirectoryUser] | BaseException]) -> list[Identity]:
    """Merge every directory's listing; a directory that failed fails the merge."""
    by_key: dict[str, list[tuple[str, DirectoryUser]]] = {}
    loose: list[Identity] = []
    for name, users in listings.items():
        if isinstance(users, BaseException):
            raise _wrap(name, users)
        for user in users:
            if user.email_key is None:
                loose.append(Identity(None, ((name, user),)))
            else:
                by_key.setdefault(user.email_key, []).append((name, user))
    merged = [Identity(key, tuple(accounts)) for key, accounts in sorted(by_key.items())]
    return merged + loose


def _fold(role: str | None) -> str | None:
    return role.casefold() if role else None


def _compare(a: DirectoryUser, b: DirectoryUser) -> tuple[str, ...]:
    fields = []
    if (
        a.status is not UserStatus.UNKNOWN
        and b.status is not UserStatus.UNKNOWN
        and a.status is not b.status
    ):
        fields.append("status")
    if a.role and b.role and _fold(a.role) != _fold(b.role):
        fields.append("role")
    return tuple(fields)


def _diff(
    a_name: str, a_users: Iterable[DirectoryUser], b_name: str, b_users: Iterable[DirectoryUser]
) -> Diff:
    a_by_key: dict[str, DirectoryUser] = {}
    unmatched_a: list[DirectoryUser] = []
    for user in a_users:
        if user.email_key is None:
            unmatched_a.append(user)
        else:
            a_by_key.setdefault(user.email_key, user)
    only_in_b: list[DirectoryUser] = []
    unmatched_b: list[DirectoryUser] = []
    differing: list[Difference] = []
    in_both: list[tuple[DirectoryUser, DirectoryUser]] = []
    seen: set[str] = set()
    for user in b_users:
        key = user.email_key
        if key is None:
            unmatched_b.append(user)
            continue
        if key in seen:
            continue
        seen.add(key)
        other = a_by_key.get(key)
        if other is None:
            only_in_b.append(user)
        else:
            in_both.append((other, user))
            fields = _compare(other, user)
            if fields:
                differing.append(Difference(key, other, user, fields))
    only_in_a = [u for k, u in a_by_key.items() if k not in seen]
    return Diff(
        a_name,
        b_name,
        tuple(only_in_a),
        tuple(only_in_b),
        tuple(differing),
        tuple(in_both),
        tuple(unmatched_a),
        tuple(unmatched_b),
    )


def _check(directories: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(directories, Mapping) or not directories:
        raise InvalidArgumentError("a federation needs a non-empty mapping of named directories")
    return dict(directories)


def _pick(directories: Mapping[str, Any], name: str) -> Any:
    if name not in directories:
        raise InvalidArgumentError(f"no directory named {name!r} (known: {', '.join(directories)})")
    return directories[name]


def _find_many_result(
    keyed: list[tuple[str, str]], outcomes: Mapping[str, Any]
) -> dict[str, FindResult]:
    results: dict[str, FindResult] = {}
    for email, key in keyed:
        lookups = {}
        for name, outcome in outcomes.items():
            value = outcome if isinstance(outcome, BaseException) else outcome.get(email)
            lookups[name] = _lookup(name, value)
        results[email] = FindResult(email, key, lookups)
    return results


class Federation:
    """Blocking lookups across many named directories, each asked concurrently."""

    def __init__(self, directories: Mapping[str, Directory]) -> None:
        self.directories: dict[str, Directory] = _check(directories)

    def __enter__(self) -> Federation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every directory."""
        for directory in self.directories.values():
            directory.close()

    def _each(self, call: Callable[[str, Directory], T]) -> dict[str, T | BaseException]:
        out: dict[str, T | BaseException] = {}
        with ThreadPoolExecutor(max_workers=len(self.directories)) as pool:
            futures = {n: pool.submit(call, n, d) for n, d in self.directories.items()}
            for name, future in futures.items():
                try:
                    out[name] = future.result()
                except Exception as exc:
                    out[name] = exc
        return out

    def find(self, email: str) -> FindResult:
        """Ask every directory for one email, concurrently; errors are per directory."""
        ((email, key),) = _keys([email])
        outcomes = self._each(lambda _n, d: d.find_user_by_email(email))
        return FindResult(email, key, {n: _lookup(n, o) for n, o in outcomes.items()})

    def find_many(self, emails: Iterable[str]) -> dict[str, FindResult]:
        """Many emails, each directory using its bulk lookup, all directories at once."""
        keyed = _keys(emails)
        outcomes = self._each(lambda _n, d: d.find_users_by_email([e for e, _ in keyed]))
        return _find_many_result(keyed, outcomes)

    def identities(self) -> list[Identity]:
        """Every account of every directory, merged by ``email_key`` into identities."""
        return _merge(self._each(lambda _n, d: list(d.iter_users())))

    def diff(self, a: str, b: str) -> Diff:
        """Compare two directories by ``email_key`` (only in a, only in b, differing)."""
        da, db = _pick(self.directories, a), _pick(self.directories, b)
        with ThreadPoolExecutor(max_workers=2) as pool:
            fa = pool.submit(lambda: list(da.iter_users()))
            fb = pool.submit(lambda: list(db.iter_users()))
            users_a, users_b = _result(a, fa), _result(b, fb)
        return _diff(a, users_a, b, users_b)


def _result(name: str, future: Any) -> list[DirectoryUser]:
    try:
        return future.result()  # type: ignore[no-any-return]
    except Exception as exc:
        raise _wrap(name, exc) from exc


def _wrap(name: str, exc: BaseException) -> DirectoryError:
    error = _as_error(exc, name)
    if not error.message.startswith(f"{name}: "):
        error.message = f"{name}: {error.message}"
    return error


class AsyncFederation:
    """Asyncio lookups across many named directories, each asked concurrently."""

    def __init__(self, directories: Mapping[str, AsyncDirectory]) -> None:
        self.directories: dict[str, AsyncDirectory] = _check(directories)

    async def __aenter__(self) -> AsyncFederation:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every directory."""
        for directory in self.directories.values():
            await directory.close()

    async def _each(
        self, call: Callable[[str, AsyncDirectory], Awaitable[T]]
    ) -> dict[str, T | BaseException]:
        names = list(self.directories)
        outcomes = await asyncio.gather(
            *(call(n, self.directories[n]) for n in names), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome  # cancellation and the like are not a directory's answer
        return dict(zip(names, outcomes, strict=True))

    async def find(self, email: str) -> FindResult:
        """Ask every directory for one email, concurrently; errors are per directory."""
        ((email, key),) = _keys([email])
        outcomes = await self._each(lambda _n, d: d.find_user_by_email(email))
        return FindResult(email, key, {n: _lookup(n, o) for n, o in outcomes.items()})

    async def find_many(self, emails: Iterable[str]) -> dict[str, FindResult]:
        """Many emails, each directory using its bulk lookup, all directories at once."""
        keyed = _keys(emails)
        outcomes = await self._each(lambda _n, d: d.find_users_by_email([e for e, _ in keyed]))
        return _find_many_result(keyed, outcomes)

    async def identities(self) -> list[Identity]:
        """Every account of every directory, merged by ``email_key`` into identities."""
        return _merge(await self._each(lambda _n, d: _collect(d)))

    async def diff(self, a: str, b: str) -> Diff:
        """Compare two directories by ``email_key`` (only in a, only in b, differing)."""
        da, db = _pick(self.directories, a), _pick(self.directories, b)
        users_a, users_b = await asyncio.gather(_collect(da), _collect(db), return_exceptions=True)
        for name, outcome in ((a, users_a), (b, users_b)):
            if isinstance(outcome, BaseException):
                raise _wrap(name, outcome)
        assert isinstance(users_a, list)
        assert isinstance(users_b, list)
        return _diff(a, users_a, b, users_b)


async def _collect(directory: AsyncDirectory) -> list[DirectoryUser]:
    return [user async for user in directory.iter_users()]
