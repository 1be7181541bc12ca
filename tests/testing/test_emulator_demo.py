"""``seed_demo``: each emulator gets its share of the company of ``userdir demo``, on its own."""

from __future__ import annotations

from typing import Any

import pytest

from userdir.testing import Emulator, NotionEmulator, OrgApiEmulator, RestEmulator, ScimEmulator
from userdir.testing._demo import demo_company, seed_demo

# Notion ids are random; REST and SCIM stamp creation with the current time
VARYING = {"id", "created_at", "meta"}


def _people(emulator: Emulator) -> list[dict[str, Any]]:
    own_bot = getattr(emulator, "bot_id", None)  # Notion's integration, in a random workspace
    return [
        {k: v for k, v in u.items() if k not in VARYING}
        for u in emulator.users
        if u["id"] != own_bot
    ]


@pytest.mark.parametrize("cls", [NotionEmulator, OrgApiEmulator, RestEmulator, ScimEmulator])
def test_seeding_one_emulator_alone_gives_the_demo_share(cls: type[Emulator]) -> None:
    company = demo_company()
    shared = {
        "notion": company.notion,
        "org_api": company.org_api,
        "rest": company.rest,
        "scim": company.scim,
    }
    alone = cls()
    seed_demo(alone)
    assert _people(alone) == _people(shared[alone.service])
    assert len(alone) > 1


def test_the_shares_overlap_by_email() -> None:
    company = demo_company()

    def emails(emulator: Emulator) -> set[str]:
        return {
            str(u.get("email") or u.get("person", {}).get("email")).lower() for u in emulator.users
        }

    hr, app, wiki = emails(company.org_api), emails(company.rest), emails(company.notion)
    assert len(hr & app) == 7
    assert "mallory.quinn@northwind.example" in (app & wiki) - hr  # the leaver


def test_an_emulator_without_a_demo_share_is_refused() -> None:
    class Other(Emulator):
        service = "other"

    with pytest.raises(TypeError, match="no demo company for Other"):
        seed_demo(Other())
