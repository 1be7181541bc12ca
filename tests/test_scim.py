"""The SCIM 2.0 provider: its pure pieces, and on the wire against the emulator (sync and async)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

import userdir
from userdir import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    InvalidArgumentError,
    InvalidRequestError,
    MalformedResponseError,
    NewUser,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnsupportedOperationError,
    UserChanges,
    UserNotFoundError,
    UserStatus,
)
from userdir.providers.scim import (
    ENTERPRISE_SCHEMA,
    F,
    ScimFeatures,
    capabilities_of,
    email_batches,
    email_filter,
    features_of,
    filter_value,
    parse_scim_error,
    parse_scim_user,
    patch_body,
)
from userdir.testing import Fault, ScimEmulator

BASE = "https://scim.test/scim/v2"
TOKEN = "scim-S3CR3T-token-000"


def scim(connect: Any, emu: ScimEmulator, **options: Any) -> Any:
    return connect("scim", token=emu.token, base_url=BASE, transport=emu.transport, **options)


def emulator(n: int = 0, **kw: Any) -> ScimEmulator:
    emu = ScimEmulator(TOKEN, **kw)
    emu.populate(n)
    return emu


def user_requests(emu: ScimEmulator) -> list[Any]:
    """The requests to /Users (the discovery request left out)."""
    return [r for r in emu.requests if "/Users" in r.path]


FULL_USER: dict[str, Any] = {
    "schemas": [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        ENTERPRISE_SCHEMA,
    ],
    "id": "2819c223",
    "externalId": "701984",
    "userName": "bjensen@example.com",
    "name": {"formatted": "Ms. Barbara J Jensen", "familyName": "Jensen", "givenName": "Barbara"},
    "displayName": "Babs Jensen",
    "title": "Tour Guide",
    "emails": [
        {"value": "babs@jensen.org", "type": "home"},
        {"value": "bjensen@example.com", "type": "work", "primary": True},
    ],
    "photos": [{"value": "https://photos.example.com/bj.jpg", "type": "photo"}],
    "roles": [{"value": "viewer"}, {"value": "admin", "primary": True}],
    "active": False,
    "groups": [{"value": "e9e30dba", "display": "Tour Guides"}],
    ENTERPRISE_SCHEMA: {
        "employeeNumber": "701984",
        "department": "Tour Operations",
        "manager": {"value": "26118915", "displayName": "John Smith"},
    },
    "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": 'W/"3694e05e9dff591"',
    },
}


# -- the pure pieces ---------------------------------------------------------------


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


def test_mapping_of_core_and_enterprise_user() -> None:
    user = parse_scim_user(FULL_USER)
    assert (user.id, user.provider, user.username) == ("2819c223", "scim", "bjensen@example.com")
    assert (user.name, user.given_name, user.family_name) == ("Babs Jensen", "Barbara", "Jensen")
    assert user.email == "bjensen@example.com"  # the primary one, not the first
    assert user.role == "admin"  # the primary role
    assert user.avatar_url == "https://photos.example.com/bj.jpg"
    assert user.status is UserStatus.INACTIVE
    assert user.created_at is not None and user.created_at.year == 2010
    assert user.updated_at is not None and user.updated_at.year == 2011
    assert user.version == 'W/"3694e05e9dff591"'
    assert dict(user.extra) == {
        "externalId": "701984",
        "title": "Tour Guide",
        "groups": [{"value": "e9e30dba", "display": "Tour Guides"}],
        "employeeNumber": "701984",
        "department": "Tour Operations",
        "manager": {"value": "26118915", "displayName": "John Smith"},
    }
    assert user.to_dict()["version"] == 'W/"3694e05e9dff591"'
    assert user.to_scim()["meta"]["version"] == 'W/"3694e05e9dff591"'


@pytest.mark.parametrize(
    ("emails", "expected"),
    [
        ([{"value": "a@x.com"}, {"value": "b@x.com", "type": "work"}], "b@x.com"),  # first work
        ([{"value": "a@x.com", "type": "home"}, {"value": "c@x.com"}], "a@x.com"),  # first
        ([], None),
    ],
)
def test_email_is_primary_else_first_work_else_first(
    emails: list[dict[str, Any]], expected: str | None
) -> None:
    user = parse_scim_user({"id": "1", "emails": emails})
    assert user.email == expected
    assert user.status is UserStatus.UNKNOWN  # no "active"
    assert user.name is None
    assert user.version is None


def test_name_falls_back_to_formatted_then_the_parts() -> None:
    assert parse_scim_user({"id": "1", "name": {"formatted": "F L"}}).name == "F L"
    assert parse_scim_user({"id": "1", "name": {"givenName": "G", "familyName": "F"}}).name == "G F"


def test_etag_header_is_the_version_when_meta_has_none() -> None:
    assert parse_scim_user({"id": "1"}, etag='W/"7"').version == 'W/"7"'


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"id": 5}, "user.id"),
        ("not an object", "user: expected a JSON object"),
        (
            {"id": "1", "emails": [{"value": "a@x.com"}, {"value": 3, "primary": True}]},
            "user.emails[1].value",
        ),
        ({"id": "1", "emails": {"value": "a@x.com"}}, "user.emails"),
        ({"id": "1", "active": "yes"}, "user.active"),
        ({"id": "1", "name": {"givenName": 3}}, "user.name.givenName"),
        ({"id": "1", "meta": {"created": "yesterday"}}, "user.meta.created"),
        ({"id": "1", "meta": {"version": 1}}, "user.meta.version"),
        ({"id": "1", ENTERPRISE_SCHEMA: []}, f"user.{ENTERPRISE_SCHEMA}"),
        ({"id": "1", "roles": [{"value": "a"}, 7]}, "user.roles[1]"),
        ({"id": "1", "photos": [{"value": ["x"]}]}, "user.photos[0].value"),
        ({"id": "1", "groups": _deep(40)}, "user.groups: nested deeper than 32"),
    ],
)
def test_a_malformed_user_names_the_field(payload: dict[str, Any], named: str) -> None:
    with pytest.raises(MalformedResponseError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_scim_user(payload)


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"id": "1", "emails": 3, "meta": {"created": "yesterday"}}, "user.emails"),
        ({"id": "1", "roles": 3, "meta": {"lastModified": 5}}, "user.roles"),
        ({"id": "1", "meta": {"created": 5, "lastModified": "x"}}, "user.meta.created"),
        (
            {"id": "1", "meta": {"created": "2024-01-01T00:00:00Z", "lastModified": 5}},
            "user.meta.lastModified",
        ),
        ({"id": "1", "meta": {"created": "2024-01-01T00:00:00Z" + " " * 30}}, "user.meta.created"),
    ],
)
def test_the_first_bad_field_in_mapping_order_is_named(payload: dict[str, Any], named: str) -> None:
    # the timestamps are parsed inline first, but still reported after emails/photos/roles
    with pytest.raises(MalformedResponseError, match=named):
        parse_scim_user(payload)


@pytest.mark.parametrize(
    "stamp",
    ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05", "2024-01-02T03:04:05.1Z", "2024-01-02"],
)
def test_meta_times_map_as_the_reader_does(stamp: str) -> None:
    user = parse_scim_user({"id": "1", "meta": {"created": stamp, "lastModified": stamp}})
    expected = F.opt_time({"t": stamp}, "t", "user")
    assert user.created_at == user.updated_at == expected
    assert expected is not None and expected.tzinfo is not None


def test_filter_values_are_escaped_as_json_strings() -> None:
    assert filter_value('say "hi" \\ bye') == '"say \\"hi\\" \\\\ bye"'
    assert email_filter('o"k@x.com') == 'emails[value eq "o\\"k@x.com"]'
    assert email_filter("a@x.com", "userName") == 'userName eq "a@x.com"'
    with pytest.raises(InvalidArgumentError, match="email_filter"):
        email_filter("a@x.com", "mail")


def test_email_batches_are_bounded_and_keep_every_email_in_order() -> None:
    emails = [f"person.number{i}@example.com" for i in range(1000)]
    batches = email_batches(emails, max_length=2000, max_count=50)
    assert [e for group, _ in batches for e in group] == emails
    for group, text in batches:
        assert len(group) <= 50
        assert len(text) <= 2000
        assert text == " or ".join(email_filter(e) for e in group)
    short = email_batches(emails, max_length=300, max_count=50)
    assert all(len(text) <= 300 for _, text in short)
    assert len(short) > len(batches)


def test_patch_body_replaces_the_changed_attributes_only() -> None:
    body = patch_body(UserChanges(status=UserStatus.INACTIVE, role="admin"))
    assert body == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "roles", "value": [{"value": "admin", "primary": True}]},
            {"op": "replace", "path": "active", "value": False},
        ],
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "409",
                "scimType": "uniqueness",
                "detail": "taken",
            },
            (409, "uniqueness", "taken"),
        ),
        (
            {"status": 400, "scimType": "invalidFilter", "detail": "bad"},
            (400, "invalidFilter", "bad"),
        ),
        ({"error": {"status": "404", "detail": "gone"}}, (404, None, "gone")),
        ({"detail": "only a detail"}, (None, None, "only a detail")),
    ],
)
def test_scim_error_bodies_are_read_leniently(
    body: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    error = parse_scim_error(json.dumps(body).encode())
    assert error is not None
    assert (error.status, error.scim_type, error.detail) == expected


def test_not_a_scim_error() -> None:
    assert parse_scim_error(b"<html>502</html>") is None
    assert parse_scim_error(b'{"message": "x"}') is None


def test_service_provider_config_fills_the_capabilities() -> None:
    features = features_of(
        {
            "patch": {"supported": False},
            "filter": {"supported": True, "maxResults": 200},
            "etag": {"supported": "true"},
            "sort": {"supported": True},
            "bulk": {"supported": False},
            "pagination": {"cursor": True, "index": True, "maxPageSize": 150},
        }
    )
    assert features == ScimFeatures(
        filter=True, max_results=200, patch=False, etag=True, sort=True, bulk=False,
        cursor=True, index=True, max_page_size=150,
    )  # fmt: skip
    caps = capabilities_of(features)
    assert (caps.max_page_size, caps.paging, caps.etag) == (150, "cursor", True)
    assert (caps.email_lookup, caps.server_filters) == ("batch", frozenset({"status"}))
    none = capabilities_of(features_of({"filter": {"supported": False}}))
    assert (none.email_lookup, none.server_filters, none.paging) == ("scan", frozenset(), "offset")


# -- on the wire: discovery --------------------------------------------------------


def test_service_provider_config_is_read_once_lazily(connect: Any) -> None:
    emu = emulator(3, max_results=2, etag=True)
    d = scim(connect, emu)
    assert emu.requests == []  # nothing at connect
    assert len(list(d.iter_users())) == 3
    d.get_user(emu.users[0]["id"])
    paths = [r.path for r in emu.requests]
    assert paths.count("/scim/v2/ServiceProviderConfig") == 1
    # the config first or alongside the guessed first page, then the walk's pages
    assert "/scim/v2/ServiceProviderConfig" in paths[:2]
    assert d.capabilities.max_page_size == 2
    assert d.capabilities.etag is True


def test_a_server_without_service_provider_config_gets_the_defaults(
    connect: Any, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=f"{BASE}/ServiceProviderConfig", status_code=404)
    httpx_mock.add_response(
        url=f"{BASE}/Users?startIndex=1&count=100",
        json={"totalResults": 1, "Resources": [{"id": "1", "userName": "a"}], "startIndex": 1},
    )
    d = connect("scim", token=TOKEN, base_url=BASE)
    assert [u.id for u in d.iter_users()] == ["1"]
    assert d.capabilities.paging == "offset"


def test_features_option_overrides_a_wrong_announcement(connect: Any) -> None:
    # announces PATCH but answers 501: the option makes updates PUT
    emu = emulator(1, patch=False, announce={"patch": {"supported": True}})
    user_id = emu.users[0]["id"]
    d = scim(connect, emu, features={"patch": False})
    updated = d.update_user(user_id, UserChanges(name="Put Name"))
    assert updated.name == "Put Name"
    assert [r.method for r in user_requests(emu)] == ["GET", "PUT"]


def test_features_option_is_checked() -> None:
    with pytest.raises(ConfigError, match="unknown feature 'paging'"):
        userdir.connect("scim", token=TOKEN, base_url=BASE, features={"paging": True})
    with pytest.raises(ConfigError, match="max_results must be a positive int"):
        userdir.connect("scim", token=TOKEN, base_url=BASE, features={"max_results": 0})
    with pytest.raises(ConfigError, match="base_url"):
        userdir.connect("scim", token=TOKEN)
    with pytest.raises(ConfigError, match="email_filter"):
        userdir.connect("scim", token=TOKEN, base_url=BASE, email_filter="mail")


# -- listing -------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 8])
def test_listing_with_a_capped_page_size_loses_nobody(connect: Any, concurrency: int) -> None:
    emu = emulator(23, max_results=5)
    d = scim(connect, emu, concurrency=concurrency, features={"max_results": 100})  # told wrong
    users = list(d.iter_users())
    assert [u.id for u in users] == [u["id"] for u in emu.users]
    pages = user_requests(emu)
    assert all({"startIndex", "count"} <= set(r.params) for r in pages)
    # pages in flight together may arrive in any order
    assert sorted(int(r.params["startIndex"]) for r in pages) == [1, 6, 11, 16, 21]


def test_listing_stops_on_total_results(connect: Any) -> None:
    emu = emulator(10, max_results=5)
    assert len(list(scim(connect, emu).iter_users())) == 10
    # a first page guessed before discovery (count=100; sent if the discovery request
    # let it go first) is not the walk's (count=5)
    pages = [r for r in user_requests(emu) if r.params["count"] == "5"]
    guessed = [r for r in user_requests(emu) if r not in pages]
    assert len(pages) == 2  # never a page past totalResults
    assert [r.params["count"] for r in guessed] in ([], ["100"])


def test_a_server_that_lists_nothing_without_both_paging_parameters(connect: Any) -> None:
    emu = emulator(4, quirks={"requires_paging"})
    assert len(list(scim(connect, emu).iter_users())) == 4


def test_cursor_pagination_where_announced(connect: Any) -> None:
    emu = emulator(12, max_results=5, cursor=True)
    d = scim(connect, emu)
    assert [u.id for u in d.iter_users()] == [u["id"] for u in emu.users]
    pages = [r for r in user_requests(emu) if "startIndex" not in r.params]
    guessed = [r for r in user_requests(emu) if r not in pages]  # sent before discovery
    assert [r.params["startIndex"] for r in guessed] in ([], ["1"])
    assert pages[0].params["cursor"] == ""
    assert all("startIndex" not in r.params for r in pages)
    assert len(pages) == 3
    page = d.list_page(page_size=5)
    assert page.next_cursor and len(page) == 5
    assert [u.id for u in d.list_page(page.next_cursor, 5)] == [u["id"] for u in emu.users[5:10]]


def test_list_page_cursors_are_start_indexes(connect: Any) -> None:
    emu = emulator(7, max_results=3)
    d = scim(connect, emu)
    first = d.list_page(page_size=3)
    assert first.next_cursor == "4"
    assert [u.id for u in d.list_page(first.next_cursor, 3)] == [u["id"] for u in emu.users[3:6]]
    with pytest.raises(InvalidArgumentError, match="not a cursor"):
        d.list_page("abc", 3)


@pytest.mark.parametrize(
    ("status", "sent"), [("active", "active eq true"), ("inactive", "active eq false")]
)
def test_status_filter_goes_to_the_server(connect: Any, status: str, sent: str) -> None:
    emu = emulator(30)
    users = list(scim(connect, emu).iter_users(status=status))
    assert users and all(u.status.value == status for u in users)
    expected = [u["id"] for u in emu.users if u["active"] is (status == "active")]
    assert [u.id for u in users] == expected
    assert {r.params.get("filter") for r in user_requests(emu)} == {sent}


def test_a_server_that_needs_a_filter_to_list(connect: Any) -> None:
    emu = emulator(3, quirks={"requires_filter"})
    d = scim(connect, emu, features={"list": False})
    with pytest.raises(UnsupportedOperationError, match="needs one"):
        list(d.iter_users())
    assert user_requests(emu) == []
    assert d.capabilities.list_users is False
    email = emu.users[1]["emails"][0]["value"]
    assert d.find_user_by_email(email.upper()).id == emu.users[1]["id"]
    assert len(list(d.iter_users(status="active"))) == 3  # a filter: allowed


# -- lookups -------------------------------------------------------------------------


def test_lookup_by_email_filter_case_insensitively(connect: Any) -> None:
    emu = emulator(5)
    d = scim(connect, emu)
    email = emu.users[2]["emails"][0]["value"]
    assert d.find_user_by_email(email.upper()).id == emu.users[2]["id"]
    assert d.find_user_by_email("nobody@example.com") is None
    sent = [r.params.get("filter") for r in user_requests(emu)]
    assert sent == [email_filter(email.upper()), email_filter("nobody@example.com")]


def test_many_emails_go_in_or_batches(connect: Any) -> None:
    emu = emulator(300)
    d = scim(connect, emu, concurrency=4)
    emails = [u["emails"][0]["value"] for u in emu.users[:120]] + ["ghost@example.com"]
    found = d.find_users_by_email(emails)
    assert sum(v is not None for v in found.values()) == 120
    assert found["ghost@example.com"] is None
    lookups = user_requests(emu)
    assert len(lookups) == 3  # 121 emails in batches of at most 50
    assert all(" or " in r.params["filter"] for r in lookups)


def test_a_capped_batch_is_asked_again_in_halves(connect: Any) -> None:
    # the server caps pages at 2 but does not say so: a batch of 8 comes back capped
    emu = emulator(8, max_results=2)
    d = scim(connect, emu, features={"max_results": 100})
    emails = [u["emails"][0]["value"] for u in emu.users]
    found = d.find_users_by_email(emails)
    assert {k: v.id for k, v in found.items() if v} == {
        u["emails"][0]["value"]: u["id"] for u in emu.users
    }
    sizes = [r.params["filter"].count(" or ") + 1 for r in user_requests(emu)]
    assert sizes == [8, 4, 2, 2, 4, 2, 2]  # 8 capped, its halves capped, their halves whole


def test_two_users_with_one_email_are_not_picked_from(connect: Any) -> None:
    emu = emulator(3)
    emu.add_user(email="shared@example.com", name="One", user_name="one")
    emu.add_user(email="Shared@Example.com", name="Two", user_name="two")
    d = scim(connect, emu)
    with pytest.raises(userdir.DuplicateEmailError) as raised:
        d.find_user_by_email("shared@example.com")
    assert raised.value.count == 2
    found = d.find_users_by_email([emu.users[0]["userName"], "ghost@example.com"])
    assert found["ghost@example.com"] is None


def test_lookup_falls_back_to_username_where_emails_filters_are_refused(connect: Any) -> None:
    emu = emulator(4, quirks={"no_email_filter"})
    d = scim(connect, emu)
    email = emu.users[3]["emails"][0]["value"]
    assert d.find_user_by_email(email).id == emu.users[3]["id"]
    assert d.find_user_by_email(emu.users[0]["userName"]).id == emu.users[0]["id"]
    sent = [r.params["filter"] for r in user_requests(emu)]
    assert sent[0].startswith("emails[")
    assert sent[1:] == [f'userName eq "{email}"', f'userName eq "{emu.users[0]["userName"]}"']


def test_config_can_say_lookups_use_username(connect: Any) -> None:
    emu = emulator(2)
    d = scim(connect, emu, email_filter="userName")
    assert d.find_user_by_email(emu.users[0]["userName"]) is not None
    assert user_requests(emu)[0].params["filter"].startswith("userName eq")


def test_lookups_scan_where_filtering_is_unsupported(connect: Any) -> None:
    emu = emulator(6, filter=False)
    d = scim(connect, emu)
    email = emu.users[4]["emails"][0]["value"]
    assert d.find_user_by_email(email).id == emu.users[4]["id"]
    assert d.capabilities.email_lookup == "scan"
    assert all("filter" not in r.params for r in user_requests(emu))


# -- writes --------------------------------------------------------------------------


def test_create_sends_a_scim_user(connect: Any) -> None:
    emu = emulator()
    d = scim(connect, emu)
    user = d.create_user(
        NewUser(
            email="Ada@Example.com",
            name="Ada Lovelace",
            role="admin",
            password="pw-S3CR3T",
            settings={ENTERPRISE_SCHEMA: {"department": "R&D"}, "title": "Countess"},
        )
    )
    (post,) = [r for r in emu.requests if r.method == "POST"]
    assert post.headers["content-type"] == "application/scim+json"
    assert post.json["userName"] == "Ada@Example.com"  # derived from the email
    assert post.json["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_SCHEMA]
    assert post.json["emails"] == [{"value": "Ada@Example.com", "type": "work", "primary": True}]
    assert (user.email, user.role, user.status) == ("Ada@Example.com", "admin", UserStatus.ACTIVE)
    assert user.extra["department"] == "R&D" and user.extra["title"] == "Countess"
    assert emu.password_of(user.id) == "pw-S3CR3T"
    assert "password" not in emu.users[0]


def test_create_with_a_given_username(connect: Any) -> None:
    emu = emulator()
    user = scim(connect, emu).create_user(
        NewUser(email="ada@example.com", name="Ada", settings={"userName": "ada"})
    )
    assert user.username == "ada"


def test_update_patches_the_changed_attributes_only(connect: Any) -> None:
    emu = emulator(1)
    user_id = emu.users[0]["id"]
    d = scim(connect, emu)
    updated = d.update_user(user_id, UserChanges(status=UserStatus.INACTIVE))
    assert updated.status is UserStatus.INACTIVE
    (patch,) = [r for r in emu.requests if r.method == "PATCH"]
    assert patch.json["Operations"] == [{"op": "replace", "path": "active", "value": False}]
    assert "if-match" not in patch.headers  # no version given: PATCH needs none
    assert emu.users[0]["active"] is False
    assert emu.users[0]["displayName"] == updated.name  # nothing else touched


def test_update_reads_back_a_patch_answered_without_content(connect: Any) -> None:
    emu = emulator(1, quirks={"patch_no_content"})
    user_id = emu.users[0]["id"]
    updated = scim(connect, emu).update_user(user_id, UserChanges(name="New Name"))
    assert updated.name == "New Name"
    assert updated.version == emu.version_of(user_id)
    assert [r.method for r in user_requests(emu)] == ["PATCH", "GET"]


def test_a_version_is_sent_as_if_match_and_a_stale_one_refused(connect: Any) -> None:
    emu = emulator(1)
    d = scim(connect, emu)
    user = d.get_user(emu.users[0]["id"])
    changed = d.update_user(user.id, UserChanges(name="First"), version=user.version)
    assert changed.version != user.version
    assert [r.headers.get("if-match") for r in emu.requests if r.method == "PATCH"] == [
        user.version
    ]
    with pytest.raises(PreconditionFailedError) as raised:
        d.update_user(user.id, UserChanges(name="Second"), version=user.version)
    assert isinstance(raised.value, ConflictError)
    assert raised.value.status_code == 412
    assert raised.value.version == user.version
    assert user.version in str(raised.value)
    assert emu.users[0]["displayName"] == "First"  # the stale write changed nothing
    with pytest.raises(PreconditionFailedError):
        d.delete_user(user.id, version=user.version)
    assert len(emu) == 1
    d.delete_user(user.id, version=changed.version)
    assert len(emu) == 0


def test_put_where_patch_is_unsupported_sends_the_version_read(connect: Any) -> None:
    emu = emulator(1, patch=False)
    user_id = emu.users[0]["id"]
    before = emu.users[0]
    d = scim(connect, emu)
    updated = d.update_user(user_id, UserChanges(role="owner"))
    get, put = user_requests(emu)
    assert (get.method, put.method) == ("GET", "PUT")
    assert put.headers["if-match"] == before["meta"]["version"]
    assert put.json["userName"] == before["userName"]  # the whole user goes back
    assert put.json[ENTERPRISE_SCHEMA] == before[ENTERPRISE_SCHEMA]
    assert "meta" not in put.json
    assert updated.role == "owner"


def test_put_without_etags_sends_no_if_match(connect: Any) -> None:
    emu = emulator(1, patch=False, etag=False)
    scim(connect, emu).update_user(emu.users[0]["id"], UserChanges(name="N"))
    put = user_requests(emu)[-1]
    assert put.method == "PUT" and "if-match" not in put.headers


def test_pending_is_refused_before_sending(connect: Any) -> None:
    emu = emulator(1)
    with pytest.raises(InvalidArgumentError, match="active or inactive"):
        scim(connect, emu).update_user(emu.users[0]["id"], UserChanges(status="pending"))
    assert not [r for r in emu.requests if r.method == "PATCH"]


def test_patch_is_never_retried_once_sent(connect: Any) -> None:
    emu = emulator(1)
    d = scim(connect, emu, retries=3)
    d.list_page(page_size=1)  # /ServiceProviderConfig read
    emu.inject(Fault.status(503), times=1)
    with pytest.raises(ServerError):
        d.update_user(emu.users[0]["id"], UserChanges(name="X"))
    emu.clear_faults()
    emu.inject(Fault.drop_after_processing(), times=1)
    with pytest.raises(TransportError, match="not repeated"):
        d.update_user(emu.users[0]["id"], UserChanges(name="Y"))
    assert [r.method for r in emu.requests if r.method == "PATCH"] == ["PATCH", "PATCH"]


def test_reads_are_retried_as_elsewhere(connect: Any) -> None:
    emu = emulator(1)
    d = scim(connect, emu, retries=3)
    emu.inject(Fault.status(503), times=1)
    assert d.get_user(emu.users[0]["id"]).id == emu.users[0]["id"]
    assert [r.status for r in emu.requests] == [503, 200]


def test_version_on_a_provider_without_conditional_writes(connect: Any) -> None:
    from userdir.testing import RestEmulator

    rest = RestEmulator()
    user_id = rest.add_user(email="a@example.com", name="A")
    d = connect("rest", token=rest.token, base_url="https://r.test", transport=rest.transport)
    with pytest.raises(UnsupportedOperationError, match="version="):
        d.update_user(user_id, UserChanges(name="B"), version='W/"1"')
    with pytest.raises(UnsupportedOperationError, match="version="):
        d.delete_user(user_id, version='W/"1"')
    assert rest.requests == []
    assert d.get_user(user_id).version is None


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (400, InvalidRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, UserNotFoundError),
        (409, ConflictError),
        (412, PreconditionFailedError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_every_error_status(connect: Any, code: int, cls: type[Exception]) -> None:
    emu = emulator(1)
    d = scim(connect, emu, retries=False)
    d.get_user(emu.users[0]["id"])
    emu.inject(Fault.status(code), times=1)
    with pytest.raises(cls) as raised:
        d.get_user(emu.users[0]["id"])
    assert raised.value.status_code == code  # type: ignore[attr-defined]


def test_wrong_token(connect: Any) -> None:
    emu = emulator(1)
    d = connect("scim", token="wrong", base_url=BASE, transport=emu.transport)
    with pytest.raises(AuthenticationError) as raised:
        d.get_user("x")
    assert "wrong" not in str(raised.value)


def test_scim_types_map_into_the_tree(connect: Any) -> None:
    emu = emulator(2)
    d = scim(connect, emu)
    with pytest.raises(ConflictError) as raised:
        d.create_user(NewUser(email=emu.users[0]["userName"], name="Dup"))
    assert raised.value.code == "uniqueness"
    with pytest.raises(UserNotFoundError) as missing:
        d.get_user("nope")
    assert missing.value.code is None
    emu_cursor = emulator(1, cursor=True)
    with pytest.raises(InvalidRequestError) as bad:
        scim(connect, emu_cursor).list_page("garbage")
    assert bad.value.code == "invalidCursor"


@pytest.mark.parametrize(
    ("scim_type", "status", "cls"),
    [
        ("tooMany", 400, InvalidRequestError),
        ("invalidValue", 400, InvalidRequestError),
        ("invalidSyntax", 400, InvalidRequestError),
        ("invalidFilter", 400, InvalidRequestError),
        ("uniqueness", 400, ConflictError),  # scimType wins over a wrong status
    ],
)
def test_scim_type_decides_the_class(
    connect: Any, httpx_mock: HTTPXMock, scim_type: str, status: int, cls: type[Exception]
) -> None:
    httpx_mock.add_response(url=f"{BASE}/ServiceProviderConfig", json={})
    httpx_mock.add_response(
        status_code=status,
        json={"status": str(status), "scimType": scim_type, "detail": f"{scim_type} here"},
    )
    with pytest.raises(cls) as raised:
        connect("scim", token=TOKEN, base_url=BASE).list_page()
    assert raised.value.code == scim_type  # type: ignore[attr-defined]
    assert f"{scim_type} here" in str(raised.value)


@pytest.mark.parametrize("quirk", ["status_number", "no_schemas", "wrapped_errors", "plain_json"])
def test_error_quirks(connect: Any, quirk: str) -> None:
    emu = emulator(2, quirks={quirk})
    d = scim(connect, emu)
    with pytest.raises(ConflictError) as raised:
        d.create_user(NewUser(email=emu.users[0]["userName"], name="Dup"))
    assert raised.value.code == "uniqueness"
    assert "already in use" in raised.value.message
    assert len(list(d.iter_users())) == 2  # and listing still reads
    body = emu.requests[-1]
    assert body.status == 200


def test_answers_in_plain_json_and_without_schemas(connect: Any) -> None:
    emu = emulator(3, quirks={"plain_json", "no_schemas"})
    d = scim(connect, emu)
    assert [u.id for u in d.iter_users()] == [u["id"] for u in emu.users]
    assert d.find_user_by_email(emu.users[0]["userName"]) is not None


def test_a_proxy_page_is_not_a_scim_error(connect: Any) -> None:
    emu = emulator(1)
    d = scim(connect, emu, retries=False)
    d.get_user(emu.users[0]["id"])
    emu.inject(Fault.html(502), times=1)
    with pytest.raises(ServerError, match="proxy or gateway"):
        d.get_user(emu.users[0]["id"])


def test_malformed_list_answer(connect: Any, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/ServiceProviderConfig", json={})
    httpx_mock.add_response(json={"totalResults": "many", "Resources": []})
    with pytest.raises(MalformedResponseError, match="totalResults"):
        list(connect("scim", token=TOKEN, base_url=BASE).iter_users())


def test_the_token_goes_as_bearer_and_never_into_errors(
    connect: Any, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=400, json={"detail": f"bad token {TOKEN}"})
    with pytest.raises(InvalidRequestError) as raised:
        connect("scim", token=TOKEN, base_url=BASE).get_user("1")
    assert TOKEN not in str(raised.value)
    for request in httpx_mock.get_requests():
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert "application/scim+json" in request.headers["accept"]


# -- config, federation, CLI ---------------------------------------------------------


def test_config_federation_and_cli(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from userdir import cli

    emu = emulator(3, patch=False, announce={"patch": {"supported": True}})
    email = emu.users[1]["emails"][0]["value"]
    with emu.serve() as url:
        path = tmp_path / "userdir.toml"
        path.write_text(
            "[directories.idp]\n"
            'provider = "scim"\n'
            'token = "${SCIM_TOKEN}"\n'
            f'base_url = "{url}/scim/v2"\n'
            "[directories.idp.features]\n"
            "patch = false\n"
        )
        monkeypatch.setenv("SCIM_TOKEN", TOKEN)
        dirs = userdir.load_config(path)
        with userdir.Federation(dirs) as federation:
            result = federation.find(email.upper())
            assert result.users["idp"].id == emu.users[1]["id"]
            updated = dirs["idp"].update_user(emu.users[1]["id"], UserChanges(name="Via PUT"))
        assert updated.name == "Via PUT"
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(
            ["--config", str(path), "--format", "jsonl", "list", "idp"], stdout=out, stderr=err
        )
    assert (code, err.getvalue()) == (0, "")
    assert len(out.getvalue().splitlines()) == 3
    out = io.StringIO()
    assert cli.main(["--format", "jsonl", "providers"], stdout=out, stderr=io.StringIO()) == 0
    (scim_line,) = [json.loads(x) for x in out.getvalue().splitlines() if '"scim"' in x]
    assert "base_url" in scim_line["required"]
    assert (scim_line["email_lookup"], scim_line["paging"]) == ("batch", "offset")


def test_connect_with_the_plugin_fixture(scim_emulator: ScimEmulator) -> None:
    scim_emulator.add_user(email="ada@example.com", name="Ada", status="inactive")
    with userdir.connect(
        "scim", base_url=BASE, transport=scim_emulator.transport, **scim_emulator.credentials
    ) as d:
        (user,) = d.iter_users()
    assert (user.email, user.status) == ("ada@example.com", UserStatus.INACTIVE)


def test_lookup_of_an_email_with_quotes_and_backslashes(connect: Any) -> None:
    emu = emulator()
    odd = '"o\\"k"@example.com'  # a quoted local part holding a quote and a backslash
    user_id = emu.add_user(email=odd, name="Odd")
    d = scim(connect, emu)
    assert d.find_user_by_email(odd).id == user_id
    assert user_requests(emu)[0].params["filter"] == email_filter(odd)


def test_plain_json_content_type_is_accepted(connect: Any, httpx_mock: HTTPXMock) -> None:
    plain = {"content-type": "application/json"}
    httpx_mock.add_response(
        url=f"{BASE}/ServiceProviderConfig", json={"etag": {"supported": True}}, headers=plain
    )
    httpx_mock.add_response(
        url=f"{BASE}/Users?startIndex=1&count=100",
        json={"totalResults": 1, "Resources": [{"id": "1", "userName": "u"}]},
        headers=plain,
    )
    httpx_mock.add_response(
        url=f"{BASE}/Users/1",
        content=json.dumps({"id": "1", "userName": "u"}).encode(),
        headers={**plain, "etag": 'W/"9"'},
    )
    d = connect("scim", token=TOKEN, base_url=BASE)
    assert [u.username for u in d.iter_users()] == ["u"]
    user = d.get_user("1")
    assert (user.username, user.version) == ("u", 'W/"9"')  # the ETag header


# -- the first page goes out alongside discovery -----------------------------------------


class _Wrapped(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The emulator's transport behind ``before(request)``: a Response to answer with
    instead, or None; and an optional hold of the discovery request."""

    def __init__(
        self,
        emu: ScimEmulator,
        before: Any = None,
        hold_discovery_until_a_page: bool = False,
    ) -> None:
        self.emu = emu
        self.before = before or (lambda request: None)
        self.hold = hold_discovery_until_a_page
        self.page_seen = threading.Event()
        self.released = False

    def _see(self, request: httpx.Request) -> bool:
        if request.url.path.endswith("/Users"):
            self.page_seen.set()
        return self.hold and request.url.path.endswith("/ServiceProviderConfig")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._see(request):
            self.released = self.page_seen.wait(10)
        return self.before(request) or self.emu.transport.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._see(request):
            deadline = time.monotonic() + 10
            while not self.page_seen.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
            self.released = self.page_seen.is_set()
        return self.before(request) or await self.emu.transport.handle_async_request(request)


