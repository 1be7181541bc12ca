"""Property-based fuzzing of every parser: anything in, a model or a userdir error out.

Each provider's ``parse_list``, ``parse_user`` and ``map_error`` gets valid payloads
mutated at random (values of the wrong type, keys dropped or added, huge strings, deep
nesting) as well as arbitrary JSON; the answer is always a valid ``ListPage``,
``DirectoryUser`` or ``APIError``, or a raised ``userdir.DirectoryError`` — never
another exception. Valid payloads map field for field. ``email_key`` and the engines'
body handling (arbitrary bytes, any status, any content encoding) are fuzzed too.

``USERDIR_FUZZ_EXAMPLES`` sets the examples per property (500 by default; the ``fuzz``
nox session runs 20,000).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import os
import zlib
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import userdir
from userdir import DirectoryUser, UserKind, UserStatus
from userdir._http import AsyncEngine, SyncEngine
from userdir._secrets import Scrubber
from userdir.emails import try_email_key
from userdir.providers import Dialect, ListPage, NotionDialect, OrgApiDialect, Request, RestDialect

# A failing example holding a huge string must still be reported, not turned into an error.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

EXAMPLES = int(os.environ.get("USERDIR_FUZZ_EXAMPLES", "500"))
_HEALTH = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
]
# Every parser (parse_list, parse_user, map_error of every provider) gets EXAMPLES.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=_HEALTH)
# The mapping properties and the end-to-end engine runs are slower per example and
# cover less ground; they get a share (all of them under the fuzz session, too).
SOME = settings(max_examples=max(50, EXAMPLES // 4), deadline=None, suppress_health_check=_HEALTH)

NOTION = NotionDialect(token="ntn_fuzz")
ORG = OrgApiDialect(api_key="org-fuzz", base_url="https://org.test")
REST = RestDialect(token="rest-fuzz", base_url="https://rest.test")
DIALECTS = {"notion": NOTION, "org_api": ORG, "rest": REST}

# -- building blocks ----------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # json.loads gives NaN and ±Infinity too
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _nest(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


# Values no sane service sends, but a broken or hostile one might.
tricky_strings = st.sampled_from(
    [
        "",
        " ",
        "user",
        "list",
        "bot",
        "person",
        "active",
        "\x00",
        "\r\n",
        "\ud800",  # a lone surrogate, as json.loads('"\\ud800"') gives
        "../../admin",
        "a/b?c#d",
        "%2F",
        "2023-13-45T25:61:61Z",
        "2023-01-15T08:30:00+25:00",
        "2023-01-15",
        "0000-00-00T00:00:00",
        "9999-12-31T23:59:59.999999999999Z",
        "2023-01-15T08:30:00.1234567890Z",
        "not a date but forty characters long....",
    ]
)
huge_strings = st.sampled_from([10_000, 100_000, 2_000_000]).map(lambda n: "é" * n)
deep_values = st.integers(min_value=1, max_value=900).map(_nest)
wrong_values = st.one_of(
    json_values,
    tricky_strings,
    huge_strings,
    deep_values,
    st.sampled_from([None, True, False, 0, -1, 2**64, 1.5, math.nan, math.inf, [], {}, [None]]),
)


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> list[tuple[Any, ...]]:
    """Every path into ``value`` (not below depth 6: mutations already nest deeply)."""
    out = [prefix]
    if depth < 6:
        if isinstance(value, dict):
            for key, child in value.items():
                out += _paths(child, (*prefix, key), depth + 1)
        elif isinstance(value, list):
            for i, child in enumerate(value):
                out += _paths(child, (*prefix, i), depth + 1)
    return out


def _replace_at(value: Any, path: tuple[Any, ...], new: Callable[[Any], Any]) -> Any:
    """A copy of ``value`` with the node at ``path`` replaced by ``new(node)`` (no deepcopy)."""
    if not path:
        return new(value)
    head, rest = path[0], path[1:]
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace_at(value[head], rest, new)
    return copy


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> Any:
    """A valid payload from ``base`` with 0-3 random edits anywhere in it."""
    value = draw(base)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        path = draw(st.sampled_from(_paths(value)))
        op = draw(st.sampled_from(["replace", "drop", "add", "wrap"]))

        def edit(node: Any, op: str = op) -> Any:
            if op == "drop" and isinstance(node, dict) and node:
                key = draw(st.sampled_from(sorted(node, key=str)))
                return {k: v for k, v in node.items() if k != key}
            if op == "drop" and isinstance(node, list) and node:
                return node[1:]
            if op == "add" and isinstance(node, dict):
                key = draw(st.text(max_size=10) | st.sampled_from(sorted(node, key=str) or ["x"]))
                return {**node, key: draw(wrong_values)}
            if op == "add" and isinstance(node, list):
                return [*node, draw(wrong_values)]
            if op == "wrap":
                return draw(st.sampled_from([[node], {"data": node}, json.dumps(node)[:100]]))
            return draw(wrong_values)

        value = _replace_at(value, path, edit)
    return value


# -- valid payloads -----------------------------------------------------------------------

names = st.none() | st.text(max_size=40)
urls = st.none() | st.from_regex(r"https://[a-z]{1,10}\.example/[a-z0-9]{0,10}", fullmatch=True)
# Fast, varied addresses for payloads (the parsers do not validate them).
emails = st.builds(
    "{}@{}".format,
    st.text("abcXYZ019._+-", min_size=1, max_size=12) | st.text(min_size=1, max_size=6),
    st.sampled_from(["example.com", "Example.ORG", "xn--bcher-kva.example", "bücher.example"]),
)
ids = st.text(min_size=1, max_size=40).filter(str.strip)
uuids = st.uuids().map(str)

notion_person = st.fixed_dictionaries(
    {"object": st.just("user"), "id": uuids, "type": st.just("person")},
    optional={
        "name": names,
        "avatar_url": urls,
        "person": st.fixed_dictionaries(
            {}, optional={"email": emails, "email_verified": st.booleans()}
        ),
    },
)
notion_bot = st.fixed_dictionaries(
    {"object": st.just("user"), "id": uuids, "type": st.just("bot")},
    optional={
        "name": names,
        "avatar_url": urls,
        "bot": st.fixed_dictionaries(
            {},
            optional={
                "owner": st.just({"type": "workspace", "workspace": True}),
                "workspace_name": names,
                "workspace_id": uuids,
                "workspace_limits": st.just({"max_file_upload_size_in_bytes": 5242880}),
            },
        ),
    },
)
notion_user = notion_person | notion_bot


@st.composite
def notion_list(draw: st.DrawFn) -> dict[str, Any]:
    has_more = draw(st.booleans())
    return {
        "object": "list",
        "results": draw(st.lists(notion_user, max_size=4)),
        "next_cursor": draw(uuids) if has_more else None,
        "has_more": has_more,
        "type": "user",
        "user": {},
        "request_id": draw(uuids),
    }


org_user = st.fixed_dictionaries(
    {"id": ids},
    optional={
        "email": st.none() | emails,
        "username": names,
        "first_name": names,
        "last_name": names,
        "picture_url": urls,
        "user_role": st.none() | st.sampled_from(["Admin", "Member"]),
        "calendar_link": urls,
        "unknown_future_key": json_values,
    },
)
org_list = st.fixed_dictionaries(
    {
        "users": st.lists(org_user, max_size=4),
        "page": st.integers(0, 10),
        "page_size": st.integers(1, 100),
        "has_more": st.booleans(),
    }
)
org_single = st.fixed_dictionaries({"user": org_user})

timestamps = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


rest_user = st.fixed_dictionaries(
    {"id": ids},
    optional={
        "email": st.none() | emails,
        "name": names,
        "role": st.none() | st.sampled_from(["member", "admin", "Owner"]),
        "status": st.none() | st.sampled_from(["active", "inactive", "pending", "banned"]),
        "created_at": st.none() | timestamps.map(_iso),
        "updated_at": st.none() | timestamps.map(_iso),
        "last_login": st.none() | timestamps.map(_iso),
        "settings": st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    },
)


@st.composite
def rest_list(draw: st.DrawFn) -> dict[str, Any]:
    limit = draw(st.integers(1, 100))
    total = draw(st.integers(0, 1000))
    pages = math.ceil(total / limit)
    return {
        "data": draw(st.lists(rest_user, max_size=4)),
        "meta": {"total": total, "page": draw(st.integers(1, 20)), "limit": limit, "pages": pages},
    }


rest_single = st.fixed_dictionaries({"data": rest_user})

VALID: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "notion": {"list": notion_list(), "user": notion_user},
    "org_api": {"list": org_list, "user": org_single},
    "rest": {"list": rest_list(), "user": rest_single},
}


def payloads(provider: str, kind: str) -> st.SearchStrategy[Any]:
    """Mostly mutated valid payloads; sometimes arbitrary JSON or a hostile value."""
    base = VALID[provider][kind]
    return st.one_of(mutated(base), base, json_values, wrong_values)


# -- what a valid answer looks like ---------------------------------------------------------


def _opt_str(value: object) -> bool:
    return value is None or isinstance(value, str)


def check_user(user: object, provider: str) -> None:
    assert isinstance(user, DirectoryUser)
    assert isinstance(user.id, str)
    assert user.id.strip()
    assert user.provider == provider
    for field in ("email", "name", "given_name", "family_name", "username", "avatar_url", "role"):
        assert _opt_str(getattr(user, field)), field
    assert isinstance(user.kind, UserKind)
    assert isinstance(user.status, UserStatus)
    for field in ("created_at", "updated_at", "last_login_at"):
        value = getattr(user, field)
        assert value is None or (isinstance(value, datetime) and value.tzinfo is not None)
    assert user.email_key is None or isinstance(user.email_key, str)
    # everything a caller does with a user works, however the payload was nested
    str(user.to_scim())
    json.dumps(user.to_dict(include_raw=True))
    assert repr(user.id) in repr(user)
    assert user == user and hash(user) == hash(user)


def check_page(page: object, provider: str) -> None:
    assert isinstance(page, ListPage)
    assert type(page.has_more) is bool
    for user in page.users:
        check_user(user, provider)
    if provider == "notion" and page.has_more:
        assert isinstance(page.next_cursor, str)
        assert page.next_cursor
    if provider == "rest":
        assert isinstance(page.total_pages, int)


def outcome(parse: Callable[[], Any]) -> Any:
    """The parser's result, or None when it raised a userdir error (anything else fails)."""
    try:
        return parse()
    except userdir.DirectoryError as exc:
        # the error itself must be usable: one bounded line, a repr
        line = str(exc)
        assert "\n" not in line
        assert len(line) < 5000, line[:200]
        repr(exc)
        return None


