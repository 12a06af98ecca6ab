"""One request to a remote server, with the caller's files, and its failures in words.

Standard library only (the client runs where alphatrace is merely installed). The body is
`multipart/form-data`: a `call` part (the JSON document) and one part per uploaded file,
streamed from disk, so a large file is never held in memory whole.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alphatrace.errors import AlphatraceError

ENV_URL = "ALPHATRACE_URL"
ENV_KEY = "ALPHATRACE_API_KEY"
CHUNK = 1024 * 1024


class RemoteError(AlphatraceError):
    """The server cannot be reached, or refused the request (no key, a key without the scope
    the call needs, a malformed call)."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _quote(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


def multipart(call: dict[str, Any], files: Mapping[str, Path]) -> tuple[str, int, Iterator[bytes]]:
    """(content type, length, body chunks) of the call and its files."""
    boundary = "alphatrace-" + secrets.token_hex(16)
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="call"\r\n'
            "Content-Type: application/json\r\n\r\n").encode() + json.dumps(call).encode() + b"\r\n"
    parts: list[tuple[bytes, Path]] = []
    for name, path in files.items():
        parts.append(((f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                       f'filename="{_quote(name)}"\r\n'
                       "Content-Type: application/octet-stream\r\n\r\n").encode(), path))
    tail = f"--{boundary}--\r\n".encode()
    try:
        length = len(head) + len(tail) + sum(len(h) + p.stat().st_size + 2 for h, p in parts)
    except OSError as e:
        raise RemoteError(f"{e.filename}: cannot read: {e.strerror}") from None

    def chunks() -> Iterator[bytes]:
        yield head
        for h, p in parts:
            yield h
            with open(p, "rb") as fh:
                while block := fh.read(CHUNK):
                    yield block
            yield b"\r\n"
        yield tail

    return f"multipart/form-data; boundary={boundary}", length, chunks()


def post(url: str, path: str, key: str | None, call: dict[str, Any],
         files: Mapping[str, Path] | None = None, timeout: float | None = None) -> Answer:
    """POST the call (and files) to `url` + `path` with the key; the answer of a 2xx, else a
    RemoteError (unreachable server, 401, 403 with the scope needed) or, for an answer that
    carries a typed error, that error."""
    from alphatrace.client import wire

    ctype, length, body = multipart(call, files or {})
    headers = {"Content-Type": ctype, "Content-Length": str(length)}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url.rstrip("/") + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return Answer(res.status, dict(res.headers.items()), res.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = {"detail": raw.decode(errors="replace").strip()}
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            raise wire.error_of(doc["error"]) from None
        detail = doc.get("detail") if isinstance(doc, dict) else None
        raise RemoteError(refusal(url, e.code, str(detail or e.reason), key)) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise RemoteError(f"cannot reach the alphatrace server at {url}: {reason}") from None


def refusal(url: str, status: int, detail: str, key: str | None) -> str:
    """What a refused request means, in words."""
    if status == 401:
        if not key:
            return (f"the server at {url} needs an API key: pass --key KEY or set "
                    f"{ENV_KEY} (keys come from `alphatrace keys create` on the server)")
        return f"the server at {url} does not know this key (401): unknown or revoked"
    if status == 403:
        return f"the server at {url} refused the key (403): {detail}"
    return f"the server at {url} answered {status}: {detail}"