def test_the_first_page_goes_out_alongside_discovery(connect: Any) -> None:
    # Discovery is held until a page is asked: a client that waited for it first would
    # never release it. The page guessed before discovery is the walk's: not asked twice.
    emu = emulator(250)
    transport = _Wrapped(emu, hold_discovery_until_a_page=True)
    d = connect("scim", token=emu.token, base_url=BASE, transport=transport)
    assert [u.id for u in d.iter_users()] == [u["id"] for u in emu.users]
    assert transport.released
    paths = [r.path for r in emu.requests]
    assert paths.count("/scim/v2/ServiceProviderConfig") == 1
    starts = [r.params["startIndex"] for r in user_requests(emu)]
    assert sorted(starts, key=int) == ["1", "101", "201"]  # no page twice
    # later listings do not ask for the config again, nor guess
    assert len(list(d.iter_users())) == 250
    assert [r.path for r in emu.requests].count("/scim/v2/ServiceProviderConfig") == 1
    assert len(user_requests(emu)) == 6


def test_concurrency_1_reads_the_config_before_any_page(connect: Any) -> None:
    emu = emulator(250)
    transport = _Wrapped(emu, hold_discovery_until_a_page=True)
    d = connect("scim", token=emu.token, base_url=BASE, transport=transport, concurrency=1)
    transport.hold = False  # one request at a time: nothing may go alongside the config
    assert len(list(d.iter_users())) == 250
    paths = [r.path for r in emu.requests]
    assert paths[0] == "/scim/v2/ServiceProviderConfig"
    assert [r.params["startIndex"] for r in user_requests(emu)] == ["1", "101", "201"]


