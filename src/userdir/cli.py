"""The ``userdir`` command: a thin layer over the library.

Exit codes: 0 ok, 1 not found, 2 usage or config error, 3 authentication or
permission, 4 any other directory error, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from . import __version__
from ._hints import did_you_mean
from .config import credential_note, load_config
from .directory import HttpDirectory
from .errors import (
    AuthenticationError,
    ConfigError,
    DirectoryError,
    InvalidArgumentError,
    PermissionDeniedError,
    UnsupportedOperationError,
    UserNotFoundError,
)
from .federation import Diff, Federation, FindResult, LookupStatus
from .models import DirectoryUser, UserStatus
from .registry import available_providers

__all__ = ["EXIT_CODES", "main"]

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_AUTH, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES = {
    EXIT_OK: "ok",
    EXIT_NOT_FOUND: "not found (get: no such user; find: an email found nowhere)",
    EXIT_USAGE: "usage or config error (also: an operation the directory does not support)",
    EXIT_AUTH: "authentication or permission error",
    EXIT_ERROR: "any other directory error (network, server, malformed answer)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
FORMATS = ("table", "json", "jsonl", "csv")
USER_COLUMNS = (
    "id",
    "provider",
    "email",
    "email_key",
    "name",
    "given_name",
    "family_name",
    "username",
    "avatar_url",
    "kind",
    "role",
    "status",
    "created_at",
    "updated_at",
    "last_login_at",
    "extra",
)
TABLE_USER_COLUMNS = ("id", "kind", "email", "name", "role", "status")


class CommandError(Exception):
    """An error to report as one line, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- output -----------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _table(rows: list[dict[str, Any]], columns: Sequence[str], out: IO[str]) -> None:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    out.write(
        "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n"
    )
    for r in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")


class Writer:
    """Writes rows in one of the formats; json collects, the others stream."""

    def __init__(
        self, fmt: str, out: IO[str], columns: Sequence[str], table_columns: Sequence[str]
    ):
        self.fmt, self.out = fmt, out
        self.columns, self.table_columns = columns, table_columns
        self.rows: list[dict[str, Any]] = []
        self.count = 0
        self._csv: Any = None
        if fmt == "csv":
            self._csv = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
            self._csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        self.count += 1
        if self.fmt == "jsonl":
            self.out.write(json.dumps(row, ensure_ascii=False) + "\n")
        elif self.fmt == "csv":
            self._csv.writerow({c: _cell(row.get(c)) for c in self.columns})
        else:
            self.rows.append(row)

    def close(self) -> None:
        if self.fmt == "json":
            json.dump(self.rows, self.out, ensure_ascii=False, indent=2)
            self.out.write("\n")
        elif self.fmt == "table":
            if self.rows:
                _table(self.rows, self.table_columns, self.out)
            else:
                self.out.write("(nothing)\n")
        self.out.flush()


