"""``userdir plan`` and ``userdir apply``, and ``[reconcile.<name>]`` config tables."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from pathlib import Path

import pytest

import userdir
from userdir.cli import main
from userdir.testing import Fault
from userdir.testing._demo import DemoCompany

from .test_cli import TTY

CONFIG = """
[directories.hr]
provider = "org_api"
api_key = "x"
base_url = "https://hr.test"

[directories.app]
provider = "rest"
token = "x"
base_url = "https://app.test"

[reconcile.hr-app]
source = "hr"
target = "app"
role_map = { Admin = "admin", Editor = "editor", Viewer = "viewer", Member = "member" }
protect = { roles = ["owner"], emails = ["mallory.*@northwind.example"] }
limits = { max_changes = 10 }

[reconcile.strict]
limits = { max_changes = 1 }

[reconcile.trial]
only = ["katherine.*"]
delete_after = "12h"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "userdir.toml"
    path.write_text(CONFIG)
    return path


def run(
    company: DemoCompany, *argv: str, stderr: io.StringIO | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), stderr or io.StringIO()
    # One set of directories per command, as the config loader gives.
    code = main(list(argv), stdout=out, stderr=err, loader=lambda _p: company.directories())
    return code, out.getvalue(), err.getvalue()


def test_plan_prints_and_writes_a_plan_and_changes_nothing(
    company: DemoCompany, config: Path, tmp_path: Path
) -> None:
    before = company.rest.users
    target = tmp_path / "plan.json"
    code, out, err = run(
        company,
        "--config",
        str(config),
        "--format",
        "table",
        "plan",
        "hr",
        "app",
        "-o",
        str(target),
    )
    assert code == 0, err
    assert out.splitlines()[0].split() == ["KIND", "EMAIL", "USER_ID", "DETAIL"]
    assert out.splitlines()[1].split()[:2] == ["create", "margaret.hamilton@northwind.example"]
    assert "role: editor -> viewer" in out
    # [reconcile.hr-app] protects mallory by email pattern:
    assert "protected email mallory.*@northwind.example: would deactivate" in out
    assert f"plan written to {target}" in err and "nothing changed" in err
    plan = userdir.Plan.load(target)
    assert plan.intact and plan.source == "hr" and plan.target == "app"
    assert plan.counts["create"] == 1 and plan.counts["update"] == 1
    assert company.rest.users == before
    assert {r.method for r in company.rest.requests} == {"GET"}


def test_plan_in_json_lines(company: DemoCompany, config: Path) -> None:
    code, out, _ = run(company, "--config", str(config), "plan", "hr", "app")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["kind"] for r in rows] == ["create", "update", "skip"]
    assert set(rows[0]) == {"kind", "email", "email_key", "user_id", "detail"}


def test_plan_only_some_accounts(company: DemoCompany, config: Path) -> None:
    code, out, err = run(
        company,
        "--config",
        str(config),
        "plan",
        "hr",
        "app",
        "--only",
        "katherine.*",
        "--only",
        "nobody@northwind.example",
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["kind"], r["email_key"]) for r in rows] == [
        ("update", "katherine.johnson@northwind.example")
    ]


def test_plan_refused_by_a_safety_check_exits_2(company: DemoCompany, config: Path) -> None:
    code, out, err = run(
        company, "--config", str(config), "plan", "hr", "app", "--reconcile", "strict"
    )
    assert code == 2
    assert out == ""
    assert err.startswith("userdir: app: the plan has 3 changes")
    assert "over max_changes=1" in err
    assert {r.method for r in company.rest.requests} == {"GET"}


def test_plan_stops_when_a_listing_fails(company: DemoCompany, config: Path) -> None:
    company.org_api.inject(Fault.status(500))
    code, out, err = run(company, "--config", str(config), "plan", "hr", "app")
    assert code == 4
    assert out == ""
    assert err.startswith("userdir: hr: [org_api] HTTP 500")
    assert {r.method for r in company.rest.requests} <= {"GET"}


