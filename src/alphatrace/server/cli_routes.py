"""Commands sent by the CLI to the server: from the same machine (`store/discovery.py`) or
from anywhere with an API key (`alphatrace --url URL --key KEY ...`, `cli/remote.py`).

The command runs in this process, on a connection to the store the server already has open
(DuckDB shares one database instance per file within a process), with the caller's terminal
width and standard input, and its output goes back as text: the same code as without a
server, so the same output. One command at a time: the working directory, the environment and
the standard streams are the process's own (`scratch.PROCESS`).

- `POST /v1/admin/cli` (the discovery file's local token): the caller's own working
  directory, which is on this machine.
- `POST /v1/cli` (an API key): the caller's files are uploaded and the command runs in a
  scratch folder (`server/scratch.py`); the key needs the command's scope (`SCOPES`), and no
  argument may name a file outside that folder or another store.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import io
import os
import sys
from typing import Any

import typer
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from alphatrace.client.files import safe_name
from alphatrace.config import ENV_DB
from alphatrace.server import scratch
from alphatrace.server.auth import allows, bearer_principal, unauthorized
from alphatrace.server.keys import active_keys
from alphatrace.server.writer import Writer
from alphatrace.store import discovery

router = APIRouter()

# The scope an API key needs for a command (its words, e.g. ("gates", "evaluate")); a command
# not listed needs `admin`. A dry run of a writing command only reads.
READ, INGEST, ADMIN = "read", "ingest", "admin"
SCOPES: dict[tuple[str, ...], str] = {
    ("ledger",): READ, ("agents",): READ, ("explain",): READ, ("forensics",): READ,
    ("confidence",): READ, ("report",): READ, ("quarantine",): READ,
    ("market", "symbols"): READ, ("market", "resolve"): READ, ("exclusions", "list"): READ,
    ("gates", "backtest"): READ, ("audit", "verify"): READ, ("audit", "show"): READ,
    ("ingest",): INGEST, ("market", "import"): INGEST,
    ("reconcile",): ADMIN, ("revive",): ADMIN, ("gates", "evaluate"): ADMIN,
    ("exclusions", "apply"): ADMIN, ("market", "alias"): ADMIN, ("quarantine", "clear"): ADMIN,
    ("audit", "sign"): ADMIN, ("keys", "create"): ADMIN, ("keys", "list"): ADMIN,
    ("keys", "revoke"): ADMIN,
}
DRY_RUN = frozenset({("gates", "evaluate"), ("quarantine", "clear")})


def scope_of(words: tuple[str, ...], argv: list[str]) -> str:
    """The scope a key needs to run `alphatrace ARGV` whose command is `words`. A dry run is
    read from the arguments as the command will parse them (`--policy --dry-run` names a
    policy file, it is no dry run)."""
    from alphatrace.cli.remote import parsed_params

    if words in DRY_RUN and parsed_params(words, argv).get("dry_run") is True:
        return READ
    return SCOPES.get(words, ADMIN)


def _tails(words: tuple[str, ...], argv: list[str]) -> str | None:
    """`ingest --follow` never ends: it tails folders of the machine it runs on."""
    from alphatrace.cli.remote import parsed_params

    if words == ("ingest",) and parsed_params(words, argv).get("follow"):
        return "ingest --follow tails folders of the machine it runs on: not through a server"
    return None


def unsafe_argument(argv: list[str]) -> str | None:
    """Why a remote command line cannot run here (an argument naming a file outside the
    scratch folder, or another store), or None. An API key reaches this store and the files
    it sent, nothing else on the server's disk."""
    for a in argv:
        if a == "--db" or a.startswith("--db="):
            return "--db: a remote command runs on the server's own store"
        if a.startswith("--"):
            value = a.partition("=")[2]
        elif a.startswith("-") and len(a) > 2:
            value = a[2:]  # a short option with its value attached: -o/x
        else:
            value = a
        if value.startswith(("/", "~")) or (("/" in value or value == "..") and
                                             not safe_name(value)):
            return f"{a!r}: a remote command cannot name a file outside its working directory"
    return None


class CliCall(BaseModel):
    argv: list[str]
    cwd: str
    columns: int = 80
    stdin_b64: str | None = None