class Progress:
    """ "N users (R/s)" on stderr, only when stderr is a terminal."""

    def __init__(self, stream: IO[str], label: str = "users") -> None:
        self.stream, self.label = stream, label
        self.enabled = _isatty(stream)
        self.count = 0
        self.start = self.last = time.monotonic()

    def tick(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if self.enabled and now - self.last >= 0.2:
            self.last = now
            rate = self.count / max(now - self.start, 1e-9)
            self.stream.write(f"\r{self.count} {self.label} fetched ({rate:.0f}/s)")
            self.stream.flush()

    def done(self) -> None:
        if self.enabled and self.count:
            elapsed = max(time.monotonic() - self.start, 1e-9)
            self.stream.write(
                f"\r{self.count} {self.label} fetched in {elapsed:.1f}s "
                f"({self.count / elapsed:.0f}/s)\n"
            )
            self.stream.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# -- commands -------------------------------------------------------------------------


class Context:
    """What every command gets: parsed arguments, streams, and the directories."""

    def __init__(
        self,
        args: argparse.Namespace,
        stdout: IO[str],
        stderr: IO[str],
        loader: Callable[[str | None], dict[str, HttpDirectory]],
    ) -> None:
        self.args, self.stdout, self.stderr = args, stdout, stderr
        self._loader = loader
        self._directories: dict[str, HttpDirectory] | None = None
        self.fmt: str = args.format or ("table" if _isatty(stdout) else "jsonl")
        #: The directory an error came from, when a command over several knows it.
        self.at_fault: str | None = None

    def directories(self) -> dict[str, HttpDirectory]:
        if self._directories is None:
            try:
                self._directories = self._loader(self.args.config)
            except ConfigError as exc:  # the config as a whole, no one directory's fault
                raise CommandError(str(exc), EXIT_USAGE) from None
        return self._directories

    def directory(self, name: str) -> HttpDirectory:
        dirs = self.directories()
        if name not in dirs:
            raise CommandError(
                f"no directory named {name!r} in the config{did_you_mean(name, dirs)} "
                f"(known: {', '.join(dirs)})",
                EXIT_USAGE,
            )
        return dirs[name]

    def error_line(self, directory: str | None, error: DirectoryError) -> str:
        """``userdir: <directory>: <error>``, with where a rejected credential came from."""
        text = str(error)
        if isinstance(error, AuthenticationError) and directory in (self._directories or {}):
            note = credential_note((self._directories or {})[directory])
            if note:
                text += f" ({note})"
        return f"userdir: {directory}: {text}\n" if directory else f"userdir: {text}\n"

    def close(self) -> None:
        for directory in (self._directories or {}).values():
            directory.close()

    def writer(
        self,
        columns: Sequence[str],
        table_columns: Sequence[str] | None = None,
        out: IO[str] | None = None,
        fmt: str | None = None,
    ) -> Writer:
        return Writer(fmt or self.fmt, out or self.stdout, columns, table_columns or columns)


def _user_row(user: DirectoryUser, directory: str | None = None) -> dict[str, Any]:
    row = user.to_dict()
    if directory is not None:
        row = {"directory": directory, **row}
    return row


def cmd_providers(ctx: Context) -> int:
    columns = ("name", "source", "email_lookup", "paging", "me", "writes", "server_filters")
    writer = ctx.writer(columns)
    for info in available_providers():
        caps = info.capabilities
        writer.write(
            {
                "name": info.name,
                "source": info.source,
                "email_lookup": caps.email_lookup if caps else None,
                "paging": caps.paging if caps else None,
                "me": caps.me if caps else None,
                "writes": caps.writes if caps else None,
                "server_filters": ",".join(sorted(caps.server_filters)) if caps else None,
                "create_requires": sorted(caps.create_requires) if caps else None,
                "options": list(info.options),
                "required": list(info.required),
            }
        )
    writer.close()
    return EXIT_OK


def _stream_users(
    ctx: Context, users: Iterable[DirectoryUser], writer: Writer, limit: int | None
) -> None:
    progress = Progress(ctx.stderr)
    for user in users:
        if limit is not None and writer.count >= limit:
            break
        writer.write(_user_row(user))
        progress.tick()
    progress.done()


def cmd_list(ctx: Context) -> int:
    directory = ctx.directory(ctx.args.directory)
    users = directory.iter_users(status=ctx.args.status, role=ctx.args.role)
    writer = ctx.writer(USER_COLUMNS, TABLE_USER_COLUMNS)
    try:
        _stream_users(ctx, users, writer, ctx.args.limit)
    finally:
        users.close()
    writer.close()
    return EXIT_OK


def cmd_get(ctx: Context) -> int:
    user = ctx.directory(ctx.args.directory).get_user(ctx.args.id)
    writer = ctx.writer(USER_COLUMNS, TABLE_USER_COLUMNS)
    writer.write(_user_row(user))
    writer.close()
    return EXIT_OK


def cmd_whoami(ctx: Context) -> int:
    user = ctx.directory(ctx.args.directory).me()
    writer = ctx.writer(USER_COLUMNS, TABLE_USER_COLUMNS)
    writer.write(_user_row(user))
    writer.close()
    return EXIT_OK


FIND_COLUMNS = ("email", "directory", "result", "id", "name", "user_email", "status", "error")


def _find_rows(results: Mapping[str, FindResult]) -> Iterator[dict[str, Any]]:
    for result in results.values():
        for name, lookup in result.lookups.items():
            user = lookup.user
            yield {
                "email": result.email,
                "directory": name,
                "result": lookup.status.value,
                "id": user.id if user else None,
                "name": user.name if user else None,
                "user_email": user.email if user else None,
                "status": user.status.value if user else None,
                "error": str(lookup.error) if lookup.error else None,
            }


def _find_exit(results: Mapping[str, FindResult]) -> int:
    codes = [EXIT_OK]
    for result in results.values():
        for error in result.errors.values():
            codes.append(_exit_code(error))
        if not result.users:
            codes.append(EXIT_NOT_FOUND)
    errors = [c for c in codes if c > EXIT_NOT_FOUND]
    return max(errors) if errors else max(codes)


def cmd_find(ctx: Context) -> int:
    dirs = ctx.directories()
    chosen = ctx.args.directory or list(dirs)
    for name in chosen:
        ctx.directory(name)
    federation = Federation({name: dirs[name] for name in chosen})
    results = federation.find_many(ctx.args.emails)
    writer = ctx.writer(FIND_COLUMNS, ("email", "directory", "result", "name", "status", "error"))
    for row in _find_rows(results):
        writer.write(row)
    writer.close()
    for result in results.values():
        for name, error in result.errors.items():
            ctx.stderr.write(ctx.error_line(name, error))
    return _find_exit(results)


def cmd_export(ctx: Context) -> int:
    directory = ctx.directory(ctx.args.directory)
    target = Path(ctx.args.output)
    fmt = ctx.args.format or {".csv": "csv", ".json": "json"}.get(target.suffix.lower(), "jsonl")
    if fmt == "table":
        raise CommandError("export writes csv, json or jsonl, not a table", EXIT_USAGE)
    parent = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=".userdir-export-", dir=parent)
    users = directory.iter_users()
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            writer = ctx.writer(USER_COLUMNS, out=out, fmt=fmt)
            _stream_users(ctx, users, writer, None)
            writer.close()
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    finally:
        users.close()
    ctx.stderr.write(f"exported {writer.count} users from {ctx.args.directory} to {target}\n")
    return EXIT_OK


