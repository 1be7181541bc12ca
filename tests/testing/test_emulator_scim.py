"""ScimEmulator: discovery, listing, filters, PATCH, ETags, errors, quirks, faults, serving."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import httpx
import pytest

import userdir
from userdir.testing import Fault, ScimEmulator
from userdir.testing.__main__ import main as serve_main
from userdir.testing._scim_protocol import ScimProblem, apply_patch, parse_filter

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
HEADERS = {"Authorization": "Bearer test-token"}


def client(emu: ScimEmulator, **headers: str) -> httpx.Client:
    return httpx.Client(
        transport=emu.transport,
        base_url="https://scim.test/scim/v2",
        headers={**HEADERS, **headers},
    )


def seeded(n: int, **kw: Any) -> ScimEmulator:
    emu = ScimEmulator(**kw)
    emu.populate(n)
    return emu


def test_auth_is_required_everywhere() -> None:
    emu = seeded(1)
    with httpx.Client(transport=emu.transport, base_url="https://s/scim/v2") as c:
        for path in ("/Users", "/ServiceProviderConfig", "/Schemas"):
            response = c.get(path)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Bearer realm="SCIM"'
            assert response.json()["status"] == "401"


def test_discovery_endpoints() -> None:
    with client(seeded(0, max_results=25, cursor=True, etag=False)) as c:
        spc = c.get("/ServiceProviderConfig").json()
        assert spc["filter"] == {"supported": True, "maxResults": 25}
        assert spc["etag"] == {"supported": False}
        assert spc["pagination"]["cursor"] is True
        types = c.get("/ResourceTypes").json()
        assert [t["id"] for t in types["Resources"]] == ["User"]
        assert c.get("/ResourceTypes/User").json()["schema"].endswith("core:2.0:User")
        schemas = c.get("/Schemas").json()["Resources"]
        assert {s["id"] for s in schemas} == {
            "urn:ietf:params:scim:schemas:core:2.0:User",
            ENTERPRISE,
        }
        assert c.get("/Schemas/nope").status_code == 404
        assert c.post("/ServiceProviderConfig", json={}).status_code == 405
        assert c.get("/Nowhere").status_code == 404


def test_announce_overrides_what_is_served() -> None:
    emu = ScimEmulator(patch=False, announce={"patch": {"supported": True}})
    assert emu.service_provider_config()["patch"] == {"supported": True}


def test_paging_semantics() -> None:
    emu = seeded(12, max_results=5)
    ids = [u["id"] for u in emu.users]
    with client(emu) as c:
        page = c.get("/Users", params={"startIndex": 0, "count": 100}).json()
        assert (page["totalResults"], page["itemsPerPage"], page["startIndex"]) == (12, 5, 1)
        assert [u["id"] for u in page["Resources"]] == ids[:5]
        tail = c.get("/Users", params={"startIndex": 11, "count": 5}).json()
        assert [u["id"] for u in tail["Resources"]] == ids[10:]
        assert c.get("/Users", params={"startIndex": 40}).json()["Resources"] == []
        assert c.get("/Users", params={"count": 0}).json()["Resources"] == []
        assert c.get("/Users", params={"count": "x"}).json()["scimType"] == "invalidValue"


def test_cursor_paging_and_a_bad_cursor() -> None:
    emu = seeded(7, max_results=3, cursor=True)
    with client(emu) as c:
        seen, cursor = [], ""
        while True:
            page = c.get("/Users", params={"cursor": cursor, "count": 3}).json()
            seen += [u["id"] for u in page["Resources"]]
            if "nextCursor" not in page:
                break
            cursor = page["nextCursor"]
        assert seen == [u["id"] for u in emu.users]
        bad = c.get("/Users", params={"cursor": "garbage"})
        assert (bad.status_code, bad.json()["scimType"]) == (400, "invalidCursor")
    with client(seeded(1)) as c:
        assert c.get("/Users", params={"cursor": ""}).status_code == 501


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "ADA@example.com"', [0]),
        ('emails[value eq "bob@example.com"] or emails[type eq "home"]', [1, 2]),
        ('emails.value ew "example.com" and not (active eq false)', [0, 1]),
        ("title pr", [2]),
        ('displayName sw "B" or displayName co "ar"', [1, 2]),
        (f'{ENTERPRISE}:department eq "R&D"', [2]),
        ('meta.created gt "2024-01-01T00:00:00Z"', [1, 2]),
    ],
)
def test_filters(text: str, expected: list[int]) -> None:
    users = [
        {"userName": "ada@example.com", "displayName": "Ada", "active": True,
         "emails": [{"value": "ada@example.com", "type": "work"}],
         "meta": {"created": "2023-01-01T00:00:00Z"}},
        {"userName": "bob", "displayName": "Bob", "active": True,
         "emails": [{"value": "bob@example.com"}], "meta": {"created": "2024-06-01T00:00:00Z"}},
        {"userName": "carla", "displayName": "Carla", "active": False, "title": "Boss",
         "emails": [{"value": "c@home.test", "type": "home"}], ENTERPRISE: {"department": "R&D"},
         "meta": {"created": "2025-06-01T00:00:00Z"}},
    ]  # fmt: skip
    predicate = parse_filter(text)
    assert [i for i, u in enumerate(users) if predicate(u)] == expected


@pytest.mark.parametrize("text", ["userName eq", 'userName xx "a"', '(userName eq "a"', 'eq "a"'])
def test_bad_filters(text: str) -> None:
    with pytest.raises(ScimProblem) as raised:
        parse_filter(text)
    assert raised.value.scim_type == "invalidFilter"


def test_email_filters_use_the_index_and_match_case_insensitively() -> None:
    emu = seeded(50)
    emails = [emu.users[i]["emails"][0]["value"] for i in (3, 30, 7)]
    text = " or ".join(f'emails[value eq "{e.upper()}"]' for e in emails)
    with client(emu) as c:
        page = c.get("/Users", params={"filter": text}).json()
    assert [u["id"] for u in page["Resources"]] == [emu.users[i]["id"] for i in (3, 7, 30)]


def test_patch_operations() -> None:
    user = {"userName": "a", "emails": [{"value": "a@x.com", "type": "work"}], "roles": []}
    changed = apply_patch(
        user,
        {
            "Operations": [
                {"op": "Replace", "path": "displayName", "value": "A"},  # Entra's capitals
                {"op": "Add", "path": 'emails[type eq "home"].value', "value": "h@x.com"},
                {"op": "replace", "path": 'emails[type eq "work"].value', "value": "w@x.com"},
                {"op": "add", "value": {"title": "T", ENTERPRISE: {"department": "D"}}},
                {"op": "remove", "path": "roles"},
            ]
        },
    )
    assert changed == {
        "userName": "a",
        "displayName": "A",
        "emails": [{"value": "w@x.com", "type": "work"}, {"type": "home", "value": "h@x.com"}],
        "title": "T",
        ENTERPRISE: {"department": "D"},
    }
    assert user["roles"] == []  # a copy was changed
    for body, scim_type in [
        ({"Operations": [{"op": "remove"}]}, "noTarget"),
        ({"Operations": [{"op": "move", "path": "title"}]}, "invalidSyntax"),
        ({"Operations": [{"op": "replace", "path": "id", "value": "x"}]}, "mutability"),
        ({"Operations": [{"op": "remove", "path": 'emails[type eq "x"]'}]}, "noTarget"),
        ({"Operations": []}, "invalidSyntax"),
    ]:
        with pytest.raises(ScimProblem) as raised:
            apply_patch(user, body)
        assert raised.value.scim_type == scim_type


def test_write_cycle_with_etags() -> None:
    emu = ScimEmulator()
    with client(emu) as c:
        created = c.post("/Users", json={"userName": "ada", "password": "pw"})
        assert created.status_code == 201
        assert created.headers["content-type"] == "application/scim+json"
        user = created.json()
        assert "password" not in user and emu.password_of(user["id"]) == "pw"
        version = created.headers["etag"]
        assert user["meta"]["version"] == version
        assert created.headers["location"].endswith(f"/Users/{user['id']}")
        assert c.get(f"/Users/{user['id']}", headers={"If-None-Match": version}).status_code == 304
        patched = c.patch(
            f"/Users/{user['id']}",
            headers={"If-Match": version},
            json={"Operations": [{"op": "replace", "path": "active", "value": False}]},
        )
        assert patched.status_code == 200 and patched.json()["active"] is False
        stale = c.patch(
            f"/Users/{user['id']}",
            headers={"If-Match": version},
            json={"Operations": [{"op": "replace", "path": "active", "value": True}]},
        )
        assert stale.status_code == 412
        assert c.delete(f"/Users/{user['id']}", headers={"If-Match": version}).status_code == 412
        assert c.post("/Users", json={"userName": "ADA"}).json()["scimType"] == "uniqueness"
        assert c.delete(f"/Users/{user['id']}").status_code == 204
        assert c.get(f"/Users/{user['id']}").status_code == 404
    assert len(emu) == 0  # the duplicate was refused, ada deleted


def test_put_replaces_and_patch_can_be_switched_off() -> None:
    emu = seeded(1, patch=False)
    user = emu.users[0]
    with client(emu) as c:
        patch = c.patch(
            f"/Users/{user['id']}", json={"Operations": [{"op": "remove", "path": "title"}]}
        )
        assert patch.status_code == 501
        put = c.put(f"/Users/{user['id']}", json={"userName": user["userName"], "displayName": "P"})
        assert put.status_code == 200
    assert emu.users[0]["displayName"] == "P"
    assert "title" not in emu.users[0]  # PUT replaced the whole user


def test_projections() -> None:
    emu = seeded(2)
    user_id = emu.users[0]["id"]
    with client(emu) as c:
        only = c.get(f"/Users/{user_id}", params={"attributes": "userName,name.givenName"}).json()
        assert set(only) == {"schemas", "id", "meta", "userName", "name"}
        assert set(only["name"]) == {"givenName"}
        without = c.get("/Users", params={"excludedAttributes": "emails"}).json()["Resources"]
        assert all("emails" not in u and "userName" in u for u in without)
        search = c.post("/Users/.search", json={"attributes": ["displayName"], "count": 1}).json()
        assert set(search["Resources"][0]) == {"schemas", "id", "meta", "displayName"}


@pytest.mark.parametrize(
    ("quirk", "check"),
    [
        ("status_number", lambda r: r.json()["status"] == 404),
        ("no_schemas", lambda r: "schemas" not in r.json()),
        ("wrapped_errors", lambda r: r.json()["error"]["status"] == "404"),
        ("plain_json", lambda r: r.headers["content-type"] == "application/json"),
    ],
)
def test_error_quirks(quirk: str, check: Any) -> None:
    with client(ScimEmulator(quirks={quirk})) as c:
        response = c.get("/Users/missing")
    assert response.status_code == 404
    assert check(response)


def test_listing_quirks() -> None:
    emu = seeded(3, quirks={"requires_filter", "no_email_filter", "requires_paging"})
    with client(emu) as c:
        assert c.get("/Users").json()["scimType"] == "invalidFilter"
        refused = c.get("/Users", params={"filter": 'emails[value eq "a@x.com"]'})
        assert refused.json()["scimType"] == "invalidFilter"
        name = emu.users[0]["userName"]
        unpaged = c.get("/Users", params={"filter": f'userName eq "{name}"'}).json()
        assert (unpaged["totalResults"], unpaged["Resources"]) == (1, [])
        paged = c.get(
            "/Users", params={"filter": f'userName eq "{name}"', "startIndex": 1, "count": 5}
        ).json()
        assert [u["id"] for u in paged["Resources"]] == [emu.users[0]["id"]]
    with pytest.raises(ValueError, match="unknown quirk"):
        ScimEmulator(quirks={"sloppy"})


def test_patch_without_content_quirk() -> None:
    emu = seeded(1, quirks={"patch_no_content"})
    user_id = emu.users[0]["id"]
    with client(emu) as c:
        response = c.patch(
            f"/Users/{user_id}",
            json={"Operations": [{"op": "replace", "path": "title", "value": "X"}]},
        )
    assert (response.status_code, response.content) == (204, b"")
    assert response.headers["etag"] == emu.version_of(user_id)


def test_add_user_neutral_fields() -> None:
    emu = ScimEmulator()
    user_id = emu.add_user(
        email="ada@example.com", name="Ada", role="admin", status="inactive", department="R&D"
    )
    (user,) = emu.users
    assert user["id"] == user_id
    assert (user["userName"], user["displayName"], user["active"]) == (
        "ada@example.com",
        "Ada",
        False,
    )
    assert user["roles"] == [{"value": "admin", "primary": True}]
    assert user[ENTERPRISE] == {"department": "R&D"}
    emu.add_user(email="b@x.com", name="B", status="unknown")
    assert "active" not in emu.users[1]
    with pytest.raises(ValueError, match="no pending"):
        emu.add_user(email="c@x.com", name="C", status="pending")
    with pytest.raises(ValueError, match="already exists"):
        emu.add_user(email="ADA@example.com", name="Again")


def test_populate_is_deterministic() -> None:
    a, b = seeded(20), seeded(20)
    strip = [{k: v for k, v in u.items() if k != "meta"} for u in a.users]
    assert strip == [{k: v for k, v in u.items() if k != "meta"} for u in b.users]
    assert len({u["userName"] for u in a.users}) == 20
    assert any(ENTERPRISE in u and "manager" in u[ENTERPRISE] for u in a.users)


def test_faults_and_request_log_sync_and_async() -> None:
    emu = seeded(2)
    emu.inject(Fault.rate_limited(retry_after=3), times=1)
    with client(emu) as c:
        limited = c.get("/Users")
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "3"
        assert limited.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert c.get("/Users", params={"count": 1}).status_code == 200

    async def go() -> int:
        async with httpx.AsyncClient(
            transport=emu.transport, base_url="https://s/scim/v2", headers=HEADERS
        ) as ac:
            return (await ac.get("/ServiceProviderConfig")).status_code

    assert asyncio.run(go()) == 200
    log = emu.requests
    assert [(r.method, r.path, r.status, r.fault) for r in log] == [
        ("GET", "/scim/v2/Users", 429, "rate_limited"),
        ("GET", "/scim/v2/Users", 200, None),
        ("GET", "/scim/v2/ServiceProviderConfig", 200, None),
    ]
    assert log[1].params == {"count": "1"}


def test_served_over_http() -> None:
    emu = seeded(3)
    with emu.serve() as url, httpx.Client(base_url=url + emu.base_path, headers=HEADERS) as c:
        page = c.get("/Users", params={"startIndex": 1, "count": 2}).json()
    assert (page["totalResults"], len(page["Resources"])) == (3, 2)


def test_serve_scim_prints_its_base_url() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "userdir.testing", "serve", "scim", "--users", "4"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        assert line[0] == "READY" and line[2:] == ["scim", "token=test-token"]
        assert line[1].endswith("/scim/v2")
        with httpx.Client(headers=HEADERS) as c:
            assert c.get(f"{line[1]}/Users").json()["totalResults"] == 4
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None
        process.stdout.close()


def test_serve_help_names_scim(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        serve_main(["serve", "--help"])
    assert "scim token=test-token" in " ".join(capsys.readouterr().out.split())


def test_endpoints_live_under_the_base_path_only() -> None:
    emu = seeded(2)
    with httpx.Client(transport=emu.transport, base_url="https://scim.test", headers=HEADERS) as c:
        assert c.get("/scim/v2/Users").json()["totalResults"] == 2
        for wrong in ("/Users", "/v2/Users", "/scim/Users", "/api/scim/v2/Users", "/scim/v2"):
            answer = c.get(wrong)
            assert answer.status_code == 404, wrong
            assert answer.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert c.get("/scim/v2/Nothing").status_code == 404


def test_a_custom_base_path_in_process_and_served() -> None:
    emu = ScimEmulator(base_path="/api/scim/", max_results=5)
    emu.populate(3)
    assert (emu.base_path, emu.inprocess_url) == ("/api/scim", "https://scim.test/api/scim")
    with userdir.connect("scim", **emu.connect_options()) as d:
        assert len(list(d.iter_users())) == 3
    with emu.serve() as url:
        with userdir.connect("scim", **emu.connect_options(url)) as d:
            assert len(list(d.iter_users())) == 3
        with httpx.Client(base_url=url, headers=HEADERS) as c:
            assert c.get("/scim/v2/Users").status_code == 404
            assert c.get("/api/scim/Users").json()["totalResults"] == 3
    for bad in ("scim/v2", "/scim?x", "/scim#x", 5):
        with pytest.raises(ValueError, match="base_path"):
            ScimEmulator(base_path=bad)