# -- the parsers ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", list(DIALECTS))
def test_parse_list_never_escapes(provider: str) -> None:
    dialect = DIALECTS[provider]

    @FUZZ
    @given(payloads(provider, "list"))
    @example(  # an empty id was a valid user (and two of them one user after dedup)
        {
            "results": [{"object": "user", "id": ""}],
            "users": [{"id": " "}],
            "data": [{"id": ""}],
            "meta": {"page": 1, "pages": 1},
        }
    )
    def run(payload: Any) -> None:
        page = outcome(lambda: dialect.parse_list(payload))
        if page is not None:
            check_page(page, provider)

    run()


@pytest.mark.parametrize("value", ["é" * 1_000_000, _nest(5000)], ids=["huge", "deep"])
def test_notion_unexpected_object_is_described_not_repeated(value: Any) -> None:
    # found by the fuzzing above: the value was repr()'d whole into the message (a 1 MB
    # message, or a RecursionError for a deeply nested one)
    with pytest.raises(userdir.MalformedResponseError) as info:
        NOTION.parse_list({"object": value, "results": []})
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("provider", list(DIALECTS))
def test_parse_user_never_escapes(provider: str) -> None:
    dialect = DIALECTS[provider]

    @FUZZ
    @given(payloads(provider, "user"))
    @example({"object": "user", "id": "", "user": {"id": ""}, "data": {"id": " "}})
    def run(payload: Any) -> None:
        user = outcome(lambda: dialect.parse_user(payload))
        if user is not None:
            check_user(user, provider)

    run()


