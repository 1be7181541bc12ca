"""Placeholders for directories whose config is broken: every use raises its ConfigError.

``load_config`` puts one in place of each directory it could not open, so one broken
table never blocks the others, and a :class:`~userdir.Federation` reports it as that
directory's error.
"""

from __future__ import annotations

from typing import NoReturn

from .directory import AsyncHttpDirectory, HttpDirectory
from .errors import ConfigError

__all__ = ["AsyncBrokenDirectory", "BrokenDirectory"]


class _Broken:
    """What both placeholders share.

    Attribute lookups a working directory would answer (its ``dialect``, ``engine``,
    ``capabilities``...) raise the stored error instead, so every operation does.
    """

    def __init__(self, name: str, provider: str | None, error: ConfigError) -> None:
        self.name = name
        self.provider = provider or ""
        self.error = error

    def __getattr__(self, attribute: str) -> NoReturn:
        if attribute.startswith("__"):  # copy, pickle and friends probe for these
            raise AttributeError(attribute)
        # A fresh error each time: callers (a federation) may add to its message.
        raise ConfigError(self.error.message, provider=self.error.provider) from None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.error.message}>"


class BrokenDirectory(_Broken, HttpDirectory):
    """A blocking directory whose config is broken; every operation raises its ConfigError."""

    def close(self) -> None:
        """Nothing to close."""


class AsyncBrokenDirectory(_Broken, AsyncHttpDirectory):
    """An asyncio directory whose config is broken; every operation raises its ConfigError."""

    async def close(self) -> None:
        """Nothing to close."""
