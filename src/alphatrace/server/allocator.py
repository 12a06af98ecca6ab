"""`serve` runs under mimalloc, DuckDB's allocations being most of a live pass.

A live pipeline pass is ~57 statements whose cost is mostly DuckDB planning them (binding and
optimising), which allocates and frees many small objects: glibc's `malloc`/`free` were ~18%
of a pass's CPU samples (bench/RESULTS.md, "#14's 1M round: a fixed floor"). The same pass with
mimalloc preloaded took 101-108 ms against 119-132 ms with glibc, in every alternating pair
(bench/RESULTS.md, "#14's 1M round: mimalloc under serve"). The Python client gives no way to
keep a statement's plan between passes, so the allocator is the lever.

The allocator of a process is fixed when it starts, so `alphatrace serve` started from the
command line (`cli.main.main`, and the benchmarks that measure what serve does) starts itself
again with mimalloc preloaded (`LD_PRELOAD`), before it has opened anything. The library is
the one the `cmeel-mimalloc` wheel installs (a dependency on Linux x86_64). Nothing is done
when it is absent, when `LD_PRELOAD` is already set (the operator chose), or with
`ALPHATRACE_ALLOCATOR=system`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from importlib import metadata

ENV = "ALPHATRACE_ALLOCATOR"  # "system": keep the C library's malloc
_DIST, _LIB = "cmeel-mimalloc", "cmeel.prefix/lib/libmimalloc.so"


def library() -> str | None:
    """The path of the installed libmimalloc.so (None: the wheel is not installed)."""
    try:
        path = metadata.distribution(_DIST).locate_file(_LIB)
    except metadata.PackageNotFoundError:
        return None
    return str(path) if os.path.isfile(str(path)) else None


def preload_env(env: Mapping[str, str], lib: str | None) -> dict[str, str] | None:
    """The environment to start again with (`lib` preloaded), or None to run as is: no
    library, already preloaded (this is the second start), `LD_PRELOAD` set by the operator,
    or `ALPHATRACE_ALLOCATOR=system`."""
    if lib is None or env.get(ENV, "mimalloc") == "system" or env.get("LD_PRELOAD"):
        return None
    return {**env, "LD_PRELOAD": lib}


def run_under_mimalloc() -> None:
    """Replace this process with the same command under mimalloc, when `preload_env` says so
    (never returns then). Call it first thing: the process is replaced as it is."""
    if not sys.platform.startswith("linux"):
        return
    env = preload_env(os.environ, library())
    if env is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, env)
