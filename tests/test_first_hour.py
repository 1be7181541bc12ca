"""A user's first hour: broken config tables, error lines, wrong endpoints, quiet retries."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stamina

import userdir
from userdir.cli import main
from userdir.config import BrokenDirectory, load_config, load_config_async
from userdir.testing import Fault, NotionEmulator, OrgApiEmulator, RestEmulator, ScimEmulator

HR_KEY = "org-S3CR3T-key"
APP_TOKEN = "app-S3CR3T-token"
ADA = "ada@example.com"

# What breaks [directories.app], and what its error says.
BREAKAGES = {
    "missing variable": ({"token": "${NO_SUCH_VAR_14}"}, "NO_SUCH_VAR_14 is not set"),
    "unknown key": ({"token": APP_TOKEN, "tokn": "x"}, "did you mean 'token'"),
    "bad value": ({"token": APP_TOKEN, "timeout": "soon"}, "timeout must be a finite number"),
    "unknown provider": ({"provider": "REST", "token": APP_TOKEN}, "did you mean 'rest'"),
}


@pytest.fixture
def org() -> OrgApiEmulator:
    emulator = OrgApiEmulator(api_key=HR_KEY)
    emulator.add_user(email=ADA, first_name="Ada")
    return emulator


def mapping(org: OrgApiEmulator, app: dict[str, Any]) -> dict[str, Any]:
    """hr works; app is whatever the test makes of it."""
    return {
        "directories": {
            "hr": {
                "provider": "org_api",
                "api_key": HR_KEY,
                "base_url": "https://hr.test",
                "transport": org.transport,
            },
            "app": {"provider": "rest", "base_url": "https://app.test", **app},
        }
    }


def cli(*argv: str, loader: Any = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, loader=loader)
    return code, out.getvalue(), err.getvalue()


# -- one broken directory never blocks the others -----------------------------------------


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_table_leaves_the_others_working(org: OrgApiEmulator, breakage: str) -> None:
    app, says = BREAKAGES[breakage]
    dirs = load_config(mapping(org, app), environ={})
    assert list(dirs) == ["hr", "app"]
    assert [u.email for u in dirs["hr"].iter_users()] == [ADA]
    assert isinstance(dirs["app"], BrokenDirectory)
    for use in (
        lambda d: d.iter_users(),
        lambda d: d.get_user("usr_1"),
        lambda d: d.find_user_by_email(ADA),
        lambda d: d.me(),
        lambda d: d.capabilities,
    ):
        with pytest.raises(userdir.ConfigError, match=says) as info:
            use(dirs["app"])
        assert "[directories.app]" in str(info.value)
        assert APP_TOKEN not in str(info.value)
    assert repr(dirs["app"]).startswith("<BrokenDirectory 'app': ")
    dirs["app"].close()  # closing a broken one is harmless (the CLI closes them all)

    with pytest.raises(userdir.ConfigError, match=says):
        load_config(mapping(org, app), environ={}, strict=True)

    with userdir.Federation(dirs) as federation:
        result = federation.find(ADA)
        assert list(result.users) == ["hr"]
        assert list(result.errors) == ["app"]
        assert isinstance(result.errors["app"], userdir.ConfigError)
        assert says in str(result.errors["app"])
        with pytest.raises(userdir.ConfigError, match="app: "):
            federation.diff("hr", "app")


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_table_leaves_the_others_working_async(org: OrgApiEmulator, breakage: str) -> None:
    app, says = BREAKAGES[breakage]

    async def run() -> None:
        dirs = load_config_async(mapping(org, app), environ={})
        assert isinstance(dirs["app"], userdir.config.AsyncBrokenDirectory)
        with pytest.raises(userdir.ConfigError, match=says):
            await dirs["app"].get_user("usr_1")
        with pytest.raises(userdir.ConfigError, match=says):
            [u async for u in dirs["app"].iter_users()]
        async with userdir.AsyncFederation(dirs) as federation:
            result = await federation.find(ADA)
            assert list(result.users) == ["hr"]
            assert isinstance(result.errors["app"], userdir.ConfigError)
            with pytest.raises(userdir.ConfigError, match="app: "):
                await federation.diff("hr", "app")
        with pytest.raises(userdir.ConfigError, match=says):
            load_config_async(mapping(org, app), environ={}, strict=True)

    asyncio.run(run())


def test_cli_uses_the_working_directories_of_a_broken_config(org: OrgApiEmulator) -> None:
    app, _ = BREAKAGES["missing variable"]

    def loader(path: str | None) -> Any:
        return load_config(mapping(org, app), environ={})

    code, out, err = cli("--format", "jsonl", "list", "hr", loader=loader)
    assert (code, err) == (0, "")
    (row,) = map(json.loads, out.splitlines())
    code, out, err = cli("--format", "jsonl", "get", "hr", row["id"], loader=loader)
    assert (code, err) == (0, "")
    assert json.loads(out)["email"] == ADA

    code, out, err = cli("--format", "jsonl", "find", ADA, loader=loader)
    rows = {r["directory"]: r for r in map(json.loads, out.splitlines())}
    assert rows["hr"]["result"] == "found"
    assert rows["app"]["result"] == "error"
    assert code == 2
    assert err.startswith("userdir: app: <config mapping>: [directories.app] token: ")
    assert err.count("\n") == 1

    for argv in (["list", "app"], ["diff", "hr", "app"], ["diff", "app", "hr"]):
        code, out, err = cli(*argv, loader=loader)
        assert code == 2
        assert err == (
            "userdir: app: <config mapping>: [directories.app] token: "
            "environment variable NO_SUCH_VAR_14 is not set\n"
        )


def test_config_file_with_a_broken_table_over_http(
    tmp_path: Path, org: OrgApiEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with org.serve() as url:
        config = tmp_path / "userdir.toml"
        config.write_text(
            f'[directories.hr]\nprovider = "org_api"\napi_key = "${{HR_KEY}}"\nbase_url = "{url}"\n'
            '[directories.app]\nprovider = "rest"\ntoken = "${APP_TOKEN}"\n'
            'base_url = "https://app.test"\n'
        )
        monkeypatch.setenv("HR_KEY", HR_KEY)
        monkeypatch.delenv("APP_TOKEN", raising=False)
        code, out, err = cli("--config", str(config), "--format", "jsonl", "list", "hr")
        assert (code, err) == (0, "")
        assert json.loads(out)["email"] == ADA
        code, _, err = cli("--config", str(config), "list", "app")
        assert code == 2
        assert err.startswith(f"userdir: app: {config}: [directories.app] token: ")
        assert "APP_TOKEN is not set" in err


# -- error lines ---------------------------------------------------------------------------


def test_diff_names_the_directory_at_fault_once(org: OrgApiEmulator) -> None:
    rest = RestEmulator(token="right")

    def loader(path: str | None) -> Any:
        config = mapping(org, {"token": "wrong-S3CR3T", "transport": rest.transport})
        return load_config(config, environ={})

    for argv in (["diff", "hr", "app"], ["diff", "app", "hr"]):
        code, out, err = cli(*argv, loader=loader)
        assert code == 3
        assert err.startswith("userdir: app: [rest] HTTP 401 (unauthorized): ")
        assert "app: " not in err.removeprefix("userdir: app: ")
        assert "wrong-S3CR3T" not in out + err


@pytest.mark.parametrize("command", [["list", "app"], ["find", ADA], ["diff", "hr", "app"]])
def test_authentication_error_says_where_the_credential_came_from(
    org: OrgApiEmulator, command: list[str]
) -> None:
    rest = RestEmulator(token="right")
    env = {"APP_TOKEN": "wrong-S3CR3T-value"}

    def loader(path: str | None) -> Any:
        app = {"token": "${APP_TOKEN}", "transport": rest.transport}
        return load_config(mapping(org, app), environ=env)

    code, out, err = cli(*command, loader=loader)
    assert code == 3
    assert "userdir: app: [rest] HTTP 401 (unauthorized): Authentication required (" in err
    assert "(credential from token = ${APP_TOKEN})" in err
    assert "wrong-S3CR3T-value" not in out + err

    def literal(path: str | None) -> Any:
        return load_config(mapping(org, {"token": "lit-S3CR3T", "transport": rest.transport}))

    _, out, err = cli(*command, loader=literal)
    assert "(credential from token, written in <config mapping>)" in err
    assert "lit-S3CR3T" not in out + err


def test_credential_note_for_each_provider() -> None:
    env = {"N": "ntn-S3CR3T", "K": "key-S3CR3T", "T": "tok-S3CR3T"}
    config = {
        "directories": {
            "wiki": {"provider": "notion", "token": "${N}"},
            "hr": {"provider": "org_api", "api_key": "${K}", "base_url": "https://hr.test"},
            "app": {"provider": "rest", "token": "x-${T}", "base_url": "https://app.test"},
        }
    }
    dirs = load_config(config, environ=env)
    notes = {name: userdir.config.credential_note(d) for name, d in dirs.items()}
    assert notes == {
        "wiki": "credential from token = ${N}",
        "hr": "credential from api_key = ${K}",
        "app": "credential from token = ${T}",
    }
    for directory in dirs.values():
        directory.close()


def test_missing_config_file_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    code, out, err = cli("--config", str(missing), "list", "app")
    assert (code, out) == (2, "")
    assert err == f"userdir: no such config file: {missing}\n"
    with pytest.raises(userdir.ConfigError, match="no such config file"):
        load_config(missing)


def test_did_you_mean_a_directory(org: OrgApiEmulator) -> None:
    def loader(path: str | None) -> Any:
        return load_config(mapping(org, {"token": "t"}), environ={})

    for argv in (["list", "hrr"], ["get", "HR", "1"], ["find", "--directory", "ap", ADA]):
        code, _, err = cli(*argv, loader=loader)
        assert code == 2
        assert "did you mean" in err
    assert "did you mean 'hr'" in cli("list", "HR", loader=loader)[2]
    assert "did you mean 'app'" in cli("diff", "hr", "ap", loader=loader)[2]


def test_did_you_mean_a_provider_ignoring_case_and_a_table(tmp_path: Path) -> None:
    with pytest.raises(userdir.ConfigError, match="unknown provider 'REST' — did you mean 'rest'"):
        userdir.connect("REST", token="t", base_url="https://a.test")
    path = tmp_path / "userdir.toml"
    path.write_text('[directory.app]\nprovider = "rest"\n')
    with pytest.raises(userdir.ConfigError, match="did you mean 'directories'"):
        load_config(path)


def test_transport_is_not_a_config_file_option(tmp_path: Path) -> None:
    path = tmp_path / "userdir.toml"
    path.write_text('[directories.w]\nprovider = "notion"\ntoken = "t"\ntransport = "x"\n')
    with pytest.raises(userdir.ConfigError, match="'transport' cannot be set in a config file"):
        load_config(path, strict=True)
    with pytest.raises(userdir.ConfigError, match="'transport' cannot be set"):
        load_config(path)["w"].me()
    path.write_text('[directories.w]\nprovider = "notion"\ntoken = "t"\ntransprt = 1\n')
    with pytest.raises(userdir.ConfigError) as info:
        load_config(path, strict=True)
    assert "(options: " in str(info.value)
    assert "transport" not in str(info.value).split("(options: ")[1]


# -- a wrong endpoint is not a missing user -------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "emulator", "key", "prefix", "doubled", "status"),
    [
        ("rest", RestEmulator, "token", "/api/v1", "/api/v1/api/v1/users", 404),
        # Notion answers an unknown URL with 400 invalid_request_url: the same mistake
        ("notion", NotionEmulator, "token", "/v1", "/v1/v1/users", 400),
        ("org_api", OrgApiEmulator, "api_key", "/v2", "/v2/list-users", 404),
        # SCIM's endpoints live under /scim/v2: a base_url without it
        ("scim", ScimEmulator, "token", "/v2", "/v2/Users", 404),
    ],
)
def test_listing_404_is_a_wrong_endpoint(
    connect: Any, provider: str, emulator: Any, key: str, prefix: str, doubled: str, status: int
) -> None:
    emu = emulator()
    credential = {key: getattr(emu, key)}
    base = "https://svc.test" + prefix
    directory = connect(provider, base_url=base, transport=emu.transport, **credential)
    with pytest.raises(userdir.EndpointNotFoundError) as info:
        list(directory.iter_users())
    error = info.value
    assert isinstance(error, userdir.APIError)
    assert not isinstance(error, userdir.UserNotFoundError)
    assert error.status_code == status
    assert error.endpoint == f"GET {doubled}"
    assert f"no such endpoint: GET {doubled} (is base_url right?" in str(error)
    assert "base_url" in str(error)
    with pytest.raises(userdir.EndpointNotFoundError):
        directory.list_page()
    if provider == "notion":
        with pytest.raises(userdir.EndpointNotFoundError, match="GET /v1/v1/users/me"):
            directory.me()


def test_get_user_404_is_still_a_missing_user(connect: Any) -> None:
    emu = RestEmulator()
    directory = connect("rest", token=emu.token, base_url="https://a.test", transport=emu.transport)
    with pytest.raises(userdir.UserNotFoundError) as info:
        directory.get_user("usr_999999")
    assert not isinstance(info.value, userdir.EndpointNotFoundError)
    org = OrgApiEmulator()
    hr = connect("org_api", api_key=org.api_key, base_url="https://b.test", transport=org.transport)
    assert hr.find_user_by_email("nobody@example.com") is None


def test_a_lookup_404_where_no_match_is_not_a_404_is_a_wrong_endpoint(connect: Any) -> None:
    # SCIM filters answer 200 and no match, the org API a 400: from a wrong base_url a 404
    # must not read as "nobody has an account here"
    from userdir.testing import ScimEmulator

    scim = ScimEmulator()
    config = scim.service_provider_config()

    def elsewhere(request: httpx.Request) -> httpx.Response:
        # a server that has the config where it was asked, and no /Users there
        if request.url.path.endswith("/ServiceProviderConfig"):
            return httpx.Response(200, json=config)
        return httpx.Response(404, text="<html>Not Found</html>")

    wrong = connect(
        "scim", token="t", base_url="https://c.test/v2", transport=httpx.MockTransport(elsewhere)
    )
    with pytest.raises(userdir.EndpointNotFoundError, match="GET /v2/Users"):
        wrong.find_user_by_email("nobody@example.com")
    with pytest.raises(userdir.EndpointNotFoundError, match="GET /v2/Users"):
        wrong.find_users_by_email(["a@example.com", "b@example.com"])
    assert wrong.capabilities.email_lookup == "batch"  # the filter path, not a scan
    right = connect(
        "scim", token=scim.token, base_url="https://c.test/scim/v2", transport=scim.transport
    )
    assert right.find_user_by_email("nobody@example.com") is None
    org = OrgApiEmulator()
    hr = connect(
        "org_api", api_key=org.api_key, base_url="https://b.test/v2", transport=org.transport
    )
    with pytest.raises(userdir.EndpointNotFoundError, match="GET /v2/fetch-user"):
        hr.find_user_by_email("nobody@example.com")


def test_cli_reports_a_wrong_endpoint() -> None:
    emu = RestEmulator()

    def loader(path: str | None) -> Any:
        return {
            "app": userdir.connect(
                "rest", token=emu.token, base_url="https://a.test/api/v1", transport=emu.transport
            )
        }

    code, out, err = cli("list", "app", loader=loader)
    assert (code, out) == (4, "")
    assert err == (
        "userdir: app: [rest] HTTP 404 (not_found): Not found — no such endpoint: "
        "GET /api/v1/api/v1/users (is base_url right? it should not repeat the API's own path)\n"
    )
    assert "base_url" in err


# -- retries are quiet ---------------------------------------------------------------------


@pytest.fixture
def stamina_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record the ``stamina`` logger lets through, with stamina's logging hook on."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, logger = Keep(), logging.getLogger("stamina")
    logger.addHandler(handler)
    stamina.instrumentation.set_on_retry_hooks([stamina.instrumentation.LoggingOnRetryHook])
    try:
        yield records
    finally:
        stamina.instrumentation.set_on_retry_hooks(None)
        logger.removeHandler(handler)


def test_our_retries_do_not_log_through_stamina(
    connect: Any, stamina_logs: list[logging.LogRecord], caplog: pytest.LogCaptureFixture
) -> None:
    emu = RestEmulator()
    emu.add_user(email=ADA, name="Ada")
    emu.inject(Fault.status(503), times=1)
    directory = connect(
        "rest", token=emu.token, base_url="https://a.test", transport=emu.transport, retries=3
    )
    with caplog.at_level(logging.INFO, logger="userdir"):
        assert [u.email for u in directory.iter_users()] == [ADA]
    assert len(emu.requests) == 2  # it was retried...
    assert stamina_logs == []  # ...without a word from stamina
    assert [r.getMessage() for r in caplog.records if r.name == "userdir"] == [
        "rest GET /api/v1/users: retrying after HTTP 503 (attempt 2 of 3)"
    ]

    # the host application's own stamina retries still log as stamina says
    for attempt in stamina.retry_context(on=ValueError, attempts=2):
        with attempt:
            if attempt.num == 1:
                raise ValueError("once")
    assert [r.getMessage() for r in stamina_logs] == ["stamina.retry_scheduled"]


def test_final_error_says_attempts_and_host(connect: Any) -> None:
    emu = RestEmulator(token="tok-S3CR3T")
    emu.inject(Fault.status(503), times=10)
    directory = connect(
        "rest", token="tok-S3CR3T", base_url="https://app.test:8443", transport=emu.transport
    )
    with pytest.raises(userdir.ServerError) as info:
        directory.get_user("usr_1")
    assert (info.value.attempts, info.value.host) == (3, "app.test:8443")
    assert str(info.value).endswith("(gave up after 3 attempts to app.test:8443)")
    assert "tok-S3CR3T" not in str(info.value) + repr(info.value)
    # a single failure that is never retried says nothing of attempts
    emu.clear_faults()
    with pytest.raises(userdir.UserNotFoundError) as missing:
        directory.get_user("usr_1")
    assert missing.value.attempts is None
    assert "gave up" not in str(missing.value)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(userdir.__file__).parent.parent)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_cli_is_quiet_about_retries_unless_debug(tmp_path: Path) -> None:
    emulator = RestEmulator(token="t0k")
    emulator.populate(3)
    with emulator.serve() as url:
        config = tmp_path / "userdir.toml"
        config.write_text(
            f'[directories.app]\nprovider = "rest"\ntoken = "${{APP_TOKEN}}"\nbase_url = "{url}"\n'
            "retries = { attempts = 3, wait_initial = 0.01, wait_max = 0.02 }\n"
        )
        env = {**_env(), "APP_TOKEN": "t0k", "USERDIR_CONFIG": str(config)}

        def userdir_cli(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "userdir", *argv],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )

        emulator.inject(Fault.status(503), times=1)
        done = userdir_cli("--format", "jsonl", "list", "app")
        assert done.returncode == 0
        assert len(done.stdout.splitlines()) == 3
        assert done.stderr == ""

        emulator.inject(Fault.status(503), times=1)
        done = userdir_cli("--debug", "--format", "jsonl", "list", "app")
        assert done.returncode == 0
        assert "retrying after HTTP 503 (attempt 2 of 3)" in done.stderr
        assert "stamina" not in done.stderr

        emulator.inject(Fault.status(503), times=10)
        done = userdir_cli("list", "app")
        assert done.returncode == 4
        host = url.split("://")[1]
        assert done.stderr.startswith("userdir: app: [rest] HTTP 503")
        assert done.stderr.endswith(f" (gave up after 3 attempts to {host})\n")
        assert done.stderr.count("\n") == 1
        assert "t0k" not in done.stderr


# -- what create needs ---------------------------------------------------------------------


def test_rest_create_without_password_is_refused_before_sending(connect: Any) -> None:
    emu = RestEmulator()
    directory = connect("rest", token=emu.token, base_url="https://a.test", transport=emu.transport)
    with pytest.raises(userdir.InvalidArgumentError, match=r"requires NewUser field.*password"):
        directory.create_user(userdir.NewUser(email="a@example.com", name="A"))
    assert emu.requests == []
    user = directory.create_user(userdir.NewUser(email="a@example.com", name="A", password="pw"))
    assert emu.password_of(user.id) == "pw"


def test_capabilities_say_what_create_requires() -> None:
    caps = {info.name: info.capabilities for info in userdir.available_providers()}
    assert caps["rest"] is not None
    assert caps["rest"].create_requires == {"email", "name", "password"}
    assert caps["rest"].to_dict()["create_requires"] == ["email", "name", "password"]
    assert caps["notion"] is not None and caps["notion"].create_requires == frozenset()
    _, out, _ = cli("--format", "json", "providers")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["rest"]["create_requires"] == ["email", "name", "password"]
    assert rows["org_api"]["create_requires"] == []


def test_cli_output_stays_clean_whatever_retry_hook_the_process_has() -> None:
    # With structlog installed, stamina's default hook prints every retry to stdout: the
    # command's own output. The command routes retries to logging while it runs.
    from stamina import instrumentation

    printed: list[str] = []

    def to_stdout(details: Any) -> None:
        printed.append(f"retrying {details.name}")
        sys.stdout.write("RETRY ON STDOUT\n")

    emu = RestEmulator()
    emu.populate(3)
    emu.inject(Fault.status(503), times=1)

    def loader(path: str | None) -> Any:
        return {
            "app": userdir.connect(
                "rest", token=emu.token, base_url="https://a.test", transport=emu.transport
            )
        }

    instrumentation.set_on_retry_hooks([to_stdout])
    try:
        code, out, _ = cli("list", "app", "--format", "json", loader=loader)
        assert code == 0
        assert [u["email"] for u in json.loads(out)] == [u["email"] for u in emu.users]
        assert printed == []  # the process's hook was not called while the command ran
        assert len(emu.requests) == 2  # the 503 was retried
        assert instrumentation.get_on_retry_hooks() == (to_stdout,)  # put back
    finally:
        instrumentation.set_on_retry_hooks(None)
