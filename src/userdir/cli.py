"""The ``userdir`` command: a thin layer over the library.

Exit codes: 0 ok, 1 not found (or differences, with ``diff --exit-code``), 2 usage or
config error, 3 authentication or permission, 4 any other directory error, 130
interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import errno
import json
import math
import os
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

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
from .federation import Diff, Federation, FindResult, LookupStatus, _fold
from .models import DirectoryUser, UserStatus
from .registry import CODE_ONLY_OPTIONS, available_providers

if TYPE_CHECKING:  # reconcile is imported by the commands that use it
    from ._reconcile_apply import ActionResult
    from ._reconcile_plan import Action, Plan

__all__ = ["EXIT_CODES", "main"]

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_AUTH, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES = {
    EXIT_OK: "ok",
    EXIT_NOT_FOUND: (
        "not found (get: no such user; find: an email found nowhere);"
        " diff --exit-code: differences found; apply: some actions failed"
    ),
    EXIT_USAGE: (
        "usage or config error (also: an operation the directory does not support,"
        " an export path that cannot be written); plan, apply: refused by a safety check"
    ),
    EXIT_AUTH: "authentication or permission error",
    EXIT_ERROR: "any other directory error (network, server, malformed answer)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
FORMATS = ("table", "json", "jsonl", "csv")
EXPORT_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl"}
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
    "external_id",
    "extra",
)
TABLE_USER_COLUMNS = ("id", "kind", "email", "name", "role", "status")


class CommandError(Exception):
    """An error to report as one line, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- output -----------------------------------------------------------------------


