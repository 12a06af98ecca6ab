"""A cascade kill is shown after the strategy kill that caused it (display order only)."""

from __future__ import annotations

from typing import Any

from alphatrace.cli.governance import cause_first


def rec(subject: str, scope: str, action: str, cascade: str | None = None, as_of: str = "t1") -> dict[str, Any]:
    return {"subject": subject, "scope": scope, "action": action, "cascade_from": cascade, "as_of": as_of}


def test_cascade_follows_its_cause_and_nothing_is_lost() -> None:
    log = [rec("A1", "agent", "kill"), rec("F1", "agent", "kill", "FUNDING"), rec("M1", "agent", "hold"),
           rec("FUNDING", "strategy", "kill"), rec("MOM", "strategy", "hold"),
           rec("F1", "agent", "kill", "FUNDING", as_of="t0")]  # an older evaluation: no cause here
    got = [(r["subject"], r["as_of"]) for r in cause_first(log)]
    assert got == [("A1", "t1"), ("M1", "t1"), ("FUNDING", "t1"), ("F1", "t1"), ("MOM", "t1"),
                   ("F1", "t0")]
    assert sorted(map(str, cause_first(log))) == sorted(map(str, log))
