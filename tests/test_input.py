"""Input and output: options checked at connect(), emails keyed without joining
mailboxes, and a CLI that writes any data it is given without crashing."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import userdir
import userdir.registry
from userdir import InvalidArgumentError, Retries, email_key
from userdir._http import DEFAULT_TIMEOUT
from userdir.cli import USER_COLUMNS, main
from userdir.emails import MAX_EMAIL_LENGTH, try_email_key
from userdir.testing import Emulator, NotionEmulator, OrgApiEmulator, RestEmulator

from .test_hostile import make_emulator, options

PROVIDERS = ["notion", "org_api", "rest"]
NAN, INF = float("nan"), float("inf")


def add_person(emu: Emulator, email: str, name: str) -> str:
    if isinstance(emu, NotionEmulator):
        return emu.add_user(name=name, email=email)
    if isinstance(emu, OrgApiEmulator):
        return emu.add_user(email=email, first_name=name)
    assert isinstance(emu, RestEmulator)
    return emu.add_user(email=email, name=name)


# -- options at connect() ----------------------------------------------------------------

BAD_TIMEOUTS: list[Any] = [
    0,
    -1,
    NAN,
    INF,
    -INF,
    True,
    "30",
    10**400,
    httpx.Timeout(NAN),
    httpx.Timeout(5.0, read=INF),
    httpx.Timeout(5.0, connect=0),
    httpx.Timeout(5.0, pool=-1.0),
    httpx.Timeout(5.0, write=NAN),
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("timeout", BAD_TIMEOUTS, ids=repr)
def test_bad_timeout_refused_naming_it(
    connect: Callable[..., Any], provider: str, timeout: Any
) -> None:
    emu = make_emulator(provider)
    with pytest.raises(InvalidArgumentError, match="timeout"):
        connect(provider, timeout=timeout, **options(provider, emu))
    assert emu.requests == []


def test_timeout_none_is_the_default_and_no_limit_is_asked_explicitly(
    connect: Callable[..., Any],
) -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.extensions["timeout"])
        return httpx.Response(200, json={"object": "user", "id": "x", "type": "bot", "bot": {}})

    transport = httpx.MockTransport(handler)
    connect("notion", token="t", transport=transport, timeout=None).me()
    connect("notion", token="t", transport=transport, timeout=httpx.Timeout(None)).me()
    connect("notion", token="t", transport=transport, timeout=httpx.Timeout(2.0, read=None)).me()
    connect("notion", token="t", transport=transport, timeout=7).me()
    assert sent[0] == DEFAULT_TIMEOUT.as_dict()
    # No per-phase limit: each phase is then bounded only by the call's whole budget
    # (Retries.timeout, 60 s by default), what is left of it when the attempt starts.
    assert set(sent[1]) == {"connect", "read", "write", "pool"}
    assert all(55.0 < value <= 60.0 for value in sent[1].values())
    assert {k: v for k, v in sent[2].items() if k != "read"} == {
        "connect": 2.0,
        "write": 2.0,
        "pool": 2.0,
    }
    assert 55.0 < sent[2]["read"] <= 60.0
    assert sent[3] == {"connect": 7.0, "read": 7.0, "write": 7.0, "pool": 7.0}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": -3}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"attempts": 2.5}, "attempts"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"timeout": NAN}, "timeout"),
        ({"timeout": INF}, "timeout"),
        ({"timeout": "60"}, "timeout"),
        ({"wait_initial": -0.1}, "wait_initial"),
        ({"wait_initial": NAN}, "wait_initial"),
        ({"wait_max": INF}, "wait_max"),
        ({"wait_max": -1}, "wait_max"),
        ({"max_retry_after": -1}, "max_retry_after"),
        ({"max_retry_after": INF}, "max_retry_after"),
        ({"max_retry_after": NAN}, "max_retry_after"),
    ],
    ids=repr,
)
def test_bad_retries_refused_when_made_and_as_a_mapping(
    connect: Callable[..., Any], fields: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=f"retries: {named} "):
        Retries(**fields)
    emu = RestEmulator()
    with pytest.raises(InvalidArgumentError, match=f"retries: {named} "):
        connect("rest", retries=fields, **options("rest", emu))
    assert emu.requests == []


def test_retries_mapping_with_keys_that_are_not_names() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown retries option"):
        Retries.coerce({1: 2, "attempts": 2})


def test_retries_edges_that_are_allowed() -> None:
    policy = Retries(attempts=1, timeout=0.5, wait_initial=0, wait_max=0, max_retry_after=0)
    assert (policy.attempts, policy.wait_max, policy.max_retry_after) == (1, 0, 0)
    assert Retries.coerce({"attempts": 2, "timeout": 1}) == Retries(attempts=2, timeout=1)


@pytest.mark.parametrize("rate", [NAN, INF, 0, -1, True, "2", 10**400], ids=repr)
def test_bad_max_requests_per_second_refused(connect: Callable[..., Any], rate: Any) -> None:
    emu = RestEmulator()
    with pytest.raises(InvalidArgumentError, match="max_requests_per_second"):
        connect("rest", max_requests_per_second=rate, **options("rest", emu))


@pytest.mark.parametrize("concurrency", [0, -1, 65, NAN, INF, True, 2.0, "4"], ids=repr)
def test_bad_concurrency_refused_before_any_client_opens(
    monkeypatch: pytest.MonkeyPatch, mode: str, concurrency: Any
) -> None:
    opened: list[object] = []
    name = "SyncEngine" if mode == "sync" else "AsyncEngine"
    real = getattr(userdir.registry, name)

    def engine(**kw: Any) -> Any:
        opened.append(kw)
        return real(**kw)

    monkeypatch.setattr(userdir.registry, name, engine)
    opener = userdir.connect if mode == "sync" else userdir.connect_async
    emu = RestEmulator()
    with pytest.raises(InvalidArgumentError, match="concurrency"):
        opener("rest", concurrency=concurrency, **options("rest", emu))
    assert opened == []


def test_bad_options_in_a_config_are_named(tmp_path: Path) -> None:
    for line, named in [
        ("timeout = nan", "timeout"),
        ("timeout = inf", "timeout"),
        ("max_requests_per_second = inf", "max_requests_per_second"),
        ("retries = { attempts = 0 }", "retries: attempts"),
        ("retries = { timeout = -inf }", "retries: timeout"),
        ("concurrency = 0", "concurrency"),
    ]:
        path = tmp_path / "userdir.toml"
        path.write_text(f'[directories.wiki]\nprovider = "notion"\ntoken = "t"\n{line}\n')
        for load in (userdir.load_config, userdir.load_config_async):
            with pytest.raises(userdir.ConfigError, match=named) as caught:
                load(path, strict=True)
            assert "[directories.wiki]" in str(caught.value)


# -- page_size ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_page_size_zero_or_negative_is_refused_not_replaced(
    connect: Callable[..., Any], provider: str
) -> None:
    emu = make_emulator(provider)
    emu.populate(3)
    d = connect(provider, **options(provider, emu))
    for size in (0, -1, 101, True, 2.0):
        with pytest.raises(InvalidArgumentError, match="page_size"):
            list(d.iter_users(page_size=size))
        with pytest.raises(InvalidArgumentError, match="page_size"):
            d.list_page(page_size=size)
    assert emu.requests == []
    # None is the provider's largest page, asked for as such
    assert list(d.iter_users(page_size=None)) == list(d.iter_users(page_size=100))
    sent = emu.requests[0].params
    assert sent.get("page_size", sent.get("limit")) == "100"


# -- emails --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("straße@example.com", "strasse@example.com"),
        ("STRASSE@example.com", "straße@example.com"),
        ("\ufb01nance@example.com", "finance@example.com"),
        ("\u0130@example.com", "i@example.com"),
    ],
)
def test_email_key_keeps_different_mailboxes_apart(a: str, b: str) -> None:
    assert email_key(a) != email_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Ada@Example.COM", "ada@example.com"),
        ("STRAßE@example.com", "straße@example.com"),
        ("e\u0301@example.com", "\u00e9@example.com"),  # NFC
        ("ada@BÜCHER.example", "ada@xn--bcher-kva.example"),  # IDNA for the domain
    ],
)
def test_email_key_still_joins_the_same_mailbox(a: str, b: str) -> None:
    assert email_key(a) == email_key(b)


def test_emails_are_capped_at_254_characters() -> None:
    longest = "a" * (MAX_EMAIL_LENGTH - len("@example.com")) + "@example.com"
    assert email_key(longest) == longest
    assert try_email_key(longest) == longest
    too_long = "a" + longest
    with pytest.raises(InvalidArgumentError, match="at most 254 characters"):
        email_key(too_long)
    assert try_email_key(too_long) is None  # the fast path too
    assert try_email_key("A" + longest) is None
    assert userdir.DirectoryUser(id="u", provider="p", email=too_long).email_key is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_over_long_email_refused_before_sending(connect: Callable[..., Any], provider: str) -> None:
    emu = make_emulator(provider)
    d = connect(provider, **options(provider, emu))
    too_long = "a" * 255 + "@example.com"
    with pytest.raises(InvalidArgumentError, match="at most 254 characters"):
        d.find_user_by_email(too_long)
    with pytest.raises(InvalidArgumentError, match="at most 254 characters"):
        d.find_users_by_email(["ada@example.com", too_long])
    assert emu.requests == []


LOOKALIKES = [
    ("straße@example.com", "Strasse with sharp s"),
    ("strasse@example.com", "Strasse with ss"),
    ("\ufb01nance@example.com", "Finance ligature"),
    ("finance@example.com", "Finance plain"),
    ("Ada@Example.COM", "Ada"),
]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_emulators_and_email_key_agree_on_mailboxes(
    connect: Callable[..., Any], provider: str
) -> None:
    emu = make_emulator(provider)
    ids = {email: add_person(emu, email, name) for email, name in LOOKALIKES}
    if provider != "notion":  # the services that keep emails unique: the same mailbox
        with pytest.raises(ValueError, match="already exists"):
            add_person(emu, "ada@example.com", "Ada again")
    d = connect(provider, **options(provider, emu))
    for email, _name in LOOKALIKES:
        found = d.find_user_by_email(email)
        assert found is not None and found.id == ids[email], email
    found_many = d.find_users_by_email([e for e, _ in LOOKALIKES] + ["ada@example.com"])
    assert {e: u.id for e, u in found_many.items() if u} == {
        **ids,
        "ada@example.com": ids["Ada@Example.COM"],
    }


def test_federation_keeps_lookalike_mailboxes_apart() -> None:
    emulators = {p: make_emulator(p) for p in PROVIDERS}
    for emu in emulators.values():
        for email, name in LOOKALIKES:
            add_person(emu, email, name)
    dirs = {p: userdir.connect(p, **options(p, emu)) for p, emu in emulators.items()}
    with userdir.Federation(dirs) as fed:
        identities = [i for i in fed.identities() if i.email_key]
        assert sorted(i.email_key for i in identities) == sorted(
            email_key(e) for e, _ in LOOKALIKES
        )
        assert all(i.directories == PROVIDERS for i in identities)
        hit = fed.find("strasse@example.com")
        assert {p: u.email for p, u in hit.users.items()} == dict.fromkeys(
            PROVIDERS, "strasse@example.com"
        )
        assert not fed.diff("org_api", "rest").differing


# -- the CLI ---------------------------------------------------------------------------------------

SURROGATE_NAME = "Ada \ud800 Lovelace"
BOT_NAME = "Bot \udfff"
NON_FINITE = {"ratio": NAN, "big": INF, "small": -INF, "ok": 1.5, "nested": [NAN]}
AS_JSON = {"ratio": "NaN", "big": "Infinity", "small": "-Infinity", "ok": 1.5, "nested": ["NaN"]}


def _no_constants(name: str) -> Any:
    raise AssertionError(f"JSON output holds the bare constant {name}")


def strict_json(text: str) -> Any:
    return json.loads(text, parse_constant=_no_constants)


@pytest.fixture
def hostile_data() -> tuple[RestEmulator, NotionEmulator]:
    """A REST user whose name holds a lone surrogate and whose settings hold NaN and
    infinities (the REST API shows settings on GET only), and a Notion bot with both in
    its listing."""
    rest = RestEmulator()
    rest.add_user(email="ada@example.com", name=SURROGATE_NAME, settings=dict(NON_FINITE))
    notion = NotionEmulator()
    bot_id = notion.add_user(name=BOT_NAME, kind="bot", workspace_name="Acme")
    # No request can store a float that is not finite; a service may still answer one.
    notion._users[bot_id]["bot"]["workspace_limits"] = dict(NON_FINITE)
    return rest, notion


def run_cli(data: tuple[RestEmulator, NotionEmulator], *argv: str) -> tuple[int, str, str]:
    """Run the CLI with a stdout that, like a real one, refuses text that is not UTF-8."""
    rest, notion = data

    def loader(path: str | None) -> Any:
        return {"app": userdir.connect("rest", **options("rest", rest)),
                "wiki": userdir.connect("notion", **options("notion", notion))}  # fmt: skip

    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")
    err = io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, loader=loader)
    out.flush()
    return code, raw.getvalue().decode("utf-8"), err.getvalue()


def parsed_rows(fmt: str, text: str) -> list[dict[str, Any]]:
    """Rows as written; JSON parsed strictly, CSV's ``extra`` column too."""
    if fmt == "json":
        parsed = strict_json(text)  # `get` prints one object, `list` an array
        rows: list[dict[str, Any]] = [parsed] if isinstance(parsed, dict) else parsed
        return rows
    if fmt == "jsonl":
        return [strict_json(line) for line in text.splitlines()]
    assert text.splitlines()[0] == ",".join(USER_COLUMNS)
    return [{**r, "extra": strict_json(r["extra"])} for r in csv.DictReader(io.StringIO(text))]


