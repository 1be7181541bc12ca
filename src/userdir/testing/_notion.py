"""Emulator of Notion's users API (``/v1/users``, ``/v1/users/{id}``, ``/v1/users/me``)."""

from __future__ import annotations

import copy
import json
import random
import re
import uuid
from collections.abc import Mapping
from typing import Any

from . import _names
from ._base import (
    Emulator,
    Reply,
    bearer_ok,
    checked_status,
    json_bytes,
    json_reply,
    list_reply,
    parse_int,
)

__all__ = ["NotionEmulator"]

_DASHED = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_PLAIN = re.compile(r"^[0-9a-fA-F]{32}$")

_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "This request is not supported."),
    401: ("unauthorized", "API token is invalid."),
    403: (
        "restricted_resource",
        "API token does not have access to this resource.",
    ),
    404: ("object_not_found", "Could not find object."),
    409: ("conflict_error", "Conflict occurred while saving. Please try again."),
    429: ("rate_limited", "You have been rate limited. Please try again in a few minutes."),
    500: ("internal_server_error", "Unexpected error occurred."),
    502: ("internal_server_error", "Unexpected error occurred."),
    503: (
        "service_unavailable",
        "Notion is unavailable. This can occur when the time to respond to a request takes "
        "longer than 60 seconds, the maximum request timeout. Please try again later.",
    ),
    504: (
        "gateway_timeout",
        "Notion timed out while attempting to complete this request. Please try again later.",
    ),
    529: (
        "service_overload",
        "Notion is experiencing high load and could not complete this request. "
        "Please try again later.",
    ),
}


def _canonical_id(value: str) -> str | None:
    """The dashed lower-case form of a Notion id (dashed or 32 hex), or None if invalid."""
    if _DASHED.match(value) or _PLAIN.match(value):
        return str(uuid.UUID(value))
    return None


