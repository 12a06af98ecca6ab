"""How a multiplier reads: a percentage, never scientific notation; one note when it collapsed
under a policy without recovery or floor."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alphatrace.governance.confidence import collapse_note, percent
from alphatrace.governance.policy import ConfidenceSection


def test_percent_by_hand() -> None:
    assert percent(1.0) == "100.0 %"
    assert percent(0.85 * 0.95) == "80.8 %"      # 0.8075
    assert percent(0.0035) == "0.35 %"
    assert percent(0.000_05) == "< 0.01 %"       # 0.005 %
    assert percent(9.6e-22) == "< 0.01 %"
    assert percent(0.0) == "0 %"
    assert percent(None) == "—" and percent(float("nan")) == "—"


@given(st.floats(min_value=0, max_value=1, allow_nan=False))
def test_percent_is_never_scientific(m: float) -> None:
    text = percent(m)
    assert "e" not in text and text.endswith("%")


def test_collapse_note_names_recovery_and_floor_only_without_them() -> None:
    seed = ConfidenceSection()
    mults = {"A": 9.6e-22, "B": 0.7}
    note = collapse_note(mults, seed)
    assert note is not None and "recovery" in note and "floor" in note and note.startswith("A under 1 %")
    assert "\n" not in note
    assert collapse_note({"A": 1e-30, "B": 1e-25}, seed).startswith("2 of 2 agents")  # type: ignore[union-attr]
    assert collapse_note({"B": 0.7}, seed) is None
    assert collapse_note(mults, ConfidenceSection(recovery=1.02)) is None
    assert collapse_note(mults, ConfidenceSection(floor=0.25)) is None
