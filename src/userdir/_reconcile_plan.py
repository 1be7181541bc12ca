"""Reconcile, planning: compare a source of truth with a target and plan the changes.

Pure: planning takes the two listings (lists of :class:`~userdir.DirectoryUser`) and
the settings and never does I/O; :mod:`userdir._reconcile` reads the listings. A plan
is deterministic (same inputs, same plan, same order) and serialises to JSON with a
content hash, which :func:`userdir.apply` checks before it changes anything.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from .errors import DirectoryError, InvalidArgumentError
from .models import DirectoryUser, UserKind, UserStatus, _read_only

__all__ = [
    "DEFAULT_FIELDS",
    "Action",
    "Create",
    "Deactivate",
    "Delete",
    "Limits",
    "Plan",
    "Protect",
    "SafetyCheckError",
    "Skip",
    "Update",
    "make_plan",
    "parse_duration",
]

FORMAT = "userdir-plan/1"
FIELDS = ("name", "role", "status")
DEFAULT_FIELDS = FIELDS
#: How accounts are matched: by ``email_key``, or by the target's ``external_id``
#: holding the source account's ``id`` (accounts not linked yet: by email, then linked).
MATCHES = ("email", "external_id")
CREATE_FIELDS = ("name", "role", "external_id")
# by external_id, a mover's email changes too, and an account matched by email is linked
UPDATE_FIELDS = (*FIELDS, "email", "external_id")
ON_MISSING = ("deactivate", "delete", "ignore")
KIND_ORDER = ("create", "update", "deactivate", "delete", "skip")
# What apply compares against a re-read account (where the target has no versions).
SNAPSHOT = ("email", "name", "role", "status", "updated_at")


class SafetyCheckError(DirectoryError):
    """A safety check refused a plan or its application; nothing was changed.

    ``check`` names the check (``"max_changes"``, ``"empty_source"``,
    ``"source_shrank"``, ``"plan_hash"``, ``"wrong_target"``, ``"journal"``) and
    ``counts`` holds the numbers it looked at.
    """

    def __init__(self, message: str, *, check: str, counts: Mapping[str, int] | None = None):
        super().__init__(message)
        self.check = check
        self.counts: dict[str, int] = dict(counts or {})


# -- settings ---------------------------------------------------------------------


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidArgumentError(f"expected a list of strings, got {type(value).__name__}")
    items = tuple(value)
    if not all(isinstance(item, str) and item for item in items):
        raise InvalidArgumentError("expected a list of non-empty strings")
    return items


@attrs.frozen(kw_only=True)
class Protect:
    """Accounts a reconcile never touches, whatever the source says.

    ``kinds`` are :class:`~userdir.UserKind` values (bots by default); ``emails`` are
    addresses or ``fnmatch`` patterns (``svc-*@example.com``), compared with the
    account's ``email_key`` in lower case; ``roles`` are compared ignoring case.
    """

    kinds: tuple[str, ...] = attrs.field(default=("bot",), converter=_strings)
    emails: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    roles: tuple[str, ...] = attrs.field(default=("owner", "admin"), converter=_strings)

    def __attrs_post_init__(self) -> None:
        known = {kind.value for kind in UserKind}
        for kind in self.kinds:
            if kind not in known:
                raise InvalidArgumentError(
                    f"protect kinds: unknown kind {kind!r} (known: {', '.join(sorted(known))})"
                )

    def reason(self, user: DirectoryUser) -> str | None:
        """Why ``user`` is protected, or None."""
        if user.kind.value in self.kinds:
            return f"protected kind {user.kind.value}"
        key = (user.email_key or "").lower()
        if key:
            for pattern in self.emails:
                if fnmatch.fnmatchcase(key, pattern.lower()):
                    return f"protected email {pattern}"
        if user.role:
            role = user.role.casefold()
            for protected in self.roles:
                if role == protected.casefold():
                    return f"protected role {user.role}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"kinds": list(self.kinds), "emails": list(self.emails), "roles": list(self.roles)}


_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _check_cap(_instance: object, _attribute: object, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidArgumentError(
            f"max_changes must be a number, a percentage such as '10%' or None, got {value!r}"
        )
    if isinstance(value, int) and value < 0:
        raise InvalidArgumentError(f"max_changes must be at least 0, got {value}")
    if isinstance(value, str) and not _PERCENT.match(value):
        raise InvalidArgumentError(f"max_changes: not a percentage such as '10%': {value!r}")


def _check_ratio(_instance: object, _attribute: object, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        raise InvalidArgumentError(f"min_source_ratio must be a number from 0 to 1, got {value!r}")


@attrs.frozen(kw_only=True)
class Limits:
    """The safety limits of a plan; all on by default.

    ``max_changes`` caps the creates, updates, deactivations and deletions together:
    a number, a percentage of the target's accounts (``"10%"``), or None for no cap.
    Planning also stops when the source lists nobody (unless ``allow_empty_source``)
    or fewer people than ``min_source_ratio`` times the target's unprotected accounts.
    """

    max_changes: int | str | None = attrs.field(default=200, validator=_check_cap)
    min_source_ratio: float = attrs.field(default=0.5, validator=_check_ratio)
    allow_empty_source: bool = False

    @classmethod
    def none(cls) -> Limits:
        """No cap and no shrink check: for tests and deliberate first syncs."""
        return cls(max_changes=None, min_source_ratio=0.0, allow_empty_source=True)

    def cap(self, target_size: int) -> int | None:
        """The number of changes allowed against a target of ``target_size`` accounts."""
        if self.max_changes is None or isinstance(self.max_changes, int):
            return self.max_changes
        match = _PERCENT.match(self.max_changes)
        assert match is not None
        return math.floor(float(match.group(1)) * target_size / 100)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "max_changes": self.max_changes,
            "min_source_ratio": self.min_source_ratio,
            "allow_empty_source": self.allow_empty_source,
        }


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object, what: str = "delete_after") -> dt.timedelta | None:
    """A ``timedelta``, days as a number, or text such as ``"30d"``/``"12h"``; None stays None."""
    if value is None or isinstance(value, dt.timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        seconds = float(value) * 86400
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise InvalidArgumentError(
            f"{what} must be a timedelta, a number of days or text such as '30d', got {value!r}"
        )
    if seconds < 0:
        raise InvalidArgumentError(f"{what} must not be negative")
    return dt.timedelta(seconds=seconds)


@attrs.frozen(kw_only=True)
class Settings:
    """Everything that decides a plan besides the two listings (checked on creation)."""

    match: str = "email"
    fields: tuple[str, ...] = DEFAULT_FIELDS
    role_map: Mapping[str, str] = attrs.field(factory=dict, converter=_read_only, hash=False)
    on_missing: str = "deactivate"
    delete_after: dt.timedelta | None = None
    protect: Protect = attrs.Factory(Protect)
    limits: Limits = attrs.Factory(Limits)
    only: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    def __attrs_post_init__(self) -> None:
        if self.match not in MATCHES:
            raise InvalidArgumentError(
                f"match must be one of {', '.join(MATCHES)}, got {self.match!r}"
            )
        for name in self.fields:
            if name not in FIELDS:
                raise InvalidArgumentError(
                    f"fields: unknown field {name!r} (known: {', '.join(FIELDS)})"
                )
        if self.on_missing not in ON_MISSING:
            raise InvalidArgumentError(
                f"on_missing must be one of {', '.join(ON_MISSING)}, got {self.on_missing!r}"
            )
        for source, target in self.role_map.items():
            if not (isinstance(source, str) and isinstance(target, str) and source and target):
                raise InvalidArgumentError("role_map must map role names to role names")
        if not isinstance(self.protect, Protect):
            raise InvalidArgumentError("protect must be a userdir.Protect")
        if not isinstance(self.limits, Limits):
            raise InvalidArgumentError("limits must be a userdir.Limits")

    def selected(self, key: str | None) -> bool:
        """Whether an account takes part: all do, unless ``only`` names some (patterns)."""
        if not self.only:
            return True
        return key is not None and any(
            fnmatch.fnmatchcase(key.lower(), pattern.lower()) for pattern in self.only
        )

    def target_role(self, role: str) -> str:
        """The target's role for a source role: the mapping table (ignoring case), else as is."""
        folded = {key.casefold(): value for key, value in self.role_map.items()}
        return folded.get(role.casefold(), folded.get("*", role))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (recorded in the plan)."""
        return {
            "match": self.match,
            "fields": list(self.fields),
            "role_map": dict(sorted(self.role_map.items())),
            "on_missing": self.on_missing,
            "delete_after_seconds": (
                None if self.delete_after is None else self.delete_after.total_seconds()
            ),
            "protect": self.protect.to_dict(),
            "limits": self.limits.to_dict(),
            "only": list(self.only),
        }


# -- actions ----------------------------------------------------------------------


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if value is not None and not isinstance(value, Mapping):
        raise InvalidArgumentError(f"expected a mapping, got {type(value).__name__}")
    return _read_only(value)


def _field_values(allowed: tuple[str, ...]) -> Any:
    """A validator: a mapping of some of ``allowed`` fields to non-empty strings."""

    def check(_instance: object, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
        for key, item in value.items():
            if key not in allowed:
                raise InvalidArgumentError(f"{attribute.name}: unknown field {key!r}")
            if not isinstance(item, str) or not item:
                raise InvalidArgumentError(f"{attribute.name}.{key}: expected a non-empty string")
            if key == "status" and item not in ("active", "inactive"):
                raise InvalidArgumentError(f"{attribute.name}.status: active or inactive only")

    return check


@attrs.frozen(kw_only=True)
class Action:
    """One planned step; ``kind`` names it. ``user_id`` is the target's account (None
    for a create); ``email_key`` is what the accounts were matched by."""

    kind: ClassVar[str] = ""
    email: str | None
    email_key: str | None
    user_id: str | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("email", "email_key", "user_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise InvalidArgumentError(f"{name}: expected a string")
        if self.kind not in ("create", "skip") and not self.user_id:
            raise InvalidArgumentError(f"{self.kind}: needs the account's user_id")

    @property
    def changes_anything(self) -> bool:
        """Whether applying this action writes to the target (everything but a skip)."""
        return self.kind != "skip"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, ``kind`` first."""
        out: dict[str, Any] = {"kind": self.kind}
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            out[field.name] = dict(value) if isinstance(value, Mapping) else value
        return out


