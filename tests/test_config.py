"""Config files, the provider registry and entry points."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

import userdir
from userdir import registry
from userdir.config import load_config, load_config_async, read_config
from userdir.testing import NotionEmulator, OrgApiEmulator, RestEmulator

from .dummy import DummyDialect

CONFIG = """
[directories.wiki]
provider = "notion"
token = "${NOTION_TOKEN}"
base_url = "BASE_NOTION"

[directories.hr]
provider = "org_api"
api_key = "${ORG_KEY}"
base_url = "BASE_ORG"

[directories.app]
provider = "rest"
token = "Bearer-less-${APP_TOKEN}"
base_url = "BASE_REST"
concurrency = 2
retries = { attempts = 2, timeout = 10 }
"""

ENV = {"NOTION_TOKEN": "ntn-S3CR3T-1", "ORG_KEY": "org-S3CR3T-2", "APP_TOKEN": "app-S3CR3T-3"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "userdir.toml"
    path.write_text(text)
    return path


def test_three_directories_from_toml_with_env_secrets(tmp_path: Path) -> None:
    notion = NotionEmulator(token=ENV["NOTION_TOKEN"])
    org = OrgApiEmulator(api_key=ENV["ORG_KEY"])
    rest = RestEmulator(token="Bearer-less-" + ENV["APP_TOKEN"])
    notion.add_user(name="Ada", email="ada@example.com")
    org.add_user(email="Ada@Example.com", first_name="Ada")
    rest.add_user(email="ADA@example.com", name="Ada")
    with notion.serve() as n_url, org.serve() as o_url, rest.serve() as r_url:
        text = CONFIG.replace("BASE_NOTION", n_url).replace("BASE_ORG", o_url)
        path = write(tmp_path, text.replace("BASE_REST", r_url))
        dirs = load_config(path, environ=ENV)
        assert list(dirs) == ["wiki", "hr", "app"]
        assert [d.provider for d in dirs.values()] == ["notion", "org_api", "rest"]
        assert dirs["app"].concurrency == 2
        with userdir.Federation(dirs) as fed:
            result = fed.find("ada@EXAMPLE.com")
        assert sorted(result.users) == ["app", "hr", "wiki"]
        assert result.errors == {}
    assert rest.requests[-1].headers["authorization"] == "Bearer Bearer-less-" + ENV["APP_TOKEN"]


def test_default_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('[directories.n]\nprovider = "notion"\ntoken = "t"\n')
    monkeypatch.setenv("USERDIR_CONFIG", str(path))
    assert list(load_config()) == ["n"]
    monkeypatch.delenv("USERDIR_CONFIG")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(userdir.ConfigError, match=r"userdir\.toml: no config file"):
        load_config()
    (tmp_path / "userdir.toml").write_text(path.read_text())
    assert list(load_config()) == ["n"]


def test_missing_env_variable_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    with pytest.raises(userdir.ConfigError) as info:
        load_config(path, environ={"NOTION_TOKEN": "x"}, strict=True)
    message = str(info.value)
    assert str(path) in message
    assert "[directories.hr] api_key" in message
    assert "ORG_KEY is not set" in message


def test_unknown_key_gets_a_suggestion_and_no_secret(tmp_path: Path) -> None:
    path = write(tmp_path, '[directories.wiki]\nprovider = "notion"\ntokn = "${NOTION_TOKEN}"\n')
    with pytest.raises(userdir.ConfigError) as info:
        load_config(path, environ=ENV, strict=True)
    message = str(info.value)
    assert "[directories.wiki]" in message
    assert "'tokn'" in message
    assert "did you mean 'token'" in message
    assert ENV["NOTION_TOKEN"] not in message


def test_unknown_common_option_suggested(tmp_path: Path) -> None:
    path = write(tmp_path, '[directories.w]\nprovider = "notion"\ntoken = "t"\ntimout = 3\n')
    with pytest.raises(userdir.ConfigError, match="did you mean 'timeout'"):
        load_config(path, strict=True)


def test_wrong_type_is_a_config_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[directories.w]\nprovider = "notion"\ntoken = "${T}"\ntimeout = "soon"\n'
    )
    with pytest.raises(userdir.ConfigError) as info:
        load_config(path, environ={"T": "tok-S3CR3T"}, strict=True)
    assert "[directories.w]" in str(info.value)
    assert "timeout" in str(info.value)
    assert "tok-S3CR3T" not in str(info.value)


def test_unknown_provider_lists_the_known(tmp_path: Path) -> None:
    path = write(tmp_path, '[directories.x]\nprovider = "notoin"\n')
    with pytest.raises(userdir.ConfigError) as info:
        load_config(path, strict=True)
    assert "did you mean 'notion'" in str(info.value)
    for name in ("notion", "org_api", "rest"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not toml [", "not valid TOML"),
        ("[other]\n", "unknown top-level"),
        ("[directories]\n", r"no \[directories"),
        ('[directories.a]\ntoken = "t"\n', "'provider' is missing"),
        ('[directories.a]\nprovider = "rest"\ntoken = "t"\n', "needs option.*base_url"),
        ('[directories.a]\nprovider = "notion"\ntoken = "${1BAD}"\n', "not a valid environment"),
    ],
)
def test_config_errors(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(userdir.ConfigError, match=match):
        load_config(write(tmp_path, text), strict=True)


def test_mapping_config_and_async(tmp_path: Path) -> None:
    emulator = NotionEmulator()
    emulator.add_user(name="Bo", email="bo@example.com")
    config = {
        "directories": {
            "w": {"provider": "notion", "token": emulator.token, "transport": emulator.transport}
        }
    }
    dirs = load_config_async(config)
    import asyncio

    async def main() -> Any:
        async with userdir.AsyncFederation(dirs) as fed:
            return await fed.find("BO@example.com")

    assert asyncio.run(main()).users["w"].name == "Bo"


def test_read_config_never_connects() -> None:
    label, tables = read_config({"directories": {"a": {"provider": "nope"}}})
    assert label == "<config mapping>"
    assert tables == {"a": {"provider": "nope"}}


def test_example_config_loads() -> None:
    example = Path(__file__).parent.parent / "examples" / "userdir.toml"
    env = {"NOTION_TOKEN": "a", "ORG_API_KEY": "b", "APP_API_TOKEN": "c", "SCIM_TOKEN": "d"}
    dirs = load_config(example, environ=env)
    assert sorted(d.provider for d in dirs.values()) == ["notion", "org_api", "rest", "scim"]
    for d in dirs.values():
        d.close()


# -- the registry ---------------------------------------------------------------------


class ThirdPartyDialect(DummyDialect):
    name: ClassVar[str] = "acme"


def test_register_provider_is_loaded_from_config(tmp_path: Path) -> None:
    userdir.register_provider("acme", ThirdPartyDialect, replace=True)
    path = write(tmp_path, '[directories.a]\nprovider = "acme"\ntoken = "t"\n')
    directory = load_config(path)["a"]
    assert directory.provider == "acme"
    assert "acme" in [p.name for p in userdir.available_providers()]


def test_register_refuses_to_shadow_a_builtin() -> None:
    with pytest.raises(userdir.ConfigError, match="already registered"):
        userdir.register_provider("notion", ThirdPartyDialect)


def test_available_providers_list_capabilities() -> None:
    infos = {p.name: p for p in userdir.available_providers()}
    assert infos["org_api"].capabilities.email_lookup == "native"  # type: ignore[union-attr]
    assert infos["rest"].capabilities.create_user  # type: ignore[union-attr]
    assert "base_url" in infos["rest"].required
    assert "token" in infos["notion"].required
    assert infos["notion"].to_dict()["source"] == "built-in"


def test_entry_point_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package installed with a ``userdir.providers`` entry point is found by name."""
    pkg = tmp_path / "site"
    (pkg / "acme_userdir").mkdir(parents=True)
    (pkg / "acme_userdir" / "__init__.py").write_text(
        "from tests.dummy import DummyDialect\n"
        "class AcmeDialect(DummyDialect):\n"
        "    name = 'acme_ep'\n"
    )
    dist = pkg / "acme_userdir-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-userdir\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[userdir.providers]\nacme_ep = acme_userdir:AcmeDialect\n"
    )
    monkeypatch.syspath_prepend(str(pkg))
    registry.reload_entry_points()
    try:
        infos = {p.name: p for p in userdir.available_providers()}
        assert infos["acme_ep"].source == "entry point"
        path = write(tmp_path, '[directories.e]\nprovider = "acme_ep"\ntoken = "t"\n')
        assert load_config(path)["e"].provider == "acme_ep"
    finally:
        sys.modules.pop("acme_userdir", None)
        registry.reload_entry_points()