def _escaped(text: str) -> str:
    """``text`` with each lone surrogate (not UTF-8) written as its ``\\udXXX`` escape.

    In JSON output that is the string's own escape; in a table or CSV it is shown as is.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _finite_only(value: Any) -> Any:
    """``value`` with NaN and the infinities (not JSON) as the strings ``"NaN"``,
    ``"Infinity"`` and ``"-Infinity"``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else _NON_FINITE[repr(value)]
    if isinstance(value, dict):
        return {_finite_only(k): _finite_only(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_only(v) for v in value]
    return value


def _json(value: Any, **options: Any) -> str:
    """Strict JSON text of ``value``: no ``NaN``/``Infinity``, lone surrogates escaped."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, **options)
    except ValueError:  # a float that is not finite
        text = json.dumps(_finite_only(value), ensure_ascii=False, allow_nan=False, **options)
    return _escaped(text)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return _json(value, sort_keys=True)
    return _escaped(str(value))


def _table(rows: list[dict[str, Any]], columns: Sequence[str], out: IO[str]) -> None:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    out.write(
        "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n"
    )
    for r in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")


class Writer:
    """Writes rows in one of the formats; json collects, the others stream.

    ``one=True``: the command answers with one row, which json writes as an object.
    """

    def __init__(
        self,
        fmt: str,
        out: IO[str],
        columns: Sequence[str],
        table_columns: Sequence[str],
        *,
        one: bool = False,
    ):
        self.fmt, self.out, self.one = fmt, out, one
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
            self.out.write(_json(row) + "\n")
        elif self.fmt == "csv":
            self._csv.writerow({c: _cell(row.get(c)) for c in self.columns})
        else:
            self.rows.append(row)

    def close(self) -> None:
        if self.fmt == "json":
            data = self.rows[0] if self.one and len(self.rows) == 1 else self.rows
            self.out.write(_json(data, indent=2) + "\n")
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
        one: bool = False,
    ) -> Writer:
        return Writer(
            fmt or self.fmt, out or self.stdout, columns, table_columns or columns, one=one
        )


def _user_row(user: DirectoryUser, directory: str | None = None) -> dict[str, Any]:
    row = user.to_dict()
    if directory is not None:
        row = {"directory": directory, **row}
    return row


def cmd_providers(ctx: Context) -> int:
    columns = (
        "name",
        "source",
        "required",
        "optional",
        "email_lookup",
        "paging",
        "me",
        "user_status",
        "writes",
        "server_filters",
    )
    writer = ctx.writer(columns)
    as_list = ctx.fmt in ("json", "jsonl")
    for info in available_providers():
        caps = info.capabilities
        required = list(info.required)
        # what a config table can set: code-only options (transport=) are left out
        options = [o for o in info.options if o not in CODE_ONLY_OPTIONS]
        optional = [o for o in options if o not in info.required]
        writer.write(
            {
                "name": info.name,
                "source": info.source,
                "required": required if as_list else ",".join(required),
                "optional": optional if as_list else ",".join(optional),
                "email_lookup": caps.email_lookup if caps else None,
                "paging": caps.paging if caps else None,
                "me": caps.me if caps else None,
                "user_status": caps.user_status if caps else None,
                "writes": caps.writes if caps else None,
                "server_filters": ",".join(sorted(caps.server_filters)) if caps else None,
                "create_requires": sorted(caps.create_requires) if caps else None,
                "options": options,
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
    name, status, role = ctx.args.directory, ctx.args.status, ctx.args.role
    directory = ctx.directory(name)
    if role is not None and not role.strip():
        raise CommandError("--role must not be empty", EXIT_USAGE)
    if status is not None and not directory.capabilities.user_status:
        raise CommandError(
            f"{name}: --status cannot filter: {directory.provider} does not say whether a user "
            "is active (every status is 'unknown')",
            EXIT_USAGE,
        )
    users = directory.iter_users(status=status)
    writer = ctx.writer(USER_COLUMNS, TABLE_USER_COLUMNS)
    try:
        if role is not None:
            # Roles match case-insensitively, as in diff; a service's own role filter is
            # exact, so this one is applied here.
            wanted = _fold(role)
            users_with_role = (u for u in users if _fold(u.role) == wanted)
            _stream_users(ctx, users_with_role, writer, ctx.args.limit)
        else:
            _stream_users(ctx, users, writer, ctx.args.limit)
    finally:
        users.close()
    writer.close()
    return EXIT_OK


def cmd_get(ctx: Context) -> int:
    user = ctx.directory(ctx.args.directory).get_user(ctx.args.id)
    writer = ctx.writer(USER_COLUMNS, TABLE_USER_COLUMNS, one=True)
    writer.write(_user_row(user))
    writer.close()
    return EXIT_OK


def cmd_whoami(ctx: Context) -> int:
    name = ctx.args.directory
    directory = ctx.directory(name)
    if not directory.capabilities.me:
        raise CommandError(
            f"{name}: whoami is not supported by the {directory.provider} provider "
            "(its tokens have no user of their own)",
            EXIT_USAGE,
        )
    user = directory.me()
    writer = ctx.writer(USER_COLUMNS, TABLE_USER_COLUMNS, one=True)
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


def _unwritable(path: str, exc: OSError) -> CommandError:
    """The one-line error for an output file that cannot be written, naming it as given."""
    return CommandError(f"cannot write {path!r}: {exc.strerror or type(exc).__name__}", EXIT_USAGE)


def _export_format(given: str | None, output: str) -> str:
    """``--format`` if given, else the file's extension; the two must agree."""
    choices = ", ".join(EXPORT_FORMATS.values())
    if given == "table":
        raise CommandError(f"export writes {choices}, not a table", EXIT_USAGE)
    if output == "-":
        return given or "jsonl"
    suffix = os.path.splitext(output)[1].lower()
    by_suffix = EXPORT_FORMATS.get(suffix)
    if given and by_suffix and given != by_suffix:
        raise CommandError(
            f"--format {given} contradicts the extension of {output!r} ({by_suffix})", EXIT_USAGE
        )
    fmt = given or by_suffix
    if fmt:
        return fmt
    raise CommandError(
        f"cannot tell the format of {output!r}: name it {', '.join(EXPORT_FORMATS)} "
        f"or pass --format ({choices})",
        EXIT_USAGE,
    )


@contextlib.contextmanager
def _replacing(path: str) -> Iterator[IO[str]]:
    """A stream whose text replaces the file at ``path`` once it is complete.

    A regular file (or a new one) is written next to its real location (through any
    symlinks, which stay) and renamed over it, keeping its mode; anything else that
    exists (a FIFO, a device, /dev/stdout) is written straight to, never replaced.
    """
    try:
        info: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        info = None
    if (info is not None and stat.S_ISDIR(info.st_mode)) or (
        info is None and path.endswith(("/", os.sep))
    ):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if info is not None and not stat.S_ISREG(info.st_mode):
        with open(path, "w", encoding="utf-8", newline="") as out:
            yield out
        return
    target = os.path.realpath(path)
    fd, tmp = tempfile.mkstemp(prefix=".userdir-export-", dir=os.path.dirname(target))
    try:
        if info is None:
            umask = os.umask(0o022)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        else:
            os.fchmod(fd, stat.S_IMODE(info.st_mode))
            if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(OSError):
                    os.fchown(fd, info.st_uid, info.st_gid)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def cmd_export(ctx: Context) -> int:
    directory = ctx.directory(ctx.args.directory)
    output: str = ctx.args.output
    fmt = _export_format(ctx.args.format, output)
    sink = contextlib.nullcontext(ctx.stdout) if output == "-" else _replacing(output)
    try:
        with sink as out:
            users = directory.iter_users()
            try:
                writer = ctx.writer(USER_COLUMNS, out=out, fmt=fmt)
                _stream_users(ctx, users, writer, None)
                writer.close()
            finally:
                users.close()
    except OSError as exc:
        if output == "-":
            raise
        raise _unwritable(output, exc) from None
    where = "stdout" if output == "-" else output
    ctx.stderr.write(f"exported {writer.count} users from {ctx.args.directory} to {where}\n")
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
            f"{len(diff.in_both)} in both, {len(diff.only_in_a)} only in {a}, "
            f"{len(diff.only_in_b)} only in {b}, {len(diff.differing)} differing\n"
        )
    differs = bool(diff.only_in_a or diff.only_in_b or diff.differing)
    return EXIT_NOT_FOUND if ctx.args.exit_code and differs else EXIT_OK


