"""Where the embedded servers keep their files inside a data folder."""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

#: A file in every orderq data folder (and stand-in socket folder): `is_embedded` looks
#: for it next to a URL's socket.
MARKER = "orderq-embedded"

# A Unix socket path must fit in sockaddr_un (108 bytes on Linux, 104 on macOS), and
# kombu's redis+socket URL takes the path verbatim: anything else goes to a short
# folder under the system temp dir.
_SAFE_SOCKET_PATH = re.compile(r"^[A-Za-z0-9/._+-]{1,100}$")


def pgdata_of(data_dir: Path) -> Path:
    """PostgreSQL's data directory (PGDATA); its log is `log` inside it."""
    return data_dir / "postgres"


def postgres_marker_of(data_dir: Path) -> Path:
    """Written once initdb and the first start succeeded; its absence next to a
    PGDATA means an initdb that was killed half-way."""
    return data_dir / "postgres.initialized"


def redis_dir_of(data_dir: Path) -> Path:
    """redis.conf, redis.pid, redis.log, appendonly.aof, dump.rdb."""
    return data_dir / "redis"


def redis_socket_of(data_dir: Path) -> Path:
    """`<data>/redis/redis.sock`, or a short stand-in if that path is too long."""
    preferred = redis_dir_of(data_dir).resolve() / "redis.sock"
    if _SAFE_SOCKET_PATH.match(str(preferred)):
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"orderq-{digest}" / "redis.sock"


def mark(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).touch()


def is_marked(folder: Path) -> bool:
    return (folder / MARKER).exists()
