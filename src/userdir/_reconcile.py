"""Reconcile, reading: the two listings a plan compares, from directories or lists.

Planning itself is pure (:mod:`userdir._reconcile_plan`); applying a plan is
:mod:`userdir._reconcile_apply`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._reconcile_plan import (
    DEFAULT_FIELDS,
    Limits,
    Plan,
    Protect,
    Settings,
    make_plan,
    parse_duration,
)
from .directory import AsyncDirectory, Directory
from .errors import (
    DirectoryError,
    InvalidArgumentError,
)
from .models import DirectoryUser

__all__ = ["plan", "plan_async", "settings"]

# -- planning from directories ------------------------------------------------------


def settings(
    match: str = "email",
    fields: Iterable[str] = DEFAULT_FIELDS,
    role_map: Mapping[str, str] | None = None,
    on_missing: str = "deactivate",
    delete_after: Any = None,
    protect: Protect | None = None,
    limits: Limits | None = None,
    only: Iterable[str] = (),
) -> Settings:
    """The checked :class:`Settings` of :func:`plan`'s keyword arguments."""
    if isinstance(fields, str) or not isinstance(fields, Iterable):
        raise InvalidArgumentError("fields must be a list of field names")
    if role_map is not None and not isinstance(role_map, Mapping):
        raise InvalidArgumentError("role_map must be a mapping of role names")
    return Settings(
        match=match,
        fields=tuple(fields),
        role_map=role_map or {},
        on_missing=on_missing,
        delete_after=parse_duration(delete_after),
        protect=Protect() if protect is None else protect,
        limits=Limits() if limits is None else limits,
        only=only,
    )


def _now(now: dt.datetime | None) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) if now is None else now


def _named(error: BaseException, name: str) -> BaseException:
    if isinstance(error, DirectoryError) and not error.message.startswith(f"{name}: "):
        error.message = f"{name}: {error.message}"
    return error


def plan(
    source: Directory | Iterable[DirectoryUser],
    target: Directory | Iterable[DirectoryUser],
    *,
    source_name: str | None = None,
    target_name: str | None = None,
    match: str = "email",
    fields: Iterable[str] = ("name", "role", "status"),
    role_map: Mapping[str, str] | None = None,
    on_missing: str = "deactivate",
    delete_after: dt.timedelta | float | str | None = None,
    protect: Protect | None = None,
    limits: Limits | None = None,
    only: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> Plan:
    """Plan the creates, updates, deactivations and deletions that make ``target``
    agree with ``source`` (the source of truth). Nothing is changed.

    ``source`` and ``target`` are directories (both listed at once) or listings.
    Accounts are matched by ``email_key``, or with ``match="external_id"`` by the
    target's ``external_id`` holding the source account's ``id`` (a target that keeps
    one, SCIM): a mover's changed email is then an update, an account not linked yet is
    matched by email and linked, and a create carries the id. ``fields`` flow from source to target,
    roles through ``role_map`` (source role → target role, ignoring case; ``"*"``
    for any other). A target account missing from the source (or inactive there) is
    deactivated (``on_missing="deactivate"``), and deleted once inactive for
    ``delete_after`` by its ``updated_at``; ``on_missing="delete"`` deletes at once,
    ``"ignore"`` leaves it. ``protect`` accounts are never touched; ``limits`` stop
    a plan that changes too much or whose source is empty or shrank
    (:class:`SafetyCheckError`). ``only`` (emails or patterns) limits the plan to
    those accounts, to try it on one person first. A listing that fails raises its
    error: no plan.
    """
    checked = settings(match, fields, role_map, on_missing, delete_after, protect, limits, only)
    names = _names(source, target, source_name, target_name)
    _check_target(checked, target, names[1])
    listings: list[list[DirectoryUser]] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(_list_sync, side) for side in (source, target)]
        for future, name in zip(futures, names, strict=True):
            try:
                listings.append(future.result())
            except DirectoryError as exc:
                raise _named(exc, name) from None
    return _make(listings[0], listings[1], checked, names, target, now)


async def plan_async(
    source: AsyncDirectory | Iterable[DirectoryUser],
    target: AsyncDirectory | Iterable[DirectoryUser],
    *,
    source_name: str | None = None,
    target_name: str | None = None,
    match: str = "email",
    fields: Iterable[str] = ("name", "role", "status"),
    role_map: Mapping[str, str] | None = None,
    on_missing: str = "deactivate",
    delete_after: dt.timedelta | float | str | None = None,
    protect: Protect | None = None,
    limits: Limits | None = None,
    only: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> Plan:
    """:func:`plan` over asyncio directories (both listed at once)."""
    checked = settings(match, fields, role_map, on_missing, delete_after, protect, limits, only)
    names = _names(source, target, source_name, target_name)
    _check_target(checked, target, names[1])
    outcomes = await asyncio.gather(
        _list_async(source), _list_async(target), return_exceptions=True
    )
    for outcome, name in zip(outcomes, names, strict=True):
        if isinstance(outcome, BaseException):
            raise _named(outcome, name)
    source_users, target_users = outcomes
    assert isinstance(source_users, list)
    assert isinstance(target_users, list)
    return _make(source_users, target_users, checked, names, target, now)


def _check_target(checked: Settings, target: object, name: str) -> None:
    """Matching by external id needs a target that keeps one: refused before listing."""
    capabilities = getattr(target, "capabilities", None)
    if checked.match == "external_id" and not getattr(capabilities, "external_id", True):
        provider = getattr(target, "provider", None)
        raise InvalidArgumentError(
            f"match='external_id': the target {name!r} ({provider}) keeps no external id "
            "on its accounts; match by email there"
        )


def _names(
    source: object, target: object, source_name: str | None, target_name: str | None
) -> tuple[str, str]:
    return (
        source_name or _default_name(source, "source"),
        target_name or _default_name(target, "target"),
    )


def _make(
    source_users: list[DirectoryUser],
    target_users: list[DirectoryUser],
    checked: Settings,
    names: tuple[str, str],
    target: object,
    now: dt.datetime | None,
) -> Plan:
    """The plan of two listings, done (the part :func:`plan` and :func:`plan_async` share)."""
    return make_plan(
        source_users,
        target_users,
        checked,
        source_name=names[0],
        target_name=names[1],
        target_provider=_provider(target, target_users),
        now=_now(now),
    )


def _default_name(side: object, fallback: str) -> str:
    provider = getattr(side, "provider", None)
    return provider if isinstance(provider, str) else fallback


def _provider(side: object, users: list[DirectoryUser]) -> str | None:
    provider = getattr(side, "provider", None)
    if isinstance(provider, str):
        return provider
    return users[0].provider if users else None


def _list_sync(side: Any) -> list[DirectoryUser]:
    if hasattr(side, "iter_users"):
        return list(side.iter_users())
    return _checked_listing(side)


async def _list_async(side: Any) -> list[DirectoryUser]:
    if hasattr(side, "iter_users"):
        return [user async for user in side.iter_users()]
    if isinstance(side, AsyncIterable):
        return [user async for user in side]
    return _checked_listing(side)


def _checked_listing(users: Any) -> list[DirectoryUser]:
    if isinstance(users, (str, bytes)) or not isinstance(users, Iterable):
        raise InvalidArgumentError("plan() takes directories or lists of DirectoryUser")
    listing = list(users)
    if not all(isinstance(user, DirectoryUser) for user in listing):
        raise InvalidArgumentError("plan() takes directories or lists of DirectoryUser")
    return listing