error_bodies = st.one_of(
    # Notion
    st.fixed_dictionaries(
        {
            "object": st.just("error"),
            "status": st.integers(400, 599),
            "code": st.sampled_from(["unauthorized", "object_not_found", "rate_limited", "x"]),
            "message": st.text(max_size=50),
            "request_id": uuids,
        }
    ),
    # org API
    st.fixed_dictionaries(
        {"error": st.sampled_from(["User not found", "Provide exactly one of id or email"])}
    ),
    # REST
    st.fixed_dictionaries(
        {"error": st.fixed_dictionaries({"code": st.text(max_size=20), "message": st.text()})}
    ),
    st.fixed_dictionaries({"message": st.text(), "detail": st.text()}),
)
error_payloads = st.one_of(
    st.binary(max_size=200),
    mutated(error_bodies).map(lambda v: json.dumps(v).encode()),
    error_bodies.map(lambda v: json.dumps(v).encode("utf-16")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    st.sampled_from([b"", b"null", b"{", b"\xff\xfe\x00", b'{"error": "\xff"}', b"[" * 100_000]),
)
header_values = st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
error_headers = st.dictionaries(
    st.sampled_from(["content-type", "x-request-id", "retry-after", "www-authenticate"]),
    header_values | st.sampled_from([b"application/json", b"text/html; charset=utf-8"]),
    max_size=4,
)


@pytest.mark.parametrize("provider", list(DIALECTS))
def test_map_error_always_gives_an_api_error(provider: str) -> None:
    dialect: Dialect = DIALECTS[provider]

    @FUZZ
    @given(st.integers(400, 599), error_headers, error_payloads)
    @example(  # code and request_id went into str() whole, new lines included
        400,
        {},
        json.dumps(
            {"code": "a\nb" + "é" * 10_000, "message": "m", "request_id": "x\ny" * 5000}
        ).encode(),
    )
    @example(500, {"x-request-id": b"r" * 20_000}, b"<html></html>")
    def run(status: int, headers: dict[str, bytes], body: bytes) -> None:
        error = dialect.map_error(status, httpx.Headers(headers), body)
        assert isinstance(error, userdir.APIError)
        # texts come whole from the dialect; the engine scrubs, then bounds them
        Scrubber().finish(error)
        assert error.status_code == status
        assert error.provider == provider
        assert isinstance(error.message, str)
        assert error.code is None or isinstance(error.code, str)
        assert error.request_id is None or isinstance(error.request_id, str)
        line = str(error)
        assert "\n" not in line
        assert len(line) < 5000, line[:200]
        repr(error)
        if status >= 500:
            assert isinstance(error, userdir.ServerError) or provider == "notion"

    run()


# -- valid payloads map field for field ------------------------------------------------------


@SOME
@given(notion_user)
def test_notion_fields_equal_the_input(payload: dict[str, Any]) -> None:
    user = NOTION.parse_user(payload)
    assert user.id == payload["id"]
    assert user.name == payload.get("name")
    assert user.avatar_url == payload.get("avatar_url")
    if payload["type"] == "bot":
        assert user.kind is UserKind.BOT
        assert user.email is None
        for key, value in payload.get("bot", {}).items():
            assert user.extra.get(key) == value
    else:
        assert user.kind is UserKind.PERSON
        person = payload.get("person", {})
        assert user.email == person.get("email")
        if "email_verified" in person:
            assert user.extra["email_verified"] is person["email_verified"]
    assert user.status is UserStatus.UNKNOWN
    assert user.raw == payload


@SOME
@given(notion_list())
def test_notion_list_equals_the_input(payload: dict[str, Any]) -> None:
    page = NOTION.parse_list(payload)
    assert [u.id for u in page.users] == [u["id"] for u in payload["results"]]
    assert page.has_more is payload["has_more"]
    assert page.next_cursor == payload["next_cursor"]


def _join(first: str | None, last: str | None) -> str | None:
    return " ".join(p.strip() for p in (first, last) if p and p.strip()) or None


@SOME
@given(org_list)
def test_org_api_fields_equal_the_input(payload: dict[str, Any]) -> None:
    page = ORG.parse_list(payload)
    assert page.has_more is payload["has_more"]
    assert len(page.users) == len(payload["users"])
    for user, native in zip(page.users, payload["users"], strict=True):
        assert user.id == native["id"]
        assert user.email == native.get("email")
        assert user.username == native.get("username")
        assert user.given_name == (native.get("first_name") or None)
        assert user.family_name == (native.get("last_name") or None)
        assert user.name == _join(native.get("first_name"), native.get("last_name"))
        assert user.avatar_url == native.get("picture_url")
        assert user.role == native.get("user_role")
        assert user.extra.get("calendar_link") == (native.get("calendar_link") or None)
        assert user.kind is UserKind.PERSON
        assert user.raw == native


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


@SOME
@given(rest_single)
def test_rest_fields_equal_the_input(payload: dict[str, Any]) -> None:
    native = payload["data"]
    user = REST.parse_user(payload)
    assert user.id == native["id"]
    assert user.email == native.get("email")
    assert user.name == native.get("name")
    assert user.role == native.get("role")
    status = native.get("status")
    if status in ("active", "inactive", "pending"):
        assert user.status is UserStatus(status)
        assert "status" not in user.extra
    else:
        assert user.status is UserStatus.UNKNOWN
        assert user.extra.get("status") == status
    assert user.created_at == _when(native.get("created_at"))
    assert user.updated_at == _when(native.get("updated_at"))
    assert user.last_login_at == _when(native.get("last_login"))
    assert user.extra.get("settings") == native.get("settings")
    assert user.raw == native


@SOME
@given(rest_list())
def test_rest_list_equals_the_input(payload: dict[str, Any]) -> None:
    page = REST.parse_list(payload)
    assert [u.id for u in page.users] == [u["id"] for u in payload["data"]]
    assert page.total_pages == payload["meta"]["pages"]
    assert page.has_more is (payload["meta"]["page"] < payload["meta"]["pages"])


# -- email_key ------------------------------------------------------------------------------

email_like = st.builds(
    lambda local, at, domain: local + at + domain,
    st.text(max_size=12),
    st.sampled_from(["@", "@@", "", " @ "]),
    st.text(max_size=12)
    | st.sampled_from(["example.com", "EXAMPLE.com.", "xn--bcher-kva.example"]),
)


@FUZZ
@given(st.one_of(st.text(), st.emails(), email_like, st.none(), st.integers(), st.binary()))
def test_email_key_gives_a_str_or_invalid_argument(value: Any) -> None:
    try:
        key = userdir.email_key(value)
    except userdir.InvalidArgumentError as exc:
        error: Exception = exc
    else:
        assert isinstance(key, str)
        assert "@" in key
        assert try_email_key(value) == key
        return
    assert isinstance(error, ValueError)
    str(error)


def test_email_key_never_holds_white_space() -> None:  # found by the fuzzing above
    # IDNA's NFKC turns U+00A8 into a space: such a domain is refused, not keyed
    with pytest.raises(userdir.InvalidArgumentError, match="internationalised"):
        userdir.email_key("0@\u00a8")


@SOME
@given(st.emails())
def test_email_key_ignores_case_and_surrounding_space(email: str) -> None:
    key = userdir.email_key(email)
    assert userdir.email_key(f"  {email.upper()}\t") == userdir.email_key(email.upper())
    local, _, domain = email.rpartition("@")
    assert userdir.email_key(f"{local}@{domain.upper()}") == key


# -- the engines: any bytes, any status, any encoding ----------------------------------------


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


body_bytes = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v).encode("utf-16")),
    mutated(VALID["rest"]["user"]).map(lambda v: json.dumps(v)[:50_000].encode()),
    st.sampled_from(
        [
            b"",
            b"   ",
            b"\xef\xbb\xbf{}",
            b"\xff\xfe{",
            b'{"data": {"id": "x"',
            b"[" * 100_000,
            b'"\\ud800"',
            b"NaN",
            b"1" * 5000,  # too many digits for int()
        ]
    ),
)
encodings = st.sampled_from([None, "gzip", "deflate", "identity", "br", "zstd", "x-unknown"])


