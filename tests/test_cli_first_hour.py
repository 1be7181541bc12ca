"""A user's first hour with the userdir command: export never damages files, options go
where users type them, and every refusal is one line in the CLI's words."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from userdir.cli import _parser
from userdir.registry import available_providers
from userdir.testing import Fault, RestEmulator
from userdir.testing._demo import DemoCompany

from .test_cli import _env, run


def _no_temp_files(*folders: Path) -> None:
    for folder in folders:
        assert [p.name for p in folder.iterdir() if p.name.startswith(".userdir-export")] == []


def _requests(company: DemoCompany) -> int:
    return len(company.notion.requests) + len(company.org_api.requests) + len(company.rest.requests)


# -- export never damages files ------------------------------------------------------


def test_export_through_a_symlink_replaces_the_target_and_keeps_the_link(
    company: DemoCompany, tmp_path: Path
) -> None:
    real, links = tmp_path / "real", tmp_path / "links"
    real.mkdir()
    links.mkdir()
    target = real / "users.csv"
    target.write_text("old\n")
    target.chmod(0o640)
    link = links / "users.csv"
    link.symlink_to(Path("..") / "real" / "users.csv")

    code, _, err = run(company, "export", "wiki", "-o", str(link))

    assert code == 0, err
    assert link.is_symlink()
    assert os.readlink(link) == str(Path("..") / "real" / "users.csv")
    assert len(list(csv.DictReader(io.StringIO(target.read_text())))) == len(company.notion)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    _no_temp_files(real, links)


def test_export_through_a_dangling_symlink_creates_its_target(
    company: DemoCompany, tmp_path: Path
) -> None:
    link = tmp_path / "users.jsonl"
    link.symlink_to(tmp_path / "elsewhere.jsonl")
    code, _, err = run(company, "export", "hr", "-o", str(link))
    assert code == 0, err
    assert link.is_symlink()
    assert len((tmp_path / "elsewhere.jsonl").read_text().splitlines()) == len(company.org_api)


def test_export_keeps_a_files_mode_and_gives_a_new_one_the_usual_mode(
    company: DemoCompany, tmp_path: Path
) -> None:
    existing = tmp_path / "existing.json"
    existing.write_text("[]")
    existing.chmod(0o604)
    umask = os.umask(0o027)
    try:
        assert run(company, "export", "hr", "-o", str(existing))[0] == 0
        assert run(company, "export", "hr", "-o", str(tmp_path / "new.json"))[0] == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640  # 0o666 & ~umask
    assert len(json.loads(existing.read_text())) == len(company.org_api)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_export_keeps_the_owner_of_a_file_it_replaces(company: DemoCompany, tmp_path: Path) -> None:
    target = tmp_path / "users.csv"
    target.write_text("old\n")
    os.chown(target, 4321, 4322)
    assert run(company, "export", "hr", "-o", str(target))[0] == 0
    assert (target.stat().st_uid, target.stat().st_gid) == (4321, 4322)
    assert target.read_text() != "old\n"


def test_export_into_a_fifo_writes_straight_to_it(company: DemoCompany, tmp_path: Path) -> None:
    fifo = tmp_path / "users.jsonl"
    os.mkfifo(fifo)
    received: list[str] = []

    def read() -> None:
        with open(fifo, encoding="utf-8") as stream:
            received.append(stream.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    code, _, err = run(company, "export", "app", "-o", str(fifo))
    reader.join(timeout=30)

    assert code == 0, err
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    rows = [json.loads(line) for line in received[0].splitlines()]
    assert len(rows) == len(company.rest)
    _no_temp_files(tmp_path)


def _device(path: Path, minor: int) -> Path:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("cannot create a device node here")
    return path


def test_export_into_a_device_writes_straight_to_it(company: DemoCompany, tmp_path: Path) -> None:
    null = _device(tmp_path / "null.csv", 3)  # like /dev/null
    code, _, err = run(company, "export", "wiki", "-o", str(null))
    assert code == 0, err
    assert stat.S_ISCHR(null.lstat().st_mode)
    _no_temp_files(tmp_path)


def test_export_into_a_full_device_is_one_line_naming_the_path(
    company: DemoCompany, tmp_path: Path
) -> None:
    company.rest.populate(300)  # more than one write buffer
    full = _device(tmp_path / "full.jsonl", 7)  # like /dev/full
    code, out, err = run(company, "export", "app", "-o", str(full))
    assert code == 2
    assert out == ""
    assert err == f"userdir: cannot write {str(full)!r}: No space left on device\n"
    assert stat.S_ISCHR(full.lstat().st_mode)


def test_export_to_dev_stdout_writes_into_the_pipe(tmp_path: Path) -> None:
    # Through a link of our own to /dev/stdout, so a regression replaces only that link.
    out = tmp_path / "out.jsonl"
    out.symlink_to("/dev/stdout")
    emulator = RestEmulator(token="t0k")
    emulator.populate(40)
    with emulator.serve() as url:
        config = tmp_path / "userdir.toml"
        config.write_text(
            f'[directories.app]\nprovider = "rest"\ntoken = "t0k"\nbase_url = "{url}"\n'
        )
        cfg = str(config)
        done = subprocess.run(
            [sys.executable, "-m", "userdir", "export", "app", "-o", str(out), "--config", cfg],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert len([json.loads(line) for line in done.stdout.splitlines()]) == 40
    assert out.is_symlink()
    assert done.stderr == f"exported 40 users from app to {out}\n"


def test_export_dash_writes_to_stdout(company: DemoCompany, tmp_path: Path) -> None:
    code, out, err = run(company, "export", "hr", "-o", "-")
    assert code == 0, err
    assert len([json.loads(line) for line in out.splitlines()]) == len(company.org_api)
    assert err == f"exported {len(company.org_api)} users from hr to stdout\n"
    code, out, _ = run(company, "export", "hr", "-o", "-", "--format", "csv")
    assert code == 0
    assert len(list(csv.DictReader(io.StringIO(out)))) == len(company.org_api)


@pytest.mark.parametrize("case", ["missing dir", "a directory", "under a file", "symlink loop"])
def test_export_to_a_path_it_cannot_write(company: DemoCompany, tmp_path: Path, case: str) -> None:
    (tmp_path / "file.csv").write_text("keep me\n")
    (tmp_path / "dir.csv").mkdir()
    (tmp_path / "loop.csv").symlink_to(tmp_path / "loop.csv")
    path = {
        "missing dir": tmp_path / "nope" / "users.csv",
        "a directory": tmp_path / "dir.csv",
        "under a file": tmp_path / "file.csv" / "users.csv",
        "symlink loop": tmp_path / "loop.csv",
    }[case]

    code, out, err = run(company, "export", "wiki", "-o", str(path))

    assert code == 2
    assert out == ""
    assert err.startswith(f"userdir: cannot write {str(path)!r}: ")
    assert err.count("\n") == 1
    assert ".userdir-export" not in err
    assert _requests(company) == 0  # refused before a single request
    assert (tmp_path / "file.csv").read_text() == "keep me\n"
    assert (tmp_path / "dir.csv").is_dir()
    assert (tmp_path / "loop.csv").is_symlink()
    _no_temp_files(tmp_path)


def test_export_a_directory_given_with_a_trailing_slash(
    company: DemoCompany, tmp_path: Path
) -> None:
    path = f"{tmp_path}/new.csv/"
    code, _, err = run(company, "export", "wiki", "-o", path, "--format", "csv")
    assert code == 2
    assert err == f"userdir: cannot write {path!r}: Is a directory\n"
    assert not (tmp_path / "new.csv").exists()


def test_export_format_from_the_flag_or_the_extension(company: DemoCompany, tmp_path: Path) -> None:
    n = len(company.org_api)
    code, _, err = run(company, "export", "hr", "-o", str(tmp_path / "a.txt"))
    assert code == 2
    assert "csv, json, jsonl" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "a.txt").exists()

    code, _, err = run(company, "--format", "csv", "export", "hr", "-o", str(tmp_path / "b.json"))
    assert code == 2
    assert "--format csv contradicts" in err
    assert not (tmp_path / "b.json").exists()

    code, _, err = run(company, "export", "hr", "-o", str(tmp_path / "c.jsonl"), "--format", "json")
    assert code == 2

    code, _, _ = run(company, "export", "hr", "-o", str(tmp_path / "d.txt"), "--format", "csv")
    assert code == 0
    assert len(list(csv.DictReader(io.StringIO((tmp_path / "d.txt").read_text())))) == n

    assert run(company, "export", "hr", "-o", str(tmp_path / "E.JSON"))[0] == 0
    assert len(json.loads((tmp_path / "E.JSON").read_text())) == n

    assert run(company, "export", "hr", "-o", str(tmp_path / "f.json"), "--format", "json")[0] == 0
    assert run(company, "--format", "table", "export", "hr", "-o", "-")[0] == 2


# -- options where users type them ------------------------------------------------------


def test_global_options_after_the_command(company: DemoCompany, tmp_path: Path) -> None:
    code, out, _ = run(company, "list", "app", "--format", "csv")
    assert code == 0
    assert len(list(csv.DictReader(io.StringIO(out)))) == len(company.rest)

    code, out, _ = run(company, "--format", "table", "list", "app", "--format", "json")
    assert len(json.loads(out)) == len(company.rest)

    code, out, _ = run(company, "--format", "json", "get", "app", company.rest.users[0]["id"])
    assert json.loads(out)["id"] == company.rest.users[0]["id"]  # kept when not repeated

    seen: list[str | None] = []

    def loader(path: str | None) -> Any:
        seen.append(path)
        return company.directories()

    run(None, "find", "ada.lovelace@northwind.example", "--config", "x.toml", loader=loader)
    run(None, "--config", "y.toml", "diff", "hr", "app", loader=loader)
    assert seen == ["x.toml", "y.toml"]

    company.rest.inject(Fault.html(502), times=100)
    code, _, err = run(company, "list", "app", "--debug")
    assert code == 4
    assert "Traceback" in err


def test_global_options_after_the_command_in_a_subprocess(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "userdir", "providers", "--format", "json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert {row["name"] for row in json.loads(done.stdout)} >= {"notion", "org_api", "rest"}


def test_every_command_and_argument_has_help() -> None:
    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helped = {action.dest: action.help for action in commands._choices_actions}
    assert set(helped) == set(commands.choices)
    assert all(helped.values())
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.dest} has no help"
    for action in parser._actions:
        assert action.help, f"{action.dest} has no help"


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_providers_show_required_and_optional_options(fmt: str) -> None:
    code, out, _ = run(None, "--format", fmt, "providers")
    assert code == 0
    infos = {info.name: info for info in available_providers()}
    if fmt in ("json", "jsonl"):
        rows = json.loads(out) if fmt == "json" else [json.loads(line) for line in out.splitlines()]
        by_name = {r["name"]: r for r in rows}
        for name, info in infos.items():
            assert by_name[name]["required"] == list(info.required)
            assert set(by_name[name]["optional"]) == set(info.options) - set(info.required) - {
                "transport"
            }
            assert "transport" not in by_name[name]["options"]  # not a config-file option
        assert set(by_name["rest"]["required"]) == {"base_url", "token"}
        assert "timeout" in by_name["rest"]["optional"]
        assert by_name["notion"]["user_status"] is False
    elif fmt == "csv":
        by_name = {r["name"]: r for r in csv.DictReader(io.StringIO(out))}
        for name, info in infos.items():
            assert by_name[name]["required"] == ",".join(info.required)
            optional = by_name[name]["optional"].split(",")
            assert set(optional) == set(info.options) - set(info.required) - {"transport"}
    else:
        header, *lines = out.splitlines()
        assert "REQUIRED" in header.split()
        assert "OPTIONAL" in header.split()
        org = next(line for line in lines if line.startswith("org_api "))
        assert ",".join(infos["org_api"].required) in org.split()
        assert "max_requests_per_second" in org
        assert "transport" not in out  # a Python object: not a config-file option


def test_list_role_matches_any_case(company: DemoCompany) -> None:
    def ids(*argv: str) -> list[str]:
        code, out, err = run(company, "--format", "jsonl", "list", *argv)
        assert code == 0, err
        return [json.loads(line)["id"] for line in out.splitlines()]

    editors = ids("app", "--role", "editor")
    assert editors
    assert ids("app", "--role", "EDITOR") == editors == ids("app", "--role", "Editor")
    members = ids("hr", "--role", "admin")  # HR spells it "Admin"
    assert members
    assert ids("hr", "--role", "ADMIN") == members == ids("hr", "--role", "Admin")
    assert ids("app", "--role", "EDITOR", "--limit", "1") == editors[:1]

    code, _, err = run(company, "list", "app", "--role", "")
    assert code == 2
    assert "--role" in err


@pytest.mark.parametrize(("name", "provider"), [("wiki", "notion"), ("hr", "org_api")])
def test_list_status_where_the_service_has_none(
    company: DemoCompany, name: str, provider: str
) -> None:
    code, out, err = run(company, "list", name, "--status", "active")
    assert code == 2
    assert out == ""
    assert err.startswith(f"userdir: {name}: --status cannot filter: {provider} does not say")
    assert err.count("\n") == 1
    assert _requests(company) == 0


def test_list_status_where_the_service_has_one(company: DemoCompany) -> None:
    code, out, _ = run(company, "--format", "jsonl", "list", "app", "--status", "inactive")
    assert code == 0
    assert {json.loads(line)["status"] for line in out.splitlines()} == {"inactive"}


def test_diff_exit_code(company: DemoCompany) -> None:
    assert run(company, "--format", "jsonl", "diff", "hr", "app")[0] == 0
    code, out, _ = run(company, "--format", "jsonl", "diff", "hr", "app", "--exit-code")
    assert code == 1
    assert len(out.splitlines()) == 3
    code, out, _ = run(company, "--format", "jsonl", "diff", "app", "app", "--exit-code")
    assert code == 0
    assert out == ""


def test_get_and_whoami_print_one_object(company: DemoCompany) -> None:
    user_id = company.org_api.users[0]["id"]
    for argv in (["get", "hr", user_id], ["whoami", "wiki"]):
        code, out, _ = run(company, "--format", "json", *argv)
        assert code == 0
        assert isinstance(json.loads(out), dict)
        code, out, _ = run(company, "--format", "jsonl", *argv)
        assert isinstance(json.loads(out), dict)
        assert out.count("\n") == 1


@pytest.mark.parametrize(("name", "provider"), [("hr", "org_api"), ("app", "rest")])
def test_whoami_without_me_in_the_clis_words(
    company: DemoCompany, name: str, provider: str
) -> None:
    code, out, err = run(company, "whoami", name)
    assert code == 2
    assert out == ""
    assert err == (
        f"userdir: {name}: whoami is not supported by the {provider} provider "
        "(its tokens have no user of their own)\n"
    )
    assert _requests(company) == 0
