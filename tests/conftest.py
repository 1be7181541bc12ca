"""Shared fixtures: stamina in testing mode, sync and async directories with one API."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stamina

import userdir
from userdir.testing import Emulator
from userdir.testing._demo import DemoCompany, demo_company

TOKEN = "ntn_S3CR3T-token-value-000"
API_KEY = "orgkey-S3CR3T-000"
REST_TOKEN = "rest-S3CR3T-token-000"


@pytest.fixture(autouse=True)
def _stamina_testing() -> Iterator[None]:
    """No real backoff sleeps in tests; three attempts unless a test says otherwise."""
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


class Blocking:
    """Drives an async directory from sync test code, so one test body covers both.

    Coroutines run to completion on a private event loop; async iterators are
    collected into a list.
    """

    def __init__(self, directory: Any) -> None:
        self._directory = directory
        self._loop = asyncio.new_event_loop()

    def run(self, awaitable: Any) -> Any:
        return self._loop.run_until_complete(awaitable)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._directory, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if inspect.isawaitable(result):
                return self.run(result)
            if inspect.isasyncgen(result) or hasattr(result, "__anext__"):
                return iter(self.run(_collect(result)))
            return result

        return call

    def close(self) -> None:
        try:
            self.run(self._directory.close())
            self.run(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()

    def __enter__(self) -> Blocking:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _collect(agen: Any) -> list[Any]:
    return [item async for item in agen]


@pytest.fixture
def company() -> DemoCompany:
    """A fresh demo company: its emulators and the directories over them."""
    return demo_company()


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Run the test once with the blocking and once with the asyncio directory."""
    return str(request.param)


@pytest.fixture
def connect(mode: str) -> Iterator[Callable[..., Any]]:
    """``connect(provider, **options)`` in the test's mode; closed at teardown."""
    opened: list[Any] = []

    def _connect(provider: str, **options: Any) -> Any:
        if mode == "sync":
            directory: Any = userdir.connect(provider, **options)
        else:
            directory = Blocking(userdir.connect_async(provider, **options))
        opened.append(directory)
        return directory

    yield _connect
    for directory in opened:
        directory.close()


class Harness:
    """Plans and applies in the test's mode: blocking, or asyncio on a private loop."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.loop = asyncio.new_event_loop()
        self.opened: list[Any] = []

    def connect(self, emulator: Emulator, **options: Any) -> Any:
        """A directory over ``emulator``'s in-process transport, in the test's mode."""
        options = {**emulator.connect_options(), **options}
        if self.mode == "sync":
            directory: Any = userdir.connect(emulator.service, **options)
        else:
            directory = userdir.connect_async(emulator.service, **options)
        self.opened.append(directory)
        return directory

    def plan(self, source: Any, target: Any, **settings: Any) -> userdir.Plan:
        settings.setdefault("source_name", "hr")
        settings.setdefault("target_name", "app")
        if self.mode == "sync":
            return userdir.plan(source, target, **settings)
        return self.loop.run_until_complete(userdir.plan_async(source, target, **settings))

    def apply(self, plan: userdir.Plan, target: Any, **options: Any) -> userdir.ApplyResult:
        if self.mode == "sync":
            return userdir.apply(plan, target, **options)
        return self.loop.run_until_complete(userdir.apply_async(plan, target, **options))

    def close(self) -> None:
        for directory in self.opened:
            result = directory.close()
            if result is not None:
                self.loop.run_until_complete(result)
        self.loop.close()


@pytest.fixture
def rc(mode: str) -> Iterator[Harness]:
    """Reconcile (plan and apply) in the test's mode, its directories closed after."""
    harness = Harness(mode)
    yield harness
    harness.close()
