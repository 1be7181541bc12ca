"""Shared core of the emulators: dispatch, auth, faults, request log, latency, transport."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import http
import json
import random
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

import attrs
import httpx

from ..models import UserStatus
from ._faults import AFTER_KINDS, RESPONSE_KINDS, SILENT_KINDS, Fault, Rule, pick_fault

__all__ = ["Emulator", "RecordedRequest"]

JSON_TYPE = "application/json"
HTML_TYPE = "text/html"


@attrs.frozen
class Reply:
    """A complete HTTP answer: status, content type, extra headers and body."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    extra_headers: tuple[tuple[str, str], ...] = ()

    def header_list(self) -> list[tuple[str, str]]:
        return [("Content-Type", self.content_type), *self.extra_headers]


def json_bytes(payload: Any) -> bytes:
    """``payload`` as compact UTF-8 JSON (a lone surrogate as its ``\\udXXX`` escape)."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # not UTF-8: sent as JSON's escape, as services do
        return text.encode("utf-8", "backslashreplace")


def json_reply(status: int, payload: Any, extra_headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """Serialise ``payload`` as compact UTF-8 JSON."""
    return Reply(status, json_bytes(payload), JSON_TYPE, extra_headers)


def list_reply(envelope: Mapping[str, Any], items_key: str, items: list[bytes]) -> Reply:
    """A 200 answer: ``envelope`` whose ``items_key`` list holds ``items``, already JSON.

    Listing pages are the emulators' hot path: users are encoded once and spliced in,
    so that the server's time per page does not weigh on the benchmarks' round trips.
    """
    body = json_bytes(envelope)
    # The first match is the key itself: inside a JSON string every '"' is escaped.
    marker = json_bytes(items_key) + b":["
    at = body.index(marker) + len(marker)
    return Reply(200, body[:at] + b",".join(items) + body[at:])


def html_reply(status: int) -> Reply:
    """The kind of HTML page a reverse proxy answers when the service behind it fails."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    title = html.escape(f"{status} {phrase}")
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return Reply(status, page.encode("utf-8"), HTML_TYPE)


