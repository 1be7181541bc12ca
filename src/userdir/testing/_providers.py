"""The one list of providers the test suite, the demo, the benchmarks and ``serve`` use.

Each entry knows the provider's name, its emulator and, for a provider that is not
built in, its dialect factory (registered when the entry is used). A provider added
here gets every generic test: listing, lookups, retries, faults, concurrency, sync and
async.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ..providers._base import Dialect
from ._base import Emulator
from ._notion import NotionEmulator
from ._org_api import OrgApiEmulator
from ._rest import RestEmulator
from ._scim import ScimEmulator

__all__ = ["PROVIDERS", "TestedProvider", "provider_named"]


@attrs.frozen
class TestedProvider:
    """One provider with its emulator: how to start one and connect to it."""

    __test__ = False  # not a pytest test class, whatever its name

    name: str
    emulator: Callable[..., Emulator]
    #: The dialect factory of a provider that is not built in (registered on use).
    dialect: Callable[..., Dialect] | None = None

    def make(self, users: int = 0, *, latency: float = 0.0, **options: Any) -> Emulator:
        """A fresh emulator, populated with ``users`` generated users."""
        emu = self.emulator(latency=latency, **options)
        if users:
            emu.populate(users)
        if self.dialect is not None:
            from ..registry import register_provider

            register_provider(self.name, self.dialect, replace=True)
        return emu


#: The built-in providers.
PROVIDERS: tuple[TestedProvider, ...] = (
    TestedProvider("notion", NotionEmulator),
    TestedProvider("org_api", OrgApiEmulator),
    TestedProvider("rest", RestEmulator),
    TestedProvider("scim", ScimEmulator),
)


def provider_named(name: str, providers: tuple[TestedProvider, ...] = PROVIDERS) -> TestedProvider:
    """The entry called ``name``."""
    for provider in providers:
        if provider.name == name:
            return provider
    raise KeyError(name)