@attrs.frozen(kw_only=True)
class Create(Action):
    """A joiner: create the account with the mapped ``fields`` (name, role, and the
    source's id as ``external_id`` when matching by it)."""

    kind: ClassVar[str] = "create"
    fields: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_field_values(CREATE_FIELDS), hash=False
    )

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        if not self.email:
            raise InvalidArgumentError("a create needs an email")


@attrs.frozen(kw_only=True)
class _Write(Action):
    """An action on an existing account: ``before`` is the account as planned (what
    apply compares with a re-read), ``version`` its ETag where the target has one."""

    before: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_map, hash=False)
    version: str | None = None


@attrs.frozen(kw_only=True)
class Update(_Write):
    """A mover: the changed fields, new values only (old ones are in ``before``).
    Matching by ``external_id``, ``email`` can change too, and ``external_id`` is set
    on an account matched by email (linked)."""

    kind: ClassVar[str] = "update"
    changes: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_map, validator=_field_values(UPDATE_FIELDS), hash=False
    )


@attrs.frozen(kw_only=True)
class Deactivate(_Write):
    """A leaver: set the account's status to inactive."""

    kind: ClassVar[str] = "deactivate"


@attrs.frozen(kw_only=True)
class Delete(_Write):
    """A leaver inactive for at least ``delete_after``, or deletion explicitly asked."""

    kind: ClassVar[str] = "delete"
    reason: str = ""