def test_unknown_reconcile_table_and_bad_keys(
    company: DemoCompany, config: Path, tmp_path: Path
) -> None:
    code, _, err = run(company, "--config", str(config), "plan", "hr", "app", "--reconcile", "nope")
    assert code == 2 and "no [reconcile.nope] table (known: hr-app, strict, trial)" in err
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG + '\n[reconcile.typo]\nprotekt = ["x"]\n')
    code, _, err = run(company, "--config", str(bad), "plan", "hr", "app", "--reconcile", "typo")
    assert code == 2 and "[reconcile.typo]: unknown key(s): protekt" in err
    bad.write_text(CONFIG + '\n[reconcile.typo]\nlimits = { max_changes = "lots" }\n')
    code, _, err = run(company, "--config", str(bad), "plan", "hr", "app", "--reconcile", "typo")
    assert code == 2 and "[reconcile.typo]: max_changes: not a percentage" in err
    bad.write_text(CONFIG + '\n[reconcile.typo]\non_missing = "purge"\n')
    code, _, err = run(company, "--config", str(bad), "plan", "hr", "app", "--reconcile", "typo")
    assert code == 2 and "[reconcile.typo]: on_missing must be one of" in err


def test_config_tables_are_accepted_by_load_config(config: Path) -> None:
    assert set(userdir.load_config(config)) == {"hr", "app"}
    options = userdir.reconcile_settings(config, source="hr", target="app")
    assert options["role_map"]["Viewer"] == "viewer"
    assert options["protect"] == userdir.Protect(
        roles=["owner"], emails=["mallory.*@northwind.example"]
    )
    assert options["limits"] == userdir.Limits(max_changes=10)
    assert userdir.reconcile_settings(config, source="hr", target="wiki") == {}
    example = Path(__file__).parent.parent / "examples" / "userdir.toml"
    options = userdir.reconcile_settings(example, source="hr", target="app")
    assert options["limits"] == userdir.Limits(max_changes="10%", min_source_ratio=0.5)
    assert options["delete_after"] == dt.timedelta(days=30)
    trial = userdir.reconcile_settings(config, "trial")
    assert trial == {"only": ["katherine.*"], "delete_after": dt.timedelta(hours=12)}


