"""``python -m userdir.testing serve [notion] [org_api] [rest] [scim]``: serve emulators over HTTP.

Once every emulator listens, prints one line per emulator and nothing else::

    READY http://127.0.0.1:PORT notion token=test-token

(the base URL, the provider, and the ``connect()`` option with the credential the server
accepts), then serves until SIGTERM or SIGINT and exits with status 0. With no service
named, all of them are served. ``--company demo`` seeds each with its share of the
fictional company of ``userdir demo``.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from ._base import Emulator
from ._demo import seed_demo
from ._providers import PROVIDERS
from ._scim import ScimEmulator

EMULATORS: dict[str, Callable[..., Emulator]] = {p.name: p.emulator for p in PROVIDERS}
#: The ``connect()`` option and credential each emulator accepts unless ``--token`` says
#: otherwise (its constructor's default), e.g. ``{"notion": ("token", "test-token")}``.
DEFAULT_CREDENTIALS: dict[str, tuple[str, str]] = {
    name: next(iter(cls().credentials.items())) for name, cls in EMULATORS.items()
}
DEFAULT_HOST = "127.0.0.1"
MAX_PORT = 65535

_DESCRIPTION = """\
Serve emulators of the user-directory services over HTTP until SIGTERM or SIGINT
(Ctrl-C). Once all of them listen, one line per emulator is printed on stdout:

  READY <base URL> <provider> <connect() option>=<credential>

e.g. "READY http://127.0.0.1:8701 notion token=test-token": point a directory at it
with base_url=<base URL> and that option."""

_EPILOG = f"""\
defaults: every service; host {DEFAULT_HOST}; port 0 (a free port for each; with
--port P the services listen on P, P+1, ... in the order named); credentials
{", ".join(f"{name} {opt}={value}" for name, (opt, value) in DEFAULT_CREDENTIALS.items())}."""


def _token(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        # whitespace would split the printed READY line
        raise argparse.ArgumentTypeError("must be non-empty and without whitespace")
    return value


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command line's parser and its ``serve`` subparser."""
    parser = argparse.ArgumentParser(prog="python -m userdir.testing")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve emulators over HTTP",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "services",
        nargs="*",
        metavar="SERVICE",
        help="notion, org_api, rest or scim (default: all of them)",
    )
    serve.add_argument(
        "--company",
        choices=["demo"],
        help="seed each emulator with its share of the fictional company of `userdir demo`",
    )
    serve.add_argument(
        "--users", type=int, default=0, metavar="N", help="generated users to add (default 0)"
    )
    serve.add_argument(
        "--latency", type=float, default=0.0, help="seconds added per request (default 0)"
    )
    serve.add_argument(
        "--token",
        type=_token,
        default=None,
        help="the token / API key every served emulator accepts (default: "
        + ", ".join(f"{value} for {name}" for name, (_, value) in DEFAULT_CREDENTIALS.items())
        + ")",
    )
    serve.add_argument(
        "--max-results",
        type=int,
        default=None,
        metavar="N",
        help="scim: the cap on every page (filter.maxResults; default 100)",
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"(default {DEFAULT_HOST})")
    serve.add_argument(
        "--port", type=int, default=0, help="port of the first service (default 0: a free port)"
    )
    serve.add_argument(
        "--seed", type=int, default=0, help="seed of the generated users (default 0)"
    )
    return parser, serve


def _build(service: str, args: argparse.Namespace) -> Emulator:
    cls = EMULATORS[service]
    options: dict[str, Any] = {"latency": args.latency}
    if cls is ScimEmulator and args.max_results is not None:
        options["max_results"] = args.max_results
    emulator = cls(**options) if args.token is None else cls(args.token, **options)
    if args.company == "demo":
        seed_demo(emulator)
    if args.users:
        emulator.populate(args.users, seed=args.seed)
    return emulator


def ready_line(url: str, emulator: Emulator) -> str:
    """The line printed for one served emulator (without the newline)."""
    ((option, credential),) = emulator.credentials.items()
    url += getattr(emulator, "base_path", "")  # SCIM's endpoints live under /scim/v2
    return f"READY {url} {emulator.service} {option}={credential}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and serve until told to stop."""
    top, parser = _parsers()
    args = top.parse_args(argv)
    services: list[str] = list(dict.fromkeys(args.services or EMULATORS))
    unknown = [name for name in services if name not in EMULATORS]
    if unknown:
        parser.error(f"unknown service {unknown[0]!r} (choose from {', '.join(EMULATORS)})")
    if args.users < 0:
        parser.error("--users must be >= 0")
    if args.latency < 0:
        parser.error("--latency must be >= 0")
    if args.max_results is not None and args.max_results < 1:
        parser.error("--max-results must be >= 1")
    if args.port and not 0 < args.port <= MAX_PORT - len(services) + 1:
        parser.error(
            f"--port must be 0, or 1 to {MAX_PORT - len(services) + 1} for {len(services)} services"
        )
    emulators = [_build(service, args) for service in services]
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    with contextlib.ExitStack() as stack:
        lines = []
        for offset, emulator in enumerate(emulators):
            port = args.port + offset if args.port else 0
            try:
                url = stack.enter_context(emulator.serve(host=args.host, port=port))
            except OSError as exc:
                reason = exc.strerror or exc
                parser.exit(1, f"cannot serve {emulator.service} on {args.host}:{port}: {reason}\n")
            lines.append(ready_line(url, emulator))
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