@attrs.frozen(kw_only=True)
class Skip(Action):
    """Something the plan will not do, and why (a protected account, an unmatched one)."""

    kind: ClassVar[str] = "skip"
    reason: str = ""


ACTION_TYPES: dict[str, type[Action]] = {
    cls.kind: cls for cls in (Create, Update, Deactivate, Delete, Skip)
}


def _action_from_dict(data: Any, where: str) -> Action:
    if not isinstance(data, Mapping):
        raise InvalidArgumentError(f"{where}: expected an object")
    kind = data.get("kind")
    cls = ACTION_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidArgumentError(f"{where}: unknown action kind {kind!r}")
    names = {field.name for field in attrs.fields(cls)}
    unknown = set(data) - names - {"kind"}
    if unknown:
        raise InvalidArgumentError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        return cls(**{key: value for key, value in data.items() if key != "kind"})
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{where}: {exc.message}") from None
    except TypeError as exc:
        raise InvalidArgumentError(f"{where}: {exc}") from None


# -- the plan ---------------------------------------------------------------------


def _canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "backslashreplace")


@attrs.frozen(kw_only=True)
class Plan:
    """What a reconcile will do to ``target`` so that it agrees with ``source``.

    ``hash`` is the SHA-256 of the plan's JSON without it; :func:`userdir.apply`
    refuses a plan whose content no longer matches it. ``counts`` gives the number
    of actions of each kind, ``changes`` (all but skips), and the listings' sizes.
    """

    source: str
    target: str
    target_provider: str | None
    created_at: dt.datetime
    source_count: int
    target_count: int
    settings: Mapping[str, Any] = attrs.field(converter=_frozen_map, hash=False)
    actions: tuple[Action, ...]
    hash: str = ""

    @property
    def counts(self) -> dict[str, int]:
        """Actions by kind, ``changes`` (every kind but skip), and the listings' sizes."""
        out = dict.fromkeys(KIND_ORDER, 0)
        for action in self.actions:
            out[action.kind] += 1
        out["changes"] = len(self.actions) - out["skip"]
        out["source_users"] = self.source_count
        out["target_users"] = self.target_count
        return out

    @property
    def changes(self) -> list[Action]:
        """The actions that write (all but skips), in plan order."""
        return [action for action in self.actions if action.changes_anything]

    def _content(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "source": self.source,
            "target": self.target,
            "target_provider": self.target_provider,
            "created_at": self.created_at.isoformat(),
            "source_count": self.source_count,
            "target_count": self.target_count,
            "counts": self.counts,
            "settings": _thaw(self.settings),
            "actions": [action.to_dict() for action in self.actions],
        }

    def content_hash(self) -> str:
        """The SHA-256 (hex) of the plan's content, as ``hash`` should hold it."""
        return hashlib.sha256(_canonical(self._content())).hexdigest()

    @property
    def intact(self) -> bool:
        """Whether ``hash`` matches the content (False for an edited plan file)."""
        return bool(self.hash) and self.hash == self.content_hash()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the content and its ``hash``."""
        return {**self._content(), "hash": self.hash}

    def to_json(self) -> str:
        """The plan as indented JSON text (what :meth:`from_json` reads back)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> Plan:
        """Read a plan written by :meth:`to_dict`; the hash is kept as written, not checked."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise InvalidArgumentError(f"not a userdir plan (expected format {FORMAT!r})")
        try:
            created = dt.datetime.fromisoformat(str(data["created_at"]))
            actions = data["actions"]
            if not isinstance(actions, list):
                raise InvalidArgumentError("plan: 'actions' must be a list")
            return cls(
                source=str(data["source"]),
                target=str(data["target"]),
                target_provider=data.get("target_provider"),
                created_at=created,
                source_count=int(data["source_count"]),
                target_count=int(data["target_count"]),
                settings=data.get("settings") or {},
                actions=tuple(
                    _action_from_dict(item, f"plan: actions[{i}]") for i, item in enumerate(actions)
                ),
                hash=str(data.get("hash") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidArgumentError):
                raise
            raise InvalidArgumentError(
                f"plan: missing or bad value ({type(exc).__name__})"
            ) from None

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Read a plan from :meth:`to_json`'s text."""
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidArgumentError("plan: not valid JSON") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        """Read a plan file written by :meth:`save`."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(
                f"cannot read plan {str(path)!r}: "
                f"{getattr(exc, 'strerror', None) or type(exc).__name__}"
            ) from None
        return cls.from_json(text)


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


# -- planning ---------------------------------------------------------------------


def _snapshot(user: DirectoryUser) -> dict[str, Any]:
    return {
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "status": user.status.value,
        "updated_at": None if user.updated_at is None else user.updated_at.isoformat(),
    }


def _wanted_status(user: DirectoryUser) -> str | None:
    """The status the source asks for: pending counts as active; unknown says nothing."""
    if user.status is UserStatus.INACTIVE:
        return "inactive"
    if user.status in (UserStatus.ACTIVE, UserStatus.PENDING):
        return "active"
    return None


def _current_status(user: DirectoryUser) -> str | None:
    """The target's status in the same terms (an invited, pending account is active)."""
    return _wanted_status(user)


