"""The baselines: a plain sequential httpx loop per provider, and notion-client.

Each loop uses one ``httpx.Client`` and asks for page after page (100 users each), doing
nothing but ``response.json()``: the least work any client can do to list a directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx

__all__ = [
    "PAGE_SIZE",
    "BareLoop",
    "NotionClientLister",
    "auth_headers",
    "bare_pages",
    "notion_client_lister",
]

PAGE_SIZE = 100
NOTION_VERSION = "2025-09-03"


def auth_headers(provider: str, token: str) -> dict[str, str]:
    """The headers each service authenticates with (as the library sends them)."""
    if provider == "org_api":
        return {"Authorization": token}
    headers = {"Authorization": f"Bearer {token}"}
    if provider == "notion":
        headers["Notion-Version"] = NOTION_VERSION
    return headers


def _notion_pages(client: httpx.Client, url: str) -> Iterator[list[Any]]:
    params: dict[str, Any] = {"page_size": PAGE_SIZE}
    while True:
        body = _get(client, f"{url}/v1/users", params)
        yield body["results"]
        if not body["has_more"]:
            return
        params["start_cursor"] = body["next_cursor"]


def _get(client: httpx.Client, url: str, params: dict[str, Any]) -> Any:
    response = client.get(url, params=params)
    response.raise_for_status()
    return response.json()


def _org_api_pages(client: httpx.Client, url: str) -> Iterator[list[Any]]:
    page = 0
    while True:
        body = _get(client, f"{url}/list-users", {"page": page, "page_size": PAGE_SIZE})
        yield body["users"]
        if not body["has_more"]:
            return
        page += 1


def _rest_pages(client: httpx.Client, url: str) -> Iterator[list[Any]]:
    page = 1
    while True:
        body = _get(client, f"{url}/api/v1/users", {"page": page, "limit": PAGE_SIZE})
        yield body["data"]
        if page >= body["meta"]["pages"]:
            return
        page += 1


def _scim_pages(client: httpx.Client, url: str) -> Iterator[list[Any]]:
    """SCIM's sequential ``startIndex`` loop; it steps by what came back (servers cap)."""
    start = 1
    while True:
        body = _get(client, f"{url}/Users", {"startIndex": start, "count": PAGE_SIZE})
        users = body.get("Resources", [])
        yield users
        start += len(users)
        if not users or start > body["totalResults"]:
            return


_PAGES: dict[str, Callable[[httpx.Client, str], Iterator[list[Any]]]] = {
    "notion": _notion_pages,
    "org_api": _org_api_pages,
    "rest": _rest_pages,
    "scim": _scim_pages,
}


def bare_pages(client: httpx.Client, provider: str, url: str) -> Iterator[list[Any]]:
    """Every page of raw user objects, decoded with ``response.json()``, one after another."""
    return _PAGES[provider](client, url)


class BareLoop:
    """The sequential httpx loop for one provider; a context manager that owns its client.

    Calling it lists the whole directory and returns the number of users seen.
    """

    def __init__(self, provider: str, url: str, token: str) -> None:
        self.provider = provider
        self.url = url.rstrip("/")
        self.client = httpx.Client(headers=auth_headers(provider, token), timeout=60.0)

    def __enter__(self) -> BareLoop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()

    def __call__(self) -> int:
        """List every user; return how many there were."""
        count = 0
        for users in bare_pages(self.client, self.provider, self.url):
            count += len(users)
        return count

    def raw_users(self) -> list[Any]:
        """Every raw user object, in listing order (used to pick emails, not timed)."""
        return [
            user for users in bare_pages(self.client, self.provider, self.url) for user in users
        ]


class NotionClientLister:
    """notion-client's ``collect_paginated_api(client.users.list)`` against the emulator."""

    def __init__(self, url: str, token: str) -> None:
        from notion_client import Client

        self.client = Client(
            auth=token, base_url=url.rstrip("/"), notion_version=NOTION_VERSION, timeout_ms=60_000
        )

    def __enter__(self) -> NotionClientLister:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()

    def __call__(self) -> int:
        """List every user; return how many there were."""
        from notion_client.helpers import collect_paginated_api

        return len(collect_paginated_api(self.client.users.list))


def notion_client_lister(url: str, token: str) -> NotionClientLister:
    """A notion-client lister for the emulator at ``url``."""
    return NotionClientLister(url, token)
