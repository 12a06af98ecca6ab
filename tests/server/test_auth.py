"""API keys: hashed at rest, 401 without or with a wrong key, 403 with the wrong scope."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from alphatrace.errors import InputError, NotFoundError
from alphatrace.server.auth import KeyRing
from alphatrace.server.keys import active_keys, create_key, list_keys, revoke_key
from alphatrace.store import Store
from tests.server.conftest import Server

WRITE = ("POST", "/v1/events")
READS = [("GET", "/v1/agents"), ("GET", "/v1/runs/nope")]


def call(client: httpx.Client, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    if method == "POST":
        return client.post(path, json=[], headers=headers)
    return client.get(path, headers=headers)


def test_healthz_is_open(client: httpx.Client) -> None:
    res = client.get("/healthz")
    assert res.status_code == 200 and res.json()["status"] == "ok"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer atk_00000000_not-a-real-key"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer"},
])
def test_no_or_wrong_key_is_401_without_detail(client: httpx.Client, headers: dict[str, str]) -> None:
    for method, path in [WRITE, *READS, ("GET", "/v1/keys")]:
        res = call(client, method, path, headers)
        assert res.status_code == 401, (method, path)
        assert res.json() == {"detail": "unauthorized"}
        assert res.headers["www-authenticate"] == "Bearer"


def test_scopes(client: httpx.Client, server: Server) -> None:
    ing, read, admin = server.auth("ingest"), server.auth("read"), server.auth("admin")
    assert call(client, *WRITE, ing).status_code == 200
    assert call(client, *WRITE, read).status_code == 403
    assert call(client, *WRITE, read).json() == {"detail": "forbidden"}
    assert call(client, *WRITE, admin).status_code == 200
    for m, p in READS:
        assert call(client, m, p, ing).status_code == 403
        assert call(client, m, p, read).status_code in (200, 404)
        assert call(client, m, p, admin).status_code in (200, 404)
    assert client.get("/v1/keys", headers=read).status_code == 403
    assert client.get("/v1/keys", headers=admin).status_code == 200


def test_admin_creates_and_revokes_keys_live(client: httpx.Client, server: Server) -> None:
    admin = server.auth("admin")
    made = client.post("/v1/keys", json={"name": "live-reader", "scope": "read"}, headers=admin)
    assert made.status_code == 201
    key = made.json()["key"]
    h = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/agents", headers=h).status_code == 200
    listed = client.get("/v1/keys", headers=admin).json()
    assert "live-reader" in {k["name"] for k in listed}
    assert all(key not in str(v) for k in listed for v in k.values())
    assert client.post("/v1/keys", json={"name": "live-reader", "scope": "read"},
                       headers=admin).status_code == 409
    assert client.delete("/v1/keys/live-reader", headers=admin).json() == {
        "name": "live-reader", "revoked": True}
    assert client.get("/v1/agents", headers=h).status_code == 401
    assert client.delete("/v1/keys/never-made", headers=admin).status_code == 404


def test_keys_are_stored_hashed(store: Store) -> None:
    made = create_key(store, "agent-1", "ingest")
    key = made["key"]
    assert made == {"name": "agent-1", "scope": "ingest", "key": key}
    rows = store.con.execute("SELECT * FROM api_keys").fetchall()
    assert len(rows) == 1
    assert all(key not in str(v) for v in rows[0])
    (h,) = store.con.execute("SELECT key_hash FROM api_keys").fetchall()[0]
    assert h == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(rows[0][3] + "_")  # the public prefix
    assert "key" not in list_keys(store)[0] and "key_hash" not in list_keys(store)[0]


def test_key_ring_verifies_by_hash(store: Store) -> None:
    a = create_key(store, "a", "ingest")["key"]
    b = create_key(store, "b", "admin")["key"]
    ring = KeyRing(active_keys(store.con))
    assert ring.verify(a) is not None and ring.verify(a).scope == "ingest"  # type: ignore[union-attr]
    assert ring.verify(b).name == "b"  # type: ignore[union-attr]
    assert ring.verify(a + "x") is None and ring.verify("") is None
    revoke_key(store, "a")
    ring.replace(active_keys(store.con))
    assert ring.verify(a) is None and ring.verify(b) is not None


def test_key_errors(store: Store) -> None:
    with pytest.raises(InputError, match="scope"):
        create_key(store, "x", "write")
    with pytest.raises(InputError, match="key name"):
        create_key(store, "has space", "read")
    create_key(store, "x", "read")
    with pytest.raises(InputError, match="exists already"):
        create_key(store, "x", "admin")
    with pytest.raises(NotFoundError):
        revoke_key(store, "y")
