"""An emulator served over HTTP by a separate process (``python -m userdir.testing serve``)."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from types import TracebackType

from userdir.testing import provider_named

__all__ = ["START_TIMEOUT", "EmulatorServer", "credentials"]

#: Seconds to wait for ``READY`` (populating 100,000 users takes a second or two).
START_TIMEOUT = 120.0


def credentials(provider: str, token: str) -> dict[str, str]:
    """The ``userdir.connect`` keyword that carries ``token`` for ``provider``."""
    emulator = provider_named(provider).emulator
    return {getattr(emulator, "credential_option", "token"): token}


class EmulatorServer:
    """One emulator in its own process; a context manager whose ``url`` is the base URL.

    The child prints ``READY http://127.0.0.1:PORT <provider> <option>=<token>`` once it
    listens; it is terminated (SIGTERM, then killed if it does not stop) when the context
    exits.
    """

    def __init__(
        self,
        provider: str,
        *,
        users: int,
        latency: float = 0.0,
        token: str = "bench-token",
        options: tuple[str, ...] = (),
    ) -> None:
        self.provider = provider
        self.options = options
        self.users = users
        self.latency = latency
        self.token = token
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    def __repr__(self) -> str:
        return (
            f"<EmulatorServer {self.provider} users={self.users} "
            f"latency={self.latency * 1000:g}ms {self.url or 'not started'}>"
        )

    @property
    def credentials(self) -> dict[str, str]:
        """The ``connect()`` keyword (``token=`` or ``api_key=``) this server accepts."""
        return credentials(self.provider, self.token)

    def start(self) -> str:
        """Start the child process and wait for its ``READY`` line; return the base URL."""
        command = [
            sys.executable,
            "-m",
            "userdir.testing",
            "serve",
            self.provider,
            "--users",
            str(self.users),
            "--latency",
            repr(self.latency),
            "--token",
            self.token,
            *self.options,
        ]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self._process = process
        lines: queue.Queue[str] = queue.Queue()

        def read_first_line() -> None:
            assert process.stdout is not None
            lines.put(process.stdout.readline())

        threading.Thread(target=read_first_line, daemon=True).start()
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"{self!r}: no READY line within {START_TIMEOUT:g} s") from None
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"{self!r}: expected a READY line, got {line!r}")
        self.url = line.split()[1]  # READY <url> <provider> <option>=<credential>
        return self.url

    def stop(self) -> None:
        """Terminate the child process and wait for it."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> EmulatorServer:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
