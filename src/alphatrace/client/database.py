"""`alphatrace.connect("http://host:8700", key=...)`: a Database answered by a server.

The same methods, arguments and return types as a local `alphatrace.Database`: Arrow tables
(LedgerResult with its summary), dicts and lists with UTC-aware datetimes, the report
dataclasses, and the same exception classes for the same mistakes. Each call is one request
to `POST /v1/call` (`server/call_routes.py`); a file argument (events, market files, a policy
file, a signing key) is uploaded, since the server cannot read this machine's disk. What needs
this process cannot be sent: the `store`/`con` attributes, progress callbacks, a compiled
GovernancePolicy (pass its file or the Policy).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa

from alphatrace.client import http, wire
from alphatrace.client.files import Uploads
from alphatrace.errors import InputError
from alphatrace.forensics.api import PolicyArg, Progress
from alphatrace.governance.anchor_check import Given
from alphatrace.governance.api import AsOf, PolicySource
from alphatrace.ledger.api import LedgerResult
from alphatrace.ledger.reconcile import ReconcileReport, Step
from alphatrace.market.importer import MarketImportReport
from alphatrace.policy import Policy
from alphatrace.store.ingest import IngestReport

Since = str | dt.datetime | dt.date | float | None


def is_url(target: object) -> bool:
    return isinstance(target, str) and target.lower().startswith(("http://", "https://"))


class _Call:
    """One call being prepared: its arguments in wire form and the files they name."""

    def __init__(self) -> None:
        self.uploads = Uploads()

    def file(self, p: str | os.PathLike[str], expand: Any = None, *, as_path: bool = False,
             output: bool = False) -> dict[str, str]:
        given = os.fspath(p)
        name = self.uploads.output(given) if output else self.uploads.add(given, expand)
        return {"$path" if as_path else "$file": name}

    def policy(self, policy: PolicySource) -> Any:
        from alphatrace.governance.policy import GovernancePolicy

        if policy is None:
            return None
        if isinstance(policy, Policy):
            return {"$policy": {"data": wire.encode(policy.data), "path": policy.path}}
        if isinstance(policy, GovernancePolicy):
            raise InputError("a compiled GovernancePolicy cannot be sent to a server: pass "
                             "its policy file or the loaded Policy")
        return self.file(policy)


def _no_callback(what: str, fn: object) -> None:
    if fn is not None:
        raise InputError(f"{what} runs where the work runs: a remote Database cannot call it")


class RemoteGates:
    """`db.gates` of a remote Database."""

    def __init__(self, db: RemoteDatabase) -> None:
        self._db = db

    def evaluate(self, policy: PolicySource = None, as_of: AsOf = None, *,
                 record: bool = True, once: bool = False) -> list[dict[str, Any]]:
        c = _Call()
        out: list[dict[str, Any]] = self._db._call(
            "gates.evaluate", c, policy=c.policy(policy), as_of=as_of, record=record, once=once)
        return out

    def evaluation(self, policy: PolicySource = None, as_of: AsOf = None, *,
                   record: bool = True, once: bool = False) -> dict[str, Any]:
        c = _Call()
        out: dict[str, Any] = self._db._call(
            "gates.evaluation", c, policy=c.policy(policy), as_of=as_of, record=record, once=once)
        return out

    def backtest(self, policy: PolicySource = None) -> dict[str, Any]:
        c = _Call()
        out: dict[str, Any] = self._db._call("gates.backtest", c, policy=c.policy(policy))
        return out


class RemoteDatabase:
    """A Database whose every method is answered by the server at `url` (module doc)."""

    def __init__(self, url: str, key: str | None = None, *, timeout: float | None = None) -> None:
        self.url = url.rstrip("/")
        self.key = key if key is not None else os.environ.get(http.ENV_KEY)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"RemoteDatabase({self.url!r})"

    # -- the transport ---------------------------------------------------------------------
    def _call(self, method: str, c: _Call, *args: Any, **kwargs: Any) -> Any:
        doc = {"method": method, "args": [_wire(a) for a in args],
               "kwargs": {k: _wire(v) for k, v in kwargs.items()},
               "folders": sorted(c.uploads.folders)}
        ans = http.post(self.url, "/v1/call", self.key, doc, c.uploads.files, self.timeout)
        headers = {k.lower(): v for k, v in ans.headers.items()}
        kind = headers.get(wire.RESULT_HEADER.lower())
        if kind is not None:
            table = wire.table_of(ans.body)
            if kind == "ledger":
                summary = json.loads(headers.get(wire.SUMMARY_HEADER.lower()) or "{}")
                return LedgerResult(table, {str(k): int(v) for k, v in summary.items()})
            return table
        body = ans.json()
        for name, data in (body.get("files") or {}).items():
            target = c.uploads.local(name)
            if target is not None:
                target.write_bytes(base64.b64decode(data))
        return wire.decode(body["result"])

    def close(self) -> None:
        """Nothing to release: each call is one request."""

    def __enter__(self) -> RemoteDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ingest and market -----------------------------------------------------------------
    def ingest(self, *paths: str | os.PathLike[str], kind: str | None = None) -> IngestReport:
        from alphatrace.store.lines import expand_paths

        c = _Call()
        out: IngestReport = self._call("ingest", c, *[c.file(p, expand_paths) for p in paths],
                                       kind=kind)
        return out

    def import_market(self, *paths: str | os.PathLike[str],
                      symbol: str | None = None) -> MarketImportReport:
        from alphatrace.market.readers import expand_paths

        c = _Call()
        out: MarketImportReport = self._call(
            "import_market", c, *[c.file(p, expand_paths) for p in paths], symbol=symbol)
        return out

    def alias(self, alias: str, symbol: str | None) -> dict[str, Any]:
        out: dict[str, Any] = self._call("alias", _Call(), alias, symbol)
        return out

    def aliases(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("aliases", _Call())
        return out

    def symbols(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("symbols", _Call())
        return out

    def resolve(self, *symbols: str, policy: Policy | str | Path | None = None
                ) -> list[dict[str, Any]]:
        c = _Call()
        out: list[dict[str, Any]] = self._call("resolve", c, *symbols, policy=c.policy(policy))
        return out

    # -- ledger ----------------------------------------------------------------------------
    def reconcile(self, policy: Policy | str | Path | None = None, *, full: bool = False,
                  step: Step | None = None) -> ReconcileReport:
        _no_callback("a step callback", step)
        c = _Call()
        out: ReconcileReport = self._call("reconcile", c, policy=c.policy(policy), full=full)
        return out

    def ledger(self, agent: str | None = None, strategy: str | None = None, since: Since = None,
               status: str | None = None) -> LedgerResult:
        out: LedgerResult = self._call("ledger", _Call(), agent=agent, strategy=strategy,
                                       since=since, status=status)
        return out

    def agents(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("agents", _Call())
        return out

    # -- forensics -------------------------------------------------------------------------
    def explain(self, run_id: str, *, policy: PolicyArg = None) -> dict[str, Any]:
        c = _Call()
        out: dict[str, Any] = self._call("explain", c, run_id, policy=c.policy(policy))
        return out

    def forensics(self, agent: str | None = None, strategy: str | None = None,
                  since: str | dt.datetime | dt.date | None = None, holdout: float | None = None,
                  depth: int | None = None, *, policy: PolicyArg = None,
                  progress: Progress | None = None, changepoints: bool = True) -> dict[str, Any]:
        _no_callback("a progress callback", progress)
        c = _Call()
        out: dict[str, Any] = self._call(
            "forensics", c, agent=agent, strategy=strategy, since=since, holdout=holdout,
            depth=depth, policy=c.policy(policy), changepoints=changepoints)
        return out

    def apply_exclusions(self, policy: PolicyArg = None) -> dict[str, Any]:
        c = _Call()
        out: dict[str, Any] = self._call("apply_exclusions", c, policy=c.policy(policy))
        return out

    def exclusions(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("exclusions", _Call())
        return out

    # -- governance ------------------------------------------------------------------------
    @property
    def gates(self) -> RemoteGates:
        return RemoteGates(self)

    def confidence(self, agent: str | None = None, history: bool = False,
                   policy: PolicySource = None, as_of: AsOf = None) -> pa.Table:
        c = _Call()
        out: pa.Table = self._call("confidence", c, agent=agent, history=history,
                                   policy=c.policy(policy), as_of=as_of)
        return out

    def audit_verify(self, recompute: bool = True, anchors: Given | None = None) -> dict[str, Any]:
        c = _Call()
        given = None
        if anchors is not None:
            from cryptography.hazmat.primitives import serialization

            pub = anchors.pubkey
            given = {"$given": {
                "pubkey": wire.encode(pub.public_bytes(serialization.Encoding.Raw,
                                                       serialization.PublicFormat.Raw))
                if pub is not None else None,
                "heads_path": c.file(anchors.heads_path, as_path=True)
                if anchors.heads_path is not None else None,
                "expect_head": anchors.expect_head, "expect_seq": anchors.expect_seq}}
        out: dict[str, Any] = self._call("audit_verify", c, recompute=recompute, anchors=given)
        return out

    def audit_sign(self, key: Path, heads_file: Path | None = None) -> dict[str, Any]:
        """Sign the server's head with the key file here (sent to the server for the signature:
        use https); the heads file is appended to here."""
        c = _Call()
        out: dict[str, Any] = self._call(
            "audit_sign", c, c.file(key, as_path=True),
            c.file(heads_file, as_path=True, output=True) if heads_file is not None else None)
        return out

    def audit_show(self, subject: str, scope: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("audit_show", _Call(), subject, scope)
        return out

    def revive(self, subject: str, reason: str, scope: str | None = None,
               actor: str | None = None) -> dict[str, Any]:
        """As locally: `actor` defaults to the user running this process (here, not the
        server's)."""
        from alphatrace.governance.upgrade import operator

        out: dict[str, Any] = self._call("revive", _Call(), subject, reason, scope,
                                         actor or operator())
        return out


def _wire(v: Any) -> Any:
    """An argument in wire form (file and policy references are already)."""
    if isinstance(v, dict) and len(v) == 1 and next(iter(v)) in (
            "$file", "$path", "$policy", "$given"):
        return v
    return wire.encode(v)
