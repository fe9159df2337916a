"""A TCP proxy a test switches on: before :meth:`TcpProxy.start` nothing listens on its port
(connections are refused, as to a database that is down); after it, every connection is
forwarded to the target. Stands in for a PostgreSQL restart without stopping the shared server."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field

from tests.support.ports import free_port

CHUNK_BYTES = 65536
SELECT_SECONDS = 0.2


@dataclass
class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``target_host:target_port`` once started."""

    target_port: int
    target_host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    _server: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Listen and forward from now on."""
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        server.settimeout(SELECT_SECONDS)
        self._server = server
        self._spawn(self._accept)

    def close(self) -> None:
        """Stop listening and cut every forwarded connection."""
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        if self._server is not None:
            self._server.close()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            try:
                upstream = socket.create_connection((self.target_host, self.target_port), 5)
            except OSError:
                client.close()
                continue
            self._spawn(self._pipe, client, upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        with client, upstream:
            ends = {client: upstream, upstream: client}
            while not self._stop.is_set():
                readable, _, _ = select.select(list(ends), [], [], SELECT_SECONDS)
                for sock in readable:
                    data = b""
                    with contextlib.suppress(OSError):
                        data = sock.recv(CHUNK_BYTES)
                    if not data:
                        return
                    ends[sock].sendall(data)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
