"""The providers every generic test runs against: the built-ins and the test-only one."""

from __future__ import annotations

from userdir.testing import PROVIDERS as BUILT_IN
from userdir.testing import TestedProvider

from .roster import PROVIDER as ROSTER

PROVIDERS: tuple[TestedProvider, ...] = (*BUILT_IN, ROSTER)
NAMES = [provider.name for provider in PROVIDERS]


def named(name: str) -> TestedProvider:
    """The entry called ``name``."""
    return next(provider for provider in PROVIDERS if provider.name == name)
