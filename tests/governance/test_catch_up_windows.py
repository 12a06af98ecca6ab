"""A catch-up's points and their windows: `replay.points` (a binary search in numpy) gives the
points, and each the last run known by then, that the plain SQL join of every point with every
earlier run gives, late marks and duration windows too; and
`replay._bounds` (slices of the runs table) selects the runs `replay._expansion_sql` writes out
as rows, whatever the marks, ties of knowledge time, run count and duration."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
from hypothesis import given, settings

import alphatrace as at
from alphatrace.governance import replay
from alphatrace.governance.runs import needed_columns
from alphatrace.store.connection import registered
from tests.governance.test_window_runs import T0, histories, policy
from tests.rows import insert

# The points as the join of every point with every run known by then: the new runs' knowledge
# times, the marks of subjects with a late change, and (with a duration) the times runs leave
# the window after the mark, by the target.
_JOINED = """
WITH parts AS (
  SELECT scope, subject, known_ts AS _at FROM {runs} WHERE _new
  UNION ALL SELECT scope, subject, mark FROM {runs} WHERE {late}
  UNION ALL SELECT scope, subject, known_ts + to_microseconds({us}) FROM {runs}
  WHERE {us} IS NOT NULL AND (mark IS NULL OR known_ts + to_microseconds({us}) > mark)
    AND known_ts + to_microseconds({us}) <= ?)
SELECT p.scope, p.subject, p._at, max(w._i) AS _end
FROM (SELECT DISTINCT * FROM parts) p
JOIN {runs} w ON w.scope = p.scope AND w.subject = p.subject AND w.known_ts <= p._at
GROUP BY ALL ORDER BY ALL"""


@settings(max_examples=150)
@given(histories())
def test_points_and_windows_equal_the_joined_forms(h: dict[str, Any]) -> None:
    gp = policy(h["runs"], h["duration"])
    with at.connect(":memory:") as db:
        insert(db.con, h["rows"])
        con = db.con
        changed = None if not h["changed"] else pa.table({
            "scope": [k[0] for k, _ in h["changed"]], "subject": [k[1] for k, _ in h["changed"]],
            "known_ts": pa.array([T0 + dt.timedelta(hours=t) for _, t in h["changed"]],
                                 pa.timestamp("us"))})
        runs = replay.window_runs(con, gp, needed_columns(con, gp.gate_metrics()), h["marks"],
                                  h["target"], bounded=False, changed=changed)
        secs = gp.gates.window.seconds
        us = "NULL" if secs is None else round(secs * 1e6)
        points = replay.points(gp, runs, h["target"])
        with registered(con, replay.RUNS, runs):
            late = "_late" if changed is not None else "false"
            joined = con.sql(_JOINED.format(runs=replay.RUNS, us=us, late=late),
                             params=[h["target"]]).fetchall()
            assert [tuple(r.values()) for r in points.to_pylist()] == joined
            with registered(con, replay.POINTS, points):
                rows = con.sql(f"SELECT scope, subject, _at, list(run_id ORDER BY _i) "
                               f"FROM ({replay._expansion_sql(gp)}) GROUP BY ALL "
                               f"ORDER BY scope, subject, _at").fetchall()
        lo, hi = replay._bounds(gp, runs, points)
        ids = runs.column("run_id").to_pylist()
        got = [(p["scope"], p["subject"], p["_at"], ids[a:b])
               for p, a, b in zip(points.to_pylist(), lo.tolist(), hi.tolist(), strict=True)
               if b > a]
        assert got == [tuple(r) for r in rows]
