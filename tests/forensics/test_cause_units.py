"""Explain causes are units in one registered list (issue #16 item 10): adding a cause is adding
one unit, and `explain` reports it, in list order, with its own sentence."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from alphatrace.forensics import causes as causes_mod
from alphatrace.forensics import explain as explain_mod
from alphatrace.forensics.config import ForensicsConfig
from alphatrace.forensics.explain import History, because, causes
from tests.rows import T0, full_row


class Weekend(causes_mod.Cause):
    name: ClassVar[str] = "weekend"

    def check(self, run: causes_mod.RunContext) -> dict[str, Any] | None:
        day = run.row["ts"].weekday()
        return {"weekday": day} if day >= 5 else None

    def sentence(self, ev: dict[str, Any]) -> str:
        return f"it ran on a weekend (day {ev['weekday']})"


def test_names_are_unique_and_in_report_order() -> None:
    names = [c.name for c in causes_mod.CAUSES]
    assert names == ["slow", "wrong", "mis_regimed", "cost_spike", "errored", "execution_gap"]
    assert set(causes_mod.BY_NAME) == set(names)


def test_a_registered_unit_is_checked_and_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    unit = Weekend()
    monkeypatch.setattr(explain_mod, "CAUSES", (*causes_mod.CAUSES, unit))
    monkeypatch.setattr(explain_mod, "BY_NAME", {**causes_mod.BY_NAME, unit.name: unit})
    # T0 plus the days to the next Saturday; errors=1 so a built-in cause fires first.
    saturday = T0.replace(day=T0.day + (5 - T0.weekday()) % 7)
    row = full_row("r", saturday, errors=1, realized_pnl_bps=-5.0)
    found = causes(row, History(), [], ForensicsConfig())
    assert [c["cause"] for c in found] == ["errored", "weekend"]
    assert found[1]["evidence"] == {"weekday": 5}
    assert because(row, found).endswith("it hit 1 error and it ran on a weekend (day 5).")
