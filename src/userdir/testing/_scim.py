"""Emulator of a SCIM 2.0 service provider's ``/Users`` (RFC 7643/7644)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import random
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from ..models import UserStatus
from . import _names
from ._base import Emulator, Reply, bearer_ok, checked_status, json_bytes, parse_int
from ._scim_protocol import (
    ENTERPRISE,
    RESOURCE_TYPES,
    SCHEMAS,
    USER,
    ScimProblem,
    apply_patch,
    parse_filter,
    project,
)

__all__ = ["QUIRKS", "ScimEmulator"]

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
SCIM_JSON = "application/scim+json"

#: The real-world quirks an emulator can show (``ScimEmulator(quirks={...})``):
QUIRKS = frozenset(
    {
        "status_number",  # error bodies give "status" as a number, not a string
        "no_schemas",  # answers without "schemas"
        "wrapped_errors",  # the error object wrapped in {"error": {...}} (wire-server)
        "plain_json",  # Content-Type: application/json instead of application/scim+json
        "requires_filter",  # GET /Users refuses to list without a filter (Google)
        "no_email_filter",  # filters on emails are refused as invalidFilter
        "requires_paging",  # nothing listed unless startIndex and count are sent (Bitwarden)
        "patch_no_content",  # PATCH answers 204 without the user
    }
)
_ENDPOINTS = frozenset({"Users", "ServiceProviderConfig", "ResourceTypes", "Schemas", ".search"})
_EMAILS_OR = re.compile(
    r'^\s*emails(?:\[value eq ("(?:[^"\\]|\\.)*")\]|\.value eq ("(?:[^"\\]|\\.)*"))'
    r'(?:\s+or\s+emails(?:\[value eq ("(?:[^"\\]|\\.)*")\]|\.value eq ("(?:[^"\\]|\\.)*")))*\s*$',
    re.IGNORECASE,
)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_USERNAMES_OR = re.compile(
    r'^\s*userName eq "(?:[^"\\]|\\.)*"(?:\s+or\s+userName eq "(?:[^"\\]|\\.)*")*\s*$',
    re.IGNORECASE,
)
_EPOCH = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
_DEPARTMENTS = ("Engineering", "Sales", "Finance", "Support", "Marketing", "People")
_STATUS_PHRASES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Resource not found",
    409: "Conflict",
    429: "Too many requests",
}


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _iso(dt.datetime.now(dt.timezone.utc))


class ScimEmulator(Emulator):
    """Stateful emulator of a SCIM 2.0 service provider: ``/Users`` and discovery.

    Serves ``/ServiceProviderConfig``, ``/ResourceTypes``, ``/Schemas`` and ``/Users``
    (list with ``filter``, ``startIndex``/``count`` or RFC 9865 ``cursor``; get, create,
    PUT, PATCH, delete; ``attributes``/``excludedAttributes``) under :attr:`base_path`
    only (``/scim/v2``: ``https://scim.test/scim/v2`` in-process), so that a wrong base
    URL gets the 404 a real service gives. Every request needs
    ``Authorization: Bearer <token>``. Users carry ``meta.version`` and answers an
    ``ETag`` (``W/"n"``); ``If-Match`` that does not match gives 412, a matching
    ``If-None-Match`` 304. Errors are SCIM error objects (``status`` as a string,
    ``scimType``, ``detail``): ``uniqueness`` 409 for a taken ``userName``,
    ``invalidFilter``, ``invalidValue``, ``invalidSyntax``, ``invalidPath``, ``noTarget``,
    ``mutability``, ``invalidCursor`` 400, 404 without ``scimType``.

    ``max_results`` caps every page (announced as ``filter.maxResults``; default 100, as
    many services do);
    ``cursor=True`` announces and serves cursor pagination; ``patch``, ``etag`` and
    ``filter`` switch those features (announced and served); ``announce`` deep-merges
    into the announced configuration, to play a server that announces wrongly;
    ``quirks`` picks from :data:`QUIRKS`.
    """

    service = "scim"
    #: The base path every endpoint lives under (``base_path=`` to change it); the served
    #: emulator announces it (``READY`` lines, the demo).
    base_path = "/scim/v2"
    inprocess_url = "https://scim.test/scim/v2"

    def connect_options(self, base_url: str | None = None) -> dict[str, Any]:
        """``userdir.connect()`` options; a served URL gets the ``/scim/v2`` base path."""
        if base_url is not None and not base_url.rstrip("/").endswith(self.base_path):
            base_url = base_url.rstrip("/") + self.base_path
        return super().connect_options(base_url)

    @staticmethod
    def email_of(payload: Mapping[str, Any]) -> str | None:
        """The primary (else first) email of a listed user's payload."""
        emails = payload.get("emails")
        if not isinstance(emails, list):
            return None
        values = [e for e in emails if isinstance(e, dict) and isinstance(e.get("value"), str)]
        chosen = next((e for e in values if e.get("primary") is True), None)
        chosen = chosen or (values[0] if values else None)
        return None if chosen is None else str(chosen["value"])

    def __init__(
        self,
        token: str = "test-token",
        *,
        latency: float = 0.0,
        max_results: int | None = None,
        cursor: bool = False,
        patch: bool = True,
        etag: bool = True,
        filter: bool = True,
        announce: Mapping[str, Any] | None = None,
        quirks: Iterable[str] = (),
        base_path: str = "/scim/v2",
    ) -> None:
        super().__init__(latency=latency)
        if max_results is not None and max_results < 1:
            raise ValueError("max_results must be >= 1")
        if (
            not isinstance(base_path, str)
            or not base_path.startswith("/")
            or "?" in base_path
            or "#" in base_path
        ):
            raise ValueError("base_path must be a path starting with '/', e.g. '/scim/v2'")
        self.base_path = "/" + "/".join(s for s in base_path.split("/") if s)
        self.inprocess_url = "https://scim.test" + self.base_path.rstrip("/")
        unknown = set(quirks) - QUIRKS
        if unknown:
            raise ValueError(f"unknown quirk(s): {', '.join(sorted(unknown))}")
        #: The token expected in ``Authorization: Bearer <token>``.
        self.token = token
        self.max_results = max_results or 100
        self.cursor = cursor
        self.patch = patch
        self.etag = etag
        self.filter = filter
        self.announce = dict(announce or {})
        self.quirks = frozenset(quirks)
        self._users: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._by_name: dict[str, str] = {}
        self._by_email: dict[str, set[str]] = {}
        self._encoded: dict[str, bytes] = {}
        self._passwords: dict[str, str] = {}
        self._clock = 0
        self._salt = secrets.token_hex(4)

    # -- state ------------------------------------------------------------------------------

    def _tick(self) -> str:
        self._clock += 1
        return f'W/"{self._clock}"'

    def _index(self, user_id: str, resource: dict[str, Any] | None) -> None:
        """Drop the old index entries of ``user_id``; add ``resource``'s (None: removed)."""
        old = self._users.get(user_id)
        if old is not None:
            self._by_name.pop(str(old.get("userName", "")).lower(), None)
            for value in self._emails(old):
                self._by_email.get(value, set()).discard(user_id)
        self._encoded.pop(user_id, None)
        if resource is None:
            self._users.pop(user_id, None)
            return
        self._users[user_id] = resource
        self._by_name[str(resource["userName"]).lower()] = user_id
        for value in self._emails(resource):
            self._by_email.setdefault(value, set()).add(user_id)

    @staticmethod
    def _emails(resource: Mapping[str, Any]) -> list[str]:
        emails = resource.get("emails")
        if not isinstance(emails, list):
            return []
        return [
            e["value"].lower()
            for e in emails
            if isinstance(e, dict) and isinstance(e.get("value"), str)
        ]

    def _store(
        self, attributes: dict[str, Any], *, user_id: str | None = None, created: str | None = None
    ) -> str:
        user_id = user_id or secrets.token_hex(16)
        if user_id in self._users:
            raise ValueError(f"a user with id {user_id} already exists")
        resource = self._resource(user_id, attributes, created or _now(), None)
        self._index(user_id, resource)
        self._order.append(user_id)
        return user_id

    def _resource(
        self, user_id: str, attributes: dict[str, Any], created: str, modified: str | None
    ) -> dict[str, Any]:
        attributes = {k: v for k, v in attributes.items() if k not in ("id", "meta", "schemas")}
        password = attributes.pop("password", None)
        if isinstance(password, str):
            self._passwords[user_id] = password
        schemas = [USER]
        if attributes.get(ENTERPRISE):
            schemas.append(ENTERPRISE)
        else:
            attributes.pop(ENTERPRISE, None)
        meta: dict[str, Any] = {
            "resourceType": "User",
            "created": created,
            "lastModified": modified or created,
            "location": f"{self.base_path}/Users/{user_id}",
        }
        if self.etag:
            meta["version"] = self._tick()
        return {"schemas": schemas, "id": user_id, **attributes, "meta": meta}

    def add_user(
        self,
        *,
        email: str,
        name: str,
        role: str | None = "member",
        status: str | UserStatus = "active",
        user_name: str | None = None,
        given_name: str | None = None,
        family_name: str | None = None,
        department: str | None = None,
        manager: str | None = None,
        employee_number: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        created_at: str | dt.datetime | None = None,
        id: str | None = None,
    ) -> str:
        """Add a user directly (no request) and return its id.

        ``email``, ``name``, ``role`` and ``status`` are the provider-neutral fields:
        the primary work email, ``displayName``, the primary role and ``active``
        (``"active"``, ``"inactive"``, or ``"unknown"`` for no ``active`` at all; SCIM
        has no pending state). ``user_name`` defaults to the email; ``department``,
        ``manager`` (an id) and ``employee_number`` go to the enterprise extension;
        ``attributes`` adds any other SCIM attributes as given.
        """
        status = checked_status(status) or "unknown"
        if status == "pending":
            raise ValueError(
                "SCIM has no pending state: status must be active, inactive or unknown"
            )
        resource: dict[str, Any] = {
            "userName": user_name or email,
            "displayName": name,
            "emails": [{"value": email, "type": "work", "primary": True}],
        }
        if given_name or family_name:
            resource["name"] = {
                k: v
                for k, v in (
                    ("givenName", given_name),
                    ("familyName", family_name),
                    ("formatted", name),
                )
                if v
            }
        if status != "unknown":
            resource["active"] = status == "active"
        if role is not None:
            resource["roles"] = [{"value": role, "primary": True}]
        enterprise = {
            k: v
            for k, v in (
                ("department", department),
                ("employeeNumber", employee_number),
                ("manager", {"value": manager} if manager else None),
            )
            if v
        }
        if enterprise:
            resource[ENTERPRISE] = enterprise
        resource.update(copy.deepcopy(dict(attributes or {})))
        created = None
        if created_at is not None:
            created = created_at if isinstance(created_at, str) else _iso(created_at)
        with self._lock:
            if str(resource["userName"]).lower() in self._by_name:
                raise ValueError(f"a user named {resource['userName']} already exists")
            return self._store(resource, user_id=id, created=created)

    def password_of(self, user_id: str) -> str | None:
        """The stored password of a user (never part of any answer), or None."""
        with self._lock:
            return self._passwords.get(user_id)

    def version_of(self, user_id: str) -> str | None:
        """A user's current ``meta.version`` (its ETag), or None."""
        with self._lock:
            user = self._users.get(user_id)
            return None if user is None else user["meta"].get("version")

    def _populate(self, rng: random.Random, first: int, n: int) -> list[str]:
        ids: list[str] = []
        for index in range(first, first + n):
            given, family, email = _names.person(rng, index)
            while email.lower() in self._by_name:
                email = "x" + email
            created = _EPOCH + dt.timedelta(minutes=37 * index + rng.randrange(37))
            resource: dict[str, Any] = {
                "userName": email,
                "name": {
                    "givenName": given,
                    "familyName": family,
                    "formatted": f"{given} {family}",
                },
                "displayName": f"{given} {family}",
                "emails": [{"value": email, "type": "work", "primary": True}],
                "active": index % 10 != 0,
                "roles": [{"value": "admin" if index % 20 == 1 else "member", "primary": True}],
                "title": ("Engineer", "Analyst", "Manager", "Designer")[rng.randrange(4)],
                ENTERPRISE: {
                    "employeeNumber": f"E{index:06d}",
                    "department": _DEPARTMENTS[rng.randrange(len(_DEPARTMENTS))],
                },
            }
            if ids and index % 7 == 0:
                resource[ENTERPRISE]["manager"] = {"value": ids[rng.randrange(len(ids))]}
            user_id = _names.uuid4(rng).replace("-", "")
            ids.append(self._store(resource, user_id=user_id, created=_iso(created)))
        return ids

    def _remove(self, user_id: str) -> bool:
        if user_id not in self._users:
            return False
        self._index(user_id, None)
        self._order.remove(user_id)
        self._passwords.pop(user_id, None)
        return True

    def _user_count(self) -> int:
        return len(self._order)

    def _listed_users(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(self._users[uid]) for uid in self._order]

    # -- answers ----------------------------------------------------------------------------

    @property
    def _content_type(self) -> str:
        return "application/json" if "plain_json" in self.quirks else SCIM_JSON

    def _json(self, status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
        if "no_schemas" in self.quirks and isinstance(payload, dict):
            payload = {k: v for k, v in payload.items() if k != "schemas"}
        return Reply(status, json_bytes(payload), self._content_type, headers)

    def _error(self, status: int, scim_type: str | None, detail: str) -> Reply:
        body: dict[str, Any] = {
            "schemas": [ERROR_SCHEMA],
            "status": status if "status_number" in self.quirks else str(status),
            "detail": detail,
        }
        if scim_type is not None:
            body["scimType"] = scim_type
        if "no_schemas" in self.quirks:
            del body["schemas"]
        payload: Any = {"error": body} if "wrapped_errors" in self.quirks else body
        headers: tuple[tuple[str, str], ...] = ()
        if status == 401:
            headers = (("WWW-Authenticate", 'Bearer realm="SCIM"'),)
        return Reply(status, json_bytes(payload), self._content_type, headers)

    def _fault_status_reply(self, code: int) -> Reply:
        return self._error(
            code,
            None,
            _STATUS_PHRASES.get(code, "Internal server error" if code >= 500 else "Error"),
        )

    def _rate_limited_reply(self) -> Reply:
        return self._fault_status_reply(429)

    def _user_reply(
        self, status: int, resource: dict[str, Any], params: Mapping[str, str]
    ) -> Reply:
        shown = project(resource, params.get("attributes"), params.get("excludedAttributes"))
        headers: list[tuple[str, str]] = [("Location", str(resource["meta"]["location"]))]
        if self.etag:
            headers.append(("ETag", str(resource["meta"]["version"])))
        return self._json(status, shown, tuple(headers))

    # -- the service ------------------------------------------------------------------------

    def _respond(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        if not bearer_ok(headers, self.token):
            return self._error(401, None, "Authentication required")
        base = self.base_path.rstrip("/")
        under = path.startswith(base + "/")
        segments = [s for s in path[len(base) :].split("/") if s] if under else []
        if not segments or segments[0] not in _ENDPOINTS:
            return self._error(404, None, f"no such endpoint: {path[:100]}")
        endpoint, rest = segments[0], segments[1:]
        try:
            if endpoint == "Users":
                return self._users_endpoint(method, rest, params, headers, body)
            if endpoint == ".search":  # every resource type at once: Users are all there is
                if method != "POST" or rest:
                    return self._error(405, None, "/.search takes POST")
                return self._list(_search_params(_object(body)))
            return self._discovery(method, endpoint, rest)
        except ScimProblem as problem:
            return self._error(problem.status, problem.scim_type, problem.detail)

    def _discovery(self, method: str, endpoint: str, rest: list[str]) -> Reply:
        if method != "GET":
            return self._error(405, None, f"{method} is not allowed on /{endpoint}")
        if endpoint == "ServiceProviderConfig":
            if rest:
                return self._error(404, None, "no such resource")
            return self._json(200, self.service_provider_config())
        table = RESOURCE_TYPES if endpoint == "ResourceTypes" else SCHEMAS
        if len(rest) == 1:
            found = table.get(rest[0])
            if found is None:
                return self._error(404, None, f"{endpoint} {rest[0][:100]!r} not found")
            return self._json(200, found)
        if rest:
            return self._error(404, None, "no such resource")
        items = list(table.values())
        return self._json(
            200,
            {
                "schemas": [LIST_SCHEMA],
                "totalResults": len(items),
                "itemsPerPage": len(items),
                "startIndex": 1,
                "Resources": items,
            },
        )

    def service_provider_config(self) -> dict[str, Any]:
        """The ``/ServiceProviderConfig`` this emulator announces (``announce`` merged in)."""
        config: dict[str, Any] = {
            "schemas": [SPC_SCHEMA],
            "patch": {"supported": self.patch},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": self.filter, "maxResults": self.max_results},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": self.etag},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "OAuth Bearer Token",
                    "description": "Authentication with a bearer token",
                }
            ],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": f"{self.base_path}/ServiceProviderConfig",
            },
        }
        if self.cursor:
            config["pagination"] = {
                "cursor": True,
                "index": True,
                "defaultPaginationMethod": "index",
                "cursorTimeout": 3600,
            }
        _merge(config, self.announce)
        return config

    def _users_endpoint(
        self,
        method: str,
        rest: list[str],
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        if not rest:
            if method == "GET":
                return self._list(params)
            if method == "POST":
                return self._create(_object(body), params)
            return self._error(405, None, f"{method} is not allowed on /Users")
        if rest == [".search"]:
            if method != "POST":
                return self._error(405, None, "/.search takes POST")
            return self._list(_search_params(_object(body)))
        if len(rest) != 1:
            return self._error(404, None, "no such resource")
        user_id = rest[0]
        user = self._users.get(user_id)
        if user is None:
            return self._error(404, None, f"User {user_id[:100]!r} not found")
        if method == "GET":
            if self.etag and headers.get("if-none-match") in (user["meta"]["version"], "*"):
                return Reply(304, b"", self._content_type, (("ETag", user["meta"]["version"]),))
            return self._user_reply(200, user, params)
        if method not in ("PUT", "PATCH", "DELETE"):
            return self._error(405, None, f"{method} is not allowed on /Users/{{id}}")
        expected = headers.get("if-match")
        if self.etag and expected is not None and expected not in (user["meta"]["version"], "*"):
            return self._error(412, None, "Failed to update. Resource has changed on the server")
        if method == "DELETE":
            self._remove(user_id)
            return Reply(204, b"", self._content_type)
        if method == "PATCH":
            if not self.patch:
                return self._error(501, None, "PATCH is not supported")
            changed = apply_patch(_attributes_of(user), _object(body))
        else:
            changed = _object(body)
        self._check(changed, user_id)
        resource = self._resource(user_id, changed, user["meta"]["created"], _now())
        self._index(user_id, resource)
        if method == "PATCH" and "patch_no_content" in self.quirks:
            headers_out = (("ETag", resource["meta"]["version"]),) if self.etag else ()
            return Reply(204, b"", self._content_type, headers_out)
        return self._user_reply(200, resource, params)

    def _check(self, attributes: dict[str, Any], user_id: str | None) -> None:
        name = attributes.get("userName")
        if not isinstance(name, str) or not name.strip():
            raise ScimProblem(400, "invalidValue", "userName is required")
        owner = self._by_name.get(name.lower())
        if owner is not None and owner != user_id:
            raise ScimProblem(
                409, "uniqueness", "One or more of the attribute values are already in use"
            )
        if "active" in attributes and not isinstance(attributes["active"], bool):
            raise ScimProblem(400, "invalidValue", "active must be a boolean")
        for key in ("emails", "roles", "photos"):
            value = attributes.get(key)
            if value is not None and (
                not isinstance(value, list) or not all(isinstance(v, dict) for v in value)
            ):
                raise ScimProblem(400, "invalidValue", f"{key} must be a list of objects")
        for key in ("name", ENTERPRISE):
            if key in attributes and not isinstance(attributes[key], dict):
                raise ScimProblem(400, "invalidValue", f"{key} must be an object")

    def _create(self, body: dict[str, Any], params: Mapping[str, str]) -> Reply:
        self._check(body, None)
        user_id = self._store(body)
        return self._user_reply(201, self._users[user_id], params)

    def _list(self, params: Mapping[str, str]) -> Reply:
        text = params.get("filter")
        if text is None and "requires_filter" in self.quirks:
            raise ScimProblem(400, "invalidFilter", "a filter is required to list users")
        if text is not None and not self.filter:
            return self._error(501, None, "filtering is not supported")
        if text is not None and "no_email_filter" in self.quirks and "emails" in text.lower():
            raise ScimProblem(400, "invalidFilter", "filtering on emails is not supported")
        ids = self._matching(text) if text is not None else self._order
        count = parse_int(params["count"]) if "count" in params else None
        if "count" in params and count is None:
            raise ScimProblem(400, "invalidValue", "count must be an integer")
        size = self.max_results if count is None else max(0, min(count, self.max_results))
        if "cursor" in params:
            return self._cursor_page(params["cursor"], ids, size, count, params)
        start = parse_int(params.get("startIndex", "1"))
        if start is None:
            raise ScimProblem(400, "invalidValue", "startIndex must be an integer")
        start = max(1, start)
        if "requires_paging" in self.quirks and not ("startIndex" in params and "count" in params):
            chosen: list[str] = []
        else:
            chosen = ids[start - 1 : start - 1 + size]
        return self._page(params, ids, chosen, {"startIndex": start})

    def _cursor_page(
        self, token: str, ids: list[str], size: int, count: int | None, params: Mapping[str, str]
    ) -> Reply:
        if not self.cursor:
            return self._error(501, None, "cursor pagination is not supported")
        offset = 0 if token == "" else self._open_cursor(token)
        chosen = ids[offset : offset + size]
        extra: dict[str, Any] = {}
        if offset + len(chosen) < len(ids) and chosen:
            extra["nextCursor"] = self._seal_cursor(offset + len(chosen))
        return self._page(params, ids, chosen, extra)

    def _seal_cursor(self, offset: int) -> str:
        return base64.urlsafe_b64encode(f"{self._salt}:{offset}".encode()).decode().rstrip("=")

    def _open_cursor(self, token: str) -> int:
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            salt, _, offset = text.partition(":")
            if salt != self._salt or not offset.isdigit():
                raise ValueError
            return int(offset)
        except (ValueError, UnicodeDecodeError):
            raise ScimProblem(400, "invalidCursor", "the cursor is not valid") from None

    def _page(
        self, params: Mapping[str, str], ids: list[str], chosen: list[str], extra: dict[str, Any]
    ) -> Reply:
        envelope: dict[str, Any] = {
            "schemas": [LIST_SCHEMA],
            "totalResults": len(ids),
            "itemsPerPage": len(chosen),
            **extra,
            "Resources": [],
        }
        if "no_schemas" in self.quirks:
            del envelope["schemas"]
        attributes, excluded = params.get("attributes"), params.get("excludedAttributes")
        if attributes or excluded:
            items = [json_bytes(project(self._users[i], attributes, excluded)) for i in chosen]
        else:
            items = [self._encoded_user(i) for i in chosen]
        body = json_bytes(envelope)
        marker = b'"Resources":['
        at = body.index(marker) + len(marker)
        return Reply(200, body[:at] + b",".join(items) + body[at:], self._content_type)

    def _encoded_user(self, user_id: str) -> bytes:
        encoded = self._encoded.get(user_id)
        if encoded is None:
            resource = self._users[user_id]
            if "no_schemas" in self.quirks:
                resource = {k: v for k, v in resource.items() if k != "schemas"}
            encoded = self._encoded[user_id] = json_bytes(resource)
        return encoded

    def _matching(self, text: str) -> list[str]:
        """The ids matching a filter, in listing order (indexes for email/userName ``or``s)."""
        if _EMAILS_OR.match(text):
            wanted = {json.loads(q).lower() for q in _QUOTED.findall(text)}
            found = set().union(*(self._by_email.get(w, set()) for w in wanted))
            return self._in_order(found)
        if _USERNAMES_OR.match(text):
            wanted = {json.loads(q).lower() for q in _QUOTED.findall(text)}
            found = {self._by_name[w] for w in wanted if w in self._by_name}
            return self._in_order(found)
        predicate = parse_filter(text)
        return [uid for uid in self._order if predicate(self._users[uid])]

    def _in_order(self, found: set[str]) -> list[str]:
        if len(found) * 20 < len(self._order):
            position = {uid: i for i, uid in enumerate(self._order)} if len(found) > 50 else None
            if position is None:
                return sorted(found, key=self._order.index)
            return sorted(found, key=position.__getitem__)
        return [uid for uid in self._order if uid in found]


def _merge(into: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        raise ScimProblem(400, "invalidSyntax", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise ScimProblem(400, "invalidSyntax", "the body must be a JSON object")
    return payload


def _attributes_of(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in resource.items() if k not in ("id", "meta", "schemas")}


def _search_params(body: dict[str, Any]) -> dict[str, str]:
    """A ``/.search`` body as the query parameters of a listing."""
    out: dict[str, str] = {}
    for key in ("filter", "startIndex", "count", "cursor"):
        if key in body and body[key] is not None:
            out[key] = str(body[key])
    for key in ("attributes", "excludedAttributes"):
        value = body.get(key)
        if isinstance(value, list):
            out[key] = ",".join(str(v) for v in value)
    return out
