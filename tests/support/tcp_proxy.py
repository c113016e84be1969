"""A small TCP proxy a test can cut and restore: "the database is unreachable" without
touching the shared PostgreSQL server.

    with TcpProxy("127.0.0.1", 5432) as proxy:   # workers connect to proxy.port
        proxy.cut()       # every connection dropped, new ones refused
        proxy.blackhole() # new connections accepted but never answered
        proxy.restore()   # accepting and forwarding again
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

from tests.support.redis_server import free_port


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`; one thread per direction per connection.

    A subclass may watch the traffic: `_connection_opened` makes its per-connection
    state, `_observe` sees every chunk before it is forwarded."""

    #: send small writes at once (a proxy that counts round trips wants no coalescing)
    nodelay = False

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._accepting = threading.Event()
        self._silent = threading.Event()
        self._held: list[socket.socket] = []
        self._closed = False
        self.connections_made = 0

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        listener.settimeout(0.1)
        self._listener = listener
        self._accepting.set()
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._accepting.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._silent.is_set():
                with self._lock:
                    self._held.append(client)  # accepted, never answered
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for end in (client, upstream):
                end.settimeout(None)
                if self.nodelay:
                    end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            state = self._connection_opened()
            with self._lock:
                self._sockets.update((client, upstream))
                self.connections_made += 1
            for source, sink, from_client in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, state, from_client), daemon=True
                ).start()
        listener.close()

    def _connection_opened(self) -> Any:
        """State shared by the two directions of a new connection (for `_observe`)."""
        return None

    def _observe(self, chunk: bytes, from_client: bool, state: Any) -> None:
        """Called with every chunk before it is forwarded."""

    def _pump(
        self, source: socket.socket, sink: socket.socket, state: Any, from_client: bool
    ) -> None:
        try:
            while chunk := source.recv(65536):
                self._observe(chunk, from_client, state)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                self._drop(end)

    def _drop(self, end: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(end)
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            end.close()

    def cut(self) -> None:
        """Refuse new connections and drop every open one (like a network partition
        that resets connections, or a database host that went away)."""
        self._accepting.clear()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        with self._lock:
            open_sockets = list(self._sockets)
        for end in open_sockets:
            self._drop(end)

    def blackhole(self) -> None:
        """Drop open connections; accept new ones but never answer (a host that
        stopped responding without refusing: only a connect timeout gets out)."""
        self._silent.set()
        with self._lock:
            open_sockets = list(self._sockets)
        for end in open_sockets:
            self._drop(end)
        if not self._accepting.is_set():
            self._listen()

    @property
    def connections_held(self) -> int:
        """Connections accepted while black-holed and not answered yet."""
        with self._lock:
            return len(self._held)

    def restore(self) -> None:
        """Accept and forward again, on the same port."""
        if self._silent.is_set():
            self._silent.clear()
            with self._lock:
                held, self._held = self._held, []
            for end in held:
                self._drop(end)
        if not self._accepting.is_set() and not self._closed:
            self._listen()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._silent.clear()
        with self._lock:
            held, self._held = self._held, []
        for end in held:
            self._drop(end)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
