"""A small fictional company in the emulators: the data of ``userdir demo``."""

from __future__ import annotations

from typing import Any

import attrs

from ..directory import HttpDirectory
from ..registry import connect
from ._base import Emulator
from ._notion import NotionEmulator
from ._org_api import OrgApiEmulator
from ._rest import RestEmulator
from ._scim import ScimEmulator

__all__ = ["DemoCompany", "demo_company", "seed_demo"]

# first, last, HR email, in the wiki (Notion)?, app status (None: no app account), app role
_STAFF = [
    ("Ada", "Lovelace", "ada.lovelace@northwind.example", True, "active", "admin"),
    ("Grace", "Hopper", "grace.hopper@northwind.example", True, "active", "admin"),
    ("Alan", "Turing", "alan.turing@northwind.example", True, "active", "editor"),
    ("Katherine", "Johnson", "katherine.johnson@northwind.example", True, "active", "editor"),
    ("Edsger", "Dijkstra", "edsger.dijkstra@northwind.example", True, "inactive", "viewer"),
    ("Barbara", "Liskov", "barbara.liskov@northwind.example", True, "active", "viewer"),
    ("Donald", "Knuth", "donald.knuth@northwind.example", False, "pending", "viewer"),
    ("Margaret", "Hamilton", "margaret.hamilton@northwind.example", True, None, None),
]
# HR's role where it disagrees with the app (an audit finding of its own).
_HR_ROLES = {"katherine.johnson@northwind.example": "Viewer"}
# Left the company: removed from HR, still active in the app and the wiki.
LEAVER = ("Mallory", "Quinn", "mallory.quinn@northwind.example")


def _cased(email: str, style: int) -> str:
    local, _, domain = email.partition("@")
    if style == 1:
        return f"{local.title()}@{domain}"
    if style == 2:
        return email.upper()
    return email


@attrs.define
class DemoCompany:
    """The emulators of the demo company and the directories connected to them."""

    notion: NotionEmulator
    org_api: OrgApiEmulator
    rest: RestEmulator
    scim: ScimEmulator
    lookups: list[str]

    def directories(self, **options: Any) -> dict[str, HttpDirectory]:
        """Blocking directories over the emulators' in-process transports (no network)."""
        urls = {
            "wiki": None,
            "hr": "https://hr.northwind.example",
            "app": "https://app.northwind.example",
            "idp": "https://idp.northwind.example/scim/v2",
        }
        emulators = {"wiki": self.notion, "hr": self.org_api, "app": self.rest, "idp": self.scim}
        out = {}
        for label, emu in emulators.items():
            given = emu.connect_options()
            if urls[label] is not None:
                given["base_url"] = urls[label]
            out[label] = connect(emu.service, **given, **options)
        return out


def seed_demo(emulator: Emulator) -> None:
    """Add Northwind's accounts in ``emulator``'s service, exactly as `demo_company` does.

    Each service's share depends on nothing else, so emulators seeded one by one (even
    in separate processes) hold the same company as ``userdir demo``.
    """
    if isinstance(emulator, NotionEmulator):
        _seed_notion(emulator)
    elif isinstance(emulator, OrgApiEmulator):
        _seed_org_api(emulator)
    elif isinstance(emulator, RestEmulator):
        _seed_rest(emulator)
    elif isinstance(emulator, ScimEmulator):
        _seed_scim(emulator)
    else:
        raise TypeError(f"no demo company for {type(emulator).__name__}")


def _seed_notion(notion: NotionEmulator) -> None:
    for index, (first, last, email, in_wiki, _, _) in enumerate(_STAFF):
        if in_wiki:
            notion.add_user(name=f"{first} {last}", email=_cased(email, index % 3))
    first, last, email = LEAVER
    notion.add_user(name=f"{first} {last}", email=email)
    notion.add_user(name="Deploy Bot", kind="bot")


def _seed_org_api(org: OrgApiEmulator) -> None:
    for first, last, email, _, _, app_role in _STAFF:
        org.add_user(
            email=email,
            first_name=first,
            last_name=last,
            username=f"{first[0]}{last}".lower(),
            user_role=_HR_ROLES.get(email, (app_role or "member").title()),
        )


def _seed_rest(rest: RestEmulator) -> None:
    for index, (first, last, email, _, app_status, app_role) in enumerate(_STAFF):
        if app_status is not None:
            rest.add_user(
                email=_cased(email, (index + 1) % 3),
                name=f"{first} {last}",
                role=app_role or "viewer",
                status=app_status,
            )
    first, last, email = LEAVER
    rest.add_user(email=email, name=f"{first} {last}", role="editor", status="active")


def _seed_scim(idp: ScimEmulator) -> None:
    # The identity provider, provisioned from HR: everyone in HR, deactivated where the
    # app says so; the leaver was never deprovisioned.
    for index, (first, last, email, _, app_status, _) in enumerate(_STAFF):
        idp.add_user(
            email=_cased(email, (index + 2) % 3),
            name=f"{first} {last}",
            role=None,
            status="inactive" if app_status == "inactive" else "active",
            given_name=first,
            family_name=last,
            id=f"idp-{index + 1:04d}",
        )
    first, last, email = LEAVER
    idp.add_user(email=email, name=f"{first} {last}", role=None, id="idp-0100")


def demo_company() -> DemoCompany:
    """Seed the emulators with Northwind: emails cased differently across services, one
    person who left HR but is still active in the app, and a Notion bot."""
    notion, org, rest, idp = NotionEmulator(), OrgApiEmulator(), RestEmulator(), ScimEmulator()
    for emulator in (notion, org, rest, idp):
        seed_demo(emulator)
    lookups = [
        "ADA.LOVELACE@northwind.example",
        "Donald.Knuth@Northwind.example",
        LEAVER[2],
        "nobody@northwind.example",
    ]
    return DemoCompany(notion, org, rest, idp, lookups)
