"""The attacks of issue #13 (items 9-12), each done as the store's administrator would do it:
SQL on the DuckDB file, hashes recomputed, head moved. Each must get its exact verdict, with and
without a head recorded outside the store."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import alphatrace as at
from alphatrace.errors import GovernanceError, InputError
from alphatrace.governance import anchor, signing
from alphatrace.governance.anchor_check import Given
from tests.policies import SEED
from tests.rows import insert, series

from .chain import rows, tamper


@dataclass
class Signed:
    """A store whose every write was signed, its key pair and its heads file."""

    db: Path
    key: Path
    pub: Path
    heads: Path

    def verify(self, recompute: bool = True, **given: Any) -> list[tuple[int | None, str]]:
        return [(p["seq"], p["kind"]) for p in self.result(recompute, **given)["problems"]]

    def result(self, recompute: bool = True, **given: Any) -> dict[str, Any]:
        with at.connect(self.db, read_only=True) as d:
            return d.audit_verify(recompute=recompute, anchors=Given(**given))

    def anchored(self) -> dict[str, Any]:
        """Everything recorded outside the store: public key and heads file."""
        return {"pubkey": signing.load_public(self.pub), "heads_path": self.heads}


def _write(d: at.Database, s: Signed, fn: Any) -> None:
    fn()
    anchor.sign_head(d.store, s.key, s.heads)


@pytest.fixture
def signed(tmp_path: Path) -> Iterator[Signed]:
    """The test_audit fixture (3 evaluations and a revive: seq 1-4, 5-6, 7, 8-9), the head
    signed and exported after each write."""
    s = Signed(tmp_path / "s.duckdb", tmp_path / "k.pem", tmp_path / "k.pem.pub",
               tmp_path / "heads.jsonl")
    signing.generate(s.key, s.pub)
    with at.connect(s.db) as d:
        insert(d.con, series("A", [-30.0] * 5, strategy="S") + series("B", [10.0] * 20, strategy="T"))
        _write(d, s, lambda: d.gates.evaluate(SEED, catch_up=False))
        insert(d.con, series("C", [1.0] * 3, strategy="T", start_hour=30))
        _write(d, s, lambda: d.gates.evaluate(SEED, catch_up=False))
        _write(d, s, lambda: d.revive("S", "risk limits tightened", actor="alice"))
        insert(d.con, series("A", [-30.0], strategy="S", start_hour=40, prefix="A2-"))
        _write(d, s, lambda: d.gates.evaluate(SEED, catch_up=False))
    yield s


def test_an_untouched_signed_log_verifies(signed: Signed) -> None:
    out = signed.result(**signed.anchored(), expect_seq=9)
    assert out["ok"] and out["problems"] == []
    assert out["anchored_to_seq"] == 9
    assert out["anchors"] == 4 + 4 + 1  # in the store, in the file, the expectation
    heads = [json.loads(line) for line in signed.heads.read_text().splitlines()]
    assert [h["seq"] for h in heads] == [4, 6, 7, 9]
    assert heads[-1]["hash"] == rows_of(signed)[-1]["hash"]


def rows_of(s: Signed) -> list[dict[str, Any]]:
    import duckdb

    con = duckdb.connect(str(s.db), read_only=True)
    try:
        return rows(con)
    finally:
        con.close()


# -- attack 1: an action changed from kill to promote, hashes recomputed, head updated ----------
KILL_TO_PROMOTE = ("UPDATE decisions SET action = 'promote', rule = 'promote_consistent', "
                   "fired = '[\"promote_consistent\"]', state = 'promoted' WHERE seq = 1")


def test_rewritten_kill_is_a_rewrite_even_without_an_anchor(signed: Signed) -> None:
    tamper(signed.db, KILL_TO_PROMOTE, "DELETE FROM signed_heads")
    # A's metrics (last_5_runs_pnl -150) still say kill under the stored policy
    assert signed.verify(recompute=False) == [(1, "rewritten")]
    assert signed.verify() == [(1, "rewritten")]
    detail = signed.result()["problems"][0]["detail"]
    assert "action 'promote'" in detail and "action 'kill'" in detail


def test_rewritten_kill_against_the_heads_file(signed: Signed) -> None:
    tamper(signed.db, KILL_TO_PROMOTE, "DELETE FROM signed_heads")
    assert signed.verify(**signed.anchored()) == [(1, "rewritten"), (4, "rewritten")]
    assert signed.verify(heads_path=signed.heads) == [(1, "rewritten"), (4, "rewritten")]


def test_rewritten_kill_against_the_signed_heads_in_the_store(signed: Signed) -> None:
    tamper(signed.db, KILL_TO_PROMOTE)
    assert signed.verify(pubkey=signing.load_public(signed.pub)) == [(1, "rewritten"),
                                                                     (4, "rewritten")]


def test_a_consistent_rewrite_is_a_rewrite_only_with_an_anchor(signed: Signed) -> None:
    # metrics, rules and action all rewritten to agree: nothing in the record betrays it, and
    # re-running the gates on the ledger gives the old decision
    promote = ('UPDATE decisions SET action = \'promote\', rule = \'promote_consistent\', '
               'fired = \'["promote_consistent"]\', state = \'promoted\', metrics = '
               '\'{"error_rate":0.0,"last_5_runs_pnl":150.0,"median_latency_ms":100.0,'
               '"rolling_pnl_bps":160.0,"runs":5}\' WHERE seq = 1')
    tamper(signed.db, promote, "DELETE FROM signed_heads")
    assert [k for _, k in signed.verify()] == ["inputs_changed"]  # all the chain can say
    got = signed.result(heads_path=signed.heads)["problems"]
    assert [(p["seq"], p["kind"]) for p in got] == [(1, "rewritten"), (4, "rewritten")]
    assert "no longer follows from its inputs: " in got[0]["detail"]
    assert "action: promote → kill" in got[0]["detail"]


# -- attack 2: the newest evaluation deleted, head fixed -----------------------------------------
DELETE_NEWEST = ("DELETE FROM decisions WHERE eval_id = (SELECT max(eval_id) FROM decisions)",
                 "DELETE FROM signed_heads WHERE seq > 7")


def test_deleted_newest_evaluation_is_invisible_without_an_anchor(signed: Signed) -> None:
    tamper(signed.db, *DELETE_NEWEST)
    assert signed.verify() == []  # documented: only an anchor can tell
    with at.connect(signed.db, read_only=True) as d:
        from alphatrace.governance.journal import lifecycle_states

        assert lifecycle_states(d.con)[("strategy", "S")] == "candidate"  # killed at 9


def test_deleted_newest_evaluation_is_truncation(signed: Signed) -> None:
    tamper(signed.db, *DELETE_NEWEST)
    want = [(s, "truncated") for s in range(8, 10)]
    assert signed.verify(**signed.anchored()) == want
    assert signed.verify(expect_seq=9) == want
    detail = signed.result(expect_seq=9)["problems"][0]["detail"]
    assert detail == ("record 8 is gone: the head given by --expect-seq covers the chain up to "
                      "seq 9, which now ends at seq 7")


def test_deleted_and_re_run_evaluation_is_a_fork(signed: Signed) -> None:
    tamper(signed.db, *DELETE_NEWEST)
    with at.connect(signed.db) as d:  # the normal path signs the re-run
        _write(d, signed, lambda: d.gates.evaluate(SEED, catch_up=False))
    assert signed.verify(**signed.anchored()) == [(9, "fork")]
    detail = signed.result(**signed.anchored())["problems"][0]["detail"]
    assert "a record in seq 8..9 was rewritten or replaced" in detail


# -- attack 3: a forged revive appended ----------------------------------------------------------
def _append_revive(path: Path, subject: str, scope: str) -> None:
    tamper(path, f"INSERT INTO decisions SELECT 10, 5, '{subject}', '{scope}', 'revive', NULL, "
           "'[]', false, 'candidate', NULL, 'ok', NULL, TIMESTAMP '2030-01-01', '{}', '[]', '', "
           "'', TIMESTAMP '2030-01-01', 'mallory', 2")


def test_forged_revive_of_a_killed_subject_is_unsigned(signed: Signed) -> None:
    _append_revive(signed.db, "S", "strategy")
    assert signed.verify(**signed.anchored()) == [(10, "unsigned")]
    assert signed.verify() == [(10, "unsigned")]  # the heads signed in the store, unchecked
    tamper(signed.db, "DELETE FROM signed_heads")
    assert signed.verify() == []  # a well-formed revive: only a signature can tell
    assert signed.verify(heads_path=signed.heads) == [(10, "unsigned")]
    detail = signed.result(heads_path=signed.heads)["problems"][0]["detail"]
    assert detail == ("revive of strategy 'S' by mallory was appended after the newest signed "
                      "head (seq 9): no signature covers it")


def test_forged_revive_of_a_subject_that_was_not_killed_is_forged(signed: Signed) -> None:
    _append_revive(signed.db, "B", "agent")  # B is promoted
    assert signed.verify() == [(10, "forged"), (10, "unsigned")]


# -- attack 4: seq and created_at are hashed (test_audit covers edits without recomputing) -------
def test_re_dated_record_with_recomputed_hashes_is_a_rewrite(signed: Signed) -> None:
    tamper(signed.db, "UPDATE decisions SET created_at = created_at - INTERVAL 1 DAY "
           "WHERE seq = 7")
    assert signed.verify(**signed.anchored()) == [(7, "rewritten")]


# -- the anchors themselves ----------------------------------------------------------------------
def test_a_forged_signed_head_is_named(signed: Signed) -> None:
    tamper(signed.db, "UPDATE signed_heads SET signature = (SELECT signature FROM signed_heads "
           "WHERE seq = 4) WHERE seq = 6", recompute=False)
    assert signed.verify(pubkey=signing.load_public(signed.pub)) == [(6, "bad_signature")]


def test_a_signature_by_another_key_is_named(signed: Signed, tmp_path: Path) -> None:
    signing.generate(tmp_path / "other.pem", tmp_path / "other.pub")
    got = signed.result(pubkey=signing.load_public(tmp_path / "other.pub"))["problems"]
    assert [(p["seq"], p["kind"]) for p in got] == [(s, "bad_signature") for s in (4, 6, 7, 9)]


def test_a_truncated_heads_file_is_named(signed: Signed) -> None:
    lines = signed.heads.read_text().splitlines(keepends=True)
    signed.heads.write_text("".join(lines[:2]))
    assert signed.verify(**signed.anchored()) == [(7, "unexported"), (9, "unexported")]


def test_a_malformed_heads_file_names_the_line(signed: Signed) -> None:
    with signed.heads.open("a") as f:
        f.write('{"seq": "x"}\n')
    with pytest.raises(InputError, match=r"heads.jsonl:5: not a signed head"):
        signed.verify(heads_path=signed.heads)


def test_expect_head(signed: Signed) -> None:
    h9 = rows_of(signed)[8]["hash"]
    assert signed.verify(expect_head=h9, expect_seq=9) == []
    assert signed.verify(expect_head="0" * 64) == [(None, "head_missing")]


def test_signing_refuses_a_chain_that_does_not_follow_from_the_last_signed_head(
        signed: Signed) -> None:
    tamper(signed.db, KILL_TO_PROMOTE)
    with at.connect(signed.db) as d, pytest.raises(GovernanceError, match="no longer contains"):
        anchor.sign_head(d.store, signed.key, signed.heads)
    tamper(signed.db, "DELETE FROM signed_heads")  # nothing signed left: the whole chain
    with at.connect(signed.db) as d, pytest.raises(GovernanceError, match="rewritten"):
        anchor.sign_head(d.store, signed.key, signed.heads)


def test_signing_twice_adds_nothing(signed: Signed) -> None:
    before = signed.heads.read_text()
    with at.connect(signed.db) as d:
        sh = anchor.sign_head(d.store, signed.key, signed.heads)
        assert d.con.execute("SELECT count(*) FROM signed_heads").fetchall() == [(4,)]
    assert sh.seq == 9 and signed.heads.read_text() == before


def test_signatures_are_deterministic(tmp_path: Path) -> None:
    signing.generate(tmp_path / "k", tmp_path / "k.pub")
    key = signing.load_private(tmp_path / "k")
    at_ = dt.datetime(2025, 1, 2, 3, 4, 5, 6)
    a, b = signing.sign(key, 3, "ab" * 32, at_), signing.sign(key, 3, "ab" * 32, at_)
    assert a == b and a.signed_at == "2025-01-02T03:04:05.000006Z"
    assert signing.check(signing.load_public(tmp_path / "k.pub"), a) is None
    assert signing.check(signing.load_public(tmp_path / "k.pub"),
                         signing.SignedHead(4, a.hash, a.signed_at, a.key_id, a.signature)) \
        == "the signature does not match the head: forged or altered"


def test_key_files(tmp_path: Path) -> None:
    kid = signing.generate(tmp_path / "k", tmp_path / "k.pub")
    assert os.stat(tmp_path / "k").st_mode & 0o777 == 0o600
    assert kid == signing.key_id(signing.load_public(tmp_path / "k.pub"))
    with pytest.raises(InputError, match="already exists"):
        signing.generate(tmp_path / "k", tmp_path / "k2.pub")
    os.chmod(tmp_path / "k", 0o644)
    with pytest.raises(InputError, match="readable by others"):
        signing.load_private(tmp_path / "k")


_HEAD = st.builds(signing.SignedHead, seq=st.integers(1, 10**12),
                  hash=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
                  signed_at=st.just("2025-01-01T00:00:00.000000Z"),
                  key_id=st.text(min_size=1, max_size=16), signature=st.text(max_size=90))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(heads=st.lists(_HEAD, max_size=6), junk=st.one_of(st.none(), st.text(max_size=30)),
       at_line=st.integers(0, 6))
@example(heads=[], junk="\r0", at_line=0)  # a lone CR is no line break in a heads file
def test_heads_file_round_trip_and_bad_lines(tmp_path: Path, heads: list[signing.SignedHead],
                                             junk: str | None, at_line: int) -> None:
    path = tmp_path / "h.jsonl"
    path.unlink(missing_ok=True)
    for sh in heads:
        signing.append_line(path, sh)
    if not heads:
        path.write_text("")
    assert [sh for _, sh in signing.read_file(path)] == heads
    if junk is None or not junk.strip() or "\n" in junk:
        return
    lines = path.read_text().split("\n")[:-1] if heads else []
    k = min(at_line, len(lines))
    lines.insert(k, junk)
    path.write_text("\n".join(lines) + "\n")
    try:
        got = signing.read_file(path)
    except InputError as e:
        assert f"h.jsonl:{k + 1}: not a signed head" in str(e)
    else:  # only a line that is itself a well-formed head parses
        assert len(got) == len(heads) + 1
