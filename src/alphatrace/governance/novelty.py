"""Which decisions are news: an evaluation records a subject only when something happened.

Re-evaluating unchanged data must not append copies of the same decision (the log, the agent
page and `audit show` would repeat "kill kill kill"). A decision is recorded when the subject
has no record yet, when its action or lifecycle state differs from its newest record, when a
rule fires on evidence (the window's run_ids) that differs from that record's, or when the
reason differs (an `error` with a new failure; a cascade kill of an agent whose own evaluation
failed carries that failure as its reason). The evaluation, its dry run and the audit replay all use
this one test, so the replay knows which subjects an evaluation left out and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alphatrace.governance.lifecycle import ERROR


def is_news(last: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether decision content `new` is to be recorded after the subject's newest record
    `last` (None: the subject has none)."""
    if last is None:
        return True
    if last.get("action") != new["action"] or last.get("state") != new["state"]:
        return True
    if last.get("reason") != new["reason"]:
        return True
    if new["action"] == ERROR:
        return False  # the same failure again
    return bool(new["fired"]) and last.get("run_ids") != list(new["run_ids"])
