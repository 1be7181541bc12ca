"""Faults injected into the emulators: listings stay complete, retries stay bounded.

Every provider, sync and async, in-process (``transport=emu.transport``) and over real
HTTP (``emu.serve()``). A 429, a 503, a proxy's HTML 502, a dropped connection or a
read timeout every 7th request never loses nor duplicates a user; a fault that never
stops ends in the right error after exactly the allowed attempts (3 in stamina's
testing mode, see conftest); a POST whose answer was lost is never sent twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stamina

import userdir
from userdir import NewUser, UserChanges
from userdir.testing import Emulator, Fault, RestEmulator

from .providers import NAMES as PROVIDERS
from .providers import named

ATTEMPTS = 3  # stamina.set_testing(True, attempts=3) in conftest

# fault name -> (the fault, the error it ends in when it never stops)
FAULTS: dict[str, tuple[Fault, type[userdir.DirectoryError]]] = {
    "429": (Fault.rate_limited(retry_after=0), userdir.RateLimitedError),
    "503": (Fault.status(503), userdir.ServerError),
    "html502": (Fault.html(502), userdir.ServerError),
    "drop": (Fault.drop(), userdir.TransportError),
    "read_timeout": (Fault.read_timeout(), userdir.TransportError),
}
# Over real HTTP an injected read timeout costs the client's read timeout (the emulator
# holds the connection open until it stops): keep it short, but long enough for every
# normal answer on a loaded machine (a spurious timeout would only cost a retry).
HTTP_TIMEOUT = httpx.Timeout(5.0, read=0.3)


def make_emulator(provider: str) -> Emulator:
    return named(provider).make()


def options(provider: str, emu: Emulator, base_url: str | None = None) -> dict[str, Any]:
    """connect() options for the emulator: in-process unless ``base_url`` is given."""
    return emu.connect_options(base_url)


def listed_ids(emu: Emulator) -> list[str]:
    return [str(u["id"]) for u in emu.users]


def check_complete(emu: Emulator, ids: list[str], expected: list[str]) -> None:
    assert len(ids) == len(set(ids)), "a user was yielded twice"
    assert ids == expected, "the listing lost users or changed their order"
    faulted = [r for r in emu.requests if r.fault is not None]
    assert faulted, "no fault was injected: the test proves nothing"


# -- every user exactly once while faults happen ---------------------------------------------


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_full_listing_with_a_fault_every_7th_request(
    connect: Callable[..., Any], provider: str, fault: str
) -> None:
    emu = make_emulator(provider)
    emu.populate(1000)
    expected = listed_ids(emu)
    emu.inject(FAULTS[fault][0], every=7)
    d = connect(provider, **options(provider, emu))
    # pages of 20: 50 pages and more, so several faults in every walk
    ids = [u.id for u in d.iter_users(page_size=20)]
    check_complete(emu, ids, expected)
    # every faulted request was answered by a retry: nothing was skipped
    assert all(r.fault == FAULTS[fault][0].kind for r in emu.requests if r.fault)


# Over real HTTP: the faults that look different on a socket (the error answers are the
# same bytes either way and covered in-process above).
HTTP_FAULTS = ["drop", "read_timeout"]


@pytest.mark.parametrize("fault", HTTP_FAULTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_full_listing_with_faults_over_http(
    connect: Callable[..., Any], provider: str, fault: str
) -> None:
    emu = make_emulator(provider)
    emu.populate(1000)
    expected = listed_ids(emu)
    emu.inject(FAULTS[fault][0], every=7)
    with emu.serve() as url:
        d = connect(provider, timeout=HTTP_TIMEOUT, **options(provider, emu, url))
        ids = [u.id for u in d.iter_users()]
    check_complete(emu, ids, expected)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_email_lookups_with_faults(connect: Callable[..., Any], provider: str) -> None:
    emu = make_emulator(provider)
    emu.populate(300)
    users = emu.users
    emails = [emu.email_of(u) or "" for u in users[-40:]]
    emu.inject(Fault.status(503), every=3)
    # Concurrent lookups share the request count: give each one enough attempts that
    # the interleaving can never line all of one lookup's tries up with the faults.
    stamina.set_testing(True, attempts=10)
    d = connect(provider, **options(provider, emu))
    found = d.find_users_by_email([e.upper() for e in emails])
    assert [u.id if u else None for u in found.values()] == [str(u["id"]) for u in users[-40:]]


# -- bounded retries when the fault never stops ----------------------------------------------


def _some_user_id(provider: str, emu: Emulator) -> str:
    return str(emu.users[-1]["id"])


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("operation", ["get_user", "iter_users"])
def test_retries_are_bounded(
    connect: Callable[..., Any], provider: str, fault: str, operation: str
) -> None:
    emu = make_emulator(provider)
    emu.populate(5)
    user_id = _some_user_id(provider, emu)
    kind, expected = FAULTS[fault]
    emu.inject(kind)  # every request, for ever
    d = connect(provider, **options(provider, emu))
    calls = {
        "get_user": lambda: d.get_user(user_id),
        "list_page": d.list_page,
        "iter_users": lambda: list(d.iter_users()),
    }
    with pytest.raises(expected) as info:
        calls[operation]()
    # A first listing of a provider that reads the service first (SCIM) sends its
    # first page alongside, once and without retries.
    guessed = operation == "iter_users" and d.dialect.discovery_request() is not None
    assert ATTEMPTS <= len(emu.requests) <= ATTEMPTS + guessed
    assert all(r.fault == kind.kind for r in emu.requests)
    err = info.value
    assert err.provider == provider
    if isinstance(err, userdir.APIError):
        assert err.status_code == kind.code
    if fault == "429":
        assert err.retry_after == 0


@pytest.mark.parametrize(
    ("provider", "fault"),
    [(p, f) for p in PROVIDERS for f in HTTP_FAULTS if f != "read_timeout"]
    + [("rest", "read_timeout")],
)
def test_bounded_over_http(connect: Callable[..., Any], provider: str, fault: str) -> None:
    emu = make_emulator(provider)
    emu.populate(5)
    kind, expected = FAULTS[fault]
    emu.inject(kind)
    with emu.serve() as url:
        # every request times out here, so the read timeout can be tiny
        timeout = httpx.Timeout(5.0, read=0.1)
        d = connect(provider, timeout=timeout, **options(provider, emu, url))
        with pytest.raises(expected):
            d.list_page()
    assert len(emu.requests) == ATTEMPTS


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_retries_means_one_request(
    connect: Callable[..., Any], provider: str, fault: str
) -> None:
    emu = make_emulator(provider)
    emu.populate(5)
    kind, expected = FAULTS[fault]
    emu.inject(kind)
    d = connect(provider, retries=False, **options(provider, emu))
    with pytest.raises(expected):
        d.get_user(_some_user_id(provider, emu))
    assert len(emu.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_fault_that_stops_in_time_is_invisible(
    connect: Callable[..., Any], provider: str
) -> None:
    emu = make_emulator(provider)
    emu.populate(5)
    user_id = _some_user_id(provider, emu)
    emu.inject(Fault.status(503), times=ATTEMPTS - 1)
    d = connect(provider, **options(provider, emu))
    assert d.get_user(user_id).id == user_id
    assert [r.status for r in emu.requests] == [503] * (ATTEMPTS - 1) + [200]


def KIND(fault: Fault) -> str:
    return fault.kind


# -- writes: a POST whose answer was lost is never sent again --------------------------------

NEW = NewUser(email="new.person@example.com", name="New Person", password="pw-Secret-123")


def _emails(emu: RestEmulator) -> list[str]:
    return [str(u["email"]).lower() for u in emu.users]


def _posts(emu: RestEmulator) -> list[Any]:
    return [r for r in emu.requests if r.method == "POST"]


@pytest.mark.parametrize(
    "fault", [Fault.timeout_after_processing(), Fault.drop_after_processing()], ids=KIND
)
def test_post_whose_answer_was_lost_is_not_repeated(
    connect: Callable[..., Any], fault: Fault
) -> None:
    emu = RestEmulator()
    emu.populate(3)
    emu.inject(fault)  # every request: a retry would create a duplicate (or a 409)
    d = connect("rest", **options("rest", emu))
    with pytest.raises(userdir.TransportError, match="outcome is unknown") as info:
        d.create_user(NEW)
    assert not info.value.request_not_sent
    assert len(_posts(emu)) == 1
    assert _emails(emu).count(NEW.email) == 1


@pytest.mark.parametrize(
    "fault", [Fault.timeout_after_processing(), Fault.drop_after_processing()], ids=KIND
)
def test_post_whose_answer_was_lost_over_http(connect: Callable[..., Any], fault: Fault) -> None:
    emu = RestEmulator()
    emu.inject(fault)
    with emu.serve() as url:
        # the one request made is the one that never gets its answer: a tiny timeout
        d = connect("rest", timeout=httpx.Timeout(5.0, read=0.1), **options("rest", emu, url))
        with pytest.raises(userdir.TransportError, match="outcome is unknown"):
            d.create_user(NEW)
    assert len(_posts(emu)) == 1
    assert _emails(emu) == [NEW.email]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.status(503), userdir.ServerError),
        (Fault.html(502), userdir.ServerError),
        (Fault.drop(), userdir.TransportError),
        (Fault.read_timeout(), userdir.TransportError),
    ],
    ids=["503", "html502", "drop", "read_timeout"],
)
def test_post_is_not_retried_when_it_may_have_run(
    connect: Callable[..., Any], fault: Fault, expected: type[Exception]
) -> None:
    emu = RestEmulator()
    emu.inject(fault, times=1)  # a retry would succeed: prove none is made
    d = connect("rest", **options("rest", emu))
    with pytest.raises(expected):
        d.create_user(NEW)
    assert len(_posts(emu)) == 1
    assert _emails(emu) == []  # these faults happen before processing


def test_post_is_retried_after_a_429(connect: Callable[..., Any]) -> None:
    emu = RestEmulator()
    emu.inject(Fault.rate_limited(retry_after=0), times=ATTEMPTS - 1)
    d = connect("rest", **options("rest", emu))
    created = d.create_user(NEW)
    assert created.email == NEW.email
    assert [r.status for r in _posts(emu)] == [429] * (ATTEMPTS - 1) + [201]
    assert _emails(emu) == [NEW.email]


def test_post_is_retried_when_the_connection_could_not_be_made(
    connect: Callable[..., Any],
) -> None:
    emu = RestEmulator()
    calls: list[httpx.Request] = []

    def refuse_then_serve(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < ATTEMPTS:
            raise httpx.ConnectError("connection refused", request=request)
        return emu.transport.handle_request(request)

    transport = httpx.MockTransport(refuse_then_serve)
    d = connect("rest", token=emu.token, base_url="https://rest.test", transport=transport)
    assert d.create_user(NEW).email == NEW.email
    assert len(calls) == ATTEMPTS
    assert _emails(emu) == [NEW.email]


@pytest.mark.parametrize(
    "fault", [Fault.timeout_after_processing(), Fault.drop_after_processing()], ids=KIND
)
def test_put_and_delete_are_idempotent_and_retried(
    connect: Callable[..., Any], fault: Fault
) -> None:
    emu = RestEmulator()
    (user_id,) = emu.populate(1)
    d = connect("rest", **options("rest", emu))
    emu.inject(fault, times=1)
    assert d.update_user(user_id, UserChanges(role="admin")).role == "admin"
    assert [r.method for r in emu.requests] == ["PUT", "PUT"]
    emu.clear_requests()
    emu.inject(fault, times=1)
    # the first DELETE ran; the retry finds nothing: the user is gone, as asked
    d.delete_user(user_id)
    assert [r.method for r in emu.requests] == ["DELETE", "DELETE"]
    assert len(emu) == 0