class NotionEmulator(Emulator):
    """Stateful emulator of Notion's users endpoints (API version 2025-09-03).

    Requests need ``Authorization: Bearer <token>`` (else 401 ``unauthorized``) and a
    ``Notion-Version`` header (else 400 ``missing_version``); any version value is accepted,
    answers always have the 2025-09-03 shapes. Errors are
    ``{"object": "error", "status", "code", "message", "request_id"}``.

    The integration's own bot (``bot_id``, answered by ``/v1/users/me``) exists from the start
    and is listed first. Listing order is insertion order; ``next_cursor`` is the id of the
    next user. Guests (``add_user(guest=True)``) are stored but never listed nor retrievable.
    With ``email_capability=False`` no person's email appears in any answer (``person: {}``).
    """

    service = "notion"
    inprocess_url = None  # the provider's own default, api.notion.com

    @staticmethod
    def email_of(payload: Mapping[str, Any]) -> str | None:
        """A person's ``person.email``; None for bots and hidden emails."""
        person = payload.get("person")
        email = person.get("email") if isinstance(person, dict) else None
        return email if isinstance(email, str) else None

    #: The Notion API version whose response shapes are emulated.
    API_VERSION = "2025-09-03"

    def __init__(
        self,
        token: str = "test-token",
        *,
        latency: float = 0.0,
        email_capability: bool = True,
        bot_name: str = "userdir test integration",
        workspace_name: str = "Emulated Workspace",
    ) -> None:
        super().__init__(latency=latency)
        #: The integration token expected in ``Authorization: Bearer <token>``.
        self.token = token
        #: Whether the integration may read people's emails.
        self.email_capability = email_capability
        #: Id of the workspace the integration belongs to.
        self.workspace_id = str(uuid.uuid4())
        self._users: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._pos: dict[str, int] = {}
        # each listed user's JSON, by id and email capability (users never change here)
        self._encoded: dict[tuple[str, bool], bytes] = {}
        #: Id of the integration's own bot user (the answer of ``/v1/users/me``).
        self.bot_id = self._store(
            {
                "object": "user",
                "id": str(uuid.uuid4()),
                "name": bot_name,
                "avatar_url": None,
                "type": "bot",
                "bot": {
                    "owner": {"type": "workspace", "workspace": True},
                    "workspace_name": workspace_name,
                    "workspace_id": self.workspace_id,
                    "workspace_limits": {"max_file_upload_size_in_bytes": 5242880},
                },
            },
            listed=True,
        )

    # -- state ------------------------------------------------------------------------------

    def _store(self, user: dict[str, Any], *, listed: bool) -> str:
        user_id: str = user["id"]
        if user_id in self._users:
            raise ValueError(f"a user with id {user_id} already exists")
        self._users[user_id] = user
        if listed:
            self._pos[user_id] = len(self._order)
            self._order.append(user_id)
        return user_id

    def add_user(
        self,
        *,
        name: str | None,
        email: str | None = None,
        role: str | None = None,
        status: str | None = None,
        kind: str = "person",
        avatar_url: str | None = None,
        id: str | None = None,
        guest: bool = False,
        email_visible: bool = True,
        email_verified: bool | None = None,
        workspace_name: str | None = None,
    ) -> str:
        """Add a person (``kind="person"``) or a bot (``kind="bot"``); return its id.

        A person gets ``"person": {"email": email}`` (plus ``email_verified`` when given) or
        ``"person": {}`` when ``email`` is None or ``email_visible`` is False. A bot gets
        ``"bot": {}``, or an owner and ``workspace_name`` when ``workspace_name`` is given.
        ``id`` may be dashed or 32 hex digits (default: a new uuid4). Guests are stored but
        neither listed nor retrievable, as in Notion.

        ``email``, ``name``, ``role`` and ``status`` are the provider-neutral fields every
        emulator's ``add_user`` takes, so that one call seeds any of them. Notion users
        have neither a role nor a status: ``role`` and ``status`` (a `userdir.UserStatus`
        or its value) are checked, not stored, and the user maps to ``role=None`` and
        ``status=UNKNOWN``, as the real service's would.
        """
        if kind not in ("person", "bot"):
            raise ValueError("kind must be 'person' or 'bot'")
        if role is not None and not isinstance(role, str):
            raise ValueError("role must be a string or None")
        checked_status(status)
        user_id = str(uuid.uuid4()) if id is None else _canonical_id(id)
        if user_id is None:
            raise ValueError(f"not a valid Notion id: {id!r}")
        user: dict[str, Any] = {
            "object": "user",
            "id": user_id,
            "name": name,
            "avatar_url": avatar_url,
            "type": kind,
        }
        if kind == "person":
            details: dict[str, Any] = {}
            if email is not None and email_visible:
                details["email"] = email
                if email_verified is not None:
                    details["email_verified"] = email_verified
            user["person"] = details
        elif workspace_name is not None:
            user["bot"] = {
                "owner": {"type": "workspace", "workspace": True},
                "workspace_name": workspace_name,
            }
        else:
            user["bot"] = {}
        with self._lock:
            return self._store(user, listed=not guest)

    def _populate(self, rng: random.Random, first: int, n: int) -> list[str]:
        ids: list[str] = []
        for index in range(first, first + n):
            given, family, email = _names.person(rng, index)
            user_id = _names.uuid4(rng)
            while user_id in self._users:
                user_id = _names.uuid4(rng)
            avatar = None if index % 4 == 0 else f"https://example.com/avatars/{user_id}.png"
            self._store(
                {
                    "object": "user",
                    "id": user_id,
                    "name": f"{given} {family}",
                    "avatar_url": avatar,
                    "type": "person",
                    "person": {"email": email},
                },
                listed=True,
            )
            ids.append(user_id)
        return ids

    def _remove(self, user_id: str) -> bool:
        key = _canonical_id(user_id)
        if key is None or key not in self._users:
            return False
        if key == self.bot_id:
            raise ValueError("the integration's own bot cannot be removed")
        del self._users[key]
        self._encoded.pop((key, True), None)
        self._encoded.pop((key, False), None)
        if key in self._pos:
            self._order.remove(key)
            self._pos = {uid: i for i, uid in enumerate(self._order)}
        return True

    def _user_count(self) -> int:
        return len(self._order)

    def _render(self, user: dict[str, Any]) -> dict[str, Any]:
        if not self.email_capability and user["type"] == "person" and user["person"]:
            return {**user, "person": {}}
        return user

    def _encoded_user(self, user_id: str) -> bytes:
        key = (user_id, self.email_capability)
        encoded = self._encoded.get(key)
        if encoded is None:
            encoded = self._encoded[key] = json_bytes(self._render(self._users[user_id]))
        return encoded

    def _listed_users(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(self._render(self._users[uid])) for uid in self._order]

    # -- protocol ---------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, code: str, message: str) -> Reply:
        return json_reply(
            status,
            {
                "object": "error",
                "status": status,
                "code": code,
                "message": message,
                "request_id": str(uuid.uuid4()),
            },
        )

    def _fault_status_reply(self, code: int) -> Reply:
        default = ("internal_server_error", "Unexpected error occurred.")
        if code < 500:
            default = ("invalid_request", "This request is not supported.")
        slug, message = _STATUS_ERRORS.get(code, default)
        return self._error(code, slug, message)

    def _rate_limited_reply(self) -> Reply:
        return self._fault_status_reply(429)

    def _validation_error(self, message: str) -> Reply:
        return self._error(400, "validation_error", message)

    def _respond(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        if not bearer_ok(headers, self.token):
            return self._error(401, "unauthorized", "API token is invalid.")
        if not headers.get("notion-version", "").strip():
            return self._error(
                400,
                "missing_version",
                "Notion-Version header failed validation: Notion-Version header should be "
                "defined, instead was `undefined`.",
            )
        if method == "GET" and path == "/v1/users":
            return self._list(params)
        if method == "GET" and path == "/v1/users/me":
            return self._ok(self._users[self.bot_id])
        if method == "GET" and path.startswith("/v1/users/") and path.count("/") == 3:
            return self._retrieve(path.removeprefix("/v1/users/"))
        return self._error(400, "invalid_request_url", "Invalid request URL.")

    def _ok(self, user: dict[str, Any]) -> Reply:
        return json_reply(200, {**self._render(user), "request_id": str(uuid.uuid4())})

    def _retrieve(self, raw_id: str) -> Reply:
        user_id = _canonical_id(raw_id)
        if user_id is None:
            return self._validation_error(
                "path failed validation: path.user_id should be a valid uuid, instead was "
                f"`{json.dumps(raw_id)}`."
            )
        if user_id not in self._pos:  # unknown, or a guest
            return self._error(404, "object_not_found", f"Could not find user with ID: {raw_id}.")
        return self._ok(self._users[user_id])

    def _list(self, params: Mapping[str, str]) -> Reply:
        page_size = 100
        raw_size = params.get("page_size")
        if raw_size is not None:
            size = parse_int(raw_size)
            if size is None:
                return self._validation_error(
                    "body failed validation: body.page_size should be a number, instead was "
                    f"`{json.dumps(raw_size)}`."
                )
            if size > 100:
                return self._validation_error(
                    "body failed validation: body.page_size should be less than or equal to "
                    f"`100`, instead was `{size}`."
                )
            if size < 1:
                return self._validation_error(
                    "body failed validation: body.page_size should be greater than or equal to "
                    f"`1`, instead was `{size}`."
                )
            page_size = size
        start = 0
        cursor = params.get("start_cursor")
        if cursor:
            key = _canonical_id(cursor)
            if key is None or key not in self._pos:
                return self._validation_error(f"The start_cursor provided is invalid: {cursor}")
            start = self._pos[key]
        end = start + page_size
        has_more = end < len(self._order)
        return list_reply(
            {
                "object": "list",
                "results": [],
                "next_cursor": self._order[end] if has_more else None,
                "has_more": has_more,
                "type": "user",
                "user": {},
                "request_id": str(uuid.uuid4()),
            },
            "results",
            [self._encoded_user(uid) for uid in self._order[start:end]],
        )