def cmd_demo(ctx: Context) -> int:
    from .testing._demo import demo_company

    company = demo_company()
    dirs = company.directories()
    out = ctx.stdout
    with Federation(dirs) as federation:
        out.write(
            "Northwind in four emulated services (no token, no network):\n"
            f"  wiki (notion): {len(company.notion)} users   "
            f"hr (org_api): {len(company.org_api)} users   "
            f"app (rest): {len(company.rest)} users   "
            f"idp (scim): {len(company.scim)} users\n\n"
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
            f"\n{len(diff.in_both)} people in both; {len(diff.only_in_b)} account(s) in app "
            f"with no HR record — offboard them.\n"
        )
        people = [i for i in federation.identities() if i.email_key]
        out.write(
            f"\n{len(people)} people across the four services; "
            "try `userdir --help` for list, find, export and diff.\n"
        )
        _demo_plan(dirs, out)
    return EXIT_OK


# -- reconcile ------------------------------------------------------------------------

PLAN_COLUMNS = ("kind", "email", "email_key", "user_id", "detail")
RESULT_COLUMNS = ("index", "action", "email_key", "outcome", "user_id", "reason", "resumed")
DEMO_ROLES = {"Admin": "admin", "Editor": "editor", "Viewer": "viewer", "Member": "member"}


def _detail(action: Action) -> str:
    if action.kind == "create":
        return ", ".join(f"{k}={v}" for k, v in getattr(action, "fields", {}).items())
    before = getattr(action, "before", {})
    if action.kind == "update":
        changes = getattr(action, "changes", {})
        return ", ".join(f"{k}: {before.get(k)} -> {v}" for k, v in changes.items())
    if action.kind == "deactivate":
        return f"status: {before.get('status')} -> inactive"
    return str(getattr(action, "reason", ""))


def _plan_rows(plan: Plan) -> Iterator[dict[str, Any]]:
    for action in plan.actions:
        yield {
            "kind": action.kind,
            "email": action.email,
            "email_key": action.email_key,
            "user_id": action.user_id,
            "detail": _detail(action),
        }


def _summary(plan: Plan) -> str:
    counts = plan.counts
    parts = [f"{counts[kind]} {kind}" for kind in ("create", "update", "deactivate", "delete")]
    return (
        f"{plan.source} -> {plan.target}: {counts['changes']} change(s) "
        f"({', '.join(parts)}), {counts['skip']} skipped"
    )


