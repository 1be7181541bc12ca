"""Reconcile settings from the config file's ``[reconcile.<name>]`` tables.

.. code-block:: toml

    [reconcile.hr-to-app]
    source = "hr"                       # the directories it is for (optional)
    target = "app"
    match = "email"                     # or "external_id" (a SCIM target)
    fields = ["name", "role", "status"]
    on_missing = "deactivate"           # or "delete", "ignore"
    delete_after = "30d"                # s, m, h, d or w; a number is days
    role_map = { Admin = "admin", Engineer = "member", "*" = "viewer" }
    protect = { kinds = ["bot"], emails = ["svc-*@example.com"], roles = ["owner", "admin"] }
    limits = { max_changes = "10%", min_source_ratio = 0.5 }
    only = ["ada@example.com"]          # try it on some accounts first (patterns)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._reconcile import settings
from ._reconcile_plan import Limits, Protect, parse_duration
from .config import default_config_path
from .errors import ConfigError, InvalidArgumentError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["reconcile_settings"]

_KEYS = {
    "source",
    "target",
    "match",
    "fields",
    "role_map",
    "on_missing",
    "delete_after",
    "protect",
    "limits",
    "only",
}
_PROTECT_KEYS = {"kinds", "emails", "roles"}
_LIMIT_KEYS = {"max_changes", "min_source_ratio", "allow_empty_source"}


def _tables(source: str | os.PathLike[str] | Mapping[str, Any] | None) -> tuple[str, Any]:
    if isinstance(source, Mapping):
        return "<config mapping>", source.get("reconcile", {})
    path = Path(source) if source is not None else default_config_path()
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return str(path), {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {type(exc).__name__}") from None
    return str(path), data.get("reconcile", {})


def _subtable(where: str, key: str, value: Any, known: set[str]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: {key} must be a table")
    unknown = set(value) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) in {key}: {', '.join(sorted(unknown))}")
    return dict(value)


def reconcile_settings(
    config: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    name: str | None = None,
    *,
    source: str | None = None,
    target: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments of :func:`userdir.plan` from a ``[reconcile.<name>]`` table.

    Without ``name``, the one table whose ``source`` and ``target`` are the given
    directories is used (none: the defaults). Errors name the file, table and key.
    """
    label, tables = _tables(config)
    if not isinstance(tables, Mapping):
        raise ConfigError(f"{label}: [reconcile] must hold [reconcile.<name>] tables")
    if name is not None:
        if name not in tables:
            known = ", ".join(tables) or "none"
            raise ConfigError(f"{label}: no [reconcile.{name}] table (known: {known})")
        chosen = name
    else:
        matching = [
            key
            for key, table in tables.items()
            if isinstance(table, Mapping)
            and table.get("source") == source
            and table.get("target") == target
        ]
        if len(matching) > 1:
            raise ConfigError(
                f"{label}: several [reconcile.*] tables are for {source} -> {target} "
                f"({', '.join(matching)}): name one"
            )
        if not matching:
            return {}
        chosen = matching[0]
    table = tables[chosen]
    where = f"{label}: [reconcile.{chosen}]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s): {', '.join(sorted(unknown))}")
    options: dict[str, Any] = {}
    try:
        for key in ("match", "fields", "role_map", "on_missing", "only"):
            if key in table:
                options[key] = table[key]
        if "delete_after" in table:
            options["delete_after"] = parse_duration(table["delete_after"])
        if "protect" in table:
            options["protect"] = Protect(
                **_subtable(where, "protect", table["protect"], _PROTECT_KEYS)
            )
        if "limits" in table:
            options["limits"] = Limits(**_subtable(where, "limits", table["limits"], _LIMIT_KEYS))
        settings(**options)  # every value checked now, named with its table
    except InvalidArgumentError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None
    return options
