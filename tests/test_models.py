"""The shared model, the email key and the error tree."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timezone

import attrs
import pytest

import userdir
from userdir import DirectoryUser, UserChanges, UserKind, UserStatus, email_key
from userdir.errors import error_class_for_status


def make_user(**kw: object) -> DirectoryUser:
    base: dict[str, object] = {
        "id": "u1",
        "provider": "rest",
        "email": "Ada@Example.COM",
        "name": "Ada Lovelace",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "role": "admin",
        "status": UserStatus.ACTIVE,
        "created_at": datetime(2023, 1, 15, 8, 30, tzinfo=timezone.utc),
        "updated_at": datetime(2023, 6, 21, 10, 22, 15, tzinfo=timezone.utc),
        "extra": {"settings": {"theme": "dark"}},
        "raw": {"id": "u1", "secret_native": 1},
    }
    base.update(kw)
    return DirectoryUser(**base)  # type: ignore[arg-type]


def test_raw_is_out_of_eq_hash_and_repr() -> None:
    a = make_user(raw={"x": 1})
    b = make_user(raw={"y": 2})
    assert a == b
    assert hash(a) == hash(b)
    assert "secret_native" not in repr(make_user())
    assert a.raw == {"x": 1}
    with pytest.raises(TypeError):
        a.raw["x"] = 2  # type: ignore[index]


def test_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        make_user().email = "x@y.z"  # type: ignore[misc]


def test_email_key_is_derived() -> None:
    assert make_user().email_key == "ada@example.com"
    assert make_user(email=None).email_key is None
    assert make_user(email="not an email").email_key is None
    assert make_user(email="not an email").email == "not an email"


def test_to_dict_is_json_ready() -> None:
    d = make_user().to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["status"] == "active"
    assert d["kind"] == "person"
    assert d["created_at"] == "2023-01-15T08:30:00+00:00"
    assert d["extra"] == {"settings": {"theme": "dark"}}
    assert "raw" not in d
    assert make_user().to_dict(include_raw=True)["raw"] == {"id": "u1", "secret_native": 1}


def test_to_scim() -> None:
    scim = make_user(username="ada").to_scim()
    assert scim["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]
    assert scim["userName"] == "ada"
    assert scim["name"] == {
        "formatted": "Ada Lovelace",
        "givenName": "Ada",
        "familyName": "Lovelace",
    }
    assert scim["displayName"] == "Ada Lovelace"
    assert scim["emails"] == [{"value": "Ada@Example.COM", "type": "work", "primary": True}]
    assert scim["active"] is True
    assert scim["meta"] == {
        "resourceType": "User",
        "created": "2023-01-15T08:30:00+00:00",
        "lastModified": "2023-06-21T10:22:15+00:00",
    }
    bot = DirectoryUser(id="b1", provider="notion", kind=UserKind.BOT).to_scim()
    assert bot["userName"] == "b1"
    assert bot["active"] is False
    assert "emails" not in bot


def test_user_changes_sends_only_what_is_set() -> None:
    assert UserChanges(name="N").fields_set() == {"name": "N"}
    assert UserChanges(status=UserStatus.INACTIVE, settings={}).fields_set() == {
        "status": "inactive",
        "settings": {},
    }
    assert UserChanges().fields_set() == {}


def test_passwords_stay_out_of_repr() -> None:
    new = userdir.NewUser(email="a@b.c", name="A", password="hunter2-S3CR3T")
    assert "hunter2" not in repr(new)
    assert "hunter2" not in repr(UserChanges(password="hunter2-S3CR3T"))
    assert "UNSET" in repr(UserChanges())


def test_page() -> None:
    page = userdir.Page([make_user()], "2")
    assert page.has_more
    assert len(page) == 1
    assert [u.id for u in page] == ["u1"]
    assert not userdir.Page([], None).has_more


def test_capabilities_to_dict() -> None:
    caps = userdir.Capabilities(email_lookup="native", server_filters={"role", "status"})
    assert caps.to_dict()["server_filters"] == ["role", "status"]
    assert not caps.writes


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("  Ada@Example.COM ", "ada@example.com"),
        ("A.B+tag@example.com", "a.b+tag@example.com"),
        ("STRASSE@example.com", "strasse@example.com"),
        ("Straße@example.com", "straße@example.com"),  # lower-cased, not folded
        ("ada@BÜCHER.example", "ada@xn--bcher-kva.example"),
        ("ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example"),
        ("e\u0301@example.com", "\u00e9@example.com"),
        ('"a@b"@example.com', '"a@b"@example.com'),
    ],
)
def test_email_key(given: str, key: str) -> None:
    assert email_key(given) == key


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "ada",
        "@example.com",
        "ada@",
        "a da@example.com",
        "ada@exa\u0000mple.com",
        "a\n@b.c",
        "a@b@c.com",
        "ada@example..com",
        3,
    ],
)
def test_email_key_rejects(bad: object) -> None:
    with pytest.raises(userdir.InvalidArgumentError):
        email_key(bad)  # type: ignore[arg-type]


def test_error_str_is_one_line() -> None:
    err = userdir.UserNotFoundError(
        "no such\nuser",
        provider="notion",
        status_code=404,
        code="object_not_found",
        request_id="r1",
    )
    assert str(err) == "[notion] HTTP 404 (object_not_found): no such user (request_id=r1)"
    assert err.message == "no such\nuser"
    assert isinstance(err, userdir.APIError)
    assert isinstance(userdir.InvalidArgumentError("x"), ValueError)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is userdir.UserNotFoundError
    assert clone.request_id == "r1"
    assert str(clone) == str(err)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, userdir.InvalidRequestError),
        (401, userdir.AuthenticationError),
        (403, userdir.PermissionDeniedError),
        (404, userdir.UserNotFoundError),
        (409, userdir.ConflictError),
        (422, userdir.InvalidRequestError),
        (429, userdir.RateLimitedError),
        (500, userdir.ServerError),
        (529, userdir.ServerError),
        (418, userdir.APIError),
    ],
)
def test_error_class_for_status(status: int, cls: type) -> None:
    assert error_class_for_status(status) is cls


def test_error_tree_is_drawn() -> None:
    doc = userdir.errors.__doc__ or ""
    for name in userdir.errors.__all__:
        if name.endswith("Error"):
            assert name in doc


@pytest.mark.parametrize("provider", ["notion", "org_api", "rest", "scim"])
def test_a_parsed_user_is_the_user_the_class_would_build(provider: str) -> None:
    # The parsers' fast path leaves default fields out of the instance's __dict__; the
    # user must still equal, print, evolve, pickle and export like one built normally.
    from userdir.testing import provider_named

    emulator = provider_named(provider).emulator()
    emulator.populate(5)
    with userdir.connect(provider, **emulator.connect_options()) as directory:
        users = list(directory.iter_users())
    assert len(users) >= 5
    for fast in users:
        built = DirectoryUser(
            **{f.name: getattr(fast, f.name) for f in attrs.fields(DirectoryUser)}
        )
        assert fast == built
        assert hash(fast) == hash(built)
        assert repr(fast) == repr(built)
        assert fast.to_dict(include_raw=True) == built.to_dict(include_raw=True)
        assert attrs.asdict(fast) == attrs.asdict(built)
        clone = pickle.loads(pickle.dumps(fast))
        assert clone == fast
        assert clone.to_dict(include_raw=True) == fast.to_dict(include_raw=True)
        changed = attrs.evolve(fast, role="owner")
        assert (changed.role, changed.id, changed.kind) == ("owner", fast.id, fast.kind)
