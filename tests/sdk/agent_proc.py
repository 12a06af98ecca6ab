"""An agent process for multi-process tests: N runs of (usage, alpha, end) through the SDK.

    python -m tests.sdk.agent_proc AGENT N [--spool DIR] [--max-bytes B] [--url U --key K]
        [--fork] [--no-flush]
"""

from __future__ import annotations

import argparse
import os

import alphatrace
from alphatrace.sdk import configure


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("agent")
    p.add_argument("n", type=int)
    p.add_argument("--spool")
    p.add_argument("--max-bytes", type=int, default=16 * 1024 * 1024)
    p.add_argument("--url")
    p.add_argument("--key")
    p.add_argument("--fork", action="store_true")
    p.add_argument("--no-flush", action="store_true")
    a = p.parse_args()
    opts: dict[str, object] = {"spool_max_bytes": a.max_bytes, "flush_interval_s": 0.2}
    if a.url:
        opts.update(url=a.url, api_key=a.key, batch_size=100)
    configure(spool_dir=a.spool, **opts)  # type: ignore[arg-type]
    agent = a.agent
    child = 0
    if a.fork:
        with alphatrace.run(agent=agent) as r:  # the parent has queued events before forking
            r.alpha("BTC", "LONG")
        child = os.fork()
        if child == 0:
            agent = agent + "-child"
    for i in range(a.n):
        with alphatrace.run(agent=agent, strategy="S") as r:
            r.usage(model="gpt-4o", tokens_in=100 + i, tokens_out=10)
            r.alpha(symbol="BTC", direction="LONG" if i % 2 else "SHORT", score=float(i))
    if not a.no_flush:
        alphatrace.flush()
    # else: the atexit hook must deliver everything
    if child:
        os.waitpid(child, 0)


if __name__ == "__main__":
    main()