def check_rows(fmt: str, text: str, name: str, extra: tuple[str, ...]) -> None:
    """The user called ``name`` (as JSON, exactly; in CSV and tables, escaped) is there,
    and its ``extra`` at path ``extra`` is NON_FINITE as JSON can say it."""
    escaped = name.encode("utf-8", "backslashreplace").decode()  # "\\ud800" as six characters
    if fmt == "table":
        assert escaped in text
        return
    shown = name if fmt != "csv" else escaped
    (row,) = [r for r in parsed_rows(fmt, text) if r["name"] == shown]
    value = row["extra"]
    for key in extra:
        value = value[key]
    assert value == AS_JSON


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_cli_writes_lone_surrogates_and_non_finite_numbers_in_every_format(
    hostile_data: tuple[RestEmulator, NotionEmulator], fmt: str
) -> None:
    user_id = hostile_data[0].users[0]["id"]
    for argv, name, extra in [
        (("list", "app"), SURROGATE_NAME, ()),
        (("get", "app", user_id), SURROGATE_NAME, ("settings",)),
        (("list", "wiki"), BOT_NAME, ("workspace_limits",)),
    ]:
        code, out, err = run_cli(hostile_data, "--format", fmt, *argv)
        assert (code, err) == (0, ""), argv
        if argv[0] == "list" and argv[1] == "app" and fmt != "table":
            (row,) = parsed_rows(fmt, out)
            assert row["extra"] == {}  # listings leave settings out
        else:
            check_rows(fmt, out, name, extra)


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_cli_export_writes_lone_surrogates_and_non_finite_numbers(
    hostile_data: tuple[RestEmulator, NotionEmulator], tmp_path: Path, suffix: str
) -> None:
    target = tmp_path / f"users{suffix}"
    code, _out, err = run_cli(hostile_data, "export", "wiki", "-o", str(target))
    assert code == 0, err
    check_rows(suffix[1:], target.read_text(encoding="utf-8"), BOT_NAME, ("workspace_limits",))


def test_cli_export_to_a_path_that_cannot_be_written(
    hostile_data: tuple[RestEmulator, NotionEmulator], tmp_path: Path
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for target in [
        tmp_path / "missing" / "users.csv",  # no such directory
        a_file / "users.csv",  # a file where a directory should be
        tmp_path,  # a directory where the file should be
    ]:
        before = sorted(tmp_path.iterdir())
        code, out, err = run_cli(
            hostile_data, "export", "app", "--format", "csv", "-o", str(target)
        )
        assert code == 2
        assert out == ""
        assert err.count("\n") == 1 and err.endswith("\n"), err
        assert err.startswith("userdir: cannot write ") and repr(str(target)) in err
        assert "Traceback" not in err
        assert sorted(tmp_path.iterdir()) == before  # no temporary file left behind