def test_apply_needs_yes_off_a_terminal(
    company: DemoCompany, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "plan.json"
    assert run(company, "--config", str(config), "plan", "hr", "app", "-o", str(target))[0] == 0
    before = company.rest.users
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, _, err = run(company, "--config", str(config), "apply", str(target))
    assert code == 2
    assert "confirm on a terminal, or pass --yes" in err
    assert company.rest.users == before
    assert not (tmp_path / "plan.journal.jsonl").exists()


def test_apply_asks_on_a_terminal(
    company: DemoCompany, config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "plan.json"
    run(company, "--config", str(config), "plan", "hr", "app", "-o", str(target))
    before = company.rest.users
    monkeypatch.setattr(sys, "stdin", TTY("n\n"))
    code, _, err = run(company, "--config", str(config), "apply", str(target), stderr=TTY())
    assert code == 2
    assert "Apply 2 change(s) to app? [y/N]" in err and "nothing was changed" in err
    assert company.rest.users == before
    monkeypatch.setattr(sys, "stdin", TTY("y\n"))
    code, out, err = run(
        company, "--config", str(config), "--format", "jsonl", "apply", str(target), stderr=TTY()
    )
    assert code == 0, err
    assert "\r2/2 applied" in err  # progress, on a terminal
    assert "2 done, 1 skipped, 0 failed" in err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["outcome"] for r in rows] == ["done", "done", "skipped"]
    emails = {u["email"].lower(): u for u in company.rest.users}
    assert emails["margaret.hamilton@northwind.example"]["role"] == "member"
    assert emails["katherine.johnson@northwind.example"]["role"] == "viewer"


def test_apply_writes_the_journal_next_to_the_plan_and_resumes(
    company: DemoCompany, config: Path, tmp_path: Path
) -> None:
    target = tmp_path / "plan.json"
    run(company, "--config", str(config), "plan", "hr", "app", "-o", str(target))
    code, _, err = run(company, "--config", str(config), "apply", str(target), "--yes")
    assert code == 0, err
    journal = tmp_path / "plan.journal.jsonl"
    assert f"journal: {journal}" in err
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    # the create's entry is written ahead of it; writes run concurrently, in any order
    assert sorted((e["index"], e["outcome"]) for e in entries) == [
        (0, "done"),
        (0, "unknown"),
        (1, "done"),
    ]
    company.rest.clear_requests()
    code, out, err = run(company, "--config", str(config), "apply", str(target), "--yes")
    assert code == 0
    assert [r.method for r in company.rest.requests] == []  # nothing repeated
    assert all(
        json.loads(line)["resumed"]
        for line in out.splitlines()
        if json.loads(line)["outcome"] == "done"
    )


def test_apply_exit_codes(company: DemoCompany, config: Path, tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    run(company, "--config", str(config), "plan", "hr", "app", "-o", str(target))
    company.rest.inject(Fault.status(400), times=1)  # the create fails; the update goes on
    code, out, err = run(
        company, "--config", str(config), "apply", str(target), "--yes", "--concurrency", "1"
    )
    assert code == 1
    assert "1 done, 1 skipped, 1 failed" in err
    failed = [json.loads(line) for line in out.splitlines() if '"failed"' in line]
    assert [(r["action"], r["email_key"]) for r in failed] == [
        ("create", "margaret.hamilton@northwind.example")
    ]
    document = json.loads(target.read_text())
    document["actions"][0]["fields"]["role"] = "admin"
    target.write_text(json.dumps(document))
    code, _, err = run(company, "--config", str(config), "apply", str(target), "--yes")
    assert code == 2
    assert "userdir: app: the plan's content does not match its hash" in err
    target.write_text("{not json")
    code, _, err = run(company, "--config", str(config), "apply", str(target), "--yes")
    assert code == 2 and "plan: not valid JSON" in err


def test_demo_shows_a_plan() -> None:
    out = io.StringIO()
    assert main(["demo"], stdout=out, stderr=io.StringIO()) == 0
    text = out.getvalue()
    assert "Offboarding audit" in text
    plan = text.split("Reconcile plan: hr -> app", 1)[1]
    assert "margaret.hamilton@northwind.example" in plan
    assert "role: editor -> viewer" in plan
    assert "status: active -> inactive" in plan
    assert "1 create, 1 update, 1 deactivate, 0 delete" in plan


def test_a_table_can_match_by_external_id(company: DemoCompany, tmp_path: Path) -> None:
    path = tmp_path / "userdir.toml"
    path.write_text(
        CONFIG.split("[reconcile.hr-app]")[0]
        + '[reconcile.byid]\nmatch = "external_id"\nlimits = { max_changes = "100%" }\n'
        + "protect = { kinds = [], roles = [] }\n"
    )
    plan_file = tmp_path / "plan.json"
    argv = ["--config", str(path), "plan", "hr", "idp", "--reconcile", "byid"]
    code, _, err = run(company, *argv, "-o", str(plan_file))
    assert code == 0, err
    plan = userdir.Plan.load(plan_file)
    assert plan.settings["match"] == "external_id"
    code, _, err = run(company, "--config", str(path), "apply", str(plan_file), "--yes")
    assert code == 0, err
    hr_ids = {u["email"].lower(): str(u["id"]) for u in company.org_api.users}
    for account in company.scim.users:
        email = account["emails"][0]["value"].lower()
        if email in hr_ids and account["active"]:
            assert account["externalId"] == hr_ids[email]  # linked, or created with it
    again = run(company, *argv, "-o", str(plan_file))
    assert again[0] == 0, again[2]
    assert userdir.Plan.load(plan_file).counts["changes"] == 0
    # a target that keeps no external id: a one-line error, nothing listed
    code, out, err = run(company, *argv[:3], "hr", "app", "--reconcile", "byid")
    assert (code, out) == (2, "")  # bad settings for this target: a usage error
    assert err.startswith("userdir: ") and "keeps no external id" in err
    assert "Traceback" not in err
