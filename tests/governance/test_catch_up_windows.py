"""A catch-up's points and their windows: `replay._points_sql` (an as-of join) gives each point
the last run known by then as the plain join of every point with every earlier run does, and
`replay._bounds` (slices of the runs table) selects the runs `replay._expansion_sql` writes out
as rows, whatever the marks, ties of knowledge time, run count and duration."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

import alphatrace as at
from alphatrace.governance import replay
from alphatrace.governance.runs import needed_columns
from alphatrace.store.connection import registered
from tests.governance.test_window_runs import histories, policy
from tests.rows import insert

# The points as the join of every point with every run known by then (the earlier form).
_JOINED = """
SELECT p.scope, p.subject, p._at, max(w._i) AS _end
FROM (SELECT DISTINCT * FROM ({parts})) p
JOIN {runs} w ON w.scope = p.scope AND w.subject = p.subject AND w.known_ts <= p._at
GROUP BY ALL ORDER BY ALL"""


@settings(max_examples=150)
@given(histories())
def test_points_and_windows_equal_the_joined_forms(h: dict[str, Any]) -> None:
    gp = policy(h["runs"], h["duration"])
    with at.connect(":memory:") as db:
        insert(db.con, h["rows"])
        con = db.con
        runs = replay.window_runs(con, gp, needed_columns(con, gp.gate_metrics()), h["marks"],
                                  h["target"], bounded=False)
        params = [h["target"]] if gp.gates.window.seconds is not None else []
        with registered(con, replay.RUNS, runs):
            points = con.sql(f"SELECT * FROM ({replay._points_sql(gp)}) "
                             "ORDER BY scope, subject, _at", params=params).to_arrow_table()
            parts = replay._points_sql(gp).split("FROM (SELECT DISTINCT * FROM (")[1]
            parts = parts.split(")) p\n")[0]
            joined = con.sql(_JOINED.format(parts=parts, runs=replay.RUNS),
                             params=params).fetchall()
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
