"""Real HTTP serving of an emulator (``Emulator.serve`` and the CLI)."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ._base import Emulator

__all__ = ["serving"]

#: How long a "never answer" fault keeps a connection open over real HTTP.
HANG_SECONDS = 30.0
#: The last part of a latency that is waited out precisely (see _wait_precisely).
PRECISE_WAIT = 0.001


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        target = self.path
        if "://" in target:  # absolute-form request target
            parts = urlsplit(target)
            target = parts.path + ("?" + parts.query if parts.query else "")
        raw_path, _, query = target.partition("?")
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        body = self._read_body()
        server = self.server
        emulator = server.emulator
        pending = emulator._arrive(self.command, raw_path or "/", query, headers, body)
        delay = emulator._delay_for(pending)
        if delay > 0:
            _wait_precisely(server.stopping, delay)
        outcome = emulator._finish(pending)
        if outcome.action != "reply" or outcome.reply is None:
            if outcome.action == "timeout":
                server.stopping.wait(HANG_SECONDS)
            self.close_connection = True  # closes the socket without writing anything
            return
        reply = outcome.reply
        self.send_response(reply.status)
        for name, value in reply.header_list():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle


def _wait_precisely(stopping: threading.Event, seconds: float) -> None:
    """Wait ``seconds`` (or until ``stopping``), late by microseconds, not by a timer's slack.

    A timed wait wakes a fraction of a millisecond late; over a hundred sequential round
    trips that alone moves a benchmark by percents. The last stretch is spent yielding
    the CPU until the deadline instead.
    """
    deadline = time.monotonic() + seconds
    if seconds > PRECISE_WAIT:
        stopping.wait(seconds - PRECISE_WAIT)
    while time.monotonic() < deadline and not stopping.is_set():
        time.sleep(0)  # releases the GIL and the CPU


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # the default backlog of 5 stalls bursts of new connections

    def __init__(self, emulator: Emulator, host: str, port: int) -> None:
        self.emulator = emulator
        self.stopping = threading.Event()
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._connections_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's reverse DNS lookup (socket.getfqdn).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"userdir-emulator-{self.emulator.service}-conn",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            pass  # the client went away; not the emulator's problem
        except Exception:
            traceback.print_exc()  # a bug in the emulator: make it visible
        finally:
            self.shutdown_request(request)
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silence tracebacks of broken connections."""

    def close_connections(self, timeout: float = 5.0) -> None:
        """Unblock and join every connection thread (keep-alive ones wait for a request)."""
        self.stopping.set()
        with self._connections_lock:
            items = list(self._connections.items())
        for _, sock in items:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread, _ in items:
            thread.join(timeout)


@contextlib.contextmanager
def serving(emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``emulator`` on ``host:port`` in a background thread; yield the base URL."""
    server = _Server(emulator, host, port)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"userdir-emulator-{emulator.service}",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://{server.server_name}:{server.server_port}"
    finally:
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
