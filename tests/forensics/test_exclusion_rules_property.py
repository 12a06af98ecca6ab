"""Exclusion rules compiled to SQL select exactly the rows a plain Python reading of the same
conditions selects (NULLs never match a comparison), and forensics output is deterministic."""

from __future__ import annotations

import datetime as dt
import json
import operator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphatrace.forensics import synthetic as syn
from alphatrace.forensics.api import Forensics
from alphatrace.forensics.config import Condition, ExclusionRule
from alphatrace.forensics.exclusions import FIELDS, rule_sql
from alphatrace.store import Store
from tests.rows import T0, full_row, insert

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
       "==": operator.eq, "!=": operator.ne}

maybe_num = st.one_of(st.none(), st.integers(-50, 50).map(float))
row_st = st.fixed_dictionaries({"errors": st.one_of(st.none(), st.integers(0, 3)),
                                 "realized_pnl_bps": maybe_num, "latency_ms": maybe_num,
                                 "model": st.sampled_from([None, "a", "b", "c"])})
num_cond = st.builds(lambda f, op, v: {"field": f, "op": op, "value": v},
                     st.sampled_from(["errors", "pnl", "latency_ms"]), st.sampled_from(list(OPS)),
                     st.integers(-50, 50).map(float))
text_cond = st.one_of(
    st.builds(lambda op, v: {"field": "model", "op": op, "value": v}, st.sampled_from(["==", "!="]),
              st.sampled_from(["a", "b", "zz"])),
    st.builds(lambda op, vs: {"field": "model", "op": op, "value": vs}, st.sampled_from(["in", "not_in"]),
              st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3)),
    st.builds(lambda f, op: {"field": f, "op": op}, st.sampled_from(["model", "errors", "pnl"]),
              st.sampled_from(["is_null", "not_null"])),
)


def python_match(row: dict[str, Any], c: dict[str, Any]) -> bool:
    v = row[FIELDS[c["field"]]]
    if c["op"] == "is_null":
        return v is None
    if c["op"] == "not_null":
        return v is not None
    if v is None:
        return False
    if c["op"] == "in":
        return v in c["value"]
    if c["op"] == "not_in":
        return v not in c["value"]
    return bool(OPS[c["op"]](v, c["value"]))


@pytest.mark.slow
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(row_st, min_size=1, max_size=12), st.lists(st.one_of(num_cond, text_cond), min_size=1, max_size=3))
def test_rule_sql_matches_python(rows: list[dict[str, Any]], conds: list[dict[str, Any]]) -> None:
    with Store(":memory:") as store:
        full = [full_row(f"r{i}", T0 + dt.timedelta(minutes=i), **r) for i, r in enumerate(rows)]
        insert(store.con, full)
        rule = ExclusionRule(name="x", reason="y", when=[Condition(**c) for c in conds])
        where, params = rule_sql(rule)
        got = {r[0] for r in store.con.execute(f"SELECT run_id FROM ledger WHERE {where}", params).fetchall()}
    want = {r["run_id"] for r in full if all(python_match(r, c) for c in conds)}
    assert got == want


def test_forensics_output_is_byte_identical_across_runs(store: Store) -> None:
    d = syn.runs(2500, 9)
    store.con.register("_t", syn.ledger_table(d))
    store.con.execute("INSERT INTO ledger BY NAME SELECT * FROM _t")
    db = Forensics(store)
    a = json.dumps(db.forensics(), default=str, sort_keys=True)
    b = json.dumps(db.forensics(), default=str, sort_keys=True)
    assert a == b and '"clusters"' in a
