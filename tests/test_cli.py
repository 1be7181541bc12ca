"""The userdir command, in-process against the demo company's emulators, and via subprocess."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import userdir
from userdir.cli import USER_COLUMNS, main
from userdir.testing import Fault, RestEmulator
from userdir.testing._demo import DemoCompany


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(
    company: DemoCompany | None,
    *argv: str,
    stdout: io.StringIO | None = None,
    stderr: io.StringIO | None = None,
    loader: Any = None,
) -> tuple[int, str, str]:
    out, err = stdout or io.StringIO(), stderr or io.StringIO()
    if loader is None and company is not None:

        def loader(path: str | None) -> Any:
            return company.directories()

    code = main(list(argv), stdout=out, stderr=err, loader=loader)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_providers(fmt: str) -> None:
    code, out, err = run(None, "--format", fmt, "providers")
    assert code == 0
    assert err == ""
    for name in ("notion", "org_api", "rest"):
        assert name in out
    if fmt == "json":
        rows = {r["name"]: r for r in json.loads(out)}
        assert rows["org_api"]["email_lookup"] == "native"
        assert rows["rest"]["writes"] is True


def test_list_in_every_format(company: DemoCompany) -> None:
    code, out, _ = run(company, "--format", "jsonl", "list", "app")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == len(company.rest)
    assert {r["provider"] for r in rows} == {"rest"}

    code, out, _ = run(company, "--format", "json", "list", "app")
    assert json.loads(out) == rows

    code, out, _ = run(company, "--format", "csv", "list", "app")
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0] == ",".join(USER_COLUMNS)
    assert [r["id"] for r in parsed] == [r["id"] for r in rows]
    assert parsed[0]["created_at"].endswith("+00:00")  # ISO 8601

    code, out, _ = run(company, "--format", "table", "list", "app")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "KIND", "EMAIL", "NAME", "ROLE", "STATUS"]
    assert len(lines) == 1 + len(rows)


def test_default_format_is_jsonl_when_piped_and_table_on_a_terminal(company: DemoCompany) -> None:
    _, out, _ = run(company, "list", "hr")
    assert all(json.loads(line)["provider"] == "org_api" for line in out.splitlines())
    _, out, _ = run(company, "list", "hr", stdout=TTY())
    assert out.startswith("ID ")


def test_list_filters_and_limit(company: DemoCompany) -> None:
    _, out, _ = run(
        company, "--format", "jsonl", "list", "app", "--status", "active", "--role", "editor"
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows
    assert {(r["status"], r["role"]) for r in rows} == {("active", "editor")}
    assert company.rest.requests[-1].params["status"] == "active"
    _, out, _ = run(company, "--format", "jsonl", "list", "wiki", "--limit", "3")
    assert len(out.splitlines()) == 3


def test_progress_only_on_a_terminal(company: DemoCompany) -> None:
    company.rest.populate(400)
    company.rest.latency = 0.002
    _, _, err = run(company, "--format", "jsonl", "list", "app")
    assert err == ""
    _, _, err = run(company, "--format", "jsonl", "list", "app", stderr=TTY())
    assert "users fetched" in err


def test_get_and_not_found(company: DemoCompany) -> None:
    user_id = company.rest.users[0]["id"]
    code, out, _ = run(company, "--format", "json", "get", "app", user_id)
    assert code == 0
    assert json.loads(out)["id"] == user_id
    code, out, err = run(company, "get", "app", "usr_999999")
    assert code == 1
    assert out == ""
    assert err.startswith("userdir: app: [rest] HTTP 404")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_find(company: DemoCompany) -> None:
    code, out, _ = run(company, "--format", "jsonl", "find", "MALLORY.QUINN@northwind.example")
    rows = {r["directory"]: r for r in map(json.loads, out.splitlines())}
    assert code == 0
    assert rows["hr"]["result"] == "missing"
    assert rows["app"]["result"] == "found"
    assert rows["app"]["status"] == "active"
    code, out, _ = run(company, "--format", "jsonl", "find", "nobody@northwind.example")
    assert code == 1
    code, out, _ = run(
        company, "--format", "jsonl", "find", "--directory", "hr", "ada.lovelace@northwind.example"
    )
    assert [json.loads(line)["directory"] for line in out.splitlines()] == ["hr"]


def test_find_with_a_failing_directory(company: DemoCompany) -> None:
    company.org_api.inject(Fault.status(503), times=100)
    code, out, err = run(company, "--format", "jsonl", "find", "ada.lovelace@northwind.example")
    rows = {r["directory"]: r for r in map(json.loads, out.splitlines())}
    assert rows["wiki"]["result"] == "found"
    assert rows["hr"]["result"] == "error"
    assert code == 4
    assert "userdir: hr: [org_api] HTTP 503" in err


def test_whoami(company: DemoCompany) -> None:
    code, out, _ = run(company, "--format", "json", "whoami", "wiki")
    assert code == 0
    assert json.loads(out)["kind"] == "bot"
    code, _, err = run(company, "whoami", "hr")
    assert code == 2
    assert "not supported" in err


@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl"])
def test_export(company: DemoCompany, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"users{suffix}"
    code, out, err = run(company, "export", "wiki", "-o", str(target))
    assert code == 0
    assert out == ""
    assert f"exported {len(company.notion)} users from wiki" in err
    text = target.read_text()
    if suffix == ".csv":
        assert len(list(csv.DictReader(io.StringIO(text)))) == len(company.notion)
    elif suffix == ".json":
        assert len(json.loads(text)) == len(company.notion)
    else:
        assert len(text.splitlines()) == len(company.notion)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_diff(company: DemoCompany) -> None:
    code, out, _ = run(company, "--format", "jsonl", "diff", "hr", "app")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    findings = {(r["finding"], r["email_key"]) for r in rows}
    assert findings == {
        ("only in hr", "margaret.hamilton@northwind.example"),
        ("only in app", "mallory.quinn@northwind.example"),
        ("differs", "katherine.johnson@northwind.example"),
    }
    _, out, _ = run(company, "--format", "table", "diff", "hr", "app")
    assert "7 in both, 1 only in hr, 1 only in app, 1 differing" in out


def test_demo() -> None:
    code, out, err = run(None, "demo")
    assert code == 0
    assert err == ""
    assert "mallory.quinn@northwind.example" in out
    assert "only in app" in out
    assert "7 people in both; 1 account(s) in app" in out
    assert "Deploy Bot" not in out


def test_usage_errors() -> None:
    assert run(None, "frobnicate")[0] == 2
    assert run(None, "list")[0] == 2
    assert run(None, "list", "x", "--limit", "0")[0] == 2


def test_unknown_directory(company: DemoCompany) -> None:
    code, _, err = run(company, "list", "payroll")
    assert code == 2
    assert "no directory named 'payroll'" in err


def test_config_error_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text('[directories.x]\nprovider = "notion"\ntoken = "${MISSING_TOKEN_VAR}"\n')
    code, _, err = run(None, "--config", str(bad), "list", "x", loader=None)
    assert code == 2
    assert "MISSING_TOKEN_VAR is not set" in err


def test_authentication_error_exit_code_and_no_secret(tmp_path: Path) -> None:
    emulator = RestEmulator(token="right")

    def loader(path: str | None) -> Any:
        return {
            "app": userdir.connect(
                "rest",
                token="wrong-S3CR3T",
                base_url="https://a.test",
                transport=emulator.transport,
            )
        }

    code, out, err = run(None, "list", "app", loader=loader)
    assert code == 3
    assert "wrong-S3CR3T" not in out + err
    assert err.startswith("userdir: app: [rest] HTTP 401")


def test_other_error_exit_code_and_debug_traceback(company: DemoCompany) -> None:
    company.rest.inject(Fault.html(502), times=100)
    code, _, err = run(company, "list", "app")
    assert code == 4
    assert "Traceback" not in err
    code, _, err = run(company, "--debug", "list", "app")
    assert code == 4
    assert "Traceback" in err


def test_ctrl_c_during_a_listing(company: DemoCompany) -> None:
    company.notion.populate(300)
    calls = {"n": 0}

    class Interrupting(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt
            return company.notion.transport.handle_request(request)

    def loader(path: str | None) -> Any:
        return {
            "wiki": userdir.connect(
                "notion", token=company.notion.token, transport=Interrupting(), concurrency=1
            )
        }

    code, _, err = run(None, "--format", "jsonl", "list", "wiki", loader=loader)
    assert code == 130
    assert "interrupted" in err
    assert "Traceback" not in err


# -- through a real subprocess ----------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(userdir.__file__).parent.parent)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_subprocess_demo_and_list(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "userdir", "demo"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Offboarding audit" in done.stdout

    emulator = RestEmulator(token="t0k")
    emulator.populate(150)
    with emulator.serve() as url:
        config = tmp_path / "userdir.toml"
        config.write_text(
            f'[directories.app]\nprovider = "rest"\ntoken = "${{APP_TOKEN}}"\nbase_url = "{url}"\n'
        )
        env = {**_env(), "APP_TOKEN": "t0k", "USERDIR_CONFIG": str(config)}
        done = subprocess.run(
            [sys.executable, "-m", "userdir", "--format", "csv", "list", "app"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.splitlines()) == 151
        assert done.stderr == ""
        env["APP_TOKEN"] = "wrong"
        done = subprocess.run(
            [sys.executable, "-m", "userdir", "list", "app"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 3


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT semantics differ on Windows")
def test_subprocess_ctrl_c(tmp_path: Path) -> None:
    emulator = RestEmulator(token="t0k")
    emulator.populate(2000)
    emulator.latency = 0.2
    with emulator.serve() as url:
        config = tmp_path / "userdir.toml"
        config.write_text(
            f'[directories.app]\nprovider = "rest"\ntoken = "t0k"\nbase_url = "{url}"\n'
            "concurrency = 1\n"
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "userdir", "--config", str(config), "list", "app"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        deadline = time.monotonic() + 30
        while not emulator.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err


COMMANDS = {
    "list": ["list", "app"],
    "get": ["get", "hr", "<hr-id>"],
    "find": ["find", "ADA.LOVELACE@northwind.example"],
    "whoami": ["whoami", "wiki"],
    "diff": ["diff", "hr", "app"],
    "providers": ["providers"],
}


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_in_every_format(company: DemoCompany, command: str, fmt: str) -> None:
    argv = [a.replace("<hr-id>", company.org_api.users[0]["id"]) for a in COMMANDS[command]]
    code, out, err = run(company, "--format", fmt, *argv)
    assert code == 0, err
    assert err == ""
    if fmt == "json":
        rows = json.loads(out)
    elif fmt == "jsonl":
        rows = [json.loads(line) for line in out.splitlines()]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
    else:
        lines = out.splitlines()
        assert lines[0] == lines[0].upper()  # the header row
        rows = lines[1:]
    assert rows
