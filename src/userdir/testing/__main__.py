"""``python -m userdir.testing serve PROVIDER``: serve one emulator (see ``PROVIDERS``).

Prints exactly one line, ``READY http://127.0.0.1:PORT``, once listening, then serves until
SIGTERM or SIGINT and exits with status 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._base import Emulator
from ._providers import PROVIDERS, provider_named


def _build(service: str, token: str | None, latency: float) -> Emulator:
    emulator = provider_named(service).make(latency=latency)
    if token is not None:
        setattr(emulator, emulator.credential_option, token)
    return emulator


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and serve until told to stop."""
    parser = argparse.ArgumentParser(prog="python -m userdir.testing")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve one emulator over HTTP")
    serve.add_argument("service", choices=[p.name for p in PROVIDERS])
    serve.add_argument("--users", type=int, default=0, help="generated users to add")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    serve.add_argument("--token", default=None, help="token / API key the server accepts")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--seed", type=int, default=0, help="seed of the generated users")
    args = parser.parse_args(argv)

    emulator = _build(args.service, args.token, args.latency)
    if args.users:
        emulator.populate(args.users, seed=args.seed)
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with emulator.serve(host=args.host, port=args.port) as url:
        sys.stdout.write(f"READY {url}\n")
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
