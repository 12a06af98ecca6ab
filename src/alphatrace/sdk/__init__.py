"""Instrument agents: `with alphatrace.run(agent=..., strategy=...) as run:` and three calls.

    import alphatrace
    with alphatrace.run(agent="CryptoFundingRateAgent", strategy="FUNDING") as run:
        run.usage(model="gpt-4o", tokens_in=1830, tokens_out=421)
        run.alpha(symbol="BTC", direction="SHORT", score=-1.42, regime="MEAN_REVERT")

Events go to a spool folder by default, to the collector when $ALPHATRACE_URL (or
`configure(url=...)`) is set, or into a store opened in-process with `configure(db=...)`.
"""

from alphatrace.sdk.emitter import Config, configure, flush, shutdown
from alphatrace.sdk.ids import uuid7
from alphatrace.sdk.prices import ModelPrice, PriceTable
from alphatrace.sdk.run import Call, Run, RunScope, current_run, run

__all__ = [
    "Call",
    "Config",
    "ModelPrice",
    "PriceTable",
    "Run",
    "RunScope",
    "configure",
    "current_run",
    "flush",
    "run",
    "shutdown",
    "uuid7",
]