@st.composite
def answers(draw: st.DrawFn) -> tuple[int, dict[str, str], bytes, bytes | None]:
    """(status, headers, body on the wire, the body after decoding, or None if unknown)."""
    status = draw(st.sampled_from([200, 201, 204, 400, 401, 404, 409, 429, 500, 503]))
    body = draw(body_bytes)
    encoding = draw(encodings)
    headers = {"content-type": draw(st.sampled_from(["application/json", "text/html", ""]))}
    wire: bytes = body
    decoded: bytes | None = body
    if encoding is not None:
        headers["content-encoding"] = encoding
        if encoding == "gzip" and draw(st.booleans()):
            wire = _gzip(body)
        elif encoding == "deflate" and draw(st.booleans()):
            wire = zlib.compress(body)
        elif encoding not in ("identity", "x-unknown"):
            decoded = None  # claimed but not applied: garbage in, error or garbage out
    return status, headers, wire, decoded


class Answer:
    """What the mock transport answers next."""

    status = 200
    headers: dict[str, str] = {}
    body = b""

    def handler(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(self.status, headers=self.headers, content=self.body)


def _engine_kwargs(answer: Answer) -> dict[str, Any]:
    return {
        "provider": "rest",
        "base_url": "https://rest.test",
        "auth_headers": {"Authorization": "Bearer rest-fuzz"},
        "error_mapper": REST.map_error,
        "retries": False,
        "transport": httpx.MockTransport(answer.handler),
    }


def _expect(status: int, decoded: bytes | None, send: Callable[[], Any]) -> None:
    try:
        result = send()
    except userdir.APIError as exc:
        error: userdir.DirectoryError = exc
    except userdir.MalformedResponseError as exc:
        error = exc  # not JSON, badly encoded, or not the content encoding it claims
    else:
        error = None
    if isinstance(error, userdir.APIError):
        assert status >= 400
        assert error.status_code == status
        return
    if error is not None:
        assert "\n" not in str(error)
        return
    assert status < 400
    if decoded is None:
        return
    if status == 204 or not decoded.strip():
        assert result is None
        return
    expected = json.loads(decoded)  # the engine parsed it, so must this
    assert json.dumps(result, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_sync_engine_any_body() -> None:
    answer = Answer()
    engine = SyncEngine(**_engine_kwargs(answer))
    try:

        @SOME
        @given(answers())
        def run(case: tuple[int, dict[str, str], bytes, bytes | None]) -> None:
            answer.status, answer.headers, answer.body, decoded = case
            request = Request("GET", ("api", "v1", "users", "x"))
            _expect(answer.status, decoded, lambda: engine.request(request))

        run()
    finally:
        engine.close()


def test_async_engine_any_body() -> None:
    answer = Answer()
    loop = asyncio.new_event_loop()
    engine = AsyncEngine(**_engine_kwargs(answer))
    try:

        @SOME
        @given(answers())
        def run(case: tuple[int, dict[str, str], bytes, bytes | None]) -> None:
            answer.status, answer.headers, answer.body, decoded = case
            request = Request("GET", ("api", "v1", "users", "x"))
            _expect(
                answer.status, decoded, lambda: loop.run_until_complete(engine.request(request))
            )

        run()
    finally:
        loop.run_until_complete(engine.close())
        loop.close()


# -- one mapping path: errors name the field ----------------------------------------------

_BARE_USERS = {"notion": notion_user, "org_api": org_user, "rest": rest_user}


@pytest.mark.parametrize("provider", list(DIALECTS))
def test_one_mapping_path_names_the_bad_field(provider: str) -> None:
    """A list item maps as the same payload alone would; a refusal names the item's field."""
    dialect = DIALECTS[provider]
    mapped = 0

    @FUZZ
    @given(mutated(_BARE_USERS[provider]) | _BARE_USERS[provider])
    def check(payload: Any) -> None:
        nonlocal mapped
        try:
            alone = dialect.parse_item(payload)
        except userdir.MalformedResponseError as exc:
            error: userdir.MalformedResponseError = exc
        else:
            error = None  # type: ignore[assignment]
        if error is not None:
            assert error.provider == provider
            assert error.message.startswith("user"), error.message
            page = ListPage([{"id": "ok"} if provider != "notion" else None, payload])
            with pytest.raises(userdir.MalformedResponseError) as listed:
                dialect.map_items(page)
            assert f"{dialect.items_key}[" in listed.value.message
            return
        mapped += 1
        (listed_user,) = dialect.map_items(ListPage([payload]))
        assert listed_user == alone
        assert listed_user.extra == alone.extra

    check()
    assert mapped > EXAMPLES // 10  # valid payloads were a fair share


@pytest.mark.parametrize("depth", [30, 900])
@pytest.mark.parametrize(
    ("provider", "user"),
    [
        ("rest", lambda deep: {"id": "u1", "settings": {"theme": deep}, "extra_field": deep}),
        ("org_api", lambda deep: {"id": "u1", "unknown": deep}),
        (
            "notion",
            lambda deep: {
                "object": "user",
                "id": "6794760a-1f15-45cd-9c65-0dfe42f5135a",
                "type": "bot",
                "bot": {"owner": {"type": "user", "user": deep}},
                "unknown": deep,
            },
        ),
    ],
    ids=["rest", "org_api", "notion"],
)
def test_deeply_nested_values_are_usable_or_refused(
    provider: str, user: Callable[[Any], Any], depth: int
) -> None:
    parsed = outcome(lambda: DIALECTS[provider].parse_item(user(_nest(depth))))
    if depth <= 30:  # a plausible depth maps
        assert parsed is not None
    if parsed is not None:
        check_user(parsed, provider)


def _depth(value: Any) -> int:
    """How many levels of dicts and lists ``value`` nests (the plain recursive way)."""
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


class _Mapping(dict):  # type: ignore[type-arg]
    """A dict subclass: not a JSON scalar, so never taken for a leaf."""


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(value=_JSON, limit=st.integers(min_value=0, max_value=5))
@example(value={"a": 1, "b": "x", "c": None}, limit=0)
@example(value={"a": 1}, limit=1)
@example(value={"a": _Mapping(b=_Mapping(c={}))}, limit=2)
def test_nesting_exceeds_agrees_with_the_recursive_depth(value: Any, limit: int) -> None:
    from userdir.providers._fields import nesting_exceeds

    assert nesting_exceeds(value, limit) == (_depth(value) > limit)


def test_settings_nesting_limit_is_exact() -> None:
    from userdir.providers._base import MAX_NESTING

    rest = DIALECTS["rest"]
    # settings itself is one level: MAX_NESTING levels in all map, one more is refused
    fits = rest.parse_item({"id": "u1", "settings": {"k": _nest(MAX_NESTING - 1)}})
    assert fits.extra["settings"] == {"k": _nest(MAX_NESTING - 1)}
    with pytest.raises(userdir.MalformedResponseError, match=r"user\.settings: nested deeper"):
        rest.parse_item({"id": "u1", "settings": {"k": _nest(MAX_NESTING)}}, "user")
