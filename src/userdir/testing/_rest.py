"""Emulator of the generic REST users API (``/api/v1/users``)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import random
import re
from collections.abc import Mapping
from typing import Any

from . import _names
from ._base import EmailKeyedStore, Emulator, Reply, bearer_ok, json_reply, parse_int

__all__ = ["RestEmulator"]

STATUSES = ("active", "inactive", "pending")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CREATE_FIELDS = frozenset({"email", "name", "role", "password", "settings"})
_UPDATE_FIELDS = frozenset({"name", "email", "role", "status", "settings", "password"})
_DEFAULT_SETTINGS: dict[str, Any] = {"theme": "light", "notifications": True}
_EPOCH = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
_ROLES = ("member", "admin", "editor", "viewer")

_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Insufficient permissions"),
    404: ("not_found", "Not found"),
    409: ("conflict", "Email already in use"),
    429: ("rate_limited", "Rate limit exceeded"),
}


def _now() -> str:
    return _iso(dt.datetime.now(dt.timezone.utc))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(value: str | dt.datetime) -> str:
    return value if isinstance(value, str) else _iso(value)


def _generated_role(rng: random.Random, index: int) -> str:
    if index % 20 == 1:
        return "admin"
    if index % 3 == 0:
        return _ROLES[rng.randrange(len(_ROLES))]
    return "member"


def _generated_status(index: int) -> str:
    if index % 10 == 0:
        return "inactive"
    if index % 10 == 5:
        return "pending"
    return "active"


class RestEmulator(EmailKeyedStore, Emulator):
    """Stateful emulator of the REST users API (list, get, create, update, delete).

    Requests need ``Authorization: Bearer <token>``. Errors are
    ``{"error": {"code": <slug>, "message": <text>}}`` with codes ``bad_request``,
    ``unauthorized``, ``forbidden``, ``not_found``, ``conflict``, ``rate_limited`` and
    ``internal_error``; unknown paths and unsupported methods answer 404 ``not_found``.

    Listing: ``page`` is 1-based (default 1), ``limit`` 1..100 (default 20), optional ``status``
    (active/inactive/pending) and exact ``role`` filters; users come in creation order, and
    ``meta.pages`` is ``ceil(total / limit)``, so 0 when nothing matches. As in the API's
    documentation, list items and the answers of POST and PUT leave out ``settings``; only
    ``GET /api/v1/users/{id}`` includes them. ``updated_at`` appears once a user is updated;
    ``last_login`` is absent for users created through POST. PUT replaces ``settings`` whole.
    New ids are ``usr_`` plus six digits, counting up from ``usr_100001``.
    """

    service = "rest"
    inprocess_url = "https://rest.test"

    def __init__(self, token: str = "test-token", *, latency: float = 0.0) -> None:
        Emulator.__init__(self, latency=latency)
        #: The token expected in ``Authorization: Bearer <token>``.
        self.token = token
        EmailKeyedStore.__init__(self)
        self._passwords: dict[str, str] = {}
        self._next_number = 100001

    # -- state ------------------------------------------------------------------------------

    def _new_id(self) -> str:
        while True:
            user_id = f"usr_{self._next_number:06d}"
            self._next_number += 1
            if user_id not in self._users:
                return user_id

    def _store_with_password(self, user: dict[str, Any], password: str) -> str:
        user_id = self._store(user)
        self._passwords[user_id] = password
        return user_id

    def add_user(
        self,
        *,
        email: str,
        name: str,
        role: str = "member",
        status: str = "active",
        settings: dict[str, Any] | None = None,
        created_at: str | dt.datetime | None = None,
        last_login: str | dt.datetime | None = None,
        id: str | None = None,
        password: str = "x",
    ) -> str:
        """Add a user directly (no request) and return its id.

        ``email``, ``name``, ``role`` and ``status`` are the provider-neutral fields every
        emulator's ``add_user`` takes; here they are the service's own. ``status`` is
        ``"active"``, ``"inactive"`` or ``"pending"`` (or that `userdir.UserStatus`).
        ``created_at`` defaults to now; ``last_login`` is stored as given (None answers
        ``null``). ``settings`` defaults to ``{"theme": "light", "notifications": true}``.
        Emails must be unique (case-insensitively).
        """
        if status not in STATUSES:  # a UserStatus equals its value
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        status = STATUSES[STATUSES.index(status)]  # the plain string
        with self._lock:
            user: dict[str, Any] = {
                "id": id if id is not None else self._new_id(),
                "email": email,
                "name": name,
                "role": role,
                "status": status,
                "created_at": _now() if created_at is None else _stamp(created_at),
                "last_login": None if last_login is None else _stamp(last_login),
                "settings": copy.deepcopy(settings if settings is not None else _DEFAULT_SETTINGS),
            }
            return self._store_with_password(user, password)

    def password_of(self, user_id: str) -> str | None:
        """The stored password of a user (never part of any answer), or None if unknown."""
        with self._lock:
            return self._passwords.get(user_id)

    def _populate(self, rng: random.Random, first: int, n: int) -> list[str]:
        ids: list[str] = []
        for index in range(first, first + n):
            given, family, email = _names.person(rng, index)
            while email.lower() in self._by_email:
                email = "x" + email
            created = _EPOCH + dt.timedelta(minutes=37 * index + rng.randrange(37))
            last_login = (
                None
                if index % 4 == 0
                else _iso(created + dt.timedelta(hours=rng.randrange(1, 24 * 90)))
            )
            user = {
                "id": self._new_id(),
                "email": email,
                "name": f"{given} {family}",
                "role": _generated_role(rng, index),
                "status": _generated_status(index),
                "created_at": _iso(created),
                "last_login": last_login,
                "settings": {
                    "theme": ("light", "dark", "system")[rng.randrange(3)],
                    "notifications": rng.random() < 0.7,
                },
            }
            ids.append(self._store_with_password(user, f"pw-{index}"))
        return ids

    def _remove(self, user_id: str) -> bool:
        removed = EmailKeyedStore._remove(self, user_id)
        if removed:
            del self._passwords[user_id]
        return removed

    # -- protocol ---------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, code: str, message: str) -> Reply:
        return json_reply(status, {"error": {"code": code, "message": message}})

    def _bad_request(self, message: str) -> Reply:
        return self._error(400, "bad_request", message)

    def _not_found(self, message: str = "Not found") -> Reply:
        return self._error(404, "not_found", message)

    def _fault_status_reply(self, code: int) -> Reply:
        slug, message = _STATUS_ERRORS.get(
            code,
            ("internal_error", "Internal server error")
            if code >= 500
            else ("bad_request", "Error"),
        )
        return self._error(code, slug, message)

    def _rate_limited_reply(self) -> Reply:
        return self._fault_status_reply(429)

    def _respond(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        if not bearer_ok(headers, self.token):
            return self._error(401, "unauthorized", "Authentication required")
        if path == "/api/v1/users":
            if method == "GET":
                return self._list(params)
            if method == "POST":
                return self._create(body)
            return self._not_found()
        prefix = "/api/v1/users/"
        if path.startswith(prefix) and path.count("/") == 4 and len(path) > len(prefix):
            user_id = path.removeprefix(prefix)
            if method == "GET":
                return self._get(user_id)
            if method == "PUT":
                return self._update(user_id, body)
            if method == "DELETE":
                return self._delete(user_id)
        return self._not_found()

    @staticmethod
    def _summary(user: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in user.items() if k != "settings"}

    def _list(self, params: Mapping[str, str]) -> Reply:
        page = parse_int(params.get("page", "1"))
        if page is None or page < 1:
            return self._bad_request("page must be a positive integer")
        limit = parse_int(params.get("limit", "20"))
        if limit is None or not 1 <= limit <= 100:
            return self._bad_request("limit must be between 1 and 100")
        status = params.get("status")
        if status is not None and status not in STATUSES:
            return self._bad_request("status must be one of active, inactive, pending")
        role = params.get("role")
        start = (page - 1) * limit
        if status is None and role is None:
            total = len(self._order)
            chosen = [self._users[uid] for uid in self._order[start : start + limit]]
        else:
            matching = [
                user
                for user in (self._users[uid] for uid in self._order)
                if (status is None or user["status"] == status)
                and (role is None or user["role"] == role)
            ]
            total = len(matching)
            chosen = matching[start : start + limit]
        return json_reply(
            200,
            {
                "data": [self._summary(user) for user in chosen],
                "meta": {
                    "total": total,
                    "page": page,
                    "limit": limit,
                    "pages": math.ceil(total / limit),
                },
            },
        )

    def _get(self, user_id: str) -> Reply:
        user = self._users.get(user_id)
        if user is None:
            return self._not_found("User not found")
        return json_reply(200, {"data": user})

    def _parse_object(self, body: bytes) -> dict[str, Any] | Reply:
        try:
            payload = json.loads(body)
        except ValueError:
            return self._bad_request("Invalid JSON body")
        if not isinstance(payload, dict):
            return self._bad_request("Request body must be a JSON object")
        return payload

    def _check_fields(
        self, payload: dict[str, Any], allowed: frozenset[str], user_id: str | None
    ) -> Reply | None:
        unknown = sorted(set(payload) - allowed)
        if unknown:
            return self._bad_request(f"Unknown field(s): {', '.join(unknown)}")
        if "email" in payload:
            email = payload["email"]
            if not isinstance(email, str) or not _EMAIL.match(email):
                return self._bad_request("email must be a valid email address")
            owner = self._by_email.get(email.lower())
            if owner is not None and owner != user_id:
                return self._error(409, "conflict", "Email already in use")
        for key in ("name", "password", "role"):
            if key in payload and (not isinstance(payload[key], str) or not payload[key].strip()):
                return self._bad_request(f"{key} must be a non-empty string")
        if "status" in payload and payload["status"] not in STATUSES:
            return self._bad_request("status must be one of active, inactive, pending")
        if "settings" in payload and not isinstance(payload["settings"], dict):
            return self._bad_request("settings must be an object")
        return None

    def _create(self, body: bytes) -> Reply:
        payload = self._parse_object(body)
        if isinstance(payload, Reply):
            return payload
        for key in ("email", "name", "password"):
            if key not in payload:
                return self._bad_request(f"{key} is required")
        problem = self._check_fields(payload, _CREATE_FIELDS, None)
        if problem is not None:
            return problem
        user: dict[str, Any] = {
            "id": self._new_id(),
            "email": payload["email"],
            "name": payload["name"],
            "role": payload.get("role", "member"),
            "status": "pending",
            "created_at": _now(),
            "settings": copy.deepcopy(payload.get("settings", _DEFAULT_SETTINGS)),
        }
        self._store_with_password(user, payload["password"])
        return json_reply(201, {"data": self._summary(user)})

    def _update(self, user_id: str, body: bytes) -> Reply:
        user = self._users.get(user_id)
        if user is None:
            return self._not_found("User not found")
        payload = self._parse_object(body)
        if isinstance(payload, Reply):
            return payload
        problem = self._check_fields(payload, _UPDATE_FIELDS, user_id)
        if problem is not None:
            return problem
        if "password" in payload:
            self._passwords[user_id] = payload.pop("password")
        if "email" in payload:
            del self._by_email[str(user["email"]).lower()]
            self._by_email[payload["email"].lower()] = user_id
        user.update(copy.deepcopy(payload))
        user["updated_at"] = _now()
        return json_reply(200, {"data": self._summary(user)})

    def _delete(self, user_id: str) -> Reply:
        if not self._remove(user_id):
            return self._not_found("User not found")
        return json_reply(200, {"success": True, "message": "User deleted successfully"})
