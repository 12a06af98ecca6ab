"""What a target receives for one decision record: the webhook's JSON body, Slack's text.

The body is built once, when the delivery is queued, and stored: every retry sends the same
bytes, so a signature check and an idempotency check see one message.
"""

from __future__ import annotations

from typing import Any

from alphatrace.governance.canon import canonical_json

SAMPLE_SUBJECT = "alphatrace-test"


def link(record: dict[str, Any], base: str | None) -> str:
    """The dashboard page of the record's subject (agents: their page; strategies: the
    decision log); absolute when the policy gives `notify.dashboard_url`."""
    from alphatrace.server.dashboard.links import Links  # the dashboard's own routes (lazy:
                                                         # its package loads FastAPI)
    links = Links()
    if record.get("scope") == "agent":
        path = links.agent(str(record.get("subject")))
    else:
        path = links.decisions()
    return (base or "") + (path or "/decisions")


def webhook_body(record: dict[str, Any], base: str | None, *, test: bool = False) -> str:
    """`{"type": "decision" | "test", "record": <the record as stored>, "link": ...}`."""
    return canonical_json({"type": "test" if test else "decision", "record": record,
                           "link": link(record, base)})


def slack_text(record: dict[str, Any], base: str | None, *, test: bool = False) -> str:
    what = f"{record.get('action')} {record.get('scope')} {record.get('subject')}"
    parts = [f"alphatrace{' test' if test else ''}: *{what}*"]
    if record.get("rule"):
        parts.append(f"rule {record['rule']}")
    if record.get("cascade_from"):
        parts.append(f"cascade from {record['cascade_from']}")
    parts.append(f"state {record.get('state')}")
    if record.get("reason"):
        parts.append(f"reason: {record['reason']}")
    parts.append(f"seq {record.get('seq')}")
    return " · ".join(parts) + f" <{link(record, base)}>"


def slack_body(record: dict[str, Any], base: str | None, *, test: bool = False) -> str:
    return canonical_json({"text": slack_text(record, base, test=test)})


def body(kind: str, record: dict[str, Any], base: str | None, *, test: bool = False) -> str:
    return (webhook_body if kind == "webhook" else slack_body)(record, base, test=test)


def sample_record() -> dict[str, Any]:
    """A decision-shaped record for `alphatrace notify test`: never in the log (seq 0)."""
    return {"seq": 0, "eval_id": 0, "subject": SAMPLE_SUBJECT, "scope": "agent",
            "action": "kill", "rule": "test", "fired": ["test"], "blocked": False,
            "state": "killed", "cascade_from": None, "reason": "a test notification",
            "metrics": {}, "run_ids": [], "as_of": None, "policy_hash": None,
            "prev_hash": None, "hash": "test", "created_at": None, "actor": None,
            "hash_version": None}
