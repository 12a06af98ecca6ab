"""Signed heads of the decision log: Ed25519 keys, the signed statement, the heads file.

A signed head says "the chain had `seq` records and ended in `hash`", signed with a key kept
outside the store. Like a Certificate Transparency signed tree head, it lets anyone holding the
public key check later that the log still reaches that head: a store administrator can recompute
every hash, but cannot sign. The statement is the canonical JSON of
`{"chain", "hash", "key_id", "seq", "signed_at"}`; Ed25519 signatures are deterministic, so the
same head signed at the same time gives the same bytes.

The heads file is JSON Lines, one signed head per line, only ever appended to; keep it (or a
copy) where the store's administrator cannot rewrite it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from alphatrace.errors import InputError
from alphatrace.governance.canon import canonical_json, ts_text
from alphatrace.store.connection import has_table

CHAIN = "alphatrace.decisions/v2"
ENV_KEY = "ALPHATRACE_SIGNING_KEY"
ENV_HEADS = "ALPHATRACE_HEADS_FILE"
_FIELDS = ("seq", "hash", "signed_at", "key_id", "signature")


@dataclass(frozen=True)
class SignedHead:
    seq: int
    hash: str
    signed_at: str  # ts_text
    key_id: str
    signature: str  # base64

    def statement(self) -> bytes:
        return canonical_json({"chain": CHAIN, "hash": self.hash, "key_id": self.key_id,
                               "seq": self.seq, "signed_at": self.signed_at}).encode()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def key_id(pub: Ed25519PublicKey) -> str:
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate(private_path: Path, public_path: Path) -> str:
    """A new key pair: the private key as PKCS#8 PEM created with mode 0600 (never
    overwritten), the public key as PEM. Returns the key id."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(f"{private_path} already exists: not overwriting a key") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub = key.public_key()
    public_path.write_bytes(pub.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_id(pub)


def load_private(path: Path) -> Ed25519PrivateKey:
    """The signing key; refused when others may read it (as ssh does)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"signing key {path}: {e.strerror}") from None
    if mode & 0o077:
        raise InputError(f"signing key {path} is readable by others (mode {mode & 0o777:o}): "
                         f"chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise InputError(f"signing key {path}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"signing key {path}: not an Ed25519 key")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"public key {path}: {e.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise InputError(f"public key {path}: not a PEM public key ({e})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"public key {path}: not an Ed25519 key")
    return key


def sign(key: Ed25519PrivateKey, seq: int, hash_: str, at: dt.datetime) -> SignedHead:
    unsigned = SignedHead(seq, hash_, str(ts_text(at)), key_id(key.public_key()), "")
    sig = base64.b64encode(key.sign(unsigned.statement())).decode()
    return SignedHead(seq, hash_, unsigned.signed_at, unsigned.key_id, sig)


def check(pub: Ed25519PublicKey, sh: SignedHead) -> str | None:
    """None when `sh` is signed by `pub`; else why not."""
    if sh.key_id != key_id(pub):
        return f"signed by key {sh.key_id}, not by the given public key {key_id(pub)}"
    try:
        pub.verify(base64.b64decode(sh.signature, validate=True), sh.statement())
    except (InvalidSignature, ValueError):
        return "the signature does not match the head: forged or altered"
    return None


def stored(con: duckdb.DuckDBPyConnection) -> list[SignedHead]:
    """The signed heads kept in the store, oldest first."""
    if not has_table(con, "signed_heads"):
        return []
    rows = con.execute("SELECT seq, hash, signed_at, key_id, signature FROM signed_heads "
                       "ORDER BY seq, signed_at, signature").fetchall()
    return [SignedHead(int(s), str(h), str(ts_text(t)), str(k), str(g)) for s, h, t, k, g in rows]


def insert(con: duckdb.DuckDBPyConnection, sh: SignedHead) -> None:
    at = dt.datetime.strptime(sh.signed_at, "%Y-%m-%dT%H:%M:%S.%fZ")
    con.execute("INSERT INTO signed_heads VALUES (?, ?, ?, ?, ?)",
                [sh.seq, sh.hash, at, sh.key_id, sh.signature])


def append_line(path: Path, sh: SignedHead) -> None:
    """One line appended (O_APPEND) and flushed to disk before returning."""
    line = (canonical_json(sh.to_json()) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: Path) -> list[tuple[int, SignedHead]]:
    """(line number, head) for every line of a heads file; a malformed line is an error that
    names it (a heads file is only ever written by `append_line`)."""
    try:
        # bytes, then text: read_text would turn a stray "\r" into a line break of its own
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError as e:
        raise InputError(f"heads file {path}: {e.strerror}") from None
    out = []
    # split on "\n" only: JSON text may hold U+2028 and the like, which splitlines() splits on
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            if not isinstance(d, dict) or set(d) != set(_FIELDS):
                raise ValueError(f"expected the fields {', '.join(_FIELDS)}")
            if not isinstance(d["seq"], int) or isinstance(d["seq"], bool) or d["seq"] < 1:
                raise ValueError("seq must be a positive integer")
            for f in _FIELDS[1:]:
                if not isinstance(d[f], str):
                    raise ValueError(f"{f} must be a string")
        except ValueError as e:
            raise InputError(f"{path}:{n}: not a signed head: {e}") from None
        out.append((n, SignedHead(d["seq"], d["hash"], d["signed_at"], d["key_id"],
                                  d["signature"])))
    return out
