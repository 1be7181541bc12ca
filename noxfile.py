"""Developer sessions: ``nox -s tests`` is the one test command (README, .ci/run)."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

# pyenv installs interpreters that its shims only expose when selected: put each one's
# bin directory on PATH so that nox finds python3.10 ... python3.13 directly.
_PYENV_VERSIONS = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
for _version in PYTHONS:
    for _bin in sorted(_PYENV_VERSIONS.glob(f"{_version}.*/bin"), reverse=True)[:1]:
        os.environ["PATH"] = f"{_bin}{os.pathsep}{os.environ.get('PATH', '')}"
TEST_DEPS = [".[tests]"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on the Python running nox."""
    session.install("-e", *TEST_DEPS)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS)
def tests_all(session: nox.Session) -> None:
    """The test suite on every supported Python."""
    session.install(*TEST_DEPS)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src."""
    session.install("-e", ".[tests]", "mypy")  # the pytest plugin is type-checked too
    session.run("mypy", "--strict", "src")


@nox.session
def fuzz(session: nox.Session) -> None:
    """The hypothesis parsers' fuzzing with many more examples."""
    session.install("-e", *TEST_DEPS)
    session.run("pytest", "-q", "tests/test_fuzz.py", env={"USERDIR_FUZZ_EXAMPLES": "20000"})


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks against the emulators served over HTTP (add --quick for a short run)."""
    session.install("-e", ".", "notion-client")
    session.run("python", "-m", "benchmarks", *session.posargs)
