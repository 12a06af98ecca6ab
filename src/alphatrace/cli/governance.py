"""`alphatrace confidence | gates evaluate | gates backtest | audit verify | audit show |
audit keygen | audit sign | revive | policy check`: a thin layer over the governance methods of
the Python API."""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.text import Text

from alphatrace.api import Database
from alphatrace.cli import names
from alphatrace.cli.common import (
    DbOption,
    JsonOption,
    PolicyOption,
    console,
    emit,
    err_console,
    handle_errors,
    print_json,
)
from alphatrace.cli.engine import EngineOption, TablesOption, check_group, spark_tables
from alphatrace.config import resolve_db_path
from alphatrace.errors import InputError, NotFoundError, PolicyError
from alphatrace.governance import anchor, anchor_check, journal, signing
from alphatrace.governance import confidence as confidence_mod
from alphatrace.governance.api import Gates, Governance, with_states
from alphatrace.governance.policy import load_governance, policy_errors
from alphatrace.governance.runs import parse_as_of
from alphatrace.policy import Policy, load_policy
from alphatrace.utc import aware_table

AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="Use only runs at or before this time: ISO 8601 (UTC if no "
                 "offset), epoch seconds or ms, or a span back from now (7d). Default: the "
                 "newest run in the ledger."),
]
EvalAsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="Judge with the runs known by this time and the lifecycle as "
                 "it was then: ISO 8601 (UTC if no offset), epoch seconds or ms, or a span back "
                 "from now (7d). Default: the newest run in the ledger. A subject whose newest "
                 "record is later than this time is reported, not recorded (its current state "
                 "stays)."),
]
ScopeOption = Annotated[
    str | None, typer.Option("--scope", help="agent | strategy, when a name is both.")
]
HeadsOption = Annotated[
    Path | None,
    typer.Option("--heads", help="The append-only JSON Lines file of signed heads.",
                 envvar=signing.ENV_HEADS, show_envvar=True),
]
KeyOption = Annotated[
    Path | None,
    typer.Option("--key", help="Ed25519 private key file (PEM, mode 0600) to sign the head with.",
                 envvar=signing.ENV_KEY, show_envvar=True),
]

gates_app = typer.Typer(help="Promotion/kill gates.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident decision log.", no_args_is_help=True)
policy_app = typer.Typer(help="Policy files.", no_args_is_help=True)


@gates_app.callback()
def _gates(ctx: typer.Context) -> None:
    """Promotion/kill gates."""
    check_group(ctx, "gates")


@audit_app.callback()
def _audit(ctx: typer.Context) -> None:
    """The tamper-evident decision log."""
    check_group(ctx, "audit")


def _log_store(db: Path | None, *, read_only: bool) -> Database:
    """The store whose decision log a Spark evaluation reads and appends to. A read of a
    store that does not exist yet (a dry run, confidence) reads an empty log: with Spark the
    runs come from the export, so no store is needed to read them."""
    if read_only and not resolve_db_path(db).exists():
        return Database(":memory:")
    return Database(db, read_only=read_only)


def _spark_reads(tables: Path) -> Any:
    from alphatrace.engines.spark.run import spark_reads

    return spark_reads(tables)


def _spark_confidence(d: Database, tables: Path, agent: str | None, history: bool,
                      gp: Any, as_of: str | None) -> pa.Table:
    """`Governance.confidence` with the runs read and each agent's path computed on Spark."""
    when = parse_as_of(as_of)
    reads = _spark_reads(tables)
    tbl = reads.confidence(gp, agent, when, history)
    if agent is not None and tbl.num_rows == 0 and not reads.has_agent(agent):
        raise NotFoundError(f"no agent named {agent!r}")
    if history:
        return aware_table(tbl)
    return aware_table(with_states(tbl, journal.lifecycle_states(d.con, when)))


def register(app: typer.Typer) -> None:
    app.command("confidence")(confidence)
    app.command("revive")(revive)
    gates_app.command("evaluate")(gates_evaluate)
    gates_app.command("backtest")(gates_backtest)
    audit_app.command("verify")(audit_verify)
    audit_app.command("show")(audit_show)
    audit_app.command("keygen")(audit_keygen)
    audit_app.command("sign")(audit_sign)
    policy_app.command("check")(policy_check)
    app.add_typer(gates_app, name="gates")
    app.add_typer(audit_app, name="audit")
    app.add_typer(policy_app, name="policy")


