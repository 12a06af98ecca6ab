"""Where a page links to: URLs on the live dashboard, in-file anchors in the report.

The chart data keys are the live JSON endpoints' URLs in both cases: the dashboard fetches
them, the report looks them up in the data it embeds, so the charts' code is the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from urllib.parse import urlencode

DATA_PREFIX = "/v1/dash"


def _q(query: dict[str, object] | None) -> str:
    items = {k: v for k, v in (query or {}).items() if v is not None and v != ""}
    return ("?" + urlencode(items)) if items else ""


def data_url(kind: str, query: dict[str, object] | None = None) -> str:
    return f"{DATA_PREFIX}/{kind}{_q(query)}"


def anchor(kind: str, name: str) -> str:
    """An element id for any name: a digest, so no name can break out of the attribute."""
    return f"{kind}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:16]}"


class Links:
    """Links of the live dashboard."""

    report = False

    def overview(self, query: dict[str, object] | None = None) -> str | None:
        return "/" + _q(query)

    def agent(self, name: str | None) -> str | None:
        return None if name is None else "/agent" + _q({"name": name})

    def run(self, run_id: str | None) -> str | None:
        return None if run_id is None else "/run" + _q({"id": run_id})

    def forensics(self, query: dict[str, object] | None = None) -> str | None:
        return "/forensics" + _q(query)

    def decisions(self, query: dict[str, object] | None = None) -> str | None:
        return "/decisions" + _q(query)


class ReportLinks(Links):
    """Links inside the one-file report: anchors to the sections it holds, nothing else."""

    report = True

    def __init__(self, agents: Collection[str], runs: Collection[str]) -> None:
        self.agents = set(agents)
        self.runs = set(runs)

    def overview(self, query: dict[str, object] | None = None) -> str | None:
        return None if query else "#overview"

    def agent(self, name: str | None) -> str | None:
        return "#" + anchor("agent", name) if name is not None and name in self.agents else None

    def run(self, run_id: str | None) -> str | None:
        return "#" + anchor("run", run_id) if run_id is not None and run_id in self.runs else None

    def forensics(self, query: dict[str, object] | None = None) -> str | None:
        return None if query else "#forensics"

    def decisions(self, query: dict[str, object] | None = None) -> str | None:
        return None if query else "#decisions"