def _updates(settings: Settings, source: DirectoryUser, target: DirectoryUser) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "name" in settings.fields and source.name and source.name != target.name:
        changes["name"] = source.name
    if "role" in settings.fields and source.role:
        role = settings.target_role(source.role)
        if role.casefold() != (target.role or "").casefold():
            changes["role"] = role
    if "status" in settings.fields:
        wanted, current = _wanted_status(source), _current_status(target)
        if wanted == "active" and current == "inactive":
            changes["status"] = "active"
    return changes


def _create_fields(settings: Settings, source: DirectoryUser) -> dict[str, Any]:
    name = source.name or (source.email or "").partition("@")[0]
    fields: dict[str, Any] = {"name": name}
    if "role" in settings.fields and source.role:
        fields["role"] = settings.target_role(source.role)
    if settings.match == "external_id":
        fields["external_id"] = source.id
    return fields


def _leaver(settings: Settings, user: DirectoryUser, now: dt.datetime) -> Action | None:
    common: dict[str, Any] = {
        "email": user.email,
        "email_key": user.email_key,
        "user_id": user.id,
        "before": _snapshot(user),
        "version": getattr(user, "version", None),
    }
    if settings.on_missing == "ignore":
        return None
    if settings.on_missing == "delete":
        return Delete(reason="deletion asked (on_missing='delete')", **common)
    if user.status is not UserStatus.INACTIVE:
        return Deactivate(**common)
    if settings.delete_after is None:
        return None
    if user.updated_at is None:
        return Skip(
            email=user.email,
            email_key=user.email_key,
            user_id=user.id,
            reason="inactive, but the target gives no updated_at to measure delete_after by",
        )
    since = (
        user.updated_at
        if user.updated_at.tzinfo
        else user.updated_at.replace(tzinfo=dt.timezone.utc)
    )
    if now - since >= settings.delete_after:
        return Delete(reason=f"inactive since at least {since.isoformat()}", **common)
    return None