@contextmanager
def _busy(message: str, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    with err_console.status(message):
        yield


def _check_scope(scope: str | None) -> None:
    if scope is not None and scope not in ("agent", "strategy"):
        from alphatrace.errors import InputError

        raise InputError(f"--scope must be agent or strategy, not {scope!r}")


@handle_errors
def confidence(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent.")] = None,
    history: Annotated[bool, typer.Option("--history", help="Every run's factor and the "
                                          "multiplier after it.")] = False,
    policy: PolicyOption = None,
    as_of: AsOfOption = None,
    engine: EngineOption = None,
    tables: TablesOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per agent: the confidence multiplier (running product of per-run decay factors)."""
    gp = load_governance(policy)
    lake = spark_tables(ctx, engine, tables)
    if lake is not None:
        with _log_store(db, read_only=True) as d:
            tbl = _spark_confidence(d, lake, agent, history, gp, as_of)
    else:
        with Database(db, read_only=True) as d:
            names.check(d.con, agent)
            tbl = d.confidence(agent=agent, history=history, policy=gp, as_of=as_of)
    rows = tbl.to_pylist()
    if history:
        emit(rows, as_json, title="confidence history",
             columns=["agent", "run_id", "ts", "pnl", "factor", "multiplier_after"],
             formats={"multiplier_after": confidence_mod.percent})
        return
    emit(rows, as_json, title="confidence",
         columns=["agent", "multiplier", "runs", "min_multiplier", "last_ts", "state"],
         priority=["agent", "multiplier", "state", "runs", "min_multiplier", "last_ts"],
         formats={"multiplier": confidence_mod.percent, "min_multiplier": confidence_mod.percent})
    warn = gp.confidence.warn_below  # warnings go to stderr, so --json stays one document
    for r in rows:
        if r["warning"]:
            err_console.print(f"[yellow]warning:[/] {r['agent']}: multiplier "
                              f"{confidence_mod.percent(r['multiplier'])} is under warn_below "
                              f"{confidence_mod.percent(warn)}", highlight=False)
    note = confidence_mod.collapse_note({r["agent"]: r["multiplier"] for r in rows}, gp.confidence)
    if note:
        err_console.print(f"[yellow]note:[/] {note}", highlight=False)


class StateChanges:
    """Which decision records change their subject's lifecycle state (or revive it, or report
    an error), fed in log order: what a person reads as "what happened". The others are a rule
    firing again on new evidence (a promoted agent's promote rule after each winning run): the
    log keeps them, a summary counts them. Display only."""

    def __init__(self) -> None:
        self.state: dict[tuple[str, str], str] = {}
        self.repeats = 0

    def __call__(self, rec: dict[str, Any]) -> bool:
        key = (str(rec["scope"]), str(rec["subject"]))
        changed = (self.state.get(key, "candidate") != rec.get("state")
                   or rec.get("action") in ("revive", "error"))
        self.state[key] = str(rec.get("state"))
        if not changed:
            self.repeats += 1
        return changed


def cause_first(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Decisions in log order, except that a cascade kill is shown right after the strategy
    kill that caused it (the log decides agents before strategies; a reader wants the cause
    first). Display only: the log and its hashes keep their order."""
    causes = {(r["subject"], r.get("as_of")) for r in recs
              if r.get("scope") == "strategy" and r.get("action") == "kill"}
    waiting: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    out: list[dict[str, Any]] = []
    for r in recs:
        key = (r.get("cascade_from"), r.get("as_of"))
        if r.get("cascade_from") and key in causes:
            waiting.setdefault(key, []).append(r)
            continue
        out.append(r)
        if r.get("scope") == "strategy":
            out += waiting.pop((r["subject"], r.get("as_of")), [])
    for rest in waiting.values():
        out += rest
    return out


def _decision_rows(recs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    metric_cols: dict[str, None] = {}
    for r in recs:
        for k in r["metrics"]:
            metric_cols.setdefault(k, None)
    rows = []
    for r in recs:
        row = {k: r.get(k) for k in ("seq", "scope", "subject", "action", "rule", "state")}
        notes = [f"from {r['cascade_from']}" if r.get("cascade_from")
                 else "blocked: killed" if r.get("blocked")
                 else "evaluation failed" if r.get("action") == "error" else None,
                 "not recorded" if r.get("not_recorded") else None]
        row["note"] = "; ".join(n for n in notes if n) or None
        row.update({k: r["metrics"].get(k) for k in metric_cols})
        rows.append(row)
    cols = ["seq", "scope", "subject", "action", "rule", "state", "note", *metric_cols]
    return rows, cols


@handle_errors
def gates_evaluate(
    ctx: typer.Context,
    policy: PolicyOption = None,
    as_of: EvalAsOfOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide but do not append to the "
                                          "decision log.")] = False,
    once: Annotated[bool, typer.Option("--once", help="One evaluation at --as-of (default: "
                                       "the newest knowledge time) instead of catching up "
                                       "over every knowledge time since the last one. In the "
                                       "past, it records only subjects with no record after "
                                       "--as-of; the others are shown, noted 'not "
                                       "recorded'.")] = False,
    engine: EngineOption = None,
    tables: TablesOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate every agent and strategy class at every knowledge time since the last
    evaluation (catch-up); append to the hash chain the decisions that changed (action,
    state, a rule firing on new runs, a new error), each at the time it was decided.
    With --engine spark: the ledger of an export (--tables) is read on Spark; the decisions
    are appended to (and the lifecycle read from) the store's log, as without it."""
    gp = load_governance(policy)
    lake = spark_tables(ctx, engine, tables)
    store = _log_store(db, read_only=dry_run) if lake is not None else Database(db, read_only=dry_run)
    with store as d, _busy("evaluating gates", not as_json):
        gates = d.gates if lake is None else Gates(d.store, _spark_reads(lake))
        doc = gates.evaluation(policy=gp, as_of=as_of, record=not dry_run, catch_up=not once)
        wrote = any(x["seq"] is not None for x in doc["decisions"])
        signed = anchor.sign_if_configured(d.store) if wrote else None
    _say_signed(signed, as_json)
    if as_json:
        print_json(doc)
        return
    shown = [x for x in doc["decisions"] if x["changed"]]
    rows, cols = _decision_rows(cause_first(shown))
    if dry_run:
        cols.remove("seq")
    n, unchanged = doc["evaluated"], sum(1 for x in doc["decisions"] if not x["changed"])
    held = sum(1 for x in shown if x["not_recorded"])
    if not shown:
        console.print(f"no change ({n} subject{'s' if n != 1 else ''} evaluated"
                      + (f", as of {doc['as_of']}" if doc["as_of"] else "") + ")", highlight=False)
        return
    emit(rows, False, columns=cols, title="gate decisions" + (" (dry run)" if dry_run else ""))
    counts = Counter(r["action"] for r in shown)
    console.print(", ".join(f"{k}: {counts[k]}" for k in
                            ("promote", "kill", "hold", "inconclusive", "error") if counts[k])
                  + (f"; {held} not recorded (newer record)" if held else "")
                  + (f"; {unchanged} unchanged, not recorded" if unchanged else "")
                  + f"  (as of {doc['as_of']}, policy {gp.hash[:12]})", highlight=False)
    for r in shown:
        if r["action"] == "error":
            err_console.print(f"[red]error:[/] {r['scope']} {r['subject']}: {r['reason']} "
                              f"(state stays {r['state']})", highlight=False)
        if r.get("not_recorded"):
            err_console.print(f"[yellow]not recorded:[/] {r['not_recorded']}", highlight=False)


def _say_signed(sh: signing.SignedHead | None, quiet: bool) -> None:
    if sh is not None and not quiet:
        err_console.print(f"signed head seq {sh.seq} ({sh.hash[:12]}) with key {sh.key_id}",
                          highlight=False)


@handle_errors
def gates_backtest(
    ctx: typer.Context,
    policy: PolicyOption = None,
    engine: EngineOption = None,
    tables: TablesOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay a policy run by run: when each subject would have been promoted or killed, and
    the PnL each kill would have avoided. With --engine spark: the ledger of an export
    (--tables) is read and replayed on Spark; no store is read (the replay starts from an
    empty lifecycle)."""
    gp = load_governance(policy)
    lake = spark_tables(ctx, engine, tables)
    store = Database(db, read_only=True) if lake is None else Database(":memory:")
    with store as d, _busy("replaying the policy", not as_json):
        gates = d.gates if lake is None else Gates(d.store, _spark_reads(lake))
        result = gates.backtest(gp)
    if as_json:
        print_json(result)
        return
    emit(result["subjects"], False, title=f"backtest of policy {gp.hash[:12]}", columns=[
        "scope", "subject", "runs", "promoted_at", "promoted_run", "killed_at", "killed_run",
        "kill_rule", "cascade_from", "runs_after_kill", "pnl_after_kill_bps", "avoided_usd"])
    emit(result["summary"], False, title="summary")


@handle_errors
def audit_verify(
    ctx: typer.Context,
    recompute: Annotated[bool, typer.Option(
        "--recompute/--chain-only", help="Also re-decide every evaluation from the store.")] = True,
    pubkey: Annotated[Path | None, typer.Option(
        "--pubkey", help="Ed25519 public key (PEM): check the signature of every signed head."
    )] = None,
    heads: HeadsOption = None,
    expect_head: Annotated[str | None, typer.Option(
        "--expect-head", help="A head hash recorded elsewhere: the chain must still contain it."
    )] = None,
    expect_seq: Annotated[int | None, typer.Option(
        "--expect-seq", min=1, help="The chain must still reach this seq (with --expect-head: "
        "that hash at that seq).")] = None,
    engine: EngineOption = None,
    tables: TablesOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-hash the decision chain, check every decision against its own metrics and the chain
    against signed or expected heads, and re-compute each decision; name every record that was
    edited, removed, reordered, rewritten, forged, truncated, forked, left unsigned or no longer
    follows from its inputs. Exit 1 if any. With --engine spark: the re-computation reads the
    ledger of an export (--tables) on Spark; the log is the store's (--db)."""
    lake = spark_tables(ctx, engine, tables)
    if expect_head is not None and not _is_hash(expect_head):
        raise InputError(f"--expect-head {expect_head!r} is not a 64-hex-digit SHA-256 hash")
    given = anchor_check.Given(pubkey=signing.load_public(pubkey) if pubkey else None,
                               heads_path=heads, expect_head=expect_head and expect_head.lower(),
                               expect_seq=expect_seq)
    with Database(db, read_only=True) as d, _busy("verifying the decision log", not as_json):
        if lake is None:
            result = d.audit_verify(recompute=recompute, anchors=given)
        else:  # Spark starts only when something is re-computed
            reads = _spark_reads(lake) if recompute else None
            result = Governance(d.store, reads).audit_verify(recompute=recompute, anchors=given)
    if as_json:
        print_json(result)
    elif result["ok"]:
        anchored = result["anchored_to_seq"]
        console.print(f"[green]ok[/]: {result['records']:,} records, chain intact"
                      + (", every decision follows from its inputs" if recompute else "")
                      + (f", anchored up to seq {anchored}" if anchored else ", no anchor")
                      + (f" (head {result['head'][:12]})" if result["head"] else ""),
                      highlight=False)
    else:
        emit(result["problems"], False, columns=["seq", "kind", "detail"],
             title=f"{len(result['problems'])} problem(s) in {result['records']:,} records")
    if not result["ok"]:
        raise typer.Exit(1)


def _is_hash(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text.lower())


@handle_errors
def audit_keygen(
    out: Annotated[Path, typer.Argument(help="Private key file to create (mode 0600); the "
                                        "public key goes to OUT.pub.")],
    as_json: JsonOption = False,
) -> None:
    """Create an Ed25519 key pair for signing the decision log's head. Keep the private key
    off the store's machine if you can; give the public key to whoever verifies."""
    public = out.with_name(out.name + ".pub")
    kid = signing.generate(out, public)
    data = {"private_key": str(out), "public_key": str(public), "key_id": kid}
    if as_json:
        print_json(data)
        return
    console.print(f"[green]created[/] {out} (private, mode 600) and {public}; key id {kid}\n"
                  f"sign after every evaluation: export {signing.ENV_KEY}={out}", highlight=False)


@handle_errors
def audit_sign(
    key: KeyOption = None,
    heads: HeadsOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sign the decision log's current head and append it to the heads file. Refuses when the
    chain no longer follows from the last signed head."""
    if key is None:
        raise InputError(f"no signing key: pass --key or set {signing.ENV_KEY}")
    with Database(db) as d:
        sh = d.audit_sign(key, heads)
    if as_json:
        print_json(sh)
        return
    console.print(f"[green]signed[/] head seq {sh['seq']} ({sh['hash'][:12]}) with key "
                  f"{sh['key_id']}" + (f"; exported to {heads}" if heads else ""), highlight=False)


@handle_errors
def audit_show(
    subject: Annotated[str, typer.Argument(help="Agent or strategy name.")],
    scope: ScopeOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every decision about one subject, oldest first."""
    _check_scope(scope)
    with Database(db, read_only=True) as d:
        names.check_subject(d.con, subject, [scope] if scope else None)
        recs = d.audit_show(subject, scope)
    if as_json:
        print_json(recs)
        return
    rows, cols = _decision_rows(recs)
    for row, r in zip(rows, recs, strict=True):
        row["as_of"] = r["as_of"]
        row["reason"] = r.get("reason")
        row["by"] = r.get("actor")
        row["hash"] = str(r["hash"])[:12]
    cols = ["seq", "as_of", "action", "rule", "state", "note", "reason", "by", *cols[7:], "hash"]
    emit(rows, False, columns=cols, title=f"decisions about {subject}")


@handle_errors
def revive(
    subject: Annotated[str, typer.Argument(help="The killed agent or strategy.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the decision log).")],
    by: Annotated[str | None, typer.Option("--by", help="Who (recorded in the decision log; "
                                           "default: the OS user).")] = None,
    scope: ScopeOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bring a killed subject back to candidate (manual, recorded with who and why; the head is
    signed when a signing key is configured)."""
    _check_scope(scope)
    names.require_store(db)
    with Database(db) as d:
        names.check_subject(d.con, subject, [scope] if scope else None)
        rec = d.revive(subject, reason, scope, actor=by)
        signed = anchor.sign_if_configured(d.store)
    _say_signed(signed, as_json)
    if as_json:
        print_json(rec)
        return
    console.print(f"[green]revived[/] {rec['scope']} {rec['subject']} (seq {rec['seq']}) by "
                  f"{rec['actor']}: {rec['reason']}", highlight=False)


# Sections other areas own: (section, module, pydantic model, loader) checked when they exist.
AREA_SECTIONS = (("reconcile", "alphatrace.ledger.policy", "ReconcilePolicy", "load"),
                 ("forensics", "alphatrace.forensics.config", "ForensicsConfig", "load"))


def _area_errors(policy: Policy) -> tuple[dict[str, str], list[PolicyError]]:
    """Every schema problem of the other areas' sections; when there is none, their loaders
    run too (they may check more than the schema)."""
    sections: dict[str, str] = {}
    errors: list[PolicyError] = []
    for section, module, model, loader in AREA_SECTIONS:
        try:
            mod = importlib.import_module(module)
            cls, load = getattr(mod, model), getattr(mod, loader)
        except (ImportError, AttributeError):
            continue
        found = policy.checked_section(section, cls)[1]
        if not found:
            try:
                load(policy)
            except PolicyError as e:
                found = [e]
        errors += found
        sections[section] = "ok" if not found else f"{len(found)} error(s)"
    return sections, errors


def _error_doc(e: PolicyError) -> dict[str, Any]:
    return {"path": e.path, "line": e.line, "column": e.column, "message": str(e),
            "suggestion": e.suggestion}


@handle_errors
def policy_check(
    path: Annotated[Path, typer.Argument(help="Policy file (YAML or TOML).")],
    as_json: JsonOption = False,
) -> None:
    """Load a policy and check every section: unknown keys, wrong types, rules over unknown
    metrics or with syntax errors. Every problem is reported in one pass, each with
    file:line:column and a suggestion; exit 2 when there is any."""
    policy = load_policy(path)
    errors = policy_errors(policy)
    sections, area = _area_errors(policy)
    errors = sorted(errors + area, key=lambda e: (e.line or 0, e.column or 0))
    if errors:
        if as_json:
            print_json({"ok": False, "path": str(path), "errors": [_error_doc(e) for e in errors]})
        else:
            for e in errors:
                err_console.print(Text.assemble(("error: ", "bold red"), str(e)), soft_wrap=True)
            err_console.print(f"{len(errors)} problem(s) in {path}", highlight=False)
        raise typer.Exit(2)
    gp = load_governance(policy)
    sections = {"confidence": "ok", "gates": "ok", "eligibility": "ok", "notify": "ok",
                **sections}
    data = {"ok": True, "path": str(path), "policy_hash": policy.hash, "decision_hash": gp.hash,
            "sections": sections,
            "gate_rules": [{"name": g.rule.name, "action": g.rule.action, "when": g.rule.when}
                           for g in gp.gate_rules],
            "confidence_rules": [{"when": f.rule.when, "factor": f.rule.factor}
                                 for f in gp.factors]}
    if as_json:
        print_json(data)
        return
    console.print(f"[green]ok[/]: {path} ({', '.join(sections)}); decision hash {gp.hash[:12]}",
                  highlight=False)
