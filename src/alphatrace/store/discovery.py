"""The discovery file: how a command on the same machine finds the server that holds a store.

DuckDB lets one process write a store file, so while `alphatrace serve` runs, every other
command would be refused ("open for writing by another process"). The server writes
`<store>.server.json` beside the store instead, readable by its owner only (mode 0600): its
address and a local admin token made for this run. A command that finds a live server there
sends its arguments to it (`cli/remote.py`), and the server runs the same command on its own
open store (`server/cli_routes.py`), so the user sees the same output as without a server.
The token never enters the store; the file goes when the server stops, and a file whose
process is gone is ignored.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

SUFFIX = ".server.json"

# Commands that cannot run beside a server holding their store: they would start another
# one, or rebuild the store. The CLI runs them itself (and they fail on the lock with the
# server's address); the server refuses them if they are sent anyway.
NOT_BESIDE_A_SERVER = frozenset({"serve", "follow", "demo"})


def command_of(argv: list[str]) -> str | None:
    """The command an `alphatrace` argument list names (its first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


@dataclass(frozen=True)
class Served:
    url: str
    token: str
    pid: int
    db: str


def path_for(db: Path) -> Path:
    return db.with_name(db.name + SUFFIX)


def write(db: Path, url: str) -> Served:
    """Create the discovery file (mode 0600 from the start: never readable by others)."""
    served = Served(url, secrets.token_urlsafe(32), os.getpid(), str(db.resolve()))
    path = path_for(db)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(served), fh)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_TRUNC
    return served


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, but not ours to talk to
        return True
    return True


def read(db: Path) -> Served | None:
    """The live server holding `db`, or None: no file, a file others could read or write, one
    that does not parse, or one whose process is gone."""
    path = path_for(db)
    try:
        st = path.stat()
    except OSError:
        return None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) or st.st_uid != os.getuid():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        served = Served(str(doc["url"]), str(doc["token"]), int(doc["pid"]), str(doc["db"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return served if _alive(served.pid) else None


def remove(db: Path, served: Served) -> None:
    """Delete the file if it is still this server's (a newer server may have replaced it)."""
    path = path_for(db)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("token") == served.token:
            path.unlink()
    except (OSError, ValueError):
        pass
