"""Run a command on a server instead of a local store: a remote one, or the one holding it.

`main()` calls `forward` first.
- `--url URL` (or $ALPHATRACE_URL), with `--key KEY` (or $ALPHATRACE_API_KEY; `--api-key`
  too, which `audit sign` needs since its own `--key` is the signing key): the command runs on
  that server (`POST /v1/cli`). The files it reads are uploaded (`client/files.py`), standard
  input too; the files it writes (`--out`, `audit sign --heads`) come back; its output and
  exit code are the server's, unchanged. The key needs the command's scope
  (`server/cli_routes.SCOPES`).
- Otherwise, when a live `alphatrace serve` holds the command's store (`store/discovery.py`),
  the command's arguments, working directory, terminal width and standard input go to that
  server (`POST /v1/admin/cli`), which reads the caller's files itself (same machine).
- Otherwise (no server, or one that no longer answers) the command runs here as usual.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Any

from alphatrace.client.http import ENV_KEY, ENV_URL, RemoteError
from alphatrace.config import resolve_db_path
from alphatrace.store import discovery

# Commands that never touch a store, and those that must not run through a server.
LOCAL = discovery.NOT_BESIDE_A_SERVER | {"version", "schema", "policy"}
# Commands run here even with --url: they need no store (keygen writes a key file here).
LOCAL_WORDS = frozenset({("audit", "keygen")})
# The options that name a file the command reads, whatever the command; and those it writes.
READS = frozenset({"policy", "pubkey", "heads"})
WRITES = frozenset({"out"})
# Per command, more parameters naming files it reads.
READS_BY_COMMAND: dict[tuple[str, ...], frozenset[str]] = {("audit", "sign"): frozenset({"key"})}
# Commands whose `paths` are files or folders, and the module whose `expand_paths` lists the
# files of a folder that the command reads (only those are uploaded).
FOLDERS: dict[tuple[str, ...], str] = {("ingest",): "alphatrace.store.lines",
                                       ("market", "import"): "alphatrace.market.readers"}
# Files a command reads and appends to: uploaded, and brought back.
APPENDS: dict[tuple[str, ...], frozenset[str]] = {("audit", "sign"): frozenset({"heads"})}


def db_of(argv: list[str]) -> Path:
    """The store a command line names: `--db F` / `--db=F`, else ALPHATRACE_DB, else the default."""
    for i, a in enumerate(argv):
        if a == "--db" and i + 1 < len(argv):
            return resolve_db_path(argv[i + 1])
        if a.startswith("--db="):
            return resolve_db_path(a.split("=", 1)[1])
    return resolve_db_path(None)


# The remote options, which take a value wherever they stand.
REMOTE_OPTIONS = frozenset({"--url", "--key", "--api-key"})
# Root options with a value (`alphatrace --engine spark gates evaluate`): not command words.
ROOT_VALUE_OPTIONS = REMOTE_OPTIONS | {"--engine"}


def command_words(argv: list[str]) -> tuple[str, ...]:
    """The command an argument list names: its first word, and the subcommand's for a group
    (`("gates", "evaluate")`); () for none. The value of a remote option is not a word."""
    import typer.main

    from alphatrace.cli.app import app

    words: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in ROOT_VALUE_OPTIONS:
            skip = True
        elif not a.startswith("-"):
            words.append(a)
            if len(words) == 2:
                break
    if not words:
        return ()
    group = typer.main.get_command(app)
    first = getattr(group, "commands", {}).get(words[0])
    subs = getattr(first, "commands", None)
    if subs and len(words) > 1 and words[1] in subs:
        return (words[0], words[1])
    return (words[0],)


def split_remote(argv: list[str]) -> tuple[str | None, str | None, list[str]]:
    """(url, key, the other arguments): `--url`, `--key`, `--api-key` taken out wherever they
    stand, each with its environment variable as the default. `audit sign` keeps its own
    `--key` (the signing key file)."""
    own_key = command_words(argv) == ("audit", "sign")
    names = {"--url": "url", "--api-key": "key"} | ({} if own_key else {"--key": "key"})
    found: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        opt, eq, val = a.partition("=")
        if opt in names and eq:
            found[names[opt]] = val
        elif a in names and i + 1 < len(argv):
            found[names[a]] = argv[i + 1]
            i += 1
        else:
            rest.append(a)
        i += 1
    url = found.get("url") or os.environ.get(ENV_URL) or None
    key = found.get("key") or os.environ.get(ENV_KEY) or None
    return url, key, rest


def forward(argv: list[str]) -> int | None:
    """The exit code of the command run by a server (remote, or holding its store); None to
    run it here (then with `local_args(argv)`)."""
    explicit = any(a == "--url" or a.startswith("--url=") for a in argv)
    url, key, argv = split_remote(argv)
    if on_spark(argv):
        return None  # Spark reads the export from this machine's session, not the server's
    command = discovery.command_of(argv)
    if not explicit and (has_db(argv) or command in discovery.NOT_BESIDE_A_SERVER):
        url = None  # an explicit --db, or `serve` in the agents' shell: $ALPHATRACE_URL yields
    if command is None or command in LOCAL or "--help" in argv:
        if url and command in discovery.NOT_BESIDE_A_SERVER:
            sys.stderr.write(f"error: `alphatrace {command}` runs on this machine only; "
                             "drop --url\n")
            return 2
        return None
    if url:
        return _remote(url, key, argv)
    db = db_of(argv)
    served = discovery.read(db)
    if served is None:
        return None
    return _served(served, db, argv)


def on_spark(argv: list[str]) -> bool:
    """Whether the command line asks for `--engine spark` (before or after the command)."""
    return any(a == "--engine=spark" or (a == "--engine" and nxt == "spark")
               for a, nxt in zip(argv, [*argv[1:], ""], strict=True))


def has_db(argv: list[str]) -> bool:
    return any(a == "--db" or a.startswith("--db=") for a in argv)


def local_args(argv: list[str]) -> list[str]:
    """The arguments a command run here parses: without the remote options."""
    return split_remote(argv)[2]


def _columns() -> int:
    from rich.console import Console

    return Console().width


def _stdin(argv: list[str]) -> str | None:
    if "-" in argv[1:] and not sys.stdin.isatty():
        return base64.b64encode(sys.stdin.buffer.read()).decode()
    return None


def _show(doc: dict[str, Any]) -> int:
    sys.stdout.write(doc["stdout"])
    sys.stdout.flush()
    sys.stderr.write(doc["stderr"])
    return int(doc["exit_code"])


def _served(served: discovery.Served, db: Path, argv: list[str]) -> int | None:
    import json
    import urllib.error
    import urllib.request

    body = {"argv": argv, "cwd": os.getcwd(), "columns": _columns(), "stdin_b64": _stdin(argv)}
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
    return _show(doc)


def _remote(url: str, key: str | None, argv: list[str]) -> int | None:
    """Run `argv` on the server at `url`; None when the command runs here (no store needed)."""
    from alphatrace.client import http

    words = command_words(argv)
    if words in LOCAL_WORDS:
        return None
    try:
        if has_db(argv):
            raise RemoteError("--db and --url name two stores: a command with --url runs on "
                              "the server's store; drop --db")
        if words == ("ingest",) and any(a == "--follow" or a.startswith("--follow=")
                                        for a in argv):
            raise RemoteError("ingest --follow tails folders on this machine: run it here, or "
                              "send events to the server with the SDK")
        sent, uploads = remote_argv(words, argv)
        call = {"argv": sent, "columns": _columns(), "stdin_b64": _stdin(argv),
                "folders": sorted(uploads.folders)}
        doc = http.post(url, "/v1/cli", key, call, uploads.files).json()
    except RemoteError as e:
        sys.stderr.write(f"error: {e}\n")
        return e.exit_code
    for name, data in (doc.get("files") or {}).items():
        target = uploads.local(name)
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(data))
    return _show(doc)


def remote_argv(words: tuple[str, ...], argv: list[str]) -> tuple[list[str], Any]:
    """The argument list the server runs (each file named as uploaded) and the uploads."""
    import importlib

    from alphatrace.client.files import Uploads

    params = parsed_params(words, argv)
    uploads = Uploads()
    folder_module = FOLDERS.get(words)
    expand = importlib.import_module(folder_module).expand_paths if folder_module else None
    reads = READS | READS_BY_COMMAND.get(words, frozenset())
    renamed: dict[str, str] = {}
    appends = APPENDS.get(words, frozenset())
    for name, value in params.items():
        values = [str(v) for v in (value if isinstance(value, list | tuple) else [value])
                  if v is not None and str(v) != "-"]
        for v in values:
            if name == "paths" and folder_module:
                renamed[v] = uploads.add(v, expand)
            elif name in WRITES or name in appends:
                renamed[v] = uploads.output(v)
            elif name in reads:
                renamed[v] = uploads.add(v)
    out = []
    for a in argv:
        opt, eq, val = a.partition("=")
        if a.startswith("--") and eq and val in renamed:
            out.append(f"{opt}={renamed[val]}")
        else:
            out.append(renamed.get(a, a))
    return out, uploads


def parsed_params(words: tuple[str, ...], argv: list[str]) -> dict[str, Any]:
    """The command's parameters as click reads `argv`, without running anything ({} for a
    command line it cannot read)."""
    import typer.main

    from alphatrace.cli.app import app

    cmd: Any = typer.main.get_command(app)
    for w in words:
        cmd = cmd.commands[w]
    args = list(argv)
    for w in words:  # the words themselves, not the options around them
        if w in args:
            args.remove(w)
    try:
        ctx = cmd.make_context(" ".join(words), args, resilient_parsing=True)
    except Exception:  # a usage error: the server reports it, as a local run would
        return {}
    return dict(ctx.params)
