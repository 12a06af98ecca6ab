"""GET /v1/agents/{agent}/sizing: the size a meta-agent should give a signal now, from memory.

Answered from the live state (server/live_state.py), never by recomputing, so it costs a dict
lookup and a multiplication; the SDK's `alphatrace.size()` calls it when $ALPHATRACE_URL is
set. The answer says which decision head it reflects (`seq`), the knowledge time of the
agent's newest counted run, and, when the agent is stopped, why and what a kill stops.

The body is encoded once per agent and snapshot (`encoded`): everything but the request's three
numbers is the same for every request until the state changes, so a request splices
`base_size`, `score` and `size` between two cached byte strings. server/sizing_fast.py answers
plainly valid requests with the same bytes before FastAPI's routing; this route answers the
rest (and documents the operation).
"""

from __future__ import annotations

import json
import math
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from alphatrace.governance.canon import ts_text
from alphatrace.governance.sizing import KILL_STOPS, sized
from alphatrace.server.auth import Principal, require
from alphatrace.server.ingest_routes import AUTH_ERRORS
from alphatrace.server.live_state import LiveState, Snapshot
from alphatrace.server.models import Problem

router = APIRouter(tags=["governance"])
# The query's bounds, so that a schema-valid request has a finite size.
BASE_SIZE_MAX = 1e15
SCORE_MAX = 1e6
# The request's numbers sit together in the document, between the agent's state and the head.
_NUMBERS = ("base_size", "score", "size")
MAX_ENCODED = 10_000  # agents whose encoded answers a snapshot keeps (any name may be asked)


class SizingPolicy(BaseModel):
    fail: Literal["closed", "last_known"] = Field(
        description="what the SDK does when it cannot reach the server: closed = size 0, "
                    "last_known = the last answer it had")
    cache_s: float = Field(description="how long the SDK reuses an answer")
    timeout_ms: float = Field(description="the SDK's bound on one request")


class Sizing(BaseModel):
    agent: str
    state: Literal["candidate", "promoted", "killed"] = Field(
        description="the agent's own lifecycle state")
    killed: bool = Field(description="true when the agent gets no size: its own kill or its "
                                     "strategy class's")
    stopped_by: Literal["agent", "strategy"] | None = None
    strategy: str | None = Field(None, description="the killed strategy class, if any")
    reason: str | None = Field(None, description="why the agent gets no size")
    multiplier: float = Field(description="confidence multiplier (1.0 before any eligible run)")
    base_size: float | None = None
    score: float
    size: float | None = Field(None, description="base_size × |score| × multiplier; 0 when "
                                                 "killed; null without base_size")
    seq: int = Field(description="the decision head (seq) this answer reflects")
    decision_seq: int | None = Field(None, description="the record that set the agent's state")
    known_ts: str | None = Field(None, description="knowledge time of the agent's newest "
                                                   "realized run")
    as_of: str = Field(description="when the server read this state (UTC)")
    kill_stops: str = Field(description="what a kill stops: new size, not open positions")
    policy: SizingPolicy


def answer(snap: Snapshot, agent: str, base_size: float | None, score: float
           ) -> dict[str, Any]:
    """The response body for one agent (pure given the snapshot); `size` only with a
    base_size (the route has checked both numbers: finite, base_size ≥ 0)."""
    st = snap.agent(agent)
    size = None if base_size is None else sized(base_size, score, st.multiplier, st.killed)
    return {
        "agent": agent, "state": st.state, "killed": st.killed, "stopped_by": st.stopped_by,
        "strategy": st.strategy, "reason": st.reason, "multiplier": st.multiplier,
        "base_size": base_size, "score": score, "size": size, "seq": snap.seq,
        "decision_seq": st.seq, "known_ts": ts_text(st.known_ts) if st.known_ts else None,
        "as_of": ts_text(snap.built_at), "kill_stops": KILL_STOPS,
        "policy": snap.sizing.model_dump(mode="json"),
    }


def _number(x: float | None) -> bytes:
    """A number as json.dumps writes it (repr of the float; null for None)."""
    return b"null" if x is None else float.__repr__(x).encode()


def parts(snap: Snapshot, agent: str) -> tuple[bytes, bytes]:
    """The encoded body around the request's numbers, for one agent at one snapshot: the bytes
    before `"base_size": ` and after the size (cached on the snapshot)."""
    got = snap.encoded.get(agent)
    if got is None:
        doc = answer(snap, agent, None, 1.0)
        keys = list(doc)
        i = keys.index(_NUMBERS[0])
        assert tuple(keys[i:i + 3]) == _NUMBERS
        head = json.dumps({k: doc[k] for k in keys[:i]})[:-1] + ", "
        tail = ", " + json.dumps({k: doc[k] for k in keys[i + 3:]})[1:]
        got = head.encode() + b'"base_size": ', tail.encode()
        if len(snap.encoded) >= MAX_ENCODED:
            snap.encoded.clear()
        snap.encoded[agent] = got
    return got


def encoded(snap: Snapshot, agent: str, base_size: float | None, score: float) -> bytes | None:
    """The response body, byte for byte `json.dumps(answer(...))`; None when the size is not a
    finite number (finite inputs whose product is not: 1e308 × 1e10), which JSON cannot say."""
    st = snap.agent(agent)
    size = None if base_size is None else sized(base_size, score, st.multiplier, st.killed)
    if size is not None and not math.isfinite(size):
        return None
    head, tail = parts(snap, agent)
    return b"".join((head, _number(base_size), b', "score": ', _number(score), b', "size": ',
                     _number(size), tail))


@router.get(
    "/v1/agents/{agent:path}/sizing",
    summary="The size for an agent's signal now (state, multiplier, decision seq)",
    response_class=JSONResponse,
    responses={200: {"model": Sizing}, **AUTH_ERRORS,
               404: {"model": Problem,
                     "description": "no such route: an agent name a URL path cannot carry"},
               503: {"model": Problem, "description": "the sizing state could not be read yet"}},
)
async def get_sizing(
    request: Request, agent: str,
    base_size: Annotated[float | None, Query(
        ge=0, le=BASE_SIZE_MAX, allow_inf_nan=False,
        description="the signal's full size (at most 1e15); without it, no size")
    ] = None,
    score: Annotated[float, Query(
        ge=-SCORE_MAX, le=SCORE_MAX, allow_inf_nan=False,
        description="the signal's score (|score| at most 1e6); its sign is the caller's")] = 1.0,
    who: Principal = Depends(require("read")),
) -> Response:
    t0 = time.perf_counter()
    live: LiveState = request.app.state.live
    snap = live.current()
    try:
        if snap is None:
            raise HTTPException(503, f"sizing state not read yet: {live.last_error or 'starting'}",
                                headers={"Retry-After": "1"})
        # Serialised here, not through a response_model: the body is spliced from cached
        # bytes (Sizing documents it; a test checks the shape against it).
        body = encoded(snap, agent, base_size, score)
        if body is None:
            # finite inputs whose product is not (1e308 × 1e10): no size to give, and JSON
            # has no Infinity
            raise HTTPException(422, [{"loc": ["query", "base_size"], "type": "value_error",
                                       "msg": "base_size × |score| × multiplier is not a "
                                              "finite number"}])
        return Response(body, media_type="application/json")
    finally:
        request.app.state.metrics.sizing.observe(time.perf_counter() - t0)
