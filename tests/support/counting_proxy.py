"""A TCP proxy in front of PostgreSQL that counts round trips, bytes and protocol
messages, whatever the client library or its batching does.

    with CountingProxy("127.0.0.1", 5432) as proxy:   # clients connect to proxy.port
        ...
        before = proxy.snapshot()
        ...                                           # the work to measure
        spent = proxy.snapshot() - before

A *turn* is one client -> server send that follows data from the server (or opens
the connection), on one connection: the client had to wait for an answer before it
could go on. Pipelined statements sent back to back count as one turn. Direction is
recorded before a chunk is forwarded, so the other side cannot react to a chunk
before the proxy has noted it: the count does not depend on thread scheduling.

The client's stream is also split into PostgreSQL protocol messages (SSL off: the
proxy asks the caller to connect with `sslmode=disable`), so `statements` counts
Query ('Q') and Execute ('E') messages: statements sent, pipelined or not.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field

from tests.support.redis_server import free_port

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


@dataclass(frozen=True)
class Traffic:
    """Totals over every connection through the proxy (or a difference of two)."""

    connections: int = 0
    turns: int = 0
    client_bytes: int = 0
    server_bytes: int = 0
    messages: Counter[str] = field(default_factory=Counter)

    @property
    def statements(self) -> int:
        """Simple queries plus extended-protocol executes."""
        return self.messages["Q"] + self.messages["E"]

    def __sub__(self, other: Traffic) -> Traffic:
        messages = Counter(self.messages)
        messages.subtract(other.messages)
        return Traffic(
            self.connections - other.connections,
            self.turns - other.turns,
            self.client_bytes - other.client_bytes,
            self.server_bytes - other.server_bytes,
            +messages,
        )


class _ClientStream:
    """Splits the client -> server byte stream into protocol messages."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.untyped = True  # startup, SSL and cancel requests carry no type byte

    def feed(self, chunk: bytes, counts: Counter[str]) -> None:
        self.buffer += chunk
        while True:
            if self.untyped:
                if len(self.buffer) < 8:
                    return
                length, code = struct.unpack("!ii", self.buffer[:8])
                if len(self.buffer) < length:
                    return
                del self.buffer[:length]
                counts["startup" if code not in (_SSL_REQUEST, _GSSENC_REQUEST) else "ssl"] += 1
                self.untyped = code in (_SSL_REQUEST, _GSSENC_REQUEST)
                continue
            if len(self.buffer) < 5:
                return
            (length,) = struct.unpack("!i", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return
            counts[chr(self.buffer[0])] += 1
            del self.buffer[: 1 + length]


class _Connection:
    def __init__(self) -> None:
        self.last_sender = "server"  # the first client send opens a turn
        self.stream = _ClientStream()


class CountingProxy:
    """Forwards 127.0.0.1:`port` to `target`, counting as it goes."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._running = threading.Event()
        self._connections = 0
        self._turns = 0
        self._client_bytes = 0
        self._server_bytes = 0
        self._messages: Counter[str] = Counter()

    def start(self) -> CountingProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        self._running.set()
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()
        return self

    def snapshot(self) -> Traffic:
        """The totals so far."""
        with self._lock:
            return Traffic(
                self._connections,
                self._turns,
                self._client_bytes,
                self._server_bytes,
                Counter(self._messages),
            )

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for end in (client, upstream):
                end.settimeout(None)
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            state = _Connection()
            with self._lock:
                self._sockets.update((client, upstream))
                self._connections += 1
            threading.Thread(
                target=self._pump, args=(client, upstream, state, True), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, client, state, False), daemon=True
            ).start()
        listener.close()

    def _pump(
        self, source: socket.socket, sink: socket.socket, state: _Connection, from_client: bool
    ) -> None:
        try:
            while chunk := source.recv(65536):
                with self._lock:  # noted before forwarding: see the module docstring
                    if from_client:
                        if state.last_sender != "client":
                            self._turns += 1
                            state.last_sender = "client"
                        self._client_bytes += len(chunk)
                        state.stream.feed(chunk, self._messages)
                    else:
                        state.last_sender = "server"
                        self._server_bytes += len(chunk)
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

    def close(self) -> None:
        """Stop accepting and drop every open connection."""
        self._running.clear()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None
        with self._lock:
            open_sockets = list(self._sockets)
        for end in open_sockets:
            self._drop(end)

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
