"""Typed field readers: one mapping path per provider, errors that name the field.

``F = Fields("rest")`` once per provider module; then ``F.opt_str(d, "email", what)``
reads ``d["email"]`` as a string or None, and raises
:class:`~userdir.MalformedResponseError` ``"user.email: expected a string, got a
number"`` for anything else. ``what`` names the payload (``"user"``, ``"data[3]"``),
``label`` the field when it is nested (``"person.email"``). Readers are small and
flat: they are the whole mapping, for well-formed and malformed payloads alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .._secrets import quote
from ..errors import MalformedResponseError

__all__ = ["MAX_NESTING", "STR_OR_NONE", "Fields", "describe", "json_type", "nesting_exceeds"]

#: How deeply a free-form value kept in ``extra`` may nest dicts and lists. Deeper is
#: refused as malformed: no directory needs it, and it would make ``==``, ``repr`` and
#: ``to_dict`` of the user run into Python's recursion limit.
MAX_NESTING = 32

_fromisoformat = datetime.fromisoformat
#: For ``isinstance(value, STR_OR_NONE)``: a provider's inline check of its common
#: fields, calling the reader (which raises, naming the field) only when it fails.
STR_OR_NONE = (str, type(None))


def json_type(value: Any) -> str:
    """The JSON type of a value, for messages (``"a number"``, ``"null"``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def describe(value: Any) -> str:
    """A short description of a JSON value for a message: never its full text."""
    if isinstance(value, str):
        return quote(value)
    return json_type(value)


#: The JSON scalar types: a container holding only these nests one level.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def nesting_exceeds(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``value`` nests dicts and lists more than ``limit`` levels (no recursion)."""
    if type(value) is dict and limit > 0:  # the common case, a flat object: one pass
        for child in value.values():
            if type(child) not in _SCALARS:
                break
        else:
            return False
    return levels_exceed(value, limit)


def levels_exceed(value: Any, limit: int = MAX_NESTING) -> bool:
    """:func:`nesting_exceeds`, level by level whatever ``value`` holds."""
    level = [value] if isinstance(value, (dict, list)) else []  # the containers only
    depth = 0
    while level:
        if depth == limit:
            return True
        depth += 1
        inner: list[Any] = []
        for container in level:
            for child in container.values() if isinstance(container, dict) else container:
                if isinstance(child, (dict, list)):
                    inner.append(child)
        level = inner
    return False


class Fields:
    """The typed readers of one provider (its name goes into every error)."""

    __slots__ = ("provider",)

    def __init__(self, provider: str) -> None:
        self.provider = provider

    def error(self, what: str, message: str) -> MalformedResponseError:
        """A MalformedResponseError about ``what``."""
        return MalformedResponseError(f"{what}: {message}"[:1000], provider=self.provider)

    def wrong(self, what: str, label: str, expected: str, value: Any) -> MalformedResponseError:
        """The error for field ``label`` of ``what`` holding the wrong kind of value."""
        return self.error(f"{what}.{label}", f"expected {expected}, got {describe(value)}")

    def object(self, value: Any, what: str) -> dict[str, Any]:
        """``value`` itself as a JSON object."""
        if type(value) is not dict:
            raise self.error(what, f"expected a JSON object, got {json_type(value)}")
        return value

    def list(self, value: Any, what: str) -> list[Any]:
        """``value`` itself as a JSON array."""
        if type(value) is not list:
            raise self.error(what, f"expected an array, got {json_type(value)}")
        return value

    def id(self, d: dict[str, Any], what: str, key: str = "id") -> str:
        """A required, non-blank string id."""
        value = d.get(key)
        if type(value) is str and value.strip():
            return value
        if type(value) is str:
            raise self.error(f"{what}.{key}", "empty")
        raise self.wrong(what, key, "a non-empty string", value)

    def opt_str(self, d: dict[str, Any], key: str, what: str, label: str = "") -> str | None:
        """A string or None (missing or null)."""
        value = d.get(key)
        if value is None or type(value) is str:
            return value
        raise self.wrong(what, label or key, "a string or null", value)

    def opt_strs(self, d: dict[str, Any], keys: tuple[str, ...], what: str) -> tuple[Any, ...]:
        """Several strings-or-None at once (one call for the common flat fields)."""
        values = tuple(map(d.get, keys))
        for value in values:
            if value is not None and type(value) is not str:
                for key in keys:
                    self.opt_str(d, key, what)
        return values

    def opt_bool(self, d: dict[str, Any], key: str, what: str, label: str = "") -> bool | None:
        """A boolean or None."""
        value = d.get(key)
        if value is None or type(value) is bool:
            return value
        raise self.wrong(what, label or key, "a boolean or null", value)

    def opt_int(self, d: dict[str, Any], key: str, what: str, label: str = "") -> int | None:
        """An integer (not a boolean) or None."""
        value = d.get(key)
        if value is None or type(value) is int:
            return value
        raise self.wrong(what, label or key, "an integer or null", value)

    def opt_object(
        self, d: dict[str, Any], key: str, what: str, label: str = ""
    ) -> dict[str, Any] | None:
        """A JSON object or None; refused when nested deeper than ``MAX_NESTING``."""
        value = d.get(key)
        if value is None:
            return None
        if type(value) is not dict:
            raise self.wrong(what, label or key, "an object or null", value)
        if value and nesting_exceeds(value):
            raise self.error(f"{what}.{label or key}", f"nested deeper than {MAX_NESTING} levels")
        return value

    def opt_time(self, d: dict[str, Any], key: str, what: str, label: str = "") -> datetime | None:
        """An ISO 8601 timestamp as an aware datetime (UTC when it has no offset), or None."""
        value = d.get(key)
        if value is None:
            return None
        if type(value) is str and 10 <= len(value) <= 40:
            try:  # the common case, inline
                parsed = _fromisoformat(value)
            except ValueError:
                pass
            else:
                if parsed.tzinfo is not None:
                    return parsed
        from ._base import parse_datetime

        try:
            return parse_datetime(value)
        except (ValueError, TypeError, OverflowError):
            raise self.wrong(what, label or key, "an ISO 8601 timestamp", value) from None


def checked_id(fields: Fields, d: Any, what: str) -> str:
    """The ``id`` of user object ``d``, checked inline (one call per user, on the hot path):
    ``fields``' typed readers run only to raise the error naming what is wrong."""
    if type(d) is not dict:
        fields.object(d, what)  # raises
    user_id = d.get("id")
    if type(user_id) is not str or not user_id.strip():
        return fields.id(d, what)  # raises, naming the field
    return user_id
