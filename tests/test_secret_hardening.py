"""Issue 13, secrets: a sloppy secret file, a server that echoes secrets in disguise,
``headers=`` that try to add a credential, config values from the environment, and
credentials over plain http. Every provider, sync and async, checked on the wire.
"""

from __future__ import annotations

import base64
import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import pytest

import userdir
from userdir._http import Request
from userdir.cli import main as cli_main
from userdir.config import load_config, load_config_async, read_config
from userdir.testing import NotionEmulator, OrgApiEmulator, RestEmulator

from .conftest import API_KEY, REST_TOKEN, TOKEN
from .dummy import DummyDialect

PROVIDERS = ["notion", "org_api", "rest"]
OPTION = {"notion": "token", "org_api": "api_key", "rest": "token"}
SECRET = {"notion": TOKEN, "org_api": API_KEY, "rest": REST_TOKEN}
UUID = "3f9a1d2e-5b7c-4e8f-9a0b-1c2d3e4f5a6b"


def options(provider: str, secret: str | None = None, **extra: Any) -> dict[str, Any]:
    """The provider's credential option (and a base_url where it needs one)."""
    out: dict[str, Any] = {OPTION[provider]: SECRET[provider] if secret is None else secret}
    if provider != "notion":
        out["base_url"] = f"https://{provider.replace('_', '-')}.test"
    return {**out, **extra}


def emulator(provider: str) -> Any:
    if provider == "notion":
        return NotionEmulator(token=TOKEN)
    if provider == "org_api":
        return OrgApiEmulator(api_key=API_KEY)
    return RestEmulator(token=REST_TOKEN)


def wire_auth(provider: str) -> str:
    """The Authorization header the service expects."""
    return API_KEY if provider == "org_api" else f"Bearer {SECRET[provider]}"


