"""A trading agent that sizes every signal with alphatrace and stops opening positions when killed.

    export ALPHATRACE_URL=http://127.0.0.1:8700
    export ALPHATRACE_API_KEY=atk_...    # scope ingest: the SDK sends the agent's runs
    export ALPHATRACE_READ_KEY=atk_...   # scope read: alphatrace.size() asks the server
    python examples/trading_agent.py --agent MyAgent --edge-bps -40

Each signal is one run: an LLM call's usage and the signal (telemetry and an alpha event)
when it opens, and the venue's realized PnL (a pnl event) when the position closes `--hold`
signals later, so the server's gates have evidence. Before opening, the agent asks
`alphatrace.size(agent, base_size, score)`: base_size × |score| × the agent's confidence
multiplier, from the server (cached for the policy's `sizing.cache_s`, 1 s by default).

A kill stops new size only (docs/governance.md §Sizing): when `size()` raises GovernanceError
the agent opens nothing more, prints why, lets its open positions run to their exits (closing
them is its own job, not alphatrace's) and ends. A size of 0 without that error means the server
could not answer and the policy fails closed: the signal is skipped, and the agent goes on.

The market is simulated: each trade's realized PnL is drawn from a normal distribution with
mean `--edge-bps` (negative: a losing agent, which the shipped gates kill after 5 runs).
Every line starts with the wall-clock time (UTC) it happened.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from collections import deque
from dataclasses import dataclass

import alphatrace
from alphatrace.errors import GovernanceError
from alphatrace.sdk import Run, configure


@dataclass
class Position:
    run: Run
    direction: str
    size_usd: float
    closes_at: int  # the signal number at which it exits


def say(what: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(f"{stamp} {what}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agent", default="ExampleMomentumAgent")
    ap.add_argument("--strategy", default="MOMENTUM")
    ap.add_argument("--symbol", default="BTCUSDT")
    ap.add_argument("--base-size", type=float, default=10_000.0, help="USD at score 1")
    ap.add_argument("--signals", type=int, default=200, help="signals to trade at most")
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between signals")
    ap.add_argument("--hold", type=int, default=1, help="signals a position stays open")
    ap.add_argument("--edge-bps", type=float, default=5.0, help="mean realized PnL per trade")
    ap.add_argument("--noise-bps", type=float, default=20.0, help="its standard deviation")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    if not os.environ.get("ALPHATRACE_URL"):
        sys.exit("set ALPHATRACE_URL (and ALPHATRACE_API_KEY, ALPHATRACE_READ_KEY) to a "
                 "running `alphatrace serve`")
    configure(flush_interval_s=0.2)  # evidence reaches the server within a fraction of a second
    rng = random.Random(args.seed)
    book: deque[Position] = deque()
    killed = False
    opened = 0

    for n in range(args.signals + args.hold):
        while book and book[0].closes_at <= n:  # exits are the agent's, killed or not
            pos = book.popleft()
            pnl = rng.gauss(args.edge_bps, args.noise_bps)
            pos.run.pnl(round(pnl, 2), symbol=args.symbol)
            say(f"CLOSE run={pos.run.run_id} {pos.direction} {pnl:+.1f} bps "
                f"({pnl * pos.size_usd / 1e4:+,.2f} USD)")
        if killed or n >= args.signals:
            if not book:
                break
            time.sleep(args.interval)
            continue
        score = round(rng.uniform(0.2, 1.0), 3)
        direction = rng.choice(("LONG", "SHORT"))
        try:
            size = alphatrace.size(args.agent, args.base_size, score)
        except GovernanceError as e:
            killed = True
            say(f"KILLED {e}; no new positions, {len(book)} open position(s) run to their exits")
            continue
        if size <= 0:
            say("SKIP size 0: the sizing server did not answer (policy fail: closed)")
        else:
            with alphatrace.run(agent=args.agent, strategy=args.strategy) as run:
                run.usage(model="gpt-4o-mini", tokens_in=rng.randint(800, 1600),
                          tokens_out=rng.randint(100, 300))
                run.alpha(args.symbol, direction, score, size_usd=size)
            book.append(Position(run, direction, size, n + args.hold))
            opened += 1
            say(f"OPEN run={run.run_id} {direction} {args.symbol} {size:,.2f} USD "
                f"(score {score}, multiplier {size / (args.base_size * score):.4f})")
        time.sleep(args.interval)

    alphatrace.flush()
    say(f"DONE opened={opened} killed={'yes' if killed else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
