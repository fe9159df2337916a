"""A webhook receiver for tests: a local HTTP server that records every POST, and can be down
(nothing listening on its port) and brought up again on the same port."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.ports import free_port


@dataclass(frozen=True)
class Received:
    """One POST: its headers and raw body."""

    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int] = ("", 0)  # the sender's address: one per connection

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records POSTs to ``url`` while up; connection refused while down. ``keep_alive``: an
    HTTP/1.1 server that keeps connections open between requests (else HTTP/1.0: one request
    per connection)."""

    port: int = field(default_factory=free_port)
    keep_alive: bool = False
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        """Start listening (on the same port every time)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if self.keep_alive else "HTTP/1.0"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                peer = (str(self.client_address[0]), int(self.client_address[1]))
                with receiver._lock:
                    receiver.received.append(Received(dict(self.headers.items()), body, peer))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)


__all__ = ["Received", "Receiver"]