def bearer_ok(headers: Mapping[str, str], token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>``."""
    scheme, _, given = headers.get("authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and given.strip() == token


def checked_status(status: str | None) -> str | None:
    """The neutral ``status`` of ``add_user`` (a `userdir.UserStatus` or its value) as a
    plain string, None for None; ValueError for anything else."""
    if status is None:
        return None
    try:
        return UserStatus(status).value
    except ValueError:
        known = ", ".join(s.value for s in UserStatus)
        raise ValueError(f"status must be one of {known}, got {status!r}") from None


class EmailKeyedStore:
    """Users by id, in listing order, with unique (case-insensitive) emails."""

    def __init__(self) -> None:
        self._users: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._by_email: dict[str, str] = {}

    def _store(self, user: dict[str, Any]) -> str:
        user_id: str = user["id"]
        if user_id in self._users:
            raise ValueError(f"a user with id {user_id} already exists")
        email_key = str(user["email"]).lower()
        if email_key in self._by_email:
            raise ValueError(f"a user with email {user['email']} already exists")
        self._users[user_id] = user
        self._order.append(user_id)
        self._by_email[email_key] = user_id
        return user_id

    def _remove(self, user_id: str) -> bool:
        user = self._users.pop(user_id, None)
        if user is None:
            return False
        self._order.remove(user_id)
        del self._by_email[str(user["email"]).lower()]
        return True

    def _user_count(self) -> int:
        return len(self._order)

    def _listed_users(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(self._users[uid]) for uid in self._order]


def parse_int(value: str) -> int | None:
    """Strict decimal integer parsing (``"10"`` yes; ``"1.0"``, ``"ten"``, ``""`` no)."""
    text = value.strip()
    if not text or not text.lstrip("-").isdigit() or not text.isascii():
        return None
    return int(text)


@attrs.frozen
class RecordedRequest:
    """One request an emulator received, as written in `Emulator.requests`.

    ``path`` is percent-decoded, ``raw_path`` is exactly as sent; neither has the query.
    ``params`` holds the decoded query parameters (the last one wins for repeated names),
    ``query`` the raw query string. ``headers`` has lower-case names. ``status`` is the HTTP
    status answered, or None when no answer was sent (dropped or timed out). ``fault`` is the
    `Fault.kind` injected into this request, or None. ``started_at`` / ``finished_at`` are
    `time.monotonic` readings taken when the request arrived and when its outcome was decided
    (after the latency), so overlapping intervals prove concurrent requests. ``delay`` is the
    seconds the emulator waited before deciding it: its latency plus any `Fault.delay`.
    """

    method: str
    path: str
    raw_path: str
    params: dict[str, str]
    query: str
    headers: dict[str, str]
    body: bytes
    status: int | None
    fault: str | None
    started_at: float
    finished_at: float
    delay: float = 0.0

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None if it is empty or not valid JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@attrs.define
class Pending:
    """A request that arrived and is waiting for its latency to pass."""

    seq: int
    epoch: int
    method: str
    path: str
    raw_path: str
    params: dict[str, str]
    query: str
    headers: dict[str, str]
    body: bytes
    fault: Fault | None
    started_at: float
    delay: float = 0.0


@attrs.frozen
class Outcome:
    """What to do with a request: answer it, drop the connection, or never answer."""

    action: Literal["reply", "drop", "timeout"]
    reply: Reply | None = None


class EmulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport (sync and async) that answers from an emulator in-process.

    The URL's host is ignored. Latency is spent with `time.sleep` in the sync path and with
    `asyncio.sleep` in the async path, so concurrent async requests really overlap.
    """

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    def _arrive(self, request: httpx.Request, body: bytes) -> Pending:
        raw_path, _, query = request.url.raw_path.decode("ascii").partition("?")
        headers = dict(request.headers.items())  # lower-case names, repeats joined by ", "
        return self._emulator._arrive(request.method, raw_path, query, headers, body)

    @staticmethod
    def _respond(outcome: Outcome, request: httpx.Request) -> httpx.Response:
        if outcome.action == "drop":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if outcome.action == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        reply = outcome.reply
        assert reply is not None
        return httpx.Response(
            reply.status, headers=reply.header_list(), content=reply.body, request=request
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` synchronously."""
        pending = self._arrive(request, request.read())
        delay = self._emulator._delay_for(pending)
        if delay > 0:
            time.sleep(delay)
        return self._respond(self._emulator._finish(pending), request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` asynchronously."""
        pending = self._arrive(request, await request.aread())
        delay = self._emulator._delay_for(pending)
        if delay > 0:
            await asyncio.sleep(delay)
        return self._respond(self._emulator._finish(pending), request)


class Emulator:
    """Base class of the in-memory service emulators.

    Holds what every emulator shares: the request log (`requests`), fault injection
    (`inject`), per-request `latency`, the httpx `transport` and real HTTP serving (`serve`).
    All state is guarded by one lock, so an emulator may be hit from many threads.
    """

    #: Short service name (``"notion"``, ``"org_api"``, ``"rest"``): the provider's name.
    service: str = ""
    #: The ``connect()`` option, and the attribute, that holds the credential.
    credential_option: str = "token"
    #: The base URL given with the in-process transport (None: the provider's default).
    inprocess_url: str | None = "https://emulator.test"

    def connect_options(self, base_url: str | None = None) -> dict[str, Any]:
        """``userdir.connect()`` options for this emulator.

        In-process (its ``transport``) unless ``base_url`` is given: the URL
        :meth:`serve` yielded.
        """
        options: dict[str, Any] = dict(self.credentials)
        if base_url is None:
            options["transport"] = self.transport
            base_url = self.inprocess_url
        if base_url is not None:
            options["base_url"] = base_url
        return options

    @staticmethod
    def email_of(payload: Mapping[str, Any]) -> str | None:
        """The email of a listed user's payload (as :attr:`users` shows it), if any."""
        email = payload.get("email")
        return email if isinstance(email, str) else None

    def __init__(self, *, latency: float = 0.0) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0")
        #: Fixed delay in seconds added to every request (settable).
        self.latency: float = latency
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._log: dict[int, RecordedRequest] = {}
        self._seq = 0
        self._epoch = 0
        self._populated = 0
        #: An object that is both an `httpx.BaseTransport` and an `httpx.AsyncBaseTransport`.
        self.transport: EmulatorTransport = EmulatorTransport(self)

    # -- service-specific hooks -------------------------------------------------------------

    def _respond(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        """The service itself: map one request to one answer. Called with the lock held."""
        raise NotImplementedError

    def _fault_status_reply(self, code: int) -> Reply:
        """The service's JSON error answer for HTTP status ``code``."""
        raise NotImplementedError

    def _rate_limited_reply(self) -> Reply:
        """The service's 429 answer (without Retry-After; the caller adds it)."""
        raise NotImplementedError

    def _user_count(self) -> int:
        raise NotImplementedError

    def _listed_users(self) -> list[dict[str, Any]]:
        """Copies of the listed users' payloads, in listing order. Called with the lock held."""
        raise NotImplementedError

    def _populate(self, rng: random.Random, first: int, n: int) -> list[str]:
        """Add ``n`` generated users numbered ``first``, ``first + 1``, ...; lock held."""
        raise NotImplementedError

    def _remove(self, user_id: str) -> bool:
        raise NotImplementedError

    # -- public API -------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of users listed by the service."""
        with self._lock:
            return self._user_count()

    @property
    def users(self) -> list[dict[str, Any]]:
        """Copies of the listed users' native payloads, in listing order.

        Notion: as ``GET /v1/users`` shows them (the integration's bot included, guests not);
        org API: as ``/list-users`` shows them; REST: as ``GET /api/v1/users/{id}`` shows them
        (with ``settings``).
        """
        with self._lock:
            return self._listed_users()

    @property
    def credentials(self) -> dict[str, str]:
        """The ``connect()`` option that carries the credential this emulator accepts:
        ``{"token": ...}`` (Notion, REST) or ``{"api_key": ...}`` (org API)."""
        return {self.credential_option: str(getattr(self, self.credential_option))}

    def populate(self, n: int, *, seed: int = 0) -> list[str]:
        """Add ``n`` generated, realistic users and return their ids.

        The result depends only on ``seed`` and on how many users earlier `populate` calls
        generated, so a fresh emulator populated with the same seed is always identical.
        Emails look like ``first.last<i>@example.com`` (``i`` counts generated users from 1)
        and are unique.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            first = self._populated + 1
            rng = random.Random(f"userdir-{self.service}-{seed}-{first}")
            ids = self._populate(rng, first, n)
            self._populated += n
            return ids

    def remove_user(self, user_id: str) -> bool:
        """Delete a user directly (no request); True if it existed."""
        with self._lock:
            return self._remove(user_id)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Requests received so far (those with a decided outcome), in arrival order."""
        with self._lock:
            return [self._log[k] for k in sorted(self._log)]

    def clear_requests(self) -> None:
        """Forget the request log (requests still in flight will not be recorded either)."""
        with self._lock:
            self._log.clear()
            self._epoch += 1

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = None,
        every: int | None = None,
        start: int = 0,
    ) -> None:
        """Inject ``fault`` into future requests.

        Requests are counted from the moment of this call (1-based, all requests the emulator
        receives, whatever their path). The first ``start`` of them are skipped. Then, with
        ``every=k`` only every k-th counted request is hit (``every=7`` hits 7, 14, 21, ...;
        counted after the skipped ones), otherwise each one is. ``times=N`` stops after N
        hits; without it the rule lasts until `clear_faults`. When several rules match one
        request, the earliest injected wins (only it counts the hit).
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1")
        if every is not None and every < 1:
            raise ValueError("every must be >= 1")
        if start < 0:
            raise ValueError("start must be >= 0")
        with self._lock:
            self._rules.append(Rule(fault, times, every, start))

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        with self._lock:
            self._rules.clear()

    @contextlib.contextmanager
    def serve(self, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve this emulator over real HTTP in a background thread.

        Yields the base URL (``"http://127.0.0.1:PORT"``); on exit the server stops, open
        connections are closed and the threads are joined. Same answers, faults and request
        log as `transport`.
        """
        from ._server import serving

        with serving(self, host, port) as url:
            yield url

    # -- request pipeline (used by the transport and the HTTP server) ----------------------

    def _arrive(
        self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Pending:
        started = time.monotonic()
        params = dict(parse_qsl(query, keep_blank_values=True))
        path = unquote(raw_path)
        with self._lock:
            self._seq += 1
            fault = pick_fault(self._rules) if self._rules else None
            return Pending(
                self._seq,
                self._epoch,
                method.upper(),
                path,
                raw_path,
                params,
                query,
                headers,
                body,
                fault,
                started,
            )

    def _delay_for(self, pending: Pending) -> float:
        extra = pending.fault.seconds if pending.fault is not None else 0.0
        pending.delay = self.latency + extra
        return pending.delay

    def _fault_reply(self, fault: Fault) -> Reply:
        assert fault.code is not None
        if fault.kind == "html":
            return html_reply(fault.code)
        if fault.kind == "rate_limited":
            reply = self._rate_limited_reply()
            return attrs.evolve(
                reply, extra_headers=(*reply.extra_headers, ("Retry-After", str(fault.retry_after)))
            )
        return self._fault_status_reply(fault.code)

    def _finish(self, pending: Pending) -> Outcome:
        fault = pending.fault
        kind = fault.kind if fault is not None else None
        with self._lock:
            if fault is not None and kind in SILENT_KINDS:
                outcome = Outcome("drop" if kind == "drop" else "timeout")
            elif fault is not None and kind in RESPONSE_KINDS:
                outcome = Outcome("reply", self._fault_reply(fault))
            else:
                reply = self._respond(
                    pending.method, pending.path, pending.params, pending.headers, pending.body
                )
                if kind in AFTER_KINDS:
                    outcome = Outcome("drop" if kind == "drop_after_processing" else "timeout")
                else:
                    outcome = Outcome("reply", reply)
            if pending.epoch == self._epoch:
                self._log[pending.seq] = RecordedRequest(
                    method=pending.method,
                    path=pending.path,
                    raw_path=pending.raw_path,
                    params=pending.params,
                    query=pending.query,
                    headers=pending.headers,
                    body=pending.body,
                    status=outcome.reply.status if outcome.reply is not None else None,
                    fault=kind,
                    started_at=pending.started_at,
                    finished_at=time.monotonic(),
                    delay=pending.delay,
                )
        return outcome
