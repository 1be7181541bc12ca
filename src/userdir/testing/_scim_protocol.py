"""What the SCIM emulator needs of RFC 7643/7644: schemas, filters, PATCH, projections.

No I/O and no state: :class:`ScimProblem` carries the error an answer should give.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "ENTERPRISE",
    "RESOURCE_TYPES",
    "SCHEMAS",
    "USER",
    "ScimProblem",
    "apply_patch",
    "parse_filter",
    "project",
]

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class ScimProblem(Exception):
    """An error answer: HTTP ``status``, SCIM ``scim_type`` (or None) and ``detail``."""

    def __init__(self, status: int, scim_type: str | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.scim_type = scim_type
        self.detail = detail


# -- schemas (RFC 7643 §4 and §8.7, the attributes the emulator keeps) ------------------


def _attr(
    name: str,
    kind: str = "string",
    *,
    multi: bool = False,
    required: bool = False,
    mutability: str = "readWrite",
    returned: str = "default",
    uniqueness: str = "none",
    sub: list[dict[str, Any]] | None = None,
    description: str = "",
    reference: list[str] | None = None,
    canonical: list[str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": description or name,
        "required": required,
        "mutability": mutability,
        "returned": returned,
    }
    if kind in ("string", "reference", "binary"):
        out["caseExact"] = False
        out["uniqueness"] = uniqueness
    if sub is not None:
        out["subAttributes"] = sub
    if reference is not None:
        out["referenceTypes"] = reference
    if canonical is not None:
        out["canonicalValues"] = canonical
    return out


def _multi(name: str, value_kind: str = "string", **kw: Any) -> dict[str, Any]:
    value = _attr("value", value_kind, **kw)
    sub = [
        value,
        _attr("display", description="A human-readable name"),
        _attr("type", description="A label of the value's function", canonical=["work", "other"]),
        _attr("primary", "boolean", description="The primary value"),
    ]
    return _attr(name, "complex", multi=True, sub=sub)


USER_SCHEMA: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    "id": USER,
    "name": "User",
    "description": "User Account",
    "attributes": [
        _attr("userName", required=True, uniqueness="server", description="Unique name"),
        _attr(
            "name",
            "complex",
            sub=[_attr("formatted"), _attr("familyName"), _attr("givenName")],
            description="The components of the user's name",
        ),
        _attr("displayName", description="The name to display"),
        _attr("title", description="The user's title"),
        _attr("userType", description="The relationship to the organization"),
        _attr("active", "boolean", description="Whether the account is active"),
        _attr(
            "password",
            mutability="writeOnly",
            returned="never",
            description="The cleartext password, never returned",
        ),
        _multi("emails"),
        _multi("photos", "reference", reference=["external"]),
        _multi("roles"),
    ],
    "meta": {"resourceType": "Schema", "location": f"/Schemas/{USER}"},
}

ENTERPRISE_SCHEMA: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    "id": ENTERPRISE,
    "name": "EnterpriseUser",
    "description": "Enterprise User",
    "attributes": [
        _attr("employeeNumber"),
        _attr("costCenter"),
        _attr("organization"),
        _attr("division"),
        _attr("department"),
        _attr(
            "manager",
            "complex",
            sub=[_attr("value", description="The manager's id"), _attr("displayName")],
            description="The user's manager",
        ),
    ],
    "meta": {"resourceType": "Schema", "location": f"/Schemas/{ENTERPRISE}"},
}

SCHEMAS: dict[str, dict[str, Any]] = {USER: USER_SCHEMA, ENTERPRISE: ENTERPRISE_SCHEMA}

RESOURCE_TYPES: dict[str, dict[str, Any]] = {
    "User": {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER,
        "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
        "meta": {"resourceType": "ResourceType", "location": "/ResourceTypes/User"},
    }
}


def _definitions(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["name"].lower(): a for a in schema["attributes"]}


# externalId is a common attribute (RFC 7643 §3.1): in no schema, writable on every resource
CORE_ATTRS = {
    **_definitions(USER_SCHEMA),
    "externalid": _attr("externalId", description="An id the client gave"),
}
ENTERPRISE_ATTRS = _definitions(ENTERPRISE_SCHEMA)


# -- filters (RFC 7644 §3.4.2.2) -------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:([()\[\]])|("(?:[^"\\]|\\.)*")|([^\s()\[\]"]+))')
_COMPARE = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
Predicate = Callable[[dict[str, Any]], bool]


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    at = 0
    text = text.rstrip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise ScimProblem(400, "invalidFilter", f"invalid filter at column {at + 1}")
        out.append(next(g for g in match.groups() if g is not None))
        at = match.end()
    return out


def get_values(resource: dict[str, Any], path: str) -> list[Any]:
    """Every value at ``path`` (``emails.value``, ``name.givenName``, URN-prefixed...)."""
    container: Any = resource
    rest = path
    if path.lower().startswith(ENTERPRISE.lower() + ":"):
        container = _get(resource, ENTERPRISE)
        rest = path[len(ENTERPRISE) + 1 :]
    elif path.lower().startswith(USER.lower() + ":"):
        rest = path[len(USER) + 1 :]
    values = [container] if container is not None else []
    for part in rest.split("."):
        found: list[Any] = []
        for value in values:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, dict):
                    inner = _get(item, part)
                    if inner is not None:
                        found.extend(inner if isinstance(inner, list) else [inner])
        values = found
    # a complex multi-valued attribute compares on its "value"
    return [v.get("value") if isinstance(v, dict) and "value" in v else v for v in values]


def _get(d: dict[str, Any], name: str) -> Any:
    if name in d:
        return d[name]
    lower = name.lower()
    return next((v for k, v in d.items() if k.lower() == lower), None)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
    if op == "eq":
        return bool(actual == expected)
    if op == "ne":
        return bool(actual != expected)
    if isinstance(actual, bool) or isinstance(expected, bool) or expected is None:
        raise ScimProblem(400, "invalidFilter", f"{op} cannot compare booleans or null")
    if op in ("co", "sw", "ew"):
        if not isinstance(actual, str) or not isinstance(expected, str):
            return False
        return {"co": expected in actual, "sw": actual.startswith(expected)}.get(
            op, actual.endswith(expected)
        )
    try:
        return bool(
            {"gt": actual > expected, "ge": actual >= expected, "lt": actual < expected}.get(
                op, actual <= expected
            )
        )
    except TypeError:
        return False


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ScimProblem(400, "invalidFilter", "the filter ends too early")
        self.at += 1
        return token

    def expect(self, token: str) -> None:
        if self.take() != token:
            raise ScimProblem(400, "invalidFilter", f"expected {token!r} in the filter")

    def parse(self) -> Predicate:
        predicate = self.disjunction()
        if self.peek() is not None:
            raise ScimProblem(400, "invalidFilter", f"unexpected {self.peek()!r} in the filter")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while (self.peek() or "").lower() == "or":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda r: any(p(r) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.unary()]
        while (self.peek() or "").lower() == "and":
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else lambda r: all(p(r) for p in parts)

    def unary(self) -> Predicate:
        token = self.take()
        if token.lower() == "not":
            self.expect("(")
            inner = self.disjunction()
            self.expect(")")
            return lambda r: not inner(r)
        if token == "(":
            inner = self.disjunction()
            self.expect(")")
            return inner
        if token in ("(", ")", "[", "]") or token.startswith('"'):
            raise ScimProblem(400, "invalidFilter", f"expected an attribute, got {token!r}")
        if self.peek() == "[":
            self.take()
            inner = self.disjunction()
            self.expect("]")
            return lambda r: any(inner(item) for item in _items(r, token) if isinstance(item, dict))
        op = self.take().lower()
        if op == "pr":
            return lambda r: any(v not in (None, "", [], {}) for v in get_values(r, token))
        if op not in _COMPARE:
            raise ScimProblem(400, "invalidFilter", f"unknown operator {op!r}")
        expected = _literal(self.take())
        return lambda r: any(_compare(op, v, expected) for v in get_values(r, token))


def _items(resource: dict[str, Any], path: str) -> list[Any]:
    container: Any = resource
    if path.lower().startswith(ENTERPRISE.lower() + ":"):
        container = _get(resource, ENTERPRISE) or {}
        path = path[len(ENTERPRISE) + 1 :]
    value = _get(container, path) if isinstance(container, dict) else None
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _literal(token: str) -> Any:
    lower = token.lower()
    if lower in ("true", "false"):
        return lower == "true"
    if lower == "null":
        return None
    if token.startswith('"'):
        try:
            return json.loads(token)
        except ValueError:
            raise ScimProblem(400, "invalidFilter", f"bad string {token[:40]}") from None
    try:
        return json.loads(token)
    except ValueError:
        raise ScimProblem(400, "invalidFilter", f"bad value {token[:40]!r}") from None


def parse_filter(text: str) -> Predicate:
    """A predicate over resources for a SCIM filter; ScimProblem ``invalidFilter`` if bad."""
    if len(text) > 10_000:
        raise ScimProblem(400, "invalidFilter", "the filter is too long")
    return _Parser(text).parse()


# -- PATCH (RFC 7644 §3.5.2) -----------------------------------------------------------

_PATH = re.compile(r"^(?P<attr>[^.\[\]]+)(?:\[(?P<filter>.*)\])?(?:\.(?P<sub>[^.\[\]]+))?$")


def _definition(container_is_extension: bool, attr: str) -> dict[str, Any] | None:
    table = ENTERPRISE_ATTRS if container_is_extension else CORE_ATTRS
    return table.get(attr.lower())


def _target(resource: dict[str, Any], path: str) -> tuple[dict[str, Any], bool, str]:
    """(container, is the extension, the rest of the path) for a PATCH path."""
    if path.lower().startswith(ENTERPRISE.lower() + ":"):
        found = _get(resource, ENTERPRISE)
        if not isinstance(found, dict):
            found = {}
            resource[ENTERPRISE] = found
        return found, True, path[len(ENTERPRISE) + 1 :]
    if path.lower().startswith(USER.lower() + ":"):
        return resource, False, path[len(USER) + 1 :]
    return resource, False, path


def _key(container: dict[str, Any], definition: dict[str, Any] | None, attr: str) -> str:
    lower = attr.lower()
    existing = next((k for k in container if k.lower() == lower), None)
    if existing is not None:
        return existing
    return definition["name"] if definition else attr


def _simple_equalities(text: str) -> dict[str, Any]:
    """``type eq "work"`` (joined by ``and``) as ``{"type": "work"}``; others give {}."""
    out: dict[str, Any] = {}
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = re.fullmatch(r'\s*(\w+)\s+eq\s+("(?:[^"\\]|\\.)*"|true|false)\s*', part, re.I)
        if match is None:
            return {}
        out[match.group(1)] = _literal(match.group(2))
    return out


def _apply(resource: dict[str, Any], op: str, path: str | None, value: Any) -> None:
    if path is None:
        if op == "remove":
            raise ScimProblem(400, "noTarget", "remove needs a path")
        if not isinstance(value, dict):
            raise ScimProblem(400, "invalidValue", f"{op} without a path needs an object value")
        for key, inner in value.items():
            if key == "schemas":  # the value's own declaration, not an attribute
                continue
            if key.lower() == ENTERPRISE.lower() and isinstance(inner, dict):
                for sub_key, sub_value in inner.items():
                    if sub_key != "schemas":
                        _apply(resource, op, f"{ENTERPRISE}:{sub_key}", sub_value)
            else:
                _apply(resource, op, key, inner)
        return
    if path.lower() == ENTERPRISE.lower():  # the whole extension
        if op == "remove":
            for key in [k for k in resource if k.lower() == ENTERPRISE.lower()]:
                del resource[key]
            return
        if not isinstance(value, dict):
            raise ScimProblem(400, "invalidValue", "the extension's value must be an object")
        _apply(resource, op, None, {ENTERPRISE: value})
        return
    container, extension, rest = _target(resource, path)
    match = _PATH.match(rest)
    if match is None:
        raise ScimProblem(400, "invalidPath", f"invalid path {path[:80]!r}")
    attr, text, sub = match.group("attr"), match.group("filter"), match.group("sub")
    definition = _definition(extension, attr)
    if definition is None:
        if attr.lower() in ("id", "meta", "schemas"):
            raise ScimProblem(400, "mutability", f"{attr} cannot be changed")
        raise ScimProblem(400, "invalidPath", f"no attribute {attr!r}")
    if definition["mutability"] in ("readOnly", "immutable") and op != "add":
        raise ScimProblem(400, "mutability", f"{attr} cannot be changed")
    key = _key(container, definition, attr)
    multi = definition["multiValued"]
    if text is not None:
        _apply_filtered(container, key, op, text, sub, value)
        return
    if sub is not None:
        target = container.get(key)
        if op == "remove":
            if isinstance(target, dict):
                target.pop(_key(target, None, sub), None)
            return
        if not isinstance(target, dict):
            target = {}
            container[key] = target
        target[_key(target, None, sub)] = copy.deepcopy(value)
        return
    if op == "remove":
        container.pop(key, None)
        return
    value = copy.deepcopy(value)
    if multi:
        values = value if isinstance(value, list) else [value]
        current = container.get(key) if op == "add" else None
        container[key] = (current if isinstance(current, list) else []) + values
    elif definition["type"] == "complex" and isinstance(value, dict):
        current = container.get(key)
        merged = dict(current) if isinstance(current, dict) else {}
        merged.update(value)
        container[key] = merged
    else:
        container[key] = value


def _apply_filtered(
    container: dict[str, Any], key: str, op: str, text: str, sub: str | None, value: Any
) -> None:
    predicate = parse_filter(text)
    items = container.get(key)
    items = items if isinstance(items, list) else []
    matches = [item for item in items if isinstance(item, dict) and predicate(item)]
    if op == "remove":
        if not matches:
            raise ScimProblem(400, "noTarget", f"no {key} matches {text[:80]!r}")
        if sub is None:
            container[key] = [item for item in items if item not in matches]
        else:
            for item in matches:
                item.pop(_key(item, None, sub), None)
        return
    if not matches:  # add/replace on a missing value: create it, as Entra expects
        created = _simple_equalities(text)
        if not created:
            raise ScimProblem(400, "noTarget", f"no {key} matches {text[:80]!r}")
        items.append(created)
        container[key] = items
        matches = [created]
    for item in matches:
        if sub is not None:
            item[_key(item, None, sub)] = copy.deepcopy(value)
        elif isinstance(value, dict):
            item.update(copy.deepcopy(value))
        else:
            raise ScimProblem(
                400, "invalidValue", "a filtered path without a sub-attribute needs an object"
            )


def apply_patch(resource: dict[str, Any], body: Any) -> dict[str, Any]:
    """``resource`` changed by a ``PatchOp`` body (a new dict); op names in any case."""
    if not isinstance(body, dict):
        raise ScimProblem(400, "invalidSyntax", "a PATCH body must be a PatchOp object")
    operations = _get(body, "Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimProblem(400, "invalidSyntax", "a PatchOp needs Operations")
    changed = copy.deepcopy(resource)
    for operation in operations:
        if not isinstance(operation, dict):
            raise ScimProblem(400, "invalidSyntax", "each operation must be an object")
        op = _get(operation, "op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise ScimProblem(400, "invalidSyntax", f"unknown op {str(op)[:20]!r}")
        path = _get(operation, "path")
        if path is not None and not isinstance(path, str):
            raise ScimProblem(400, "invalidPath", "path must be a string")
        _apply(changed, op.lower(), path, _get(operation, "value"))
    return changed


# -- projections (attributes / excludedAttributes) -----------------------------------


def _names(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _always(key: str) -> bool:
    return key in ("id", "schemas", "meta")


def project(
    resource: dict[str, Any], attributes: str | None, excluded: str | None
) -> dict[str, Any]:
    """``resource`` with only ``attributes`` (or without ``excludedAttributes``)."""
    wanted = [_split(name) for name in _names(attributes)]
    unwanted = [_split(name) for name in _names(excluded)]
    if wanted:
        out: dict[str, Any] = {}
        for key, value in resource.items():
            if _always(key):
                out[key] = value
                continue
            if key == ENTERPRISE and isinstance(value, dict):
                kept = {
                    k: v
                    for k, v in value.items()
                    if any(_matches(w, ENTERPRISE, k) for w in wanted)
                }
                if kept:
                    out[key] = kept
            elif any(_matches(w, None, key) for w in wanted):
                out[key] = _sub_projection(value, [w for w in wanted if _matches(w, None, key)])
        return out
    if unwanted:
        out = {}
        for key, value in resource.items():
            if _always(key):
                out[key] = value
            elif key == ENTERPRISE and isinstance(value, dict):
                out[key] = {
                    k: v
                    for k, v in value.items()
                    if not any(_matches(u, ENTERPRISE, k) for u in unwanted)
                }
            elif not any(_matches(u, None, key) and u[2] is None for u in unwanted):
                out[key] = value
        return out
    return resource


def _split(name: str) -> tuple[str | None, str, str | None]:
    """(schema URN or None, attribute, sub-attribute or None)."""
    urn = None
    lower = name.lower()
    for schema in (ENTERPRISE, USER):
        if lower.startswith(schema.lower() + ":"):
            urn, name = schema, name[len(schema) + 1 :]
            break
    attr, _, sub = name.partition(".")
    return urn, attr, sub or None


def _matches(spec: tuple[str | None, str, str | None], urn: str | None, key: str) -> bool:
    spec_urn, attr, _ = spec
    if urn == ENTERPRISE and spec_urn != ENTERPRISE:
        return False
    if urn is None and spec_urn == ENTERPRISE:
        return False
    return attr.lower() == key.lower()


def _sub_projection(value: Any, specs: list[tuple[str | None, str, str | None]]) -> Any:
    subs = [s[2] for s in specs]
    if None in subs or not isinstance(value, (dict, list)):
        return value
    names = {s.lower() for s in subs if s}

    def cut(item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        return {k: v for k, v in item.items() if k.lower() in names}

    return [cut(i) for i in value] if isinstance(value, list) else cut(value)


def iter_schema_attributes() -> Iterator[tuple[str | None, dict[str, Any]]]:
    """Every attribute definition, with its extension URN (None for the core schema)."""
    for definition in USER_SCHEMA["attributes"]:
        yield None, definition
    for definition in ENTERPRISE_SCHEMA["attributes"]:
        yield ENTERPRISE, definition