def run_command(argv: list[str], cwd: str, columns: int, stdin: bytes | None,
                db: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `alphatrace ARGV` run here on the server's store."""
    from alphatrace.cli.app import app as cli_app
    from alphatrace.cli.common import terminal_width

    out, err = io.StringIO(), io.StringIO()
    with scratch.PROCESS:
        old_cwd, old_env = os.getcwd(), {k: os.environ.get(k) for k in (ENV_DB, "COLUMNS")}
        old_stdin = sys.stdin
        try:
            os.chdir(cwd)
            os.environ[ENV_DB] = db
            os.environ["COLUMNS"] = str(columns)
            if stdin is not None:
                sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                    terminal_width(columns):
                try:
                    # standalone_mode=False: click returns an Exit's code instead of exiting
                    rv = cli_app(args=argv, prog_name="alphatrace", standalone_mode=False)
                    code = rv if isinstance(rv, int) else 0
                except typer.Exit as e:
                    code = e.exit_code
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else 1
                except Exception as e:  # click usage errors and the like: what the CLI prints
                    import click

                    if isinstance(e, click.ClickException):
                        e.show(file=err)
                        code = e.exit_code
                    else:
                        raise
        finally:
            sys.stdin = old_stdin
            os.chdir(old_cwd)
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return code, out.getvalue(), err.getvalue()


@router.post("/v1/admin/cli", include_in_schema=False)
async def cli(call: CliCall, request: Request) -> dict[str, Any]:
    token: str | None = request.app.state.local_token
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    if token is None or scheme.lower() != "bearer" or not hmac.compare_digest(given, token):
        raise HTTPException(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    refused = _refused(discovery.command_of(call.argv), request)
    if refused is not None:
        return refused
    stdin = base64.b64decode(call.stdin_b64) if call.stdin_b64 is not None else None
    from alphatrace.cli.remote import command_words

    writes = scope_of(command_words(call.argv), call.argv) != READ
    code, out, err = await _run(request, call.argv, call.cwd, call.columns, stdin, writes)
    return {"exit_code": code, "stdout": out, "stderr": err}


async def _run(request: Request, argv: list[str], cwd: str, columns: int,
               stdin: bytes | None, writes: bool) -> tuple[int, str, str]:
    """Run the command (one that may write: never beside a live pipeline pass,
    `Writer.derived`); after one that may have written, the writer takes a round
    (`Writer.sync`), so its after-round hooks (the live pipeline, the sizing state) see what
    the command wrote on its own connection, as they see every ingest, before we answer."""
    writer: Writer = request.app.state.writer
    db = str(request.app.state.db_abs)

    def command() -> tuple[int, str, str]:
        if not writes:
            return run_command(argv, cwd, columns, stdin, db)
        with writer.derived():
            return run_command(argv, cwd, columns, stdin, db)

    res = await run_in_threadpool(command)
    # `keys create|revoke` may have changed the keys: the server's ring follows at once.
    with writer.store.cursor() as cur:
        request.app.state.keyring.replace(active_keys(cur))
    if writes:
        await asyncio.wrap_future(writer.sync())
    return res


def _refused(command: str | None, request: Request) -> dict[str, Any] | None:
    if command in discovery.NOT_BESIDE_A_SERVER:
        return {"exit_code": 2, "stdout": "",
                "stderr": f"error: `alphatrace {command}` cannot run while a server holds the store "
                          f"({request.app.state.writer.store.path}); stop the server first\n"}
    return None


@router.post("/v1/cli", include_in_schema=False)
async def cli_with_key(request: Request) -> dict[str, Any]:
    """A command from `alphatrace --url URL --key KEY`: multipart, `call` = {argv, columns,
    stdin_b64}, its files as `file` parts; answers {exit_code, stdout, stderr, files}."""
    from alphatrace.cli.remote import command_words

    who = bearer_principal(request.app.state.keyring, request.headers.get("authorization"))
    if who is None:
        raise await scratch.refuse(request, unauthorized())
    received = await scratch.receive(request)
    try:
        call = received.call
        argv = call.get("argv")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise HTTPException(400, "`argv` must be a list of strings")
        words = command_words(argv)
        need = scope_of(words, argv)
        if not allows(who, need):
            raise HTTPException(403, f"`alphatrace {' '.join(words)}` needs a key with scope "
                                     f"{need} or admin; key {who.name!r} has scope {who.scope}")
        refused = _refused(discovery.command_of(argv), request)
        if refused is not None:
            return {**refused, "files": {}}
        why = unsafe_argument(argv) or _tails(words, argv)
        if why is not None:
            raise HTTPException(400, why)
        stdin = call.get("stdin_b64")
        code, out, err = await _run(request, argv, str(received.root),
                                    int(call.get("columns") or 80),
                                    base64.b64decode(stdin) if isinstance(stdin, str) else None,
                                    need != READ)
        return {"exit_code": code, "stdout": out, "stderr": err, "files": received.changed()}
    finally:
        received.close()
