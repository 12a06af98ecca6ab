"""API keys: created once, shown once, stored as a sha256 hash.

A key is `atk_<prefix>_<secret>` with 256 random bits of secret; the store keeps only
sha256(key) and the short prefix (to tell keys apart in `alphatrace keys list`). Scopes:
`ingest` (writes), `read` (reads), `admin` (both, plus key management).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

import duckdb

from alphatrace.errors import InputError, NotFoundError
from alphatrace.store import Store
from alphatrace.store.connection import one

SCOPES = ("ingest", "read", "admin")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """(key, prefix): the prefix is public, the rest is the secret."""
    prefix = secrets.token_hex(4)
    return f"atk_{prefix}_{secrets.token_urlsafe(32)}", f"atk_{prefix}"


def check_scope(scope: str) -> str:
    s = scope.strip().lower()
    if s not in SCOPES:
        raise InputError(f"--scope {scope!r} is not one of: {', '.join(SCOPES)}")
    return s


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(
            f"key name {name!r} must be 1-64 characters: letters, digits and _ . : @ - "
            "(starting with a letter or digit)"
        )
    return name


def create_key(store: Store, name: str, scope: str) -> dict[str, Any]:
    """Create a key; the returned dict is the only place the key ever appears in clear."""
    name, scope = check_name(name), check_scope(scope)
    exists = one(store.con, "SELECT count(*) FROM api_keys WHERE name = ?", [name])[0]
    if exists:
        raise InputError(f"a key named {name!r} exists already (names are never reused)")
    key, prefix = new_key()
    try:
        store.con.execute(
            "INSERT INTO api_keys (name, scope, key_hash, prefix, created_at) "
            "VALUES (?, ?, ?, ?, current_timestamp::TIMESTAMP)",
            [name, scope, hash_key(key), prefix],
        )
    except duckdb.ConstraintException:
        raise InputError(f"a key named {name!r} exists already (names are never reused)") from None
    return {"name": name, "scope": scope, "key": key}


def list_keys(store: Store | duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    con = store.con if isinstance(store, Store) else store
    cur = con.execute(
        "SELECT name, scope, prefix, created_at, revoked, revoked_at FROM api_keys "
        "ORDER BY created_at, name"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def revoke_key(store: Store, name: str) -> dict[str, Any]:
    rows = store.con.execute(
        "SELECT revoked FROM api_keys WHERE name = ?", [name]
    ).fetchall()
    if not rows:
        raise NotFoundError(f"no API key named {name!r}")
    if not rows[0][0]:
        store.con.execute(
            "UPDATE api_keys SET revoked = true, revoked_at = current_timestamp::TIMESTAMP "
            "WHERE name = ?",
            [name],
        )
    return {"name": name, "revoked": True}


def active_keys(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(key_hash, name, scope) of every key that is not revoked."""
    return [
        (str(h), str(n), str(s))
        for h, n, s in con.execute(
            "SELECT key_hash, name, scope FROM api_keys WHERE NOT revoked ORDER BY name"
        ).fetchall()
    ]
