"""The scratch folder a remote command or call runs in: its uploaded files in, its outputs out.

A remote caller's files arrive as a `multipart/form-data` body (`client/http.py`): a `call`
part (JSON; its `folders` are made first, the folders of the outputs it will want back) and
one part per file, named as `client/files.py` maps the caller's paths. They
are written under a fresh temporary folder, which is the working directory while the command
runs (one at a time: the working directory, environment and standard streams are the
process's own, hence `PROCESS`). Files the command created or changed there go back to the
caller, which writes only those it named as outputs. The folder is deleted afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

from alphatrace.client.files import safe_name

# Held while a command changes the process's working directory, environment or streams.
PROCESS = threading.Lock()
MAX_FILES = 10_000


@dataclass
class Scratch:
    """A received call: its JSON document and the folder holding its files."""

    call: dict[str, Any]
    root: Path
    digests: dict[str, str] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.digests

    def changed(self) -> dict[str, str]:
        """Files created or modified under the folder (name → base64 content)."""
        out: dict[str, str] = {}
        for p in sorted(self.root.rglob("*")):
            if not p.is_file():
                continue
            name = p.relative_to(self.root).as_posix()
            data = p.read_bytes()
            if self.digests.get(name) != hashlib.sha256(data).hexdigest():
                out[name] = base64.b64encode(data).decode()
        return out

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


async def receive(request: Request) -> Scratch:
    """The call and its files, written under a new scratch folder; 400 naming what is wrong."""
    try:
        form = await request.form(max_files=MAX_FILES)
    except Exception as e:  # multipart syntax, too many parts: the caller's mistake
        raise HTTPException(400, f"body is not a multipart call: {e}") from None
    raw = form.get("call")
    if raw is None:
        raise HTTPException(400, "body has no `call` part")
    try:
        call = json.loads(raw if isinstance(raw, str) else await raw.read())
    except ValueError as e:
        raise HTTPException(400, f"the `call` part is not JSON: {e}") from None
    if not isinstance(call, dict):
        raise HTTPException(400, "the `call` part must be a JSON object")
    root = Path(tempfile.mkdtemp(prefix="alphatrace-call-"))
    scratch = Scratch(call, root)
    try:
        folders = call.get("folders") or []
        for name in folders if isinstance(folders, list) else [folders]:
            if not isinstance(name, str) or not safe_name(name):
                raise HTTPException(400, f"folder name {name!r} is not a relative path inside "
                                         "the working directory")
            (root / name).mkdir(parents=True, exist_ok=True)
        for item in form.getlist("file"):
            if not isinstance(item, UploadFile) or item.filename is None:
                raise HTTPException(400, "a `file` part without a file name")
            name = item.filename
            if not safe_name(name):
                raise HTTPException(400, f"file name {name!r} is not a relative path inside "
                                         "the working directory")
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            h = hashlib.sha256()
            # the caller's own (a signing key among them): readable by this user only
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                while block := await item.read(1024 * 1024):
                    h.update(block)
                    out.write(block)
            scratch.digests[name] = h.hexdigest()
    except BaseException:
        scratch.close()
        raise
    finally:
        await form.close()
    return scratch


async def refuse(request: Request, error: HTTPException) -> HTTPException:
    """`error`, once the body is read and dropped: a client still sending its files would
    otherwise see a broken connection instead of the answer."""
    with contextlib.suppress(Exception):
        async for _ in request.stream():
            pass
    return error


@contextlib.contextmanager
def inside(folder: str | os.PathLike[str]) -> Iterator[None]:
    """The process works in `folder` for the block (holding PROCESS)."""
    with PROCESS:
        old = os.getcwd()
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(old)
