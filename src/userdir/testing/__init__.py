"""Stateful in-memory emulators of the user-directory services, for tests and benchmarks.

Each emulator keeps users in memory and answers like the real service, either in-process
through ``emu.transport`` (an httpx transport, sync and async) or over real HTTP with
``with emu.serve() as base_url: ...``. Faults (rate limits, 5xx, HTML error pages, dropped
connections, timeouts, delays) can be injected and every request is logged.

Every emulator's ``add_user`` takes the provider-neutral ``email``, ``name``, ``role`` and
``status`` besides its service's own fields; ``emu.credentials`` is the ``connect()`` option
with the credential it accepts.

Run ``python -m userdir.testing serve [notion] [org_api] [rest] [scim] [--company demo]`` to serve
emulators in their own process: it prints ``READY <url> <provider> <option>=<credential>``
for each (``--help`` gives the defaults).
"""

from __future__ import annotations

from ._base import Emulator, RecordedRequest
from ._faults import Fault
from ._notion import NotionEmulator
from ._org_api import OrgApiEmulator
from ._providers import PROVIDERS, TestedProvider, provider_named
from ._rest import RestEmulator
from ._scim import ScimEmulator

__all__ = [
    "PROVIDERS",
    "Emulator",
    "Fault",
    "NotionEmulator",
    "OrgApiEmulator",
    "RecordedRequest",
    "RestEmulator",
    "ScimEmulator",
    "TestedProvider",
    "provider_named",
]
