"""The shared user model: what every directory returns, whatever its service."""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from .emails import try_email_key

__all__ = [
    "UNSET",
    "Capabilities",
    "DirectoryUser",
    "NewUser",
    "Page",
    "UserChanges",
    "UserKind",
    "UserStatus",
]


class UserKind(str, enum.Enum):
    """Whether an account belongs to a person or to a bot/integration."""

    PERSON = "person"
    BOT = "bot"


class UserStatus(str, enum.Enum):
    """An account's state; ``UNKNOWN`` where the service does not say."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    PENDING = "pending"
    UNKNOWN = "unknown"


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _read_only(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if type(value) is MappingProxyType:
        return value
    if not value:
        return _EMPTY
    return MappingProxyType(dict(value))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _json_scalar(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _jsonable(value: Any) -> Any:
    """``value`` with mappings as dicts, tuples as lists, datetimes and enums as strings.

    Iterative, not recursive: a service's raw payload may nest as deeply as its JSON
    did, and converting it must not run into the recursion limit.
    """
    root: list[Any] = [None]
    todo: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while todo:
        item, into, key = todo.pop()
        if isinstance(item, Mapping):
            out: dict[str, Any] = {}
            into[key] = out
            for name, child in item.items():
                out[str(name)] = None  # keeps the order; filled in below
                todo.append((child, out, str(name)))
        elif isinstance(item, (list, tuple)):
            items: list[Any] = [None] * len(item)
            into[key] = items
            todo.extend((child, items, i) for i, child in enumerate(item))
        else:
            into[key] = _json_scalar(item)
    return root[0]


@attrs.frozen(kw_only=True, slots=False)
class DirectoryUser:
    """One account in one directory, mapped to the shared model.

    ``raw`` holds the service's own payload (read-only) and takes no part in ``==``,
    ``hash`` or ``repr``. ``email_key`` is derived from ``email`` and is what every
    match compares; it is ``None`` when the email is missing or not a valid address.
    ``version`` is the service's version of the account (a SCIM ``meta.version``, an
    ETag) where it gives one: pass it back to ``update_user``/``delete_user`` as
    ``version=`` to change the account only if nobody changed it since.
    ``external_id`` is the id a provisioning client gave the account (SCIM's
    ``externalId``: the source of truth's id for the person), where the service keeps
    one (``Capabilities.external_id``); reconcile can match by it.
    """

    id: str
    provider: str
    email: str | None = None
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    username: str | None = None
    avatar_url: str | None = None
    kind: UserKind = UserKind.PERSON
    role: str | None = None
    status: UserStatus = UserStatus.UNKNOWN
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_login_at: datetime | None = None
    version: str | None = None
    external_id: str | None = None
    extra: Mapping[str, Any] = attrs.field(
        default=_EMPTY, converter=_read_only, hash=False, repr=lambda v: repr(dict(v))
    )
    raw: Mapping[str, Any] = attrs.field(
        default=_EMPTY, converter=_read_only, eq=False, hash=False, repr=False
    )

    @functools.cached_property
    def email_key(self) -> str | None:
        """The normalised email every match compares (:func:`userdir.email_key`), or None."""
        return try_email_key(self.email)

    @classmethod
    def _trusted(cls, values: dict[str, Any]) -> DirectoryUser:
        """Build from a dict of checked fields (the parsers' fast path).

        ``values`` holds ``id``, ``provider`` and whichever fields differ from their
        defaults (the class holds the defaults), with ``extra`` and ``raw`` read-only
        mappings; it becomes the instance's ``__dict__``. Equal to calling the class,
        minus the per-field work of the generated ``__init__``.
        """
        user = _new(cls)
        _set(user, "__dict__", values)
        return user

    def __reduce__(self) -> tuple[Any, ...]:
        # extra and raw are read-only views, which do not pickle: their dicts do
        values = {field.name: getattr(self, field.name) for field in attrs.fields(type(self))}
        values["extra"], values["raw"] = dict(self.extra), dict(self.raw)
        return (_rebuild_user, (type(self), values))

    def to_dict(self, *, include_raw: bool = False) -> dict[str, Any]:
        """A JSON-ready dict of the user: enums as strings, datetimes in ISO 8601."""
        out: dict[str, Any] = {
            "id": self.id,
            "provider": self.provider,
            "email": self.email,
            "email_key": self.email_key,
            "name": self.name,
            "given_name": self.given_name,
            "family_name": self.family_name,
            "username": self.username,
            "avatar_url": self.avatar_url,
            "kind": self.kind.value,
            "role": self.role,
            "status": self.status.value,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "last_login_at": _iso(self.last_login_at),
            "version": self.version,
            "extra": _jsonable(self.extra),
        }
        if include_raw:
            out["raw"] = _jsonable(self.raw)
        return out

    def to_scim(self) -> dict[str, Any]:
        """The user as a SCIM 2.0 core ``User`` resource (RFC 7643), for other identity tools."""
        scim: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": self.id,
            "userName": self.username or self.email or self.id,
            "active": self.status is UserStatus.ACTIVE,
        }
        name = {
            key: value
            for key, value in (
                ("formatted", self.name),
                ("givenName", self.given_name),
                ("familyName", self.family_name),
            )
            if value
        }
        if name:
            scim["name"] = name
        if self.name:
            scim["displayName"] = self.name
        if self.email:
            scim["emails"] = [{"value": self.email, "type": "work", "primary": True}]
        if self.avatar_url:
            scim["photos"] = [{"value": self.avatar_url, "type": "photo"}]
        if self.role:
            scim["roles"] = [{"value": self.role, "primary": True}]
        meta: dict[str, Any] = {"resourceType": "User"}
        if self.created_at:
            meta["created"] = self.created_at.isoformat()
        if self.updated_at:
            meta["lastModified"] = self.updated_at.isoformat()
        if self.version:
            meta["version"] = self.version
        if self.external_id:
            scim["externalId"] = self.external_id
        scim["meta"] = meta
        return scim


def _rebuild_user(cls: type[DirectoryUser], values: dict[str, Any]) -> DirectoryUser:
    return cls(**values)


def _user_tuple(users: Iterable[DirectoryUser]) -> tuple[DirectoryUser, ...]:
    return tuple(users)


_new = object.__new__
_set = object.__setattr__
# The defaults (all immutable) as class attributes: a user built by ``_trusted`` leaves
# the fields it does not set out of its ``__dict__``, and reads them here.
for _field in attrs.fields(DirectoryUser):
    if _field.default is not attrs.NOTHING:
        setattr(DirectoryUser, _field.name, _field.default)


@attrs.frozen
class Page:
    """One page of users. ``next_cursor`` is opaque: pass it back to get the next page."""

    users: tuple[DirectoryUser, ...] = attrs.field(converter=_user_tuple)
    next_cursor: str | None = None

    @property
    def has_more(self) -> bool:
        """Whether another page follows."""
        return self.next_cursor is not None

    def __iter__(self) -> Iterator[DirectoryUser]:
        return iter(self.users)

    def __len__(self) -> int:
        return len(self.users)


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset.UNSET
"""The value of a :class:`UserChanges` field that is not to be changed."""


def _secret_repr(value: object) -> str:
    return "None" if value is None else "'***'"


@attrs.frozen(kw_only=True)
class NewUser:
    """A user to create. The password never appears in ``repr``."""

    email: str
    name: str
    role: str | None = None
    password: str | None = attrs.field(default=None, repr=_secret_repr)
    settings: Mapping[str, Any] | None = None
    #: The id the account is to carry for its source of truth (SCIM ``externalId``);
    #: refused where the service keeps none (``Capabilities.external_id``).
    external_id: str | None = None


@attrs.frozen(kw_only=True)
class UserChanges:
    """Changes to a user: only the fields that are set are sent."""

    name: str | _Unset = UNSET
    email: str | _Unset = UNSET
    role: str | _Unset = UNSET
    status: UserStatus | str | _Unset = UNSET
    password: str | _Unset = attrs.field(
        default=UNSET, repr=lambda v: "UNSET" if v is UNSET else "'***'"
    )
    settings: Mapping[str, Any] | _Unset = UNSET
    external_id: str | _Unset = UNSET

    def fields_set(self) -> dict[str, Any]:
        """The changed fields only, as a wire-ready dict (enums as their values)."""
        out: dict[str, Any] = {}
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if value is UNSET:
                continue
            out[field.name] = value.value if isinstance(value, enum.Enum) else value
        return out


def _str_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen(kw_only=True)
class Capabilities:
    """What a directory supports, readable by code.

    ``email_lookup`` is ``"native"`` when the service looks an email up itself and
    ``"scan"`` when the library has to walk the directory. ``server_filters`` names the
    ``iter_users`` filters the service applies itself; the rest are applied client-side.
    ``user_status`` is False when the service does not say whether a user is active
    (every user's ``status`` is ``UNKNOWN``, so filtering by status means nothing).
    ``create_requires`` names the :class:`NewUser` fields ``create_user`` needs here
    (e.g. ``password`` for REST); a missing one is refused before anything is sent.
    ``etag`` is True when writes can be made conditional on a user's ``version``
    (``update_user(..., version=...)``, ``delete_user(..., version=...)``).
    ``external_id`` is True when accounts carry a provisioning client's id
    (``DirectoryUser.external_id``), which ``NewUser``/``UserChanges`` can set.
    """

    list_users: bool = True
    get_user: bool = True
    email_lookup: str = "scan"
    me: bool = False
    create_user: bool = False
    update_user: bool = False
    delete_user: bool = False
    server_filters: frozenset[str] = attrs.field(default=frozenset(), converter=_str_set)
    paging: str = "cursor"
    max_page_size: int = 100
    user_status: bool = True
    create_requires: frozenset[str] = attrs.field(default=frozenset(), converter=_str_set)
    etag: bool = False
    external_id: bool = False

    @property
    def writes(self) -> bool:
        """Whether any write operation exists."""
        return self.create_user or self.update_user or self.delete_user

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = attrs.asdict(self)
        out["server_filters"] = sorted(self.server_filters)
        out["create_requires"] = sorted(self.create_requires)
        return out
