"""A store written before migration 0009 (v1 hashes, a lifecycle table): it still verifies, and
its first write re-chains it under v2 with a `rechain` record that keeps what the v1 chain was.

The fixture data/legacy_v1_store.json holds the governance tables exactly as the code before
0009 wrote them (three evaluations and a revive over the ledger built below)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

import alphatrace as at
from alphatrace.governance import anchor, signing
from alphatrace.store.migrations import applied, available
from tests.policies import SEED
from tests.rows import insert, series

from .chain import hand_hash, rows

FIXTURE = json.loads((Path(__file__).parent / "data" / "legacy_v1_store.json").read_text())
V1_HEAD = FIXTURE["decision_head"]["rows"][0][2]


def _legacy(path: Path, *tamper: str) -> Path:
    """The store as the old code left it: migrations up to 0007, the v1 rows, the ledger."""
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    applied(con)
    for version, name, sql in available():
        if name in FIXTURE["migrations"]:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                        [version, name])
    for table in ("decisions", "lifecycle", "governance_policies", "decision_head"):
        t = FIXTURE[table]
        marks = ", ".join("?" for _ in t["columns"])
        con.executemany(f"INSERT INTO {table} ({', '.join(t['columns'])}) VALUES ({marks})",
                        t["rows"])
    insert(con, series("A", [-30.0] * 5, strategy="S") + series("B", [10.0] * 20, strategy="T")
           + series("C", [1.0] * 3, strategy="T", start_hour=30))
    for q in tamper:
        con.execute(q)
    con.close()
    return path


def _verify(path: Path) -> dict[str, Any]:
    with at.connect(path, read_only=True) as d:
        return d.audit_verify()


def test_a_legacy_store_verifies_before_and_after_migration(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "old.duckdb")
    out = _verify(path)  # read-only: not migrated
    assert (out["ok"], out["records"], out["legacy_records"], out["head"]) == (True, 15, 15, V1_HEAD)
    with at.connect(path) as d:  # migrated to 0009, nothing written yet
        assert d.con.execute(
            "SELECT count(*) FROM schema_migrations WHERE version = 9").fetchall() == [(1,)]
        assert d.con.execute("SELECT state FROM lifecycle WHERE subject = 'S'").fetchall() \
            == [("killed",)]
    out = _verify(path)
    assert (out["ok"], out["legacy_records"]) == (True, 15)


def _new_runs(d: at.Database) -> None:
    """A run of A after the fixture's: A's kill rule fires on a new window and S is killed
    again (it was revived), so the next evaluation records A and S (seq 17, 18)."""
    insert(d.con, series("A", [-30.0], strategy="S", start_hour=40, prefix="A2-"))


def test_the_first_write_re_chains_and_records_it(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "old.duckdb")
    with at.connect(path) as d:
        assert d.gates.evaluate(SEED, catch_up=False) == []  # nothing changed: only the rechain record is written
        assert len(rows(d.con)) == 16
        _new_runs(d)
        recs = d.gates.evaluate(SEED, catch_up=False)
        got = rows(d.con)
    assert [(r["seq"], r["subject"], r["action"]) for r in recs] == [(17, "A", "kill"),
                                                                     (18, "S", "kill")]
    rechain = got[15]
    assert (rechain["seq"], rechain["scope"], rechain["action"], rechain["eval_id"]) \
        == (16, "chain", "rechain", 5)
    assert rechain["actor"]
    assert json.loads(rechain["metrics"]) == {"legacy_records": 15, "legacy_head": V1_HEAD,
                                              "legacy_problems": []}
    # every record re-hashed by hand under v2, content, seq and created_at as the old code wrote
    prev = "0" * 64
    for r in got:
        assert (r["hash_version"], r["prev_hash"], r["hash"]) == (2, prev, hand_hash(r))
        prev = r["hash"]
    cols = FIXTURE["decisions"]["columns"]
    for old, new in zip(FIXTURE["decisions"]["rows"], got[:15], strict=True):
        o = dict(zip(cols, old, strict=True))
        for k in ("subject", "action", "state", "metrics", "run_ids", "reason", "seq"):
            assert new[k] == o[k], k
        assert new["created_at"].isoformat() == o["created_at"]
    out = _verify(path)
    assert (out["ok"], out["records"], out["legacy_records"]) == (True, 18, 0)


def test_tampering_before_the_upgrade_stays_reported(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "old.duckdb", "UPDATE decisions SET reason = 'x' WHERE seq = 6")
    with at.connect(path) as d:
        d.gates.evaluate(SEED, catch_up=False)
    out = _verify(path)
    assert [(p["seq"], p["kind"]) for p in out["problems"]] == [(6, "edited")]
    assert out["problems"][0]["detail"].startswith("found in the v1 chain when it was re-chained "
                                                   "(seq 16): content does not match its hash")


def test_signing_a_legacy_store_re_chains_first(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "old.duckdb")
    signing.generate(tmp_path / "k", tmp_path / "k.pub")
    with at.connect(path) as d:
        sh = anchor.sign_head(d.store, tmp_path / "k", tmp_path / "heads.jsonl")
    assert sh.seq == 16
    with at.connect(path, read_only=True) as d:
        from alphatrace.governance.anchor_check import Given

        out = d.audit_verify(anchors=Given(pubkey=signing.load_public(tmp_path / "k.pub"),
                                           heads_path=tmp_path / "heads.jsonl"))
    assert (out["ok"], out["anchored_to_seq"]) == (True, 16)


def test_a_v1_record_after_the_upgrade_is_a_rewrite(tmp_path: Path) -> None:
    path = _legacy(tmp_path / "old.duckdb")
    with at.connect(path) as d:
        _new_runs(d)
        d.gates.evaluate(SEED, catch_up=False)
    # the administrator turns the newest record back into a v1 one, with a correct v1 hash
    con = duckdb.connect(str(path))
    r = rows(con)[-1]
    r["hash_version"] = None
    body = {k: v for k, v in r.items()
            if k not in ("hash", "seq", "created_at", "actor", "hash_version")}
    for k in ("fired", "metrics", "run_ids"):
        body[k] = json.loads(body[k])
    body["as_of"] = body["as_of"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    import hashlib

    h = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False).encode()).hexdigest()
    con.execute("UPDATE decisions SET hash_version = NULL, hash = ? WHERE seq = 18", [h])
    con.execute("UPDATE decision_head SET hash = ?", [h])
    con.close()
    assert [(p["seq"], p["kind"]) for p in _verify(path)["problems"]] == [(18, "rewritten")]


@pytest.mark.parametrize("scope", ["agent", "strategy"])
def test_revive_records_who(tmp_path: Path, scope: str) -> None:
    path = _legacy(tmp_path / "old.duckdb")
    with at.connect(path) as d:
        d.gates.evaluate(SEED, catch_up=False)
        name = "A" if scope == "agent" else "S"
        if scope == "agent":
            d.revive("S", "strategy first", actor="bob")
        rec = d.revive(name, "reviewed", actor="carol")
    assert (rec["action"], rec["actor"], rec["reason"]) == ("revive", "carol", "reviewed")
    assert _verify(path)["ok"] is True
