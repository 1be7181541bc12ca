"""Named directories from TOML (or a mapping), secrets from the environment.

.. code-block:: toml

    [directories.wiki]
    provider = "notion"
    token = "${NOTION_TOKEN}"
    max_requests_per_second = 3

Every string value may hold ``${NAME}`` references to environment variables. Errors
name the file, the table and the key, and never print a value.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$USERDIR_CONFIG`` if set, else ``./userdir.toml``."""
    env = os.environ if environ is None else environ
    return Path(env.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE)


def _expand(value: Any, where: str, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if not _NAME.fullmatch(name):
                raise ConfigError(f"{where}: ${{{name}}} is not a valid environment variable name")
            if name not in environ:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return environ[name]

        return _REFERENCE.sub(substitute, value)
    if isinstance(value, Mapping):
        return {k: _expand(v, f"{where}.{k}", environ) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]", environ) for i, v in enumerate(value)]
    return value


def read_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, dict[str, Any]]]:
    """Read and check a config: ``(where it came from, {name: options with provider})``.

    Environment references are expanded; nothing is connected yet.
    """
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
    unknown = set(data) - {"directories", "reconcile"}
    if unknown:
        raise ConfigError(f"{label}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    tables = data.get("directories")
    if not isinstance(tables, Mapping) or not tables:
        raise ConfigError(f"{label}: no [directories.<name>] tables")
    out: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        where = f"{label}: [directories.{name}]"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table")
        provider = table.get("provider")
        if not isinstance(provider, str) or not provider:
            raise ConfigError(f"{where}: key 'provider' is missing")
        options = {
            key: _expand(value, f"{where} {key}", env)
            for key, value in table.items()
            if key != "provider"
        }
        options["provider"] = provider
        out[str(name)] = options
    return label, out


def _open(
    label: str, name: str, options: dict[str, Any], factory: Any
) -> HttpDirectory | AsyncHttpDirectory:
    provider = options.pop("provider")
    try:
        return factory(provider, **options)  # type: ignore[no-any-return]
    except DirectoryError as exc:
        raise ConfigError(f"{label}: [directories.{name}]: {exc.message}") from None
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
    label, tables = read_config(source, environ=environ)
    opened: dict[str, HttpDirectory] = {}
    try:
        for name, options in tables.items():
            opened[name] = _open(label, name, options, connect)  # type: ignore[assignment]
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
    label, tables = read_config(source, environ=environ)
    return {
        name: _open(label, name, options, connect_async)  # type: ignore[misc]
        for name, options in tables.items()
    }
