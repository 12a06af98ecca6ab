"""The chain against heads recorded elsewhere: signed heads (in the store and in a heads file)
and heads a user wrote down (`--expect-head`, `--expect-seq`).

Every hash of the chain can be recomputed by whoever can write the store, so on its own the
chain only shows careless tampering. A head recorded outside that person's reach pins the chain
up to it: if the chain still contains the head, every record up to it is exactly as it was
signed; if not, the verdict says how the chain departs from it (truncated, rewritten, forked).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from alphatrace.governance import signing
from alphatrace.governance.verdicts import Problem, problem


@dataclass(frozen=True)
class Given:
    """What the verifier was given besides the store."""

    pubkey: Ed25519PublicKey | None = None
    heads_path: Path | None = None
    expect_head: str | None = None
    expect_seq: int | None = None


@dataclass(frozen=True)
class Anchor:
    seq: int | None
    hash: str | None
    source: str
    signed: bool  # a signature covers it: records after the newest such are `unsigned`


def collect(con: duckdb.DuckDBPyConnection, given: Given) -> tuple[list[Anchor], list[Problem]]:
    """The anchors to check the chain against, and the problems of the anchors themselves
    (a signature that does not verify, a stored head missing from the heads file)."""
    anchors: list[Anchor] = []
    problems: list[Problem] = []
    checked = "" if given.pubkey is not None else ", signature not checked (no --pubkey)"

    def admit(sh: signing.SignedHead, source: str) -> bool:
        if given.pubkey is not None:
            why = signing.check(given.pubkey, sh)
            if why is not None:
                problems.append(problem(sh.seq, "bad_signature", f"{source}: {why}"))
                return False
        anchors.append(Anchor(sh.seq, sh.hash, source + checked, True))
        return True

    in_store = [sh for sh in signing.stored(con)
                if admit(sh, f"the head signed at {sh.signed_at} (in the store)")]
    if given.heads_path is not None:
        entries = signing.read_file(given.heads_path)
        for n, sh in entries:
            admit(sh, f"the head signed at {sh.signed_at} ({given.heads_path}:{n})")
        exported = {(sh.seq, sh.hash, sh.signature) for _, sh in entries}
        for sh in in_store:
            if (sh.seq, sh.hash, sh.signature) not in exported:
                problems.append(problem(sh.seq, "unexported", f"the head signed at "
                                        f"{sh.signed_at} (seq {sh.seq}) is in the store but not "
                                        f"in {given.heads_path}: the file was truncated or "
                                        "that export failed"))
    if given.expect_head is not None or given.expect_seq is not None:
        flags = " ".join(f for f, v in (("--expect-head", given.expect_head),
                                        ("--expect-seq", given.expect_seq)) if v is not None)
        anchors.append(Anchor(given.expect_seq, given.expect_head, f"the head given by {flags}",
                              False))
    return anchors, problems


def compare(recs: list[dict[str, Any]], anchors: list[Anchor]
            ) -> tuple[list[Problem], dict[int, str], int | None]:
    """Problems of the chain (records in seq order) against the anchors; the seqs a departed
    anchor shows were rewritten (seq → that anchor's source); the highest seq an intact anchor
    covers."""
    hashes = {str(r["hash"]) for r in recs}
    top = max((int(r["seq"]) for r in recs), default=0)
    good: list[Anchor] = []
    problems: list[Problem] = []
    departed: list[Anchor] = []
    truncated: set[int] = set()
    for a in anchors:
        # a hash is enough (it covers its seq); a seq alone must still be in the chain
        reached = (a.hash in hashes) if a.hash is not None else (a.seq or 0) <= top
        if reached:
            good.append(a)
        elif a.seq is None:
            problems.append(problem(None, "head_missing", f"{a.source}: hash {a.hash} is not in "
                                    "the chain: rewritten or truncated (add --expect-seq to tell)"))
        elif a.seq > top:
            for s in range(top + 1, a.seq + 1):
                if s not in truncated:
                    truncated.add(s)
                    problems.append(problem(s, "truncated", f"record {s} is gone: {a.source} "
                                            f"covers the chain up to seq {a.seq}, which now "
                                            f"ends at seq {top}"))
        else:
            departed.append(a)
    rewritten: dict[int, str] = {}
    departed.sort(key=lambda a: a.seq or 0)
    for i, m in enumerate(departed):
        assert m.seq is not None and m.hash is not None
        lo = max((g.seq for g in good if g.seq is not None and g.seq < m.seq), default=0)
        if i and (departed[i - 1].seq or 0) > lo:
            continue  # no intact head since the previous departed one: the same rewrite
        later = [g for g in good if g.seq is not None and g.seq >= m.seq]
        span = f"seq {lo + 1}..{m.seq}" if lo + 1 < m.seq else f"seq {m.seq}"
        if later:
            problems.append(problem(m.seq, "fork", f"{m.source} (seq {m.seq}, hash "
                                    f"{m.hash[:12]}) is no longer in the chain, but "
                                    f"{later[0].source} (seq {later[0].seq}) is: a record in "
                                    f"{span} was rewritten or replaced after the first was "
                                    "signed, and the new log was signed again"))
        else:
            problems.append(problem(m.seq, "rewritten", f"the chain no longer reaches {m.source} "
                                    f"(seq {m.seq}, hash {m.hash[:12]}) nor any later head: a "
                                    f"record in {span} was rewritten and the hashes after it "
                                    "recomputed"))
        for s in range(lo + 1, m.seq + 1):
            rewritten.setdefault(s, m.source)
    covered = max((g.seq if g.seq is not None else _seq_of(recs, g.hash) for g in good),
                  default=None)
    # records past every signed head (intact or not: one that departed did cover its records)
    signed = [g.seq if g.seq is not None else _seq_of(recs, g.hash) for g in anchors if g.signed]
    if signed:
        last = max(signed)
        for r in recs:
            if r["seq"] > last:
                who = f" by {r['actor']}" if r.get("actor") else ""
                problems.append(problem(r["seq"], "unsigned", f"{r['action']} of {r['scope']} "
                                        f"{r['subject']!r}{who} was appended after the newest "
                                        f"signed head (seq {last}): no signature covers it"))
    return problems, rewritten, covered


def _seq_of(recs: list[dict[str, Any]], hash_: str | None) -> int:
    return max((int(r["seq"]) for r in recs if r["hash"] == hash_), default=0)
