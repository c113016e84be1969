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

import struct
from collections import Counter
from dataclasses import dataclass, field

from tests.support.tcp_proxy import TcpProxy

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


class CountingProxy(TcpProxy):
    """Forwards 127.0.0.1:`port` to `target`, counting as it goes."""

    nodelay = True

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        super().__init__(target_host, target_port, port)
        self._turns = 0
        self._client_bytes = 0
        self._server_bytes = 0
        self._messages: Counter[str] = Counter()

    def snapshot(self) -> Traffic:
        """The totals so far."""
        with self._lock:
            return Traffic(
                self.connections_made,
                self._turns,
                self._client_bytes,
                self._server_bytes,
                Counter(self._messages),
            )

    def _connection_opened(self) -> _Connection:
        return _Connection()

    def _observe(self, chunk: bytes, from_client: bool, state: _Connection) -> None:
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