def test_a_failed_guess_of_the_first_page_is_asked_again_with_retries(connect: Any) -> None:
    emu = emulator(7)
    failed: list[str] = []

    def first_page_fails_once(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/Users") and not failed:
            failed.append(str(request.url))
            return httpx.Response(503, json={"detail": "busy", "status": "503"})
        return None

    d = connect(
        "scim", token=emu.token, base_url=BASE, transport=_Wrapped(emu, first_page_fails_once)
    )
    assert [u.id for u in d.iter_users()] == [u["id"] for u in emu.users]
    assert len(failed) == 1
    assert [r.params["startIndex"] for r in user_requests(emu)] == ["1"]


def test_discovery_failing_fails_the_listing_as_before(connect: Any) -> None:
    emu = emulator(7)

    def config_refused(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/ServiceProviderConfig"):
            return httpx.Response(401, json={"detail": "bad token", "status": "401"})
        return None

    d = connect("scim", token=emu.token, base_url=BASE, transport=_Wrapped(emu, config_refused))
    with pytest.raises(userdir.AuthenticationError):
        list(d.iter_users())
    # the guessed page (one attempt) at most; nothing of the walk
    assert len(user_requests(emu)) <= 1
    assert not [t for t in threading.enumerate() if t.name.startswith("userdir-scim")]
