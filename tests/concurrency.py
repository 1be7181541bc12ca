"""Test helpers that prove requests were in flight together (no wall-clock asserts)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx


def slow(
    answer: Callable[[httpx.Request], httpx.Response], mode: str, seconds: float = 0.01
) -> Any:
    """An answer that takes ``seconds``, like a real network round trip."""

    def callback(request: httpx.Request) -> httpx.Response:
        time.sleep(seconds)
        return answer(request)

    async def async_callback(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(seconds)
        return answer(request)

    return callback if mode == "sync" else async_callback


class Rendezvous:
    """Holds each of the first ``parties`` matching requests until all have arrived.

    If the client sent them one after another, the first would wait forever; the
    rendezvous gives up after ``timeout`` and records that it did, so the test fails
    with a clear assertion instead of hanging.
    """

    def __init__(self, parties: int, timeout: float = 10.0) -> None:
        self.parties = parties
        self.timeout = timeout
        self.arrived = 0
        self.met = False
        self.timed_out = False
        self._lock = threading.Lock()
        self._event = threading.Event()

    def _arrive(self) -> None:
        with self._lock:
            self.arrived += 1
            if self.arrived == self.parties and not self.timed_out:
                self.met = True
                self._event.set()

    def _gave_up(self) -> None:
        with self._lock:
            if not self.met:
                self.timed_out = True  # someone waited alone: not all were in flight at once

    def sync(self, answer: Callable[[httpx.Request], httpx.Response]) -> Callable[..., Any]:
        def callback(request: httpx.Request) -> httpx.Response:
            if self.arrived < self.parties:
                self._arrive()
                if not self._event.wait(self.timeout):
                    self._gave_up()
            return answer(request)

        return callback

    def asynchronous(self, answer: Callable[[httpx.Request], httpx.Response]) -> Callable[..., Any]:
        async def callback(request: httpx.Request) -> httpx.Response:
            if self.arrived < self.parties:
                self._arrive()
                deadline = time.monotonic() + self.timeout
                while not self._event.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.001)
                if not self._event.is_set():
                    self._gave_up()
            return answer(request)

        return callback

    def callback(self, mode: str, answer: Callable[[httpx.Request], httpx.Response]) -> Any:
        return self.sync(answer) if mode == "sync" else self.asynchronous(answer)


class HeldUntil:
    """Holds the requests that ``hold`` picks until one that ``release`` picks arrives.

    Proves that a client sent the releasing request while the held one was still
    unanswered, whatever the machine's speed. If it never comes, the held request is
    answered after ``timeout`` and ``released`` stays False.
    """

    def __init__(
        self,
        hold: Callable[[httpx.Request], bool],
        release: Callable[[httpx.Request], bool],
        timeout: float = 10.0,
    ) -> None:
        self.hold = hold
        self.release = release
        self.timeout = timeout
        self.released = False
        self._event = threading.Event()

    def _see(self, request: httpx.Request) -> bool:
        if self.release(request):
            self.released = True
            self._event.set()
        return self.hold(request)

    def callback(self, mode: str, answer: Callable[[httpx.Request], httpx.Response]) -> Any:
        def sync_callback(request: httpx.Request) -> httpx.Response:
            if self._see(request):
                self._event.wait(self.timeout)
            return answer(request)

        async def async_callback(request: httpx.Request) -> httpx.Response:
            if self._see(request):
                deadline = time.monotonic() + self.timeout
                while not self._event.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.001)
            return answer(request)

        return sync_callback if mode == "sync" else async_callback
