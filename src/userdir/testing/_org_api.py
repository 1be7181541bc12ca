"""Emulator of the org API (``/list-users``, ``/fetch-user``)."""

from __future__ import annotations

import http
import random
import uuid
from collections.abc import Mapping

from . import _names
from ._base import EmailKeyedStore, Emulator, Reply, checked_status, json_reply, parse_int

__all__ = ["OrgApiEmulator"]


class OrgApiEmulator(EmailKeyedStore, Emulator):
    """Stateful emulator of the org API's user endpoints.

    Requests need ``Authorization: <api_key>`` exactly (no scheme), else 401
    ``{"error": "Invalid or missing API key"}``. Errors are ``{"error": "<message>"}``.
    ``GET /list-users`` pages are zero-based (``page`` default 0, ``page_size`` default 10,
    1..100); ``GET /fetch-user`` takes exactly one of ``id`` or ``email`` (case-insensitive)
    and answers 400 ``User not found`` for unknown users, as the API does. Unknown paths answer
    404 ``{"error": "Not found"}``, other methods on known paths 405
    ``{"error": "Method not allowed"}``. Users are listed in insertion order.
    """

    service = "org_api"
    credential_option = "api_key"
    inprocess_url = "https://org.test"

    def __init__(self, api_key: str = "test-key", *, latency: float = 0.0) -> None:
        Emulator.__init__(self, latency=latency)
        #: The key expected verbatim in the ``Authorization`` header.
        self.api_key = api_key
        EmailKeyedStore.__init__(self)

    # -- state ------------------------------------------------------------------------------

    def add_user(
        self,
        *,
        email: str,
        name: str | None = None,
        role: str | None = None,
        status: str | None = None,
        first_name: str = "",
        last_name: str = "",
        username: str | None = None,
        user_role: str | None = None,
        picture_url: str | None = None,
        calendar_link: str | None = None,
        id: str | None = None,
    ) -> str:
        """Add a user and return its id (default: a new uuid4).

        ``username`` defaults to the email's local part, ``user_role`` to ``"Member"``.
        Emails must be unique (case-insensitively).

        ``email``, ``name``, ``role`` and ``status`` are the provider-neutral fields every
        emulator's ``add_user`` takes, so that one call seeds any of them. ``name`` is split
        at its first space into ``first_name`` and ``last_name`` (which map back to the same
        name); ``role`` is stored as ``user_role``. The org API has no account status:
        ``status`` (a `userdir.UserStatus` or its value) is checked, not stored, and the user
        maps to ``status=UNKNOWN``. Giving a neutral field and its native twin is an error.
        """
        checked_status(status)
        if name is not None:
            if first_name or last_name:
                raise ValueError("give name or first_name/last_name, not both")
            first_name, _, last_name = name.partition(" ")
        if role is not None:
            if user_role is not None:
                raise ValueError("give role or user_role, not both")
            user_role = role
        user = {
            "id": id if id is not None else str(uuid.uuid4()),
            "email": email,
            "username": username if username is not None else email.partition("@")[0],
            "first_name": first_name,
            "last_name": last_name,
            "picture_url": picture_url,
            "user_role": user_role if user_role is not None else "Member",
            "calendar_link": calendar_link,
        }
        with self._lock:
            return self._store(user)

    def _populate(self, rng: random.Random, first: int, n: int) -> list[str]:
        ids: list[str] = []
        for index in range(first, first + n):
            given, family, email = _names.person(rng, index)
            while email.lower() in self._by_email:
                email = "x" + email
            user_id = _names.uuid4(rng)
            while user_id in self._users:
                user_id = _names.uuid4(rng)
            username = email.partition("@")[0]
            self._store(
                {
                    "id": user_id,
                    "email": email,
                    "username": username,
                    "first_name": given,
                    "last_name": family,
                    "picture_url": None
                    if index % 5 == 0
                    else f"https://example.com/pictures/{username}.jpg",
                    "user_role": "Admin" if index % 10 == 1 else "Member",
                    "calendar_link": None if index % 3 == 0 else f"https://calendly.com/{username}",
                }
            )
            ids.append(user_id)
        return ids

    # -- protocol ---------------------------------------------------------------------------

    @staticmethod
    def _error(status: int, message: str) -> Reply:
        return json_reply(status, {"error": message})

    def _fault_status_reply(self, code: int) -> Reply:
        if code >= 500:
            return self._error(code, "Internal server error")
        if code == 429:
            return self._error(code, "Too many requests")
        if code == 401:
            return self._error(code, "Invalid or missing API key")
        try:
            return self._error(code, http.HTTPStatus(code).phrase)
        except ValueError:
            return self._error(code, "Error")

    def _rate_limited_reply(self) -> Reply:
        return self._error(429, "Too many requests")

    def _respond(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        if not self.api_key or headers.get("authorization") != self.api_key:
            return self._error(401, "Invalid or missing API key")
        if path not in ("/list-users", "/fetch-user"):
            return self._error(404, "Not found")
        if method != "GET":
            return self._error(405, "Method not allowed")
        if path == "/list-users":
            return self._list(params)
        return self._fetch(params)

    def _list(self, params: Mapping[str, str]) -> Reply:
        page = parse_int(params.get("page", "0"))
        if page is None or page < 0:
            return self._error(400, "page must be a non-negative integer")
        page_size = parse_int(params.get("page_size", "10"))
        if page_size is None or not 1 <= page_size <= 100:
            return self._error(400, "page_size must be between 1 and 100")
        start = page * page_size
        end = start + page_size
        return json_reply(
            200,
            {
                "users": [self._users[uid] for uid in self._order[start:end]],
                "page": page,
                "page_size": page_size,
                "has_more": end < len(self._order),
            },
        )

    def _fetch(self, params: Mapping[str, str]) -> Reply:
        user_id = params.get("id") or None
        email = params.get("email") or None
        if (user_id is None) == (email is None):
            return self._error(400, "Provide exactly one of id or email")
        if email is not None:
            user_id = self._by_email.get(email.lower())
        user = self._users.get(user_id) if user_id is not None else None
        if user is None:
            return self._error(400, "User not found")
        return json_reply(200, {"user": user})
