"""Run a command through the server that holds its store (see `store/discovery.py`).

`main()` calls `forward` first: when a live `alphatrace serve` holds the command's store, the
command's arguments, working directory, terminal width and standard input go to that server,
which runs the same command on its open store; its output and exit code come back as they are.
Otherwise (no server, or one that no longer answers) the command runs here as usual.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

from alphatrace.config import resolve_db_path
from alphatrace.store import discovery

# Commands that never touch a store, and those that must not run through a server.
LOCAL = discovery.NOT_BESIDE_A_SERVER | {"version", "schema", "policy"}


def db_of(argv: list[str]) -> Path:
    """The store a command line names: `--db F` / `--db=F`, else ALPHATRACE_DB, else the default."""
    for i, a in enumerate(argv):
        if a == "--db" and i + 1 < len(argv):
            return resolve_db_path(argv[i + 1])
        if a.startswith("--db="):
            return resolve_db_path(a.split("=", 1)[1])
    return resolve_db_path(None)


def forward(argv: list[str]) -> int | None:
    """The exit code of the command run by the server holding its store; None to run it here."""
    command = discovery.command_of(argv)
    if command is None or command in LOCAL or "--help" in argv:
        return None
    db = db_of(argv)
    served = discovery.read(db)
    if served is None:
        return None
    import json
    import urllib.error
    import urllib.request

    from rich.console import Console

    stdin = None
    if "-" in argv[1:] and not sys.stdin.isatty():
        stdin = base64.b64encode(sys.stdin.buffer.read()).decode()
    body = {"argv": argv, "cwd": os.getcwd(), "columns": Console().width, "stdin_b64": stdin}
    req = urllib.request.Request(
        f"{served.url}/v1/admin/cli", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {served.token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as res:  # no timeout: a report may take a minute
            doc = json.loads(res.read())
    except urllib.error.HTTPError as e:
        sys.stderr.write(f"error: the server holding {db} refused the command ({e.code})\n")
        return 2
    except OSError:
        return None  # the server is going away: the store will be free in a moment
    sys.stdout.write(doc["stdout"])
    sys.stdout.flush()
    sys.stderr.write(doc["stderr"])
    return int(doc["exit_code"])
