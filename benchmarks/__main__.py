"""``python -m benchmarks [--quick] [--only NAME ...] [--strict] [--output PATH]``.

Runs the benchmarks of issue 9, prints one table (medians, ratios, each target with
PASS/FAIL) and writes it as markdown to ``benchmarks/results.md``. The exit status is 0
even when a target is missed (this is a report), unless ``--strict`` is given.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import httpx

import userdir

from ._cases import CASES, Config
from ._report import Row, markdown_table, text_table

RESULTS = Path(__file__).with_name("results.md")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="userdir benchmarks against the emulators served over HTTP.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 runs per contender instead of 5 (about 1 minute)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these benchmarks (repeat, or separate by commas): {', '.join(CASES)}",
    )
    parser.add_argument("--runs", type=int, help="timed runs per contender (default 5, quick 2)")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help="where to write the markdown table (default benchmarks/results.md); '-' for none",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def _selected(only: Sequence[str] | None, parser: argparse.ArgumentParser) -> list[str]:
    if not only:
        return list(CASES)
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(CASES)})")
    return [n for n in CASES if n in names]


def _environment(cfg: Config, elapsed: float, command: str, load: float) -> str:
    return (
        f"`{command}` — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{'quick, ' if cfg.quick else ''}{cfg.runs} runs per contender (medians), "
        f"userdir {userdir.__version__}, httpx {httpx.__version__}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs (load average {load:.2f} at the start); emulator servers in "
        f"separate processes on 127.0.0.1; {elapsed:.0f} s in all."
    )


def _markdown(rows: Sequence[Row], environment: str) -> str:
    passed = sum(r.passed is True for r in rows)
    judged = sum(r.passed is not None for r in rows)
    return (
        "# Benchmark results\n\n"
        f"{environment}\n\n"
        f"{markdown_table(rows)}\n\n"
        f'{passed} of {judged} targets met. Ratios compare medians; "measured" is the '
        "speed-up (baseline / userdir) where the target is a minimum, else userdir / "
        "baseline (or megabytes for memory).\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks, print and write the report."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        for case in CASES.values():
            print(f"{case.name:12} {case.description}")
        return 0
    names = _selected(args.only, parser)
    runs = args.runs or (2 if args.quick else 5)
    if runs < 1:
        parser.error("--runs must be at least 1")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    cfg = Config(quick=args.quick, runs=runs, big_runs=1 if args.quick else 2, log=log)
    rows: list[Row] = []
    load = os.getloadavg()[0]
    started = time.perf_counter()
    for name in names:
        case = CASES[name]
        log(f"[{name}] {case.description}")
        t0 = time.perf_counter()
        new = case.run(cfg)
        log(f"  done in {time.perf_counter() - t0:.1f} s: " + ", ".join(r.verdict for r in new))
        rows.extend(new)
    elapsed = time.perf_counter() - started

    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    print()
    print(text_table(rows))
    judged = [r for r in rows if r.passed is not None]
    failed = [r for r in judged if not r.passed]
    print()
    print(f"{len(judged) - len(failed)} of {len(judged)} targets met in {elapsed:.0f} s.")
    if str(args.output) != "-":
        args.output.write_text(_markdown(rows, _environment(cfg, elapsed, command, load)), "utf-8")
        print(f"Markdown table written to {args.output}.")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    raise SystemExit(main())
