"""GET /v1/decisions: the decision log after a sequence number, for clients that follow it.

The log is append-only and every record has a `seq` (1 = oldest), so a follower asks for what
came after the last seq it saw and never misses or repeats a record. `alphatrace demo --live`
prints decisions this way as the live pipeline records them.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from alphatrace.governance.journal import read_records
from alphatrace.server.auth import Principal, require
from alphatrace.server.ingest_routes import AUTH_ERRORS
from alphatrace.server.writer import Writer

router = APIRouter(tags=["read"])
MAX_LIMIT = 10_000


@router.get(
    "/v1/decisions",
    summary="Decision records after a seq, oldest first",
    responses={200: {"description": "`decisions` (oldest first) and `last_seq`, the seq to "
                                    "pass as `after` next time"}, **AUTH_ERRORS},
)
def get_decisions(
    request: Request,
    after: int = Query(0, ge=0, description="Only records with a larger seq."),
    limit: int = Query(1000, ge=1, le=MAX_LIMIT, description="At most this many records."),
    who: Principal = Depends(require("read")),
) -> Response:
    """The records of the decision log (as `alphatrace audit` reads them: rule, state,
    metrics, run_ids, as_of) whose seq is greater than `after`, oldest first."""
    writer: Writer = request.app.state.writer
    with writer.reader() as con:
        recs = read_records(con, since_seq=after + 1)[:limit]
    last = recs[-1]["seq"] if recs else after
    doc: dict[str, Any] = {"decisions": recs, "last_seq": last}
    return Response(json.dumps(doc, separators=(",", ":"), default=str),
                    media_type="application/json")