DIFF_COLUMNS = (
    "finding",
    "email_key",
    "a_id",
    "a_status",
    "a_role",
    "b_id",
    "b_status",
    "b_role",
    "fields",
)


def _diff_rows(diff: Diff) -> Iterator[dict[str, Any]]:
    def row(
        finding: str, key: str | None, a: Any, b: Any, fields: Sequence[str] = ()
    ) -> dict[str, Any]:
        return {
            "finding": finding,
            "email_key": key,
            "a_id": a.id if a else None,
            "a_status": a.status.value if a else None,
            "a_role": a.role if a else None,
            "b_id": b.id if b else None,
            "b_status": b.status.value if b else None,
            "b_role": b.role if b else None,
            "fields": ",".join(fields),
        }

    for user in diff.only_in_a:
        yield row(f"only in {diff.a}", user.email_key, user, None)
    for user in diff.only_in_b:
        yield row(f"only in {diff.b}", user.email_key, None, user)
    for difference in diff.differing:
        yield row("differs", difference.email_key, difference.a, difference.b, difference.fields)


def cmd_diff(ctx: Context) -> int:
    dirs = ctx.directories()
    a, b = ctx.args.a, ctx.args.b
    ctx.directory(a)
    ctx.directory(b)
    progress = Progress(ctx.stderr)
    if progress.enabled:
        ctx.stderr.write(f"comparing {a} and {b}...\n")
    try:
        diff = Federation({a: dirs[a], b: dirs[b]}).diff(a, b)
    except DirectoryError as exc:
        for name in (a, b):  # the federation's error starts with the directory at fault
            if exc.message.startswith(f"{name}: "):
                ctx.at_fault, exc.message = name, exc.message[len(name) + 2 :]
                break
        raise
    writer = ctx.writer(
        DIFF_COLUMNS, ("finding", "email_key", "a_status", "b_status", "a_role", "b_role")
    )
    for row in _diff_rows(diff):
        writer.write(row)
    writer.close()
    if ctx.fmt == "table":
        ctx.stdout.write(
            f"{diff.in_both} in both, {len(diff.only_in_a)} only in {a}, "
            f"{len(diff.only_in_b)} only in {b}, {len(diff.differing)} differing\n"
        )
    return EXIT_OK


