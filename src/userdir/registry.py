"""Provider names -> dialect factories: the built-ins first, then entry points.

A provider is a *dialect factory*: a callable taking the provider's own keyword
options (``token=``, ``base_url=``, ...) and returning a :class:`~userdir.providers.Dialect`.
The generic directories then give it a sync and an async interface for free. Third
parties publish one under the entry-point group ``userdir.providers`` or call
:func:`register_provider`.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import httpx

from ._hints import did_you_mean
from ._http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    AsyncEngine,
    Retries,
    SyncEngine,
    plain_http_warning,
)
from .directory import (
    DEFAULT_CONCURRENCY,
    AsyncHttpDirectory,
    HttpDirectory,
    check_concurrency,
)
from .errors import ConfigError, DirectoryError
from .models import Capabilities
from .providers._base import Dialect, error_mapper

__all__ = [
    "CODE_ONLY_OPTIONS",
    "COMMON_OPTIONS",
    "ENTRY_POINT_GROUP",
    "ProviderInfo",
    "available_providers",
    "connect",
    "connect_async",
    "get_provider",
    "make_dialect",
    "register_provider",
    "reload_entry_points",
]

ENTRY_POINT_GROUP = "userdir.providers"

DialectFactory = Callable[..., Dialect]

# Options every provider takes; they configure the engine and the directory.
COMMON_OPTIONS = frozenset(
    {
        "timeout",
        "retries",
        "max_requests_per_second",
        "concurrency",
        "transport",
        "headers",
        "max_response_bytes",
    }
)
#: Options that take a Python object (``transport=``): given to ``connect()`` in code,
#: never written in a config file nor listed where config options are shown.
CODE_ONLY_OPTIONS = frozenset({"transport"})


class _builtin:
    """A built-in provider's dialect class, imported when the provider is first used."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def load(self) -> DialectFactory:
        import importlib

        factory: DialectFactory = getattr(
            importlib.import_module(f".providers.{self.module}", __package__), self.name
        )
        return factory

    def __call__(self, **options: Any) -> Dialect:
        return self.load()(**options)


_BUILTINS: dict[str, DialectFactory] = {
    "notion": _builtin("notion", "NotionDialect"),
    "org_api": _builtin("org_api", "OrgApiDialect"),
    "rest": _builtin("rest", "RestDialect"),
    "scim": _builtin("scim", "ScimDialect"),
}
_registered: dict[str, DialectFactory] = {}
_entry_points: dict[str, DialectFactory] | None = None
_lock = threading.Lock()


@attrs.frozen
class ProviderInfo:
    """A provider as the registry knows it: its name, options and capabilities."""

    name: str
    source: str
    options: tuple[str, ...]
    required: tuple[str, ...]
    capabilities: Capabilities | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "source": self.source,
            "options": list(self.options),
            "required": list(self.required),
            "capabilities": self.capabilities.to_dict() if self.capabilities else None,
        }


def register_provider(name: str, factory: DialectFactory, *, replace: bool = False) -> None:
    """Register a provider under ``name``; ``replace=True`` to override one."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"a provider name must be an identifier, got {name!r}")
    if not callable(factory):
        raise ConfigError(f"the factory for provider {name!r} is not callable")
    with _lock:
        if not replace and (name in _BUILTINS or name in _registered):
            raise ConfigError(f"provider {name!r} is already registered (pass replace=True)")
        _registered[name] = factory


def _load_entry_points() -> dict[str, DialectFactory]:
    global _entry_points
    with _lock:
        if _entry_points is None:
            from importlib.metadata import entry_points  # only when a plugin is looked for

            found: dict[str, DialectFactory] = {}
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                found.setdefault(ep.name, _LazyEntryPoint(ep))
            _entry_points = found
        return _entry_points


def reload_entry_points() -> None:
    """Forget the entry points read so far (after installing a plugin at run time)."""
    global _entry_points
    with _lock:
        _entry_points = None


class _LazyEntryPoint:
    """Imports the plugin only when the provider is first used."""

    def __init__(self, ep: Any) -> None:
        self.ep = ep
        self._factory: DialectFactory | None = None

    def load(self) -> DialectFactory:
        if self._factory is None:
            try:
                self._factory = self.ep.load()
            except Exception as exc:
                raise ConfigError(
                    f"provider {self.ep.name!r} (entry point {self.ep.value!r}) failed to "
                    f"load: {type(exc).__name__}: {exc}"
                ) from exc
        return self._factory

    def __call__(self, **options: Any) -> Dialect:
        return self.load()(**options)


def _all() -> dict[str, tuple[DialectFactory, str]]:
    out: dict[str, tuple[DialectFactory, str]] = {}
    for name, factory in _load_entry_points().items():
        out[name] = (factory, "entry point")
    for name, factory in _BUILTINS.items():
        out[name] = (factory, "built-in")
    for name, factory in _registered.items():
        out[name] = (factory, "registered")
    return out


def get_provider(name: str) -> DialectFactory:
    """The dialect factory for ``name``; ``ConfigError`` listing the known ones if none."""
    with _lock:  # registered and built-in names win over entry points: no scan for them
        factory = _registered.get(name) or _BUILTINS.get(name)
    if isinstance(factory, _builtin):
        return factory.load()
    if factory is not None:
        return factory
    known = _all()
    if name not in known:
        raise ConfigError(
            f"unknown provider {name!r}{did_you_mean(name, known)} "
            f"(known: {', '.join(sorted(known))})"
        )
    factory = known[name][0]
    return factory.load() if isinstance(factory, (_LazyEntryPoint, _builtin)) else factory


def _signature(factory: DialectFactory) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(option names, required names, takes **kwargs) of a factory."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return (), (), True
    names, required, var_kw = [], [], False
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
            if p.default is p.empty:
                required.append(p.name)
    return tuple(names), tuple(required), var_kw


def available_providers() -> list[ProviderInfo]:
    """Every provider that can be used, with its options and capabilities."""
    out = []
    for name, (factory, source) in sorted(_all().items()):
        try:
            real = factory.load() if isinstance(factory, (_LazyEntryPoint, _builtin)) else factory
        except ConfigError:
            out.append(ProviderInfo(name, f"{source} (failed to load)", (), (), None))
            continue
        options, required, _ = _signature(real)
        caps = getattr(real, "capabilities", None)
        out.append(
            ProviderInfo(
                name,
                source,
                tuple(sorted(set(options) | COMMON_OPTIONS)),
                required,
                caps if isinstance(caps, Capabilities) else None,
            )
        )
    return out


def make_dialect(provider: str, options: Mapping[str, Any]) -> Dialect:
    """Build a provider's dialect, refusing unknown or missing options by name."""
    factory = get_provider(provider)
    names, required, var_kw = _signature(factory)
    if not var_kw:
        for key in options:
            if key not in names:
                allowed = sorted((set(names) | COMMON_OPTIONS) - CODE_ONLY_OPTIONS)
                raise ConfigError(
                    f"unknown option {key!r} for provider {provider!r}"
                    f"{did_you_mean(key, allowed)} "
                    f"(options: {', '.join(allowed)})"
                )
    missing = [name for name in required if name not in options]
    if missing:
        raise ConfigError(
            f"provider {provider!r} needs option(s): {', '.join(missing)}"
            + (" (the service has no default address)" if "base_url" in missing else "")
        )
    try:
        dialect = factory(**options)
    except DirectoryError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"provider {provider!r}: {type(exc).__name__}") from None
    if not isinstance(dialect, Dialect):
        raise ConfigError(f"provider {provider!r}: the factory did not return a Dialect")
    return dialect


