"""Commands sent by the CLI to the server that holds their store (see `store/discovery.py`).

The command runs in this process, on a connection to the store the server already has open
(DuckDB shares one database instance per file within a process), with the caller's working
directory, terminal width and standard input, and its output goes back as text: the same
code as without a server, so the same output. One command at a time: the working directory,
the environment and the standard streams are the process's own.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import io
import os
import sys
import threading
from typing import Any

import typer
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from alphatrace.config import ENV_DB
from alphatrace.server.keys import active_keys
from alphatrace.store import discovery

router = APIRouter()
_LOCK = threading.Lock()


class CliCall(BaseModel):
    argv: list[str]
    cwd: str
    columns: int = 80
    stdin_b64: str | None = None


def run_command(argv: list[str], cwd: str, columns: int, stdin: bytes | None,
                db: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `alphatrace ARGV` run here on the server's store."""
    from alphatrace.cli.common import terminal_width
    from alphatrace.cli.main import app as cli_app

    out, err = io.StringIO(), io.StringIO()
    with _LOCK:
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
    command = discovery.command_of(call.argv)
    if command in discovery.NOT_BESIDE_A_SERVER:
        return {"exit_code": 2, "stdout": "",
                "stderr": f"error: `alphatrace {command}` cannot run while a server holds the store "
                          f"({request.app.state.writer.store.path}); stop the server first\n"}
    stdin = base64.b64decode(call.stdin_b64) if call.stdin_b64 is not None else None
    db = str(request.app.state.db_abs)
    code, out, err = await run_in_threadpool(run_command, call.argv, call.cwd, call.columns,
                                             stdin, db)
    # `keys create|revoke` may have changed the keys: the server's ring follows at once.
    with request.app.state.writer.store.con.cursor() as cur:
        request.app.state.keyring.replace(active_keys(cur))
    if request.app.state.pipeline is not None:
        # the command wrote on its own connection, not in a writer round: an empty round makes
        # the live pipeline look at what it wrote (an ingest, a market import) now
        request.app.state.writer.submit_call(lambda store: None)
    return {"exit_code": code, "stdout": out, "stderr": err}
