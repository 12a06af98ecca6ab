"""The verdicts `audit verify` names, one per kind of thing that happened to the log.

A problem is `{"seq", "kind", "detail"}`: `seq` is the record it is about (None when it is
about no record), `detail` says what was seen, in words.
"""

from __future__ import annotations

from typing import Any

Problem = dict[str, Any]

KINDS = {
    "edited": "a record's content no longer matches its hash (or its hash no longer matches "
              "the next record's link): changed after it was written",
    "removed": "a record is missing from the middle of the chain (a gap the links show)",
    "reordered": "records whose seq order differs from their chain order, or whose seq was "
                 "changed",
    "rewritten": "a record changed with every hash after it recomputed: its decision does not "
                 "follow from its own recorded metrics, or the chain no longer reaches a "
                 "signed or expected head that covered it",
    "forged": "a record alphatrace would never write (a revive of a subject that was not "
              "killed, an unknown action)",
    "truncated": "records a signed or expected head covered are gone from the end",
    "fork": "a head is no longer in the chain while a later head is: the log was rewritten "
            "and signed again",
    "head_missing": "an expected head hash is not in the chain (give its seq to tell a "
                    "rewrite from a truncation)",
    "unsigned": "a record appended after the newest signed head: no signature covers it",
    "bad_signature": "a signed head whose signature does not verify with the given key",
    "unexported": "a head signed in the store is missing from the heads file",
    "inputs_changed": "the record is intact but the gates, re-run on today's store, decide "
                      "differently (late data, a re-reconcile, a new exclusion)",
}


def problem(seq: int | None, kind: str, detail: str) -> Problem:
    if kind not in KINDS:
        raise ValueError(f"unknown verdict {kind!r}")
    return {"seq": seq, "kind": kind, "detail": detail}