def cmd_plan(ctx: Context) -> int:
    from ._reconcile import plan
    from ._reconcile_config import reconcile_settings
    from ._reconcile_plan import SafetyCheckError

    source, target = ctx.args.source, ctx.args.target
    dirs = ctx.directories()
    ctx.directory(source)
    ctx.directory(target)
    options = reconcile_settings(ctx.args.config, ctx.args.reconcile, source=source, target=target)
    if ctx.args.only:
        options["only"] = ctx.args.only
    try:
        made = plan(dirs[source], dirs[target], source_name=source, target_name=target, **options)
    except SafetyCheckError as exc:
        raise CommandError(f"{target}: {exc}", EXIT_USAGE) from None
    except DirectoryError as exc:  # a listing failed: no plan; named by its directory
        for name in (source, target):
            if exc.message.startswith(f"{name}: "):
                ctx.at_fault, exc.message = name, exc.message[len(name) + 2 :]
                break
        raise
    writer = ctx.writer(PLAN_COLUMNS, ("kind", "email", "user_id", "detail"))
    for row in _plan_rows(made):
        writer.write(row)
    writer.close()
    if ctx.args.output:
        try:
            with _replacing(ctx.args.output) as out:  # a complete plan or none
                out.write(made.to_json())
        except OSError as exc:
            raise _unwritable(ctx.args.output, exc) from None
        ctx.stderr.write(f"plan written to {ctx.args.output}: {_summary(made)}; nothing changed\n")
    else:
        ctx.stderr.write(f"{_summary(made)}; nothing changed (-o FILE to keep the plan)\n")
    return EXIT_OK


def _confirmed(ctx: Context, question: str) -> bool:
    if ctx.args.yes:
        return True
    if not (_isatty(sys.stdin) and _isatty(ctx.stderr)):
        raise CommandError(
            "apply changes a directory: confirm on a terminal, or pass --yes", EXIT_USAGE
        )
    ctx.stderr.write(f"{question} [y/N] ")
    ctx.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def cmd_apply(ctx: Context) -> int:
    from ._reconcile_apply import apply
    from ._reconcile_plan import Plan, SafetyCheckError

    path = Path(ctx.args.plan)
    loaded = Plan.load(path)
    target = ctx.directory(loaded.target)
    journal = Path(ctx.args.journal) if ctx.args.journal else path.with_suffix(".journal.jsonl")
    ctx.stderr.write(f"plan {path} made {loaded.created_at.isoformat()}: {_summary(loaded)}\n")
    if loaded.counts["changes"] and not _confirmed(
        ctx, f"Apply {loaded.counts['changes']} change(s) to {loaded.target}?"
    ):
        raise CommandError("not confirmed; nothing was changed", EXIT_USAGE)
    shown, lock = _isatty(ctx.stderr), threading.Lock()
    finished = [0]

    def tick(_result: ActionResult) -> None:
        with lock:
            finished[0] += 1
            if shown:
                ctx.stderr.write(f"\r{finished[0]}/{loaded.counts['changes']} applied")
                ctx.stderr.flush()

    try:
        result = apply(
            loaded,
            target,
            journal=journal,
            concurrency=ctx.args.concurrency,
            stop_on_error=ctx.args.stop_on_error,
            on_result=tick,
        )
    except SafetyCheckError as exc:
        raise CommandError(f"{loaded.target}: {exc}", EXIT_USAGE) from None
    if shown and finished[0]:
        ctx.stderr.write("\n")
    writer = ctx.writer(RESULT_COLUMNS, RESULT_COLUMNS[:-1])
    for item in result.results:
        writer.write(item.to_dict())
    writer.close()
    counts = result.counts
    ctx.stderr.write(
        f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed"
        + (f", {counts['not_run']} not run" if counts["not_run"] else "")
        + f"; journal: {journal}\n"
    )
    return EXIT_OK if result.ok else EXIT_NOT_FOUND


def _demo_plan(directories: Mapping[str, HttpDirectory], out: IO[str]) -> None:
    from ._reconcile import plan

    made = plan(
        directories["hr"],
        directories["app"],
        source_name="hr",
        target_name="app",
        role_map=DEMO_ROLES,
    )
    out.write("\nReconcile plan: hr -> app (`userdir plan hr app`; nothing applied)\n\n")
    _table(list(_plan_rows(made)), ("kind", "email", "user_id", "detail"), out)
    out.write(f"\n{_summary(made)}; `userdir apply plan.json` would apply it.\n")


