"""The walk over a listing: written once, with no I/O; two drivers do the sending.

A :class:`Walk` turns a dialect and its paging plan into requests, and answers into
users: :meth:`Walk.requests` says what to send now, :meth:`Walk.take` reads the answer
to the oldest request in flight (the envelope only, so the next requests can leave
before the users are mapped), :meth:`Walk.drop` names requests in flight that are no
longer wanted, and :meth:`Walk.users` maps a page, drops ids already yielded and
applies the local filters. The blocking and the asyncio directory drive it with the
same loop; they only send, wait and cancel.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import MalformedResponseError
from .models import DirectoryUser
from .providers._base import Dialect
from .providers._paging import ListPage, Paging
from .providers._wire import Reply, Request

__all__ = ["MAX_STALLED_PAGES", "Walk", "keep"]

#: How many pages in a row may bring no new user while the service says there is more.
MAX_STALLED_PAGES = 3


def keep(users: list[DirectoryUser], local: Mapping[str, str]) -> list[DirectoryUser]:
    """The users passing the filters the server could not apply (status, role)."""
    if not local:
        return users
    status, role = local.get("status"), local.get("role")
    return [
        u
        for u in users
        if (status is None or u.status.value == status) and (role is None or u.role == role)
    ]


class Walk:
    """One listing, page after page, in the service's order; no I/O, no clock.

    At most ``window`` requests are in flight; how soon the window opens and how far
    it may run past the last page is the paging strategy's to say.
    """

    def __init__(
        self,
        dialect: Dialect,
        paging: Paging,
        *,
        page_size: int,
        filters: Mapping[str, str],
        local: Mapping[str, str],
        window: int,
    ) -> None:
        self.dialect = dialect
        self.provider = dialect.name
        self.plan = paging.plan(dialect.name, window)
        self.page_size = page_size
        self.filters = filters
        self.local = local
        self.in_flight: deque[tuple[Any, Request]] = deque()
        self.seen: set[str] = set()
        self.stalled = 0

    def requests(self) -> list[Request]:
        """The requests to send now, in order; they join the end of the in-flight line."""
        out = []
        for position in self.plan.schedule(len(self.in_flight)):
            request = self.dialect.page_request(position, self.page_size, self.filters)
            # a listing: a 404 means a wrong endpoint (base_url), not a missing user
            request = attrs.evolve(request, endpoint_404=True)
            self.in_flight.append((position, request))
            out.append(request)
        return out

    def take(self, reply: Reply) -> ListPage:
        """The answer to the oldest request in flight: its envelope, checked."""
        position, request = self.in_flight.popleft()
        body = reply.json(request.where(), self.provider)
        page = self.dialect.parse_page(body, reply)
        self.plan.accept(position, page)
        return page

    def drop(self) -> list[int]:
        """Indexes (ascending) of requests in flight no longer wanted; forgotten here."""
        wanted = self.plan.wanted
        gone = [i for i, (position, _) in enumerate(self.in_flight) if not wanted(position)]
        for i in reversed(gone):
            del self.in_flight[i]
        return gone

    @property
    def done(self) -> bool:
        """Whether nothing is in flight and nothing more will be asked."""
        return not self.in_flight and self.plan.done

    def users(self, page: ListPage) -> list[DirectoryUser]:
        """A taken page's users: mapped, first sightings only, locally filtered."""
        users = self.dialect.map_items(page)
        seen = self.seen
        plan = self.plan
        deciding = plan.awaiting_users
        settled = deciding and plan.reaches_back(users, seen)
        fresh = _first_sightings(users, seen)
        if deciding:
            plan.decide(settled, fresh)
        if fresh or plan.done:
            self.stalled = 0
        elif plan.counts_progress:  # pages read again bring known users by design
            self.stalled += 1
            if self.stalled >= MAX_STALLED_PAGES:
                raise MalformedResponseError(
                    f"pagination does not advance: {self.stalled} pages in a row brought "
                    "no new user while the service says there is more",
                    provider=self.provider,
                )
        return keep(fresh, self.local)


def _first_sightings(users: list[DirectoryUser], taken: set[str]) -> list[DirectoryUser]:
    """The users whose id is not in ``taken`` yet, first sightings only; adds their ids."""
    kept = []
    for user in users:
        if user.id not in taken:
            taken.add(user.id)
            kept.append(user)
    return kept
