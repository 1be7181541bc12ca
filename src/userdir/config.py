"""Named directories from TOML (or a mapping), secrets from the environment.

.. code-block:: toml

    [directories.wiki]
    provider = "notion"
    token = "${NOTION_TOKEN}"
    max_requests_per_second = 3

Every string value may hold ``${NAME}`` references to environment variables; ``$$``
is a literal ``$``, and any other ``$`` is an error. Errors name the file, the table
and the key, and never print a value that came from the environment.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._secrets import Scrubber
from .directory import AsyncHttpDirectory, HttpDirectory
from .errors import ConfigError, DirectoryError
from .registry import connect, connect_async

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["DEFAULT_CONFIG_FILE", "load_config", "load_config_async", "read_config"]

DEFAULT_CONFIG_FILE = "userdir.toml"
CONFIG_ENV = "USERDIR_CONFIG"
# $$, ${NAME}, an unterminated ${, a bare $NAME, or a lone $
_DOLLAR = re.compile(r"\$(?:(\$)|\{([^}]*)\}|(\{)|([A-Za-z_][A-Za-z0-9_]*))?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOW = "write ${NAME} for a variable, $$ for a literal $"


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$USERDIR_CONFIG`` if set, else ``./userdir.toml``."""
    env = os.environ if environ is None else environ
    return Path(env.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)


def _expand(value: Any, where: str, environ: Mapping[str, str], used: dict[str, str]) -> Any:
    """``value`` with its references expanded; ``used`` learns each value -> ``${NAME}``."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            dollar, name, unterminated, bare = match.groups()
            if dollar:
                return "$"
            if unterminated:
                raise ConfigError(f"{where}: unterminated ${{ ({_HOW})")
            if bare:
                raise ConfigError(f"{where}: ${bare} is not expanded ({_HOW}: ${{{bare}}})")
            if name is None:
                raise ConfigError(f"{where}: a lone $ ({_HOW})")
            if not _NAME.fullmatch(name):
                raise ConfigError(f"{where}: ${{{name}}} is not a valid environment variable name")
            if name not in environ:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            for shown in (environ[name], environ[name].strip()):  # as given, as used
                used[shown] = f"${{{name}}}"
            return environ[name]

        return _DOLLAR.sub(substitute, value)
    if isinstance(value, Mapping):
        return {k: _expand(v, f"{where}.{k}", environ, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", environ, used) for i, v in enumerate(value)]
    return value


def read_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, dict[str, Any]]]:
    """Read and check a config: ``(where it came from, {name: options with provider})``.

    Environment references are expanded; nothing is connected yet.
    """
    label, tables, _ = _read(source, environ)
    return label, tables


def _read(
    source: str | os.PathLike[str] | Mapping[str, Any] | None,
    environ: Mapping[str, str] | None,
) -> tuple[str, dict[str, dict[str, Any]], dict[str, str]]:
    """:func:`read_config`, and every value taken from the environment -> ``${NAME}``."""
    env = os.environ if environ is None else environ
    if source is None:
        source = default_config_path(env)
    if isinstance(source, Mapping):
        label = "<config mapping>"
        data: Mapping[str, Any] = source
    else:
        path = Path(source)
        label = str(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise ConfigError(
                f"{label}: no config file (set {CONFIG_ENV} or create {DEFAULT_CONFIG_FILE})"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{label}: cannot read: {type(exc).__name__}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{label}: not valid TOML: {exc}") from None
    unknown = set(data) - {"directories"}
    if unknown:
        raise ConfigError(f"{label}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    tables = data.get("directories")
    if not isinstance(tables, Mapping) or not tables:
        raise ConfigError(f"{label}: no [directories.<name>] tables")
    out: dict[str, dict[str, Any]] = {}
    used: dict[str, str] = {}
    for name, table in tables.items():
        where = f"{label}: [directories.{name}]"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table")
        provider = table.get("provider")
        if not isinstance(provider, str) or not provider:
            raise ConfigError(f"{where}: key 'provider' is missing")
        options = {
            key: _expand(value, f"{where} {key}", env, used)
            for key, value in table.items()
            if key != "provider"
        }
        options["provider"] = provider
        out[str(name)] = options
    return label, out, used


def _open(
    label: str, name: str, options: dict[str, Any], factory: Any, from_env: Scrubber
) -> HttpDirectory | AsyncHttpDirectory:
    provider = options.pop("provider")
    try:
        return factory(provider, **options)  # type: ignore[no-any-return]
    except DirectoryError as exc:
        # whatever the provider quoted, a value from the environment shows as ${NAME}
        message = from_env(exc.message)
        raise ConfigError(f"{label}: [directories.{name}]: {message}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{label}: [directories.{name}]: an option has the wrong type ({type(exc).__name__})"
        ) from None


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, HttpDirectory]:
    """Open every directory of a config (a TOML path, a mapping, or the default file)."""
    label, tables, used = _read(source, environ)
    from_env = Scrubber(used)
    opened: dict[str, HttpDirectory] = {}
    try:
        for name, options in tables.items():
            opened[name] = _open(label, name, options, connect, from_env)  # type: ignore[assignment]
    except BaseException:
        for directory in opened.values():
            directory.close()
        raise
    return opened


def load_config_async(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, AsyncHttpDirectory]:
    """Like :func:`load_config`, with asyncio directories."""
    label, tables, used = _read(source, environ)
    from_env = Scrubber(used)
    return {
        name: _open(label, name, options, connect_async, from_env)  # type: ignore[misc]
        for name, options in tables.items()
    }