def _reconcile_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command(
        "plan",
        "plan joiners, movers and leavers from a source of truth; changes nothing",
        cmd_plan,
    )
    p.add_argument("source", help="the source of truth, e.g. HR")
    p.add_argument("target", help="the directory to bring in line")
    p.add_argument("-o", "--output", metavar="PATH", help="write the plan (JSON) to this file")
    p.add_argument(
        "--only",
        action="append",
        metavar="EMAIL",
        help="only this account (an email or a pattern such as '*@sales.example.com'; repeat)",
    )
    p.add_argument(
        "--reconcile",
        metavar="NAME",
        help="settings from [reconcile.NAME] (default: the table for this source and target)",
    )
    p = command("apply", "apply a plan written by `userdir plan`", cmd_apply)
    p.add_argument("plan", help="the plan file")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--journal", metavar="PATH", help="default: next to the plan, .journal.jsonl")
    p.add_argument(
        "--concurrency", type=_positive, metavar="N", help="writes in flight, 1 to 64 (default 4)"
    )
    p.add_argument("--stop-on-error", action="store_true", help="start nothing after a failure")


# -- entry point --------------------------------------------------------------------------


def _exit_code(error: BaseException) -> int:
    if isinstance(error, UserNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, (ConfigError, InvalidArgumentError, UnsupportedOperationError)):
        return EXIT_USAGE
    if isinstance(error, (AuthenticationError, PermissionDeniedError)):
        return EXIT_AUTH
    return EXIT_ERROR


def _global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    """--config, --format and --debug; after the command their default is SUPPRESS, so
    one given before the command is not reset."""
    parser.add_argument(
        "--config",
        default=default,
        help="config file (default: $USERDIR_CONFIG, else ./userdir.toml)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=default,
        help="output format (default: table on a terminal, jsonl otherwise)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default if default is argparse.SUPPRESS else False,
        help="show tracebacks and debug logs",
    )


def _parser() -> argparse.ArgumentParser:
    epilog = "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="userdir",
        description="List, find, export and audit users across directories.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"userdir {__version__}")
    _global_options(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="the command to run"
    )

    def command(name: str, text: str, run: Callable[[Context], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text, parents=[common])
        p.set_defaults(run=run)
        return p

    directory_help = "a directory's name in the config"
    command("providers", "the providers: their options and what each can do", cmd_providers)
    p = command("list", "list a directory's users", cmd_list)
    p.add_argument("directory", help=directory_help)
    p.add_argument(
        "--status",
        choices=("active", "inactive", "pending", "unknown"),
        help="only users with this status (where the service has one)",
    )
    p.add_argument("--role", help="only users with this role (any case)")
    p.add_argument("--limit", type=_positive, help="stop after this many users")
    p = command("get", "one user by id", cmd_get)
    p.add_argument("directory", help=directory_help)
    p.add_argument("id", help="the user's id in that directory")
    p = command("find", "find people by email in every directory", cmd_find)
    p.add_argument("emails", nargs="+", metavar="EMAIL", help="emails to look up (any case)")
    p.add_argument("--directory", action="append", help="only this directory (repeat for more)")
    p = command("whoami", "the token's own user (Notion's bot)", cmd_whoami)
    p.add_argument("directory", help=directory_help)
    p = command("export", "write every user of a directory to a file", cmd_export)
    p.add_argument("directory", help=directory_help)
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="PATH",
        help="file to write: .csv, .json or .jsonl (else give --format); - for stdout",
    )
    p = command("diff", "the offboarding audit: compare two directories by email", cmd_diff)
    p.add_argument("a", help="the source of truth, e.g. HR")
    p.add_argument("b", help="the directory to audit")
    p.add_argument(
        "--exit-code",
        action="store_true",
        help="exit with 1 when there are differences (for scheduled audits)",
    )
    command("demo", "see it work: four emulated services, no token", cmd_demo)
    _reconcile_commands(command)
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


def _retry_logging_only() -> Any:
    """Route stamina's retry reports to ``logging`` for this command, whatever the process
    has (with structlog installed, stamina's default prints them to stdout, into the
    command's output). Returns the hooks to put back."""
    from stamina import instrumentation

    previous = instrumentation.get_on_retry_hooks()
    instrumentation.set_on_retry_hooks([instrumentation.LoggingOnRetryHook])
    return previous


def _restore_retry_hooks(previous: Any) -> None:
    from stamina import instrumentation

    instrumentation.set_on_retry_hooks(previous)


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
    hooks = _retry_logging_only()
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
        _restore_retry_hooks(hooks)
