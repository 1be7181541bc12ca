"""Reconcile matched by external id: the target's ``external_id`` holds the source
account's ``id`` (SCIM's ``externalId``), so a mover whose email changed is an update,
not a deactivation and a create. Planning from lists, then end to end against the SCIM
emulator, blocking and asyncio."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import userdir
from userdir import (
    Create,
    Deactivate,
    DirectoryUser,
    Limits,
    NewUser,
    Plan,
    Protect,
    Skip,
    Update,
    UserChanges,
    UserStatus,
)
from userdir.testing import RestEmulator, ScimEmulator

from .conftest import Harness

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


def hr(user_id: str, email: str, name: str = "", **kw: Any) -> DirectoryUser:
    return DirectoryUser(id=user_id, provider="rest", email=email, name=name or None, **kw)


def app(user_id: str, email: str, external_id: str | None = None, **kw: Any) -> DirectoryUser:
    return DirectoryUser(
        id=user_id,
        provider="scim",
        email=email,
        external_id=external_id,
        status=kw.pop("status", UserStatus.ACTIVE),
        **kw,
    )


def by_id(source: list[DirectoryUser], target: list[DirectoryUser], **kw: Any) -> Plan:
    kw.setdefault("limits", Limits.none())
    return userdir.plan(source, target, match="external_id", now=NOW, **kw)


def kinds(plan: Plan) -> set[tuple[str, str | None, str | None]]:
    return {(a.kind, a.email_key, a.user_id) for a in plan.actions}


# -- planning -------------------------------------------------------------------------


def test_a_mover_whose_email_changed_is_one_update() -> None:
    source = [hr("e1", "ada.king@example.com", "Ada King")]
    target = [app("u1", "ada@example.com", "e1", name="Ada King")]
    plan = by_id(source, target)
    (action,) = plan.actions
    assert isinstance(action, Update)
    assert (action.user_id, action.email_key) == ("u1", "ada@example.com")
    assert dict(action.changes) == {"email": "ada.king@example.com"}
    # matched by email, the same change is a leaver and a joiner
    by_email = userdir.plan(source, target, now=NOW, limits=Limits.none())
    assert {a.kind for a in by_email.actions} == {"create", "deactivate"}


def test_a_change_of_case_only_is_no_email_change() -> None:
    plan = by_id([hr("e1", "Ada@Example.com", "Ada")], [app("u1", "ada@example.com", "e1")])
    assert [dict(a.changes) for a in plan.actions if isinstance(a, Update)] == [{"name": "Ada"}]


def test_an_account_not_linked_yet_is_matched_by_email_and_linked() -> None:
    source = [hr("e1", "ada@example.com", "Ada"), hr("e2", "grace@example.com", "Grace")]
    target = [
        app("u1", "ada@example.com", name="Ada"),
        app("u2", "grace@example.com", "e2", name="Grace"),
    ]
    plan = by_id(source, target, fields=["name"])
    (action,) = plan.actions
    assert isinstance(action, Update)
    assert (action.user_id, dict(action.changes)) == ("u1", {"external_id": "e1"})


def test_a_create_carries_the_source_id() -> None:
    plan = by_id([hr("e9", "new@example.com", "New Joiner", role="eng")], [])
    (action,) = plan.actions
    assert isinstance(action, Create)
    assert dict(action.fields) == {"name": "New Joiner", "role": "eng", "external_id": "e9"}


def test_an_account_linked_to_someone_gone_is_a_leaver_even_with_a_matching_email() -> None:
    # e1 left; their email was given to e2: the old account is not e2's
    source = [hr("e2", "ada@example.com", "Ada Two")]
    target = [app("u1", "ada@example.com", "e1")]
    plan = by_id(source, target)
    assert kinds(plan) == {
        ("deactivate", "ada@example.com", "u1"),
        ("skip", "ada@example.com", None),
    }
    (skip,) = [a for a in plan.actions if isinstance(a, Skip)]
    assert "linked to another id than 'e2'" in skip.reason
    assert plan.counts["create"] == 0


def test_a_linked_person_without_a_usable_email_in_the_source_keeps_the_account() -> None:
    source = [
        DirectoryUser(id="e1", provider="rest", name="No Email"),
        hr("e2", "bo@example.com", "Bo"),
        hr("e3", "bo@example.com", "Bo Two"),  # the same email: e2, the first, has it
        hr("e4", "cy@example.com", status=UserStatus.INACTIVE),
    ]
    target = [
        app("u1", "ada@example.com", "e1"),
        app("u2", "bo@example.com", "e2", name="Bo"),
        app("u3", "bo.two@example.com", "e3"),
        app("u4", "cy@example.com", "e4"),
    ]
    plan = by_id(source, target)
    assert {(a.kind, a.user_id) for a in plan.actions} == {
        ("skip", "u1"),
        ("skip", "u3"),
        ("deactivate", "u4"),  # inactive in the source: a leaver, as ever
    }
    assert {a.reason for a in plan.actions if isinstance(a, Skip)} == {
        "the source's 'e1' has no usable email of its own",
        "the source's 'e3' has no usable email of its own",
    }


def test_two_accounts_with_one_external_id_are_left_alone() -> None:
    source = [hr("e1", "ada@example.com")]
    target = [app("u1", "ada@example.com", "e1"), app("u2", "ada2@example.com", "e1")]
    plan = by_id(source, target)
    assert kinds(plan) == {("skip", "ada@example.com", "u1"), ("skip", "ada2@example.com", "u2")}
    assert {a.reason for a in plan.actions if isinstance(a, Skip)} == {
        "another account in the target has this external id"
    }


def test_a_new_email_held_by_another_account_is_not_taken() -> None:
    source = [hr("e1", "ada@example.com")]
    target = [app("u1", "ada.old@example.com", "e1"), app("u2", "ada@example.com")]
    plan = by_id(source, target)
    skipped = {a.user_id: a.reason for a in plan.actions if isinstance(a, Skip)}
    assert skipped == {
        "u1": "the new email 'ada@example.com' is another target account's",
        "u2": "the source's 'e1' has another account, linked by external id",
    }
    assert plan.counts["changes"] == 0


def test_protection_and_leavers_work_as_by_email() -> None:
    source = [
        hr("e1", "ada.new@example.com"),
        hr("e2", "bo@example.com", status=UserStatus.INACTIVE),
    ]
    target = [
        app("u1", "ada@example.com", "e1", role="owner"),
        app("u2", "bo@example.com", "e2"),
        app("u3", "cy@example.com"),
    ]
    plan = by_id(source, target, protect=Protect(roles=["owner"]))
    assert kinds(plan) == {
        ("skip", "ada@example.com", "u1"),
        ("deactivate", "bo@example.com", "u2"),
        ("deactivate", "cy@example.com", "u3"),
    }
    (skip,) = [a for a in plan.actions if isinstance(a, Skip)]
    assert skip.reason == "protected role owner: would update"


@pytest.mark.parametrize("named", ["ada@example.com", "ada.king@example.com", "ADA*"])
def test_only_takes_a_mover_and_their_account_together(named: str) -> None:
    source = [hr("e1", "ada.king@example.com", "Ada"), hr("e2", "bo@example.com")]
    target = [
        app("u1", "ada@example.com", "e1", name="Ada"),
        app("u2", "bo@example.com", "e2"),
        app("u3", "zed@example.com"),
    ]
    plan = by_id(source, target, only=[named])
    (action,) = plan.actions  # neither a create nor a deactivation of Ada's account
    assert isinstance(action, Update) and action.user_id == "u1"
    assert dict(action.changes) == {"email": "ada.king@example.com"}
    assert plan.source_count == plan.target_count == 1


def test_an_email_held_by_an_account_left_out_by_only_is_not_taken() -> None:
    source = [hr("e1", "ada.king@example.com")]
    target = [app("u1", "ada@example.com", "e1"), app("u2", "ada.king@example.com")]
    plan = by_id(source, target, only=["ada@example.com"])
    (action,) = plan.actions
    assert isinstance(action, Skip) and action.user_id == "u1"
    assert "another target account's" in action.reason


def test_plan_files_keep_the_match_and_the_new_fields(tmp_path: Any) -> None:
    plan = by_id(
        [hr("e1", "ada@example.com", "Ada King"), hr("e2", "new@example.com", "New")],
        [app("u1", "ada@example.com", name="Ada")],
    )
    assert {a.kind for a in plan.actions} == {"create", "update"}
    path = tmp_path / "plan.json"
    plan.save(path)
    loaded = Plan.load(path)
    assert loaded == plan and loaded.intact
    assert loaded.settings["match"] == "external_id"
    document = plan.to_dict()
    update = next(a for a in document["actions"] if a["kind"] == "update")
    update["changes"]["username"] = "x"
    with pytest.raises(userdir.InvalidArgumentError, match="unknown field 'username'"):
        Plan.from_dict(document)


def test_a_target_that_keeps_no_external_id_is_refused_before_listing() -> None:
    rest = RestEmulator()
    rest.add_user(email="ada@example.com", name="Ada")
    with userdir.connect("rest", **rest.connect_options()) as target:
        assert target.capabilities.external_id is False
        with pytest.raises(userdir.InvalidArgumentError, match="keeps no external id"):
            userdir.plan([hr("e1", "ada@example.com")], target, match="external_id")
        assert rest.requests == []
        # a plan made from lists that sets external ids is refused by apply, unsent
        plan = by_id([hr("e1", "ada@example.com")], [rest_user(target)])
        with pytest.raises(userdir.UnsupportedOperationError, match="external id of 1"):
            userdir.apply(plan, target)
        assert [r.method for r in rest.requests] == ["GET"]
        with pytest.raises(userdir.UnsupportedOperationError, match="keeps no external id"):
            target.create_user(NewUser(email="b@example.com", name="B", external_id="e2"))
        user_id = rest.users[0]["id"]
        with pytest.raises(userdir.UnsupportedOperationError, match="keeps no external id"):
            target.update_user(user_id, UserChanges(external_id="e1"))
        assert [r.method for r in rest.requests] == ["GET"]


def test_the_rest_dialect_itself_refuses_an_external_id() -> None:
    dialect = userdir.providers.RestDialect(token="t", base_url="https://rest.test")
    with pytest.raises(userdir.InvalidArgumentError, match="REST keeps no external id"):
        dialect.create_request(
            NewUser(email="a@example.com", name="A", password="p", external_id="e1")
        )
    with pytest.raises(userdir.InvalidArgumentError, match="REST keeps no external id"):
        dialect.update_request("usr_1", UserChanges(name="A", external_id="e1"))
    assert dialect.update_request("usr_1", UserChanges(name="A")).json == {"name": "A"}


def rest_user(target: Any) -> DirectoryUser:
    (user,) = target.iter_users()
    return user  # type: ignore[no-any-return]


def test_config_tables_take_the_match(tmp_path: Any) -> None:
    from userdir import reconcile_settings

    path = tmp_path / "userdir.toml"
    path.write_text('[reconcile.hr]\nsource = "hr"\ntarget = "app"\nmatch = "external_id"\n')
    assert reconcile_settings(path, "hr") == {"match": "external_id"}
    path.write_text('[reconcile.hr]\nmatch = "username"\n')
    with pytest.raises(userdir.ConfigError, match=r"\[reconcile.hr\]: match must be one of"):
        reconcile_settings(path, "hr")


# -- end to end, the SCIM emulator ----------------------------------------------------


def test_link_then_a_mover_keeps_their_account(rc: Harness) -> None:
    hr, app = RestEmulator(token="hr-token"), ScimEmulator()
    source, target = rc.connect(hr), rc.connect(app)
    ada = hr.add_user(email="ada@example.com", name="Ada Lovelace")
    grace = hr.add_user(email="grace@example.com", name="Grace Hopper")
    kept = app.add_user(email="ada@example.com", name="Ada Lovelace")
    settings: dict[str, Any] = {"match": "external_id", "limits": Limits.none()}

    # first run: Ada's account is linked, Grace joins carrying her HR id
    plan = rc.plan(source, target, **settings)
    result = rc.apply(plan, target)
    assert result.ok, result.failed
    assert {(a.kind, a.email_key) for a in plan.changes} == {
        ("update", "ada@example.com"),
        ("create", "grace@example.com"),
    }
    accounts = {u["id"]: u for u in app.users}
    assert accounts[kept]["externalId"] == ada
    (created,) = [a for a in accounts.values() if a["userName"] == "grace@example.com"]
    assert created["externalId"] == grace

    # Ada marries and changes her email in HR: one update, the same account
    with userdir.connect("rest", **hr.connect_options()) as hr_admin:
        hr_admin.update_user(ada, UserChanges(email="ada.king@example.com", name="Ada King"))
    plan = rc.plan(source, target, **settings)
    result = rc.apply(plan, target)
    assert result.ok, result.failed
    (update,) = plan.changes
    assert isinstance(update, Update) and update.user_id == kept
    assert dict(update.changes) == {"email": "ada.king@example.com", "name": "Ada King"}
    accounts = {u["id"]: u for u in app.users}
    account = accounts[kept]
    assert [e["value"] for e in account["emails"]] == ["ada.king@example.com"]
    assert (account["displayName"], account["externalId"]) == ("Ada King", ada)
    assert len(accounts) == 2
    assert not any(isinstance(a, (Create, Deactivate)) for a in plan.actions)

    # nothing left to do
    assert rc.plan(source, target, **settings).counts["changes"] == 0


def test_the_scim_mapping_and_writes_carry_the_external_id() -> None:
    emu = ScimEmulator()
    with userdir.connect("scim", **emu.connect_options()) as d:
        assert d.capabilities.external_id is True
        created = d.create_user(NewUser(email="a@example.com", name="A", external_id="hr-1"))
        assert created.external_id == "hr-1"
        assert created.extra["externalId"] == "hr-1"  # still there, as before
        posted = next(r for r in emu.requests if r.method == "POST")
        assert b'"externalId":"hr-1"' in posted.body.replace(b" ", b"")
        changed = d.update_user(created.id, UserChanges(external_id="hr-2"))
        assert changed.external_id == "hr-2"
        assert emu.users[0]["externalId"] == "hr-2"
        assert d.get_user(created.id).to_scim()["externalId"] == "hr-2"
        plain = d.create_user(NewUser(email="b@example.com", name="B"))
        assert plain.external_id is None and "externalId" not in emu.users[1]
    with pytest.raises(userdir.MalformedResponseError, match=r"user\.externalId: expected a"):
        userdir.providers.scim.parse_scim_user({"id": "1", "externalId": 7})


# -- the property: linked, moved and unlinked accounts all end up agreeing ------------

CURRENT = [f"p{i}@example.com" for i in range(6)]
OLD = [f"old{i}@example.com" for i in range(6)]
OTHERS = [f"x{i}@example.com" for i in range(3)]
person = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["Ada", "Grace", "Alan Turing"]),
        "active": st.booleans(),
        "account": st.sampled_from(["none", "linked", "moved", "unlinked"]),
    }
)
people = st.dictionaries(st.integers(0, len(CURRENT) - 1), person, max_size=len(CURRENT))
strangers = st.dictionaries(st.integers(0, len(OTHERS) - 1), st.booleans())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people=people, strangers=strangers)
def test_applying_a_plan_by_external_id_makes_the_target_agree(
    people: dict[int, dict[str, Any]], strangers: dict[int, bool]
) -> None:
    hr, app = RestEmulator(token="hr-token"), ScimEmulator()
    hr_ids: dict[int, str] = {}
    for i, p in sorted(people.items()):
        status = "active" if p["active"] else "inactive"
        hr_ids[i] = hr.add_user(email=CURRENT[i], name=p["name"], status=status)
        if p["account"] != "none":
            email = OLD[i] if p["account"] == "moved" else CURRENT[i]
            linked = {"externalId": hr_ids[i]} if p["account"] != "unlinked" else {}
            app.add_user(email=email, name="Someone", attributes=linked)
    for j, linked_elsewhere in strangers.items():
        gone = {"externalId": f"gone-{j}"} if linked_elsewhere else None
        app.add_user(email=OTHERS[j], name="X", attributes=gone)
    options: dict[str, Any] = {"match": "external_id", "limits": Limits.none()}
    with (
        userdir.connect("rest", **hr.connect_options()) as source,
        userdir.connect("scim", **app.connect_options()) as target,
    ):
        plan = userdir.plan(source, target, **options)
        assert plan.counts["skip"] == 0
        result = userdir.apply(plan, target)
        assert result.ok, result.failed
        linked_now = {u["externalId"]: u for u in app.users if "externalId" in u}
        for i, p in people.items():
            account = linked_now.get(hr_ids[i])
            if p["active"]:
                assert account is not None
                assert [e["value"] for e in account["emails"]] == [CURRENT[i]]
                assert (account["displayName"], account["active"]) == (p["name"], True)
            elif account is not None:
                assert account["active"] is False
        for u in app.users:
            if u.get("externalId") not in {hr_ids[i] for i, p in people.items() if p["active"]}:
                assert u["active"] is False  # leavers, strangers and unlinked alike
        assert len(app.users) == len([p for p in people.values() if p["account"] != "none"]) + len(
            strangers
        ) + len([p for p in people.values() if p["active"] and p["account"] == "none"])
        again = userdir.plan(source, target, **options)
        assert again.counts["changes"] == 0


@pytest.mark.parametrize("patch", [True, False])
def test_user_name_follows_the_email_where_asked(patch: bool) -> None:
    emu = ScimEmulator(patch=patch)
    ada = emu.add_user(email="ada@example.com", name="Ada")
    bo = emu.add_user(email="bo@example.com", name="Bo")
    options = emu.connect_options()
    with (
        userdir.connect("scim", user_name_follows_email=True, **options) as follows,
        userdir.connect("scim", **options) as plain,
    ):
        moved = follows.update_user(ada, UserChanges(email="ada.king@example.com"))
        assert (moved.email, moved.username) == ("ada.king@example.com", "ada.king@example.com")
        renamed = follows.update_user(ada, UserChanges(name="Ada King"))
        assert renamed.username == "ada.king@example.com"
        kept = plain.update_user(bo, UserChanges(email="bo.new@example.com"))
        assert (kept.email, kept.username) == ("bo.new@example.com", "bo@example.com")
    sent = [r for r in emu.requests if r.method in ("PATCH", "PUT")]
    assert [b"userName" in r.body for r in sent] == (
        [True, False, False] if patch else [True, True, True]  # a PUT sends it all back
    )
    if patch:
        first = sent[0].json["Operations"]
        assert {"op": "replace", "path": "userName", "value": "ada.king@example.com"} in first
    with pytest.raises(userdir.ConfigError, match="user_name_follows_email must be true or false"):
        userdir.connect("scim", user_name_follows_email="yes", **options)
