"""Named directories from TOML (or a mapping), secrets from the environment.

.. code-block:: toml

    [directories.wiki]
    provider = "notion"
    token = "${NOTION_TOKEN}"
    max_requests_per_second = 3

Every string value may hold ``${NAME}`` references to environment variables; ``$$``
is a literal ``$``, and any other ``$`` is an error. Errors name the file, the table
and the key, and never print a value that came from the environment.

A table that cannot be opened (a missing variable, an unknown key, a bad value) does
not block the others: :func:`load_config` puts a :class:`BrokenDirectory` in its place,
which raises the table's :class:`~userdir.ConfigError` when used (``strict=True``
raises at once instead).
"""

from __future__ import annotations

import os
import re
import sys
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ._broken import AsyncBrokenDirectory, BrokenDirectory
from ._hints import did_you_mean
from ._secrets import Scrubber
from .directory import AsyncHttpDirectory, HttpDirectory
from .errors import ConfigError, DirectoryError
from .registry import COMMON_OPTIONS, connect, connect_async

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "AsyncBrokenDirectory",
    "BrokenDirectory",
    "credential_note",
    "load_config",
    "load_config_async",
    "read_config",
]

DEFAULT_CONFIG_FILE = "userdir.toml"
CONFIG_ENV = "USERDIR_CONFIG"
# $$, ${NAME}, an unterminated ${, a bare $NAME, or a lone $
_DOLLAR = re.compile(r"\$(?:(\$)|\{([^}]*)\}|(\{)|([A-Za-z_][A-Za-z0-9_]*))?")
_HOW = "write ${NAME} for a variable, $$ for a literal $"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOP_LEVEL = ("directories",)
# directory -> where its credential came from ("credential from token = ${APP_TOKEN}")
_CREDENTIALS: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()
D = TypeVar("D", HttpDirectory, AsyncHttpDirectory)


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

    Environment references are expanded; nothing is connected yet. The first broken
    table raises its :class:`~userdir.ConfigError`.
    """
    label, tables, _, _ = _read(source, environ)
    checked: dict[str, dict[str, Any]] = {}
    for name, options in tables.items():
        if isinstance(options, ConfigError):
            raise options
        checked[name] = options
    return label, checked


def _read(
    source: str | os.PathLike[str] | Mapping[str, Any] | None,
    environ: Mapping[str, str] | None,
) -> tuple[
    str,
    dict[str, dict[str, Any] | ConfigError],
    dict[str, dict[str, list[str]]],
    dict[str, str],
]:
    """(label, {name: options or the table's error}, {name: {key: env variable names}},
    {every value taken from the environment: ``${NAME}``})."""
    env = os.environ if environ is None else environ
    explicit = source is not None
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
            if explicit:
                raise ConfigError(f"no such config file: {label}") from None
            raise ConfigError(
                f"{label}: no config file (set {CONFIG_ENV} or create {DEFAULT_CONFIG_FILE})"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{label}: cannot read: {type(exc).__name__}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{label}: not valid TOML: {exc}") from None
    unknown = set(data) - set(_TOP_LEVEL)
    if unknown:
        suggestion = did_you_mean(next(iter(unknown)), _TOP_LEVEL) if len(unknown) == 1 else ""
        raise ConfigError(
            f"{label}: unknown top-level key(s): {', '.join(sorted(unknown))}{suggestion}"
        )
    tables = data.get("directories")
    if not isinstance(tables, Mapping) or not tables:
        raise ConfigError(f"{label}: no [directories.<name>] tables")
    out: dict[str, dict[str, Any] | ConfigError] = {}
    references: dict[str, dict[str, list[str]]] = {}
    used: dict[str, str] = {}
    from_file = not isinstance(source, Mapping)
    for name, table in tables.items():
        try:
            out[str(name)] = _table(label, str(name), table, env, from_file, used)
        except ConfigError as exc:
            out[str(name)] = exc
        if isinstance(table, Mapping):
            references[str(name)] = {
                str(key): [m.group(2) for m in _DOLLAR.finditer(value) if m.group(2)]
                for key, value in table.items()
                if isinstance(value, str)
            }
    return label, out, references, used


def _table(
    label: str,
    name: str,
    table: Any,
    env: Mapping[str, str],
    from_file: bool,
    used: dict[str, str],
) -> dict[str, Any]:
    where = f"{label}: [directories.{name}]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    provider = table.get("provider")
    if not isinstance(provider, str) or not provider:
        raise ConfigError(f"{where}: key 'provider' is missing")
    if from_file and "transport" in table:
        raise ConfigError(
            f"{where}: 'transport' cannot be set in a config file (it is a Python object: "
            "pass transport= to connect(), or use a mapping config)"
        )
    options = {
        key: _expand(value, f"{where} {key}", env, used)
        for key, value in table.items()
        if key != "provider"
    }
    options["provider"] = provider
    return options


def _open(
    label: str, name: str, options: dict[str, Any], factory: Callable[..., D], from_env: Scrubber
) -> D:
    provider = options.pop("provider")
    try:
        return factory(provider, **options)
    except DirectoryError as exc:
        # whatever the provider quoted, a value from the environment shows as ${NAME}
        message = from_env(exc.message)
        raise ConfigError(f"{label}: [directories.{name}]: {message}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{label}: [directories.{name}]: an option has the wrong type ({type(exc).__name__})"
        ) from None


def credential_note(directory: object) -> str | None:
    """Where a directory opened by :func:`load_config` got its credential, never its value.

    E.g. ``"credential from token = ${APP_TOKEN}"``; None if unknown.
    """
    return _CREDENTIALS.get(directory)


def _remember_credential(
    directory: HttpDirectory | AsyncHttpDirectory,
    label: str,
    options: Mapping[str, Any],
    references: Mapping[str, list[str]],
) -> None:
    """Note which option (and variable) supplied the credential the directory sends."""
    sent = list(directory.dialect.auth_headers().values())
    for key, value in options.items():
        if key in COMMON_OPTIONS or key in ("provider", "base_url"):
            continue
        if isinstance(value, str) and value and any(value in header for header in sent):
            names = references.get(key) or []
            if names:
                source = " ".join(f"${{{n}}}" for n in names)
                _CREDENTIALS[directory] = f"credential from {key} = {source}"
            else:
                _CREDENTIALS[directory] = f"credential from {key}, written in {label}"
            return


def _load(
    source: str | os.PathLike[str] | Mapping[str, Any] | None,
    environ: Mapping[str, str] | None,
    strict: bool,
    factory: Callable[..., D],
    broken: Callable[[str, str | None, ConfigError], D],
    close: Callable[[dict[str, D]], None],
) -> dict[str, D]:
    label, tables, references, used = _read(source, environ)
    from_env = Scrubber(used)
    if strict:  # as before: every table read and checked before any is opened
        for options in tables.values():
            if isinstance(options, ConfigError):
                raise options
    opened: dict[str, D] = {}
    try:
        for name, options in tables.items():
            try:
                if isinstance(options, ConfigError):
                    raise options
                directory = _open(label, name, dict(options), factory, from_env)
            except ConfigError as exc:
                if strict:
                    raise
                provider = None if isinstance(options, ConfigError) else options["provider"]
                opened[name] = broken(name, provider, exc)
            else:
                _remember_credential(directory, label, options, references.get(name, {}))
                opened[name] = directory
    except BaseException:
        close(opened)
        raise
    return opened


def _close_all(directories: dict[str, HttpDirectory]) -> None:
    for directory in directories.values():
        directory.close()


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    strict: bool = False,
) -> dict[str, HttpDirectory]:
    """Open every directory of a config (a TOML path, a mapping, or the default file).

    A table that cannot be opened becomes a :class:`BrokenDirectory` that raises its
    :class:`~userdir.ConfigError` when used, so the other directories still work;
    ``strict=True`` raises the first such error instead.
    """
    return _load(source, environ, strict, connect, BrokenDirectory, _close_all)


def load_config_async(
    source: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    strict: bool = False,
) -> dict[str, AsyncHttpDirectory]:
    """Like :func:`load_config`, with asyncio directories (:class:`AsyncBrokenDirectory`)."""
    # Nothing to close on failure: an unused asyncio client holds no connection.
    return _load(source, environ, strict, connect_async, AsyncBrokenDirectory, lambda _: None)