def _parts(
    provider: str, options: Mapping[str, Any], engine: dict[str, Any]
) -> tuple[Dialect, dict[str, Any]]:
    """The dialect and the engine's keyword arguments, shared by both connect()s."""
    dialect = make_dialect(provider, options)
    extra = engine["headers"]
    if extra is None or isinstance(extra, Mapping):  # anything else: the engine refuses it
        engine["headers"] = {**dialect.protocol_headers(), **(extra or {})}
    engine.update(
        provider=dialect.name,
        base_url=dialect.base_url,
        auth_headers=dialect.auth_headers(),
        error_mapper=error_mapper(dialect),
    )
    return dialect, engine


def _warn_plain_http(dialect: Dialect, engine: dict[str, Any]) -> None:
    """One UserWarning per directory whose credentials would travel unencrypted."""
    warning = plain_http_warning(dialect.base_url, bool(engine["auth_headers"]))
    if warning is not None:
        # stacklevel 3: the code that called connect() or connect_async()
        warnings.warn(f"{dialect.name}: {warning}", UserWarning, stacklevel=3)


def connect(
    provider: str,
    *,
    timeout: float | httpx.Timeout | None = None,
    retries: Retries | int | bool | Mapping[str, Any] | None = None,
    max_requests_per_second: float | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    transport: httpx.BaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    **options: Any,
) -> HttpDirectory:
    """Open a blocking directory: ``connect("notion", token=...)``.

    ``options`` are the provider's own (``token``, ``api_key``, ``base_url``,
    ``notion_version``, ...); the named arguments configure the HTTP engine.
    """
    check_concurrency(concurrency)  # before any client is opened
    dialect, engine = _parts(
        provider,
        options,
        {
            "timeout": timeout,
            "retries": retries,
            "max_requests_per_second": max_requests_per_second,
            "headers": headers,
            "max_response_bytes": max_response_bytes,
            "transport": transport,
        },
    )
    _warn_plain_http(dialect, engine)
    return HttpDirectory(dialect, SyncEngine(**engine), concurrency=concurrency)


def connect_async(
    provider: str,
    *,
    timeout: float | httpx.Timeout | None = None,
    retries: Retries | int | bool | Mapping[str, Any] | None = None,
    max_requests_per_second: float | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    transport: httpx.AsyncBaseTransport | None = None,
    headers: Mapping[str, str] | None = None,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    **options: Any,
) -> AsyncHttpDirectory:
    """Open an asyncio directory: ``connect_async("notion", token=...)``."""
    check_concurrency(concurrency)  # before any client is opened
    dialect, engine = _parts(
        provider,
        options,
        {
            "timeout": timeout,
            "retries": retries,
            "max_requests_per_second": max_requests_per_second,
            "headers": headers,
            "max_response_bytes": max_response_bytes,
            "transport": transport,
        },
    )
    _warn_plain_http(dialect, engine)
    return AsyncHttpDirectory(dialect, AsyncEngine(**engine), concurrency=concurrency)