class Recorder:
    """A transport (sync and async) that records requests and answers with ``answer``."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (lambda request: httpx.Response(500, json={"message": "no"}))
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def texts_of(error: BaseException) -> str:
    """Every text of an error a user could see."""
    assert isinstance(error, userdir.DirectoryError)
    return "\n".join(
        [str(error), repr(error), error.message, str(error.code), str(error.request_id)]
    )


def leaked(text: str, secret: str) -> list[str]:
    """The disguises of ``secret`` (or a 10-character piece of it) found in ``text``."""
    found = []
    for piece in {secret, secret[:10], secret[-10:]}:
        for form in (piece, piece.upper(), piece.lower(), quote(piece, safe="")):
            if form.lower() in text.lower():
                found.append(form)
    return found


# -- credentials with whitespace --------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("padding", ["\n", "\r\n", " ", "\t", " \t\r\n"])
def test_whitespace_around_a_credential_is_stripped(
    connect: Any, provider: str, padding: str
) -> None:
    emu = emulator(provider)
    d = connect(provider, transport=emu.transport, **options(provider, SECRET[provider] + padding))
    d.list_page()
    d = connect(provider, transport=emu.transport, **options(provider, padding + SECRET[provider]))
    d.list_page()
    assert [r.headers["authorization"] for r in emu.requests] == [wire_auth(provider)] * 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_secrets_file_newline_over_a_real_socket(connect: Any, provider: str) -> None:
    # before: h11 refused the header, the TransportError quoted it (token included),
    # after three pointless attempts
    emu = emulator(provider)
    with emu.serve() as url:
        d = connect(provider, **options(provider, SECRET[provider] + "\n", base_url=url))
        d.list_page()
    assert [r.headers["authorization"] for r in emu.requests] == [wire_auth(provider)]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "inside", [" ", "\n", "\r\n", "\t", "\x00", "\x7f", "\u00a0", "é"], ids=repr
)
def test_a_credential_with_whitespace_or_controls_inside_is_refused(
    connect: Any, provider: str, inside: str
) -> None:
    secret = SECRET[provider]
    bad = secret[:6] + inside + secret[6:]
    recorder = Recorder()
    with pytest.raises(userdir.InvalidArgumentError) as info:
        connect(provider, transport=recorder.transport, **options(provider, bad))
    assert OPTION[provider] in info.value.message
    assert not leaked(texts_of(info.value), secret)
    assert recorder.requests == []


def test_config_strips_a_secret_file_newline_and_refuses_one_inside() -> None:
    emu = NotionEmulator(token=TOKEN)
    table = {"provider": "notion", "token": "${T}", "transport": emu.transport}
    config = {"directories": {"wiki": table}}
    directory = load_config(config, environ={"T": TOKEN + "\r\n"})["wiki"]
    with directory:
        directory.list_page()
    assert emu.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    with pytest.raises(userdir.ConfigError) as info:
        load_config(config, environ={"T": TOKEN[:5] + "\n" + TOKEN[5:]}, strict=True)
    assert "[directories.wiki]" in str(info.value)
    assert "token" in str(info.value)
    assert not leaked(str(info.value), TOKEN)


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_cli_uses_a_secret_file_newline_and_names_a_bad_secret_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debug: list[str]
) -> None:
    emu = RestEmulator(token=REST_TOKEN)
    emu.add_user(email="ada@example.com", name="Ada")
    path = tmp_path / "userdir.toml"
    with emu.serve() as url:
        path.write_text(
            f'[directories.app]\nprovider = "rest"\ntoken = "${{APP_TOKEN}}"\nbase_url = "{url}"\n'
        )
        monkeypatch.setenv("APP_TOKEN", REST_TOKEN + "\n")
        out, err = io.StringIO(), io.StringIO()
        argv = [*debug, "--config", str(path), "list", "app"]
        assert cli_main(argv, stdout=out, stderr=err) == 0
        assert "ada@example.com" in out.getvalue()
        monkeypatch.setenv("APP_TOKEN", REST_TOKEN[:4] + "\r\n" + REST_TOKEN[4:] + "\n")
        out, err = io.StringIO(), io.StringIO()
        assert cli_main(argv, stdout=out, stderr=err) == 2
    assert "[directories.app]: token holds whitespace" in err.getvalue()
    assert not leaked(out.getvalue() + err.getvalue(), REST_TOKEN)
    assert len(emu.requests) == 1


def test_a_third_party_credential_header_is_stripped_and_checked_too(connect: Any) -> None:
    # DummyDialect puts its token in the header unchecked: the engine checks every
    # credential header, and scrubs the credential as it was sent
    userdir.register_provider("dummy", DummyDialect, replace=True)
    recorder = Recorder(lambda r: httpx.Response(500, json={"message": f"no {TOKEN}"}))
    d = connect("dummy", token=TOKEN + "\r\n", transport=recorder.transport, retries=False)
    with pytest.raises(userdir.ServerError) as info:
        d.get_user("u1")
    assert recorder.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert info.value.message == "no ***"
    with pytest.raises(userdir.InvalidArgumentError, match="'Authorization'") as refused:
        connect("dummy", token=TOKEN[:5] + "\n" + TOKEN[5:], transport=recorder.transport)
    assert not leaked(texts_of(refused.value), TOKEN)
    assert len(recorder.requests) == 1


# -- local protocol errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [httpx.LocalProtocolError, httpx.UnsupportedProtocol],
    ids=["LocalProtocolError", "UnsupportedProtocol"],
)
@pytest.mark.parametrize("method", ["get", "create"])
def test_a_local_protocol_error_is_not_retried_nor_quoted(
    connect: Any, error: type[httpx.TransportError], method: str
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        auth = request.headers["authorization"]
        raise error(f"Illegal header value {auth.encode()!r}", request=request)

    recorder = Recorder(refuse)
    d = connect("rest", transport=recorder.transport, **options("rest"))
    new = userdir.NewUser(email="a@example.com", name="A", password="pw-1")
    call = (lambda: d.get_user("usr_1")) if method == "get" else (lambda: d.create_user(new))
    with pytest.raises(userdir.TransportError) as info:
        call()
    assert len(recorder.requests) == 1  # before: 3 attempts (the stamina test setting)
    assert error.__name__ in info.value.message
    assert "not retried" in info.value.message
    assert not leaked(texts_of(info.value), REST_TOKEN)
    assert "Illegal header" not in texts_of(info.value)


# -- a server that echoes secrets in disguise ---------------------------------------------


def _disguises(secret: str, header: str) -> dict[str, str]:
    mid = len(secret) // 2
    return {
        "exact": secret,
        "upper": secret.upper(),
        "lower": secret.lower(),
        "url-encoded": quote(secret, safe=""),
        "url-encoded header": quote(header, safe=""),
        "every char url-encoded": "".join(f"%{b:02X}" for b in secret.encode()),
        "base64": base64.b64encode(secret.encode()).decode(),
        "base64 header": base64.b64encode(header.encode()).decode(),
        "base64 inside": base64.b64encode(f"x{secret}yz".encode()).decode(),
        "urlsafe base64": base64.urlsafe_b64encode(f"{secret}!".encode()).decode(),
        "CRLF": f"{secret[:mid]}\r\n{secret[mid:]}",
        "wrapped": f"{secret[:mid]}\n    {secret[mid:]}",
        "repr'd": repr(f"{secret[:mid]}\n{secret[mid:]}"),
    }


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("field", ["message", "code", "request_id"])
def test_an_echoed_credential_is_scrubbed_in_every_disguise(
    connect: Any, provider: str, field: str
) -> None:
    secret = SECRET[provider]
    shown = _disguises(secret, wire_auth(provider))

    def echo(request: httpx.Request) -> httpx.Response:
        echoed = " | ".join(f"{k}: {v}" for k, v in shown.items())
        body = {"message": "denied", "code": "denied", "request_id": "r1", field: echoed}
        return httpx.Response(400, json=body)

    d = connect(provider, transport=Recorder(echo).transport, **options(provider))
    with pytest.raises(userdir.InvalidRequestError) as info:
        d.get_user(UUID)
    text = texts_of(info.value)
    assert "***" in text
    for name, form in shown.items():
        assert form not in text, name
    assert not leaked(text.replace("\n", ""), secret)


def test_basic_auth_from_base_url_is_scrubbed_as_user_colon_password(connect: Any) -> None:
    password = "pw-S3CR3T-basic-000"
    pair = base64.b64encode(f"admin:{password}".encode()).decode()

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"message": f"bad {request.headers['authorization']} ({pair.lower()})"}
        )

    recorder = Recorder(echo)
    d = connect(
        "rest",
        token=REST_TOKEN,
        base_url=f"https://admin:{password}@rest.test",
        transport=recorder.transport,
    )
    with pytest.raises(userdir.AuthenticationError) as info:
        d.list_page()
    assert recorder.requests[0].headers["authorization"] == f"Basic {pair}"
    text = texts_of(info.value)
    assert pair not in text
    assert pair.lower() not in text
    assert not leaked(text, password)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("field", ["message", "code", "request_id"])
def test_scrubbing_comes_before_the_cut(connect: Any, provider: str, field: str) -> None:
    # the secret starts just before the length limit: cutting first left its start
    secret = SECRET[provider]
    limit = 2000 if field == "message" else 200

    def echo(request: httpx.Request) -> httpx.Response:
        body = {"message": "m", "code": "c", "request_id": "r", field: "x" * (limit - 8) + secret}
        return httpx.Response(400, json=body)

    d = connect(provider, transport=Recorder(echo).transport, **options(provider))
    with pytest.raises(userdir.InvalidRequestError) as info:
        d.get_user(UUID)
    assert secret[:8] not in texts_of(info.value)
    assert len(str(info.value)) < 2600


# -- messages the library builds from server values ----------------------------------------


def _notion_answer(body: Callable[[httpx.Request], Any]) -> Recorder:
    return Recorder(lambda request: httpx.Response(200, json=body(request)))


LONG_TOKEN = "secret_" + "S3CR3T" * 10  # longer than any quoted prefix


@pytest.mark.parametrize("token", [TOKEN, LONG_TOKEN], ids=["short", "long"])
@pytest.mark.parametrize(
    "answer",
    ["list object", "user object", "cursor twice"],
)
def test_notion_malformed_answers_quote_no_secret(connect: Any, token: str, answer: str) -> None:
    def body(request: httpx.Request) -> Any:
        if answer == "list object":
            return {"object": token, "results": [], "has_more": False}
        if answer == "user object":
            return {"object": token, "id": UUID, "type": "person"}
        # the same cursor every page: a loop (and the token as the cursor)
        return {"object": "list", "results": [], "has_more": True, "next_cursor": token}

    recorder = _notion_answer(body)
    d = connect("notion", token=token, transport=recorder.transport)
    calls = {
        "user object": lambda: d.get_user(UUID),
        "list object": d.list_page,
        "cursor twice": lambda: list(d.iter_users()),
    }
    with pytest.raises(userdir.MalformedResponseError) as info:
        calls[answer]()
    text = texts_of(info.value)
    assert "***" in text
    assert not leaked(text, token)


@pytest.mark.parametrize("answer", ["list object", "cursor twice"])
def test_a_quoted_server_value_is_a_short_prefix(connect: Any, answer: str) -> None:
    value = "v" * 5000

    def body(request: httpx.Request) -> Any:
        if answer == "list object":
            return {"object": value, "results": []}
        return {"object": "list", "results": [], "has_more": True, "next_cursor": value[:256]}

    d = connect("notion", token=TOKEN, transport=_notion_answer(body).transport)
    with pytest.raises(userdir.MalformedResponseError) as info:
        list(d.iter_users())
    assert "v" * 40 in info.value.message
    assert "v" * 41 not in info.value.message


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_answers_echoing_the_credential_say_nothing_of_it(
    connect: Any, provider: str
) -> None:
    secret = SECRET[provider]
    # Notion quotes the unexpected object; the others find email is no string
    bad_user = {"object": secret, "id": UUID, "email": {secret: secret}, "type": "person"}
    body = {
        "notion": {"object": "list", "results": [bad_user], "has_more": False},
        "org_api": {"users": [bad_user], "has_more": False},
        "rest": {"data": [bad_user], "meta": {"page": 1, "pages": 1}},
    }[provider]
    recorder = Recorder(lambda request: httpx.Response(200, json=body))
    d = connect(provider, transport=recorder.transport, **options(provider))
    with pytest.raises(userdir.MalformedResponseError) as info:
        d.list_page()
    assert not leaked(texts_of(info.value), secret)


class EchoingDialect(DummyDialect):
    """A third-party dialect whose parse errors quote what the service sent."""

    name: ClassVar[str] = "echoing"

    def create_request(self, new_user: userdir.NewUser) -> Request:
        body = {"email": new_user.email, "password": new_user.password}
        return Request("POST", ("users",), json=body)

    def parse_user(self, body: Any) -> userdir.DirectoryUser:
        raise self.malformed(f"cannot read the user: {body!r}")


def test_a_third_party_dialect_error_is_scrubbed_too(connect: Any) -> None:
    # the directory scrubs whatever leaves it: the token, and the password it was given
    password = "pw-S3CR3T-create-000"
    userdir.register_provider("echoing", EchoingDialect, replace=True)

    def echo(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        return httpx.Response(201, json={"you sent": sent, "as": request.headers["authorization"]})

    d = connect("echoing", token=TOKEN, transport=Recorder(echo).transport)
    with pytest.raises(userdir.MalformedResponseError) as info:
        d.create_user(userdir.NewUser(email="a@example.com", name="A", password=password))
    text = texts_of(info.value)
    assert "***" in text
    assert not leaked(text, password)
    assert not leaked(text, TOKEN)


# -- headers= ------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION"])
def test_headers_cannot_add_a_second_credential(connect: Any, provider: str, name: str) -> None:
    recorder = Recorder()
    with pytest.raises(userdir.InvalidArgumentError) as info:
        connect(
            provider,
            transport=recorder.transport,
            headers={name: "Bearer other-S3CR3T"},
            **options(provider),
        )
    assert repr(name) in info.value.message
    assert "other-S3CR3T" not in texts_of(info.value)
    assert recorder.requests == []


def test_headers_cannot_replace_basic_auth_from_the_base_url(connect: Any) -> None:
    with pytest.raises(userdir.InvalidArgumentError, match="'authorization'"):
        connect(
            "rest",
            token=REST_TOKEN,
            base_url="https://admin:pw@rest.test",
            headers={"authorization": "Bearer other"},
            transport=Recorder().transport,
        )


def test_header_names_merge_case_insensitively(connect: Any) -> None:
    recorder = _notion_answer(lambda request: {"object": "list", "results": []})
    d = connect(
        "notion",
        token=TOKEN,
        transport=recorder.transport,
        headers={"notion-version": "2022-06-28", "user-agent": "mine/1", "X-Trace": " t1 \n"},
    )
    d.list_page()
    sent = recorder.requests[0].headers
    assert sent.get_list("notion-version") == ["2022-06-28"]
    assert sent.get_list("user-agent") == ["mine/1"]
    assert sent.get_list("x-trace") == ["t1"]
    assert sent.get_list("authorization") == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"X-Api-Key": "k-S3CR3T\nInjected: 1"}, "'X-Api-Key'"),
        ({"X-Api-Key": "k-S3CR3T\x00"}, "'X-Api-Key'"),
        ({"X-Api-Key": "k-S3CR3T-é"}, "'X-Api-Key'"),
        ({"Bad Name": "k-S3CR3T"}, "'Bad Name'"),
        ({"X-A:": "k-S3CR3T"}, "'X-A:'"),
    ],
)
def test_a_header_that_cannot_be_sent_is_refused_by_name(
    connect: Any, headers: dict[str, str], named: str
) -> None:
    recorder = Recorder()
    with pytest.raises(userdir.InvalidArgumentError) as info:
        connect("notion", token=TOKEN, transport=recorder.transport, headers=headers)
    assert named in info.value.message
    assert "k-S3CR3T" not in texts_of(info.value)
    assert recorder.requests == []


# -- config values from the environment ------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["ftp://user:pw-S3CR3T@host.example/x", "pw-S3CR3T-not-a-url", "javascript:pw-S3CR3T"],
)
def test_a_bad_base_url_from_the_environment_is_not_printed(value: str) -> None:
    config = {"directories": {"app": {"provider": "rest", "token": "t", "base_url": "${K}"}}}
    for load in (load_config, load_config_async):
        with pytest.raises(userdir.ConfigError) as info:
            load(config, environ={"K": value}, strict=True)
        assert "base_url" in str(info.value)
        assert "S3CR3T" not in str(info.value)
        broken = load(config, environ={"K": value})["app"]  # kept for when it is used
        assert "base_url" in repr(broken)
        assert "S3CR3T" not in repr(broken)
        with pytest.raises(userdir.ConfigError) as info:
            broken.iter_users()
        assert "S3CR3T" not in str(info.value)


def test_any_provider_message_shows_an_environment_value_as_its_reference() -> None:
    def region_dialect(**options: Any) -> Any:
        raise userdir.InvalidArgumentError(f"unknown region {options['region']!r}")

    userdir.register_provider("regional", region_dialect, replace=True)
    config = {"directories": {"r": {"provider": "regional", "region": "eu-${REGION}"}}}
    with pytest.raises(userdir.ConfigError) as info:
        load_config(config, environ={"REGION": "S3CR3T-west\n"}, strict=True)
    assert "unknown region 'eu-${REGION}" in str(info.value)
    assert "S3CR3T" not in str(info.value)


def test_double_dollar_is_a_literal_dollar() -> None:
    config = {
        "directories": {
            "a": {"provider": "x", "token": "$${T}", "path": "a$$b$$", "mixed": "$$${T}$$"}
        }
    }
    _, tables = read_config(config, environ={"T": "v$$"})
    assert tables["a"]["token"] == "${T}"
    assert tables["a"]["path"] == "a$b$"
    assert tables["a"]["mixed"] == "$v$$$"  # a value from the environment is never expanded


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("$TOKEN", r"\$TOKEN is not expanded .*write \$\{NAME\}.*: \$\{TOKEN\}"),
        ("x-${TOKEN", r"unterminated \$\{ \(write \$\{NAME\}"),
        ("${TOKEN}-${", r"unterminated \$\{"),
        ("pay $5", r"a lone \$ \(write \$\{NAME\} for a variable, \$\$ for a literal \$\)"),
        ("trailing $", r"a lone \$"),
    ],
)
def test_a_dollar_that_is_not_a_reference_is_a_config_error(value: str, says: str) -> None:
    config = {"directories": {"a": {"provider": "notion", "token": value}}}
    with pytest.raises(userdir.ConfigError, match=says) as info:
        read_config(config, environ={"TOKEN": "tok-S3CR3T"})
    assert "[directories.a] token" in str(info.value)
    assert "S3CR3T" not in str(info.value)


# -- credentials over plain http -------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "url", ["http://org.test", "http://10.0.0.1:8080/api", "http://[2001:db8::1]", "HTTP://x.test"]
)
def test_credentials_over_plain_http_warn_once_at_connect(
    connect: Any, provider: str, url: str
) -> None:
    recorder = Recorder()
    with pytest.warns(UserWarning, match="unencrypted") as caught:
        connect(provider, transport=recorder.transport, **options(provider, base_url=url))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(f"{provider}: credentials will be sent unencrypted over http://")
    assert not leaked(message, SECRET[provider])
    assert not caught[0].filename.startswith(str(Path(userdir.__file__).parent))
    assert recorder.requests == []


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "url",
    [
        "https://org.test",
        "http://127.0.0.1:9",
        "http://127.1.2.3",
        "http://[::1]:8080",
        "http://localhost:9",
        "http://LOCALHOST.",
    ],
)
def test_https_and_loopback_do_not_warn(connect: Any, provider: str, url: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        connect(provider, transport=Recorder().transport, **options(provider, base_url=url))


def test_config_warns_once_per_plain_http_directory() -> None:
    table = {"provider": "rest", "token": "t", "transport": Recorder().transport}
    config = {
        "directories": {
            "a": {**table, "base_url": "http://a.test"},
            "b": {**table, "base_url": "http://b.test"},
            "local": {**table, "base_url": "http://127.0.0.1:1"},
        }
    }
    with pytest.warns(UserWarning, match="unencrypted") as caught:
        directories = load_config(config)
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["a.test", "b.test"]
    for directory in directories.values():
        directory.close()