def cmd_demo(ctx: Context) -> int:
    from .testing._demo import demo_company

    company = demo_company()
    dirs = company.directories()
    out = ctx.stdout
    with Federation(dirs) as federation:
        out.write(
            "Northwind in three emulated services (no token, no network):\n"
            f"  wiki (notion): {len(company.notion)} users   "
            f"hr (org_api): {len(company.org_api)} users   "
            f"app (rest): {len(company.rest)} users\n\n"
        )
        out.write("Who has an account where? (emails cased differently in each service)\n\n")
        results = federation.find_many(company.lookups)
        rows = []
        for result in results.values():
            row: dict[str, Any] = {"email": result.email}
            for name, lookup in result.lookups.items():
                user = lookup.user
                if user is None:
                    row[name] = "-" if lookup.status is LookupStatus.MISSING else "error"
                elif user.status is UserStatus.UNKNOWN:
                    row[name] = user.email
                else:
                    row[name] = f"{user.email} ({user.status.value})"
            rows.append(row)
        _table(rows, ("email", *dirs), out)
        out.write("\nOffboarding audit: hr (the source of truth) against app\n\n")
        diff = federation.diff("hr", "app")
        columns = ("finding", "email_key", "a_role", "b_role", "b_status", "fields")
        _table(list(_diff_rows(diff)), columns, out)
        out.write(
            f"\n{diff.in_both} people in both; {len(diff.only_in_b)} account(s) in app with no "
            f"HR record — offboard them.\n"
        )
        people = [i for i in federation.identities() if i.email_key]
        out.write(
            f"\n{len(people)} people across the three services; "
            "try `userdir --help` for list, find, export and diff.\n"
        )
    return EXIT_OK


# -- entry point --------------------------------------------------------------------------


def _exit_code(error: BaseException) -> int:
    if isinstance(error, UserNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, (ConfigError, InvalidArgumentError, UnsupportedOperationError)):
        return EXIT_USAGE
    if isinstance(error, (AuthenticationError, PermissionDeniedError)):
        return EXIT_AUTH
    return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    epilog = "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="userdir",
        description="List, find, export and audit users across directories.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"userdir {__version__}")
    parser.add_argument(
        "--config", help="config file (default: $USERDIR_CONFIG, else ./userdir.toml)"
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: table on a terminal, jsonl otherwise)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("providers", help="the providers and what each can do").set_defaults(
        run=cmd_providers
    )
    p = sub.add_parser("list", help="list a directory's users")
    p.add_argument("directory")
    p.add_argument("--status", choices=("active", "inactive", "pending", "unknown"))
    p.add_argument("--role")
    p.add_argument("--limit", type=_positive, help="stop after this many users")
    p.set_defaults(run=cmd_list)
    p = sub.add_parser("get", help="one user by id")
    p.add_argument("directory")
    p.add_argument("id")
    p.set_defaults(run=cmd_get)
    p = sub.add_parser("find", help="find people by email in every directory")
    p.add_argument("emails", nargs="+", metavar="EMAIL")
    p.add_argument("--directory", action="append", help="only this directory (repeat for more)")
    p.set_defaults(run=cmd_find)
    p = sub.add_parser("whoami", help="the token's own user (Notion's bot)")
    p.add_argument("directory")
    p.set_defaults(run=cmd_whoami)
    p = sub.add_parser("export", help="write every user of a directory to a file")
    p.add_argument("directory")
    p.add_argument("-o", "--output", required=True, help="file (.csv, .json or .jsonl)")
    p.set_defaults(run=cmd_export)
    p = sub.add_parser("diff", help="the offboarding audit: compare two directories by email")
    p.add_argument("a", help="the source of truth, e.g. HR")
    p.add_argument("b", help="the directory to audit")
    p.set_defaults(run=cmd_diff)
    sub.add_parser("demo", help="see it work: three emulated services, no token").set_defaults(
        run=cmd_demo
    )
    return parser


def _debug_logging(stream: IO[str]) -> None:
    """Request logs of userdir (and stamina's retries) on stderr; never httpx's or
    httpcore's, whose DEBUG output includes response headers a server controls."""
    import logging

    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    for name in ("userdir", "stamina"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    loader: Callable[[str | None], dict[str, HttpDirectory]] | None = None,
) -> int:
    """Run the command; returns the exit code (the console script exits with it)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.debug:
        _debug_logging(err)
    ctx = Context(args, out, err, loader or (lambda path: load_config(path)))
    try:
        return int(args.run(ctx))
    except KeyboardInterrupt:
        err.write("\nuserdir: interrupted\n")
        return EXIT_INTERRUPTED
    except CommandError as exc:
        err.write(f"userdir: {exc}\n")
        return exc.code
    except DirectoryError as exc:
        if args.debug:
            import traceback

            traceback.print_exc(file=err)
        where = ctx.at_fault or getattr(args, "directory", None)
        err.write(ctx.error_line(where if isinstance(where, str) else None, exc))
        return _exit_code(exc)
    except BrokenPipeError:
        return EXIT_OK
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            ctx.close()
