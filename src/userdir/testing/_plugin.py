"""The pytest plugin (entry point ``pytest11``): emulator fixtures for your own tests.

Fixtures: ``notion_emulator``, ``org_api_emulator``, ``rest_emulator``, ``scim_emulator``
— each a fresh, empty emulator; connect to it with ``transport=emulator.transport``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from . import NotionEmulator, OrgApiEmulator, RestEmulator, ScimEmulator


@pytest.fixture
def notion_emulator() -> NotionEmulator:
    """An in-memory Notion Users API; token ``emulator.token``."""
    from . import NotionEmulator

    return NotionEmulator()


@pytest.fixture
def org_api_emulator() -> OrgApiEmulator:
    """An in-memory org-API service; key ``emulator.api_key``."""
    from . import OrgApiEmulator

    return OrgApiEmulator()


@pytest.fixture
def rest_emulator() -> RestEmulator:
    """An in-memory REST ``/api/v1/users`` service; token ``emulator.token``."""
    from . import RestEmulator

    return RestEmulator()


@pytest.fixture
def scim_emulator() -> ScimEmulator:
    """An in-memory SCIM 2.0 ``/Users`` service; token ``emulator.token``; connect with
    ``base_url="https://scim.test/scim/v2"`` (any host and base path)."""
    from . import ScimEmulator

    return ScimEmulator()