def _sort_key(action: Action) -> tuple[int, str, str]:
    return (KIND_ORDER.index(action.kind), action.email_key or "", action.user_id or "")


def _selection(
    settings: Settings, source: list[DirectoryUser], target: list[DirectoryUser]
) -> tuple[Callable[[DirectoryUser], bool], Callable[[DirectoryUser], bool]]:
    """Which accounts take part (``only``), on each side. Matching by external id, a
    person and their linked account are in or out together, whichever email was named
    (a mover's old one or the new)."""
    chosen_ids: set[str] = set()
    chosen_links: set[str] = set()
    if settings.only and settings.match == "external_id":
        chosen_ids = {user.id for user in source if settings.selected(user.email_key)}
        chosen_links = {
            user.external_id
            for user in target
            if user.external_id and settings.selected(user.email_key)
        }

    def source_selected(user: DirectoryUser) -> bool:
        return settings.selected(user.email_key) or user.id in chosen_links

    def target_selected(user: DirectoryUser) -> bool:
        return settings.selected(user.email_key) or (
            user.external_id is not None and user.external_id in chosen_ids
        )

    return source_selected, target_selected


def make_plan(
    source_users: Iterable[DirectoryUser],
    target_users: Iterable[DirectoryUser],
    settings: Settings,
    *,
    source_name: str,
    target_name: str,
    target_provider: str | None,
    now: dt.datetime,
) -> Plan:
    """The plan for ``target_users`` to agree with ``source_users`` (no I/O).

    Raises :class:`SafetyCheckError` when a limit is crossed; no plan is made then.
    """
    if now.tzinfo is None:
        raise InvalidArgumentError("now must be a timezone-aware datetime")
    by_id = settings.match == "external_id"
    source_list, target_list = list(source_users), list(target_users)
    source_selected, target_selected = _selection(settings, source_list, target_list)
    source: dict[str, DirectoryUser] = {}
    source_total = 0
    active_ids: set[str] = set()
    for user in source_list:
        if not source_selected(user):
            continue
        source_total += 1
        if _wanted_status(user) != "inactive":
            active_ids.add(user.id)
        if user.email_key is not None:
            known = source.get(user.email_key)
            # One email twice (an old record and a rehire): the record that is not
            # inactive wins, else the first.
            if known is None or (
                _wanted_status(known) == "inactive" and _wanted_status(user) != "inactive"
            ):
                source[user.email_key] = user
    present = {key: user for key, user in source.items() if _wanted_status(user) != "inactive"}

    targets = [user for user in target_list if target_selected(user)]
    target_total = len(targets)
    # matching by external_id: who is linked already, and which account holds each email
    links = Counter(user.external_id for user in targets if user.external_id) if by_id else {}
    holders: dict[str, str] = {}
    for user in target_list if by_id else ():  # all of them: an email is taken or not
        if user.email_key is not None:
            holders.setdefault(user.email_key, user.id)
    present_ids = {user.id: key for key, user in present.items()} if by_id else {}
    # people the source has, but not under an email of their own (none, or another
    # record's): their linked accounts are theirs still, and left alone
    unplaced = active_ids - present_ids.keys() if by_id else set()

    actions: list[Action] = []
    seen: set[str] = set()  # the target's email keys, matching by email
    matched: set[str] = set()  # the source's email keys that have their account
    unprotected = 0
    for user in targets:
        key = user.email_key
        protected = settings.protect.reason(user)

        def skip(reason: str, user: DirectoryUser = user) -> Skip:
            return Skip(email=user.email, email_key=user.email_key, user_id=user.id, reason=reason)

        wanted: DirectoryUser | None
        if by_id and user.external_id:
            if links[user.external_id] > 1:
                actions.append(skip("another account in the target has this external id"))
                if (source_key := present_ids.get(user.external_id)) is not None:
                    matched.add(source_key)  # these skips say why it gets no account
                continue
            source_key = present_ids.get(user.external_id)
            if source_key is None and user.external_id in unplaced:
                if protected is None:
                    actions.append(
                        skip(f"the source's {user.external_id!r} has no usable email of its own")
                    )
                continue
            wanted = None if source_key is None else present[source_key]
        else:
            if key is None:
                if protected is None:
                    actions.append(skip("no usable email: cannot be matched"))
                continue
            if key in seen:
                actions.append(skip("another account in the target has this email"))
                continue
            seen.add(key)
            wanted = present.get(key)
            if by_id and wanted is not None and links.get(wanted.id):
                if protected is None:
                    actions.append(
                        skip(
                            f"the source's {wanted.id!r} has another account, linked by external id"
                        )
                    )
                continue
        action: Action | None
        if wanted is None:
            action = _leaver(settings, user, now)
        else:
            matched.add(wanted.email_key or "")
            changes = _updates(settings, wanted, user)
            held_by = holders.get(wanted.email_key or "", user.id)
            if by_id and wanted.email_key != key and held_by != user.id:
                action = skip(f"the new email {wanted.email!r} is another target account's")
            else:
                if by_id and wanted.email_key != key:
                    changes["email"] = wanted.email
                if by_id and not user.external_id:
                    changes["external_id"] = wanted.id
                action = (
                    Update(
                        email=user.email,
                        email_key=key,
                        user_id=user.id,
                        before=_snapshot(user),
                        version=getattr(user, "version", None),
                        changes=changes,
                    )
                    if changes
                    else None
                )
        if protected is None:
            unprotected += 1
        if action is None:
            continue
        if protected is not None and action.changes_anything:
            action = skip(f"{protected}: would {action.kind}")
        actions.append(action)
    for key, user in present.items():
        if key in matched:
            continue
        if by_id and key in holders:
            actions.append(
                Skip(
                    email=user.email,
                    email_key=key,
                    reason=f"the email is held by a target account linked to another id "
                    f"than {user.id!r}: left to a person",
                )
            )
        else:
            actions.append(
                Create(email=user.email, email_key=key, fields=_create_fields(settings, user))
            )
    actions.sort(key=_sort_key)

    counts = {
        "source_users": source_total,
        "source_people": len(present),
        "target_users": target_total,
        "target_unprotected": unprotected,
    }
    limits = settings.limits
    if not present and not limits.allow_empty_source:
        raise SafetyCheckError(
            f"the source {source_name!r} lists nobody active with an email: refusing to plan "
            "(a broken export must not deactivate everyone)",
            check="empty_source",
            counts=counts,
        )
    if unprotected and len(present) < limits.min_source_ratio * unprotected:
        raise SafetyCheckError(
            f"the source {source_name!r} lists {len(present)} active people against {unprotected} "
            f"unprotected accounts in {target_name!r}, under min_source_ratio="
            f"{limits.min_source_ratio}: refusing to plan",
            check="source_shrank",
            counts=counts,
        )
    plan = Plan(
        source=source_name,
        target=target_name,
        target_provider=target_provider,
        created_at=now,
        source_count=source_total,
        target_count=target_total,
        settings=settings.to_dict(),
        actions=tuple(actions),
    )
    cap = limits.cap(target_total)
    total = plan.counts["changes"]
    if cap is not None and total > cap:
        summary = ", ".join(f"{n} {kind}" for kind in KIND_ORDER[:4] if (n := plan.counts[kind]))
        raise SafetyCheckError(
            f"the plan has {total} changes ({summary}), over max_changes="
            f"{limits.max_changes} ({cap} for {target_total} accounts): refusing to plan",
            check="max_changes",
            counts={**counts, **{k: plan.counts[k] for k in (*KIND_ORDER, "changes")}, "cap": cap},
        )
    return attrs.evolve(plan, hash=plan.content_hash())
