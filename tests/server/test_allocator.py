"""`serve` runs under mimalloc (server/allocator.py): the real dynamic loader, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alphatrace.server.allocator import ENV, library, preload_env
from tests.server.conftest import Server

LIB = library()
needs_lib = pytest.mark.skipif(LIB is None or not sys.platform.startswith("linux"),
                               reason="cmeel-mimalloc is installed on Linux x86_64 only")

# a process that asks to run under mimalloc, then says whether the library is mapped in it
PROBE = ("from alphatrace.server.allocator import run_under_mimalloc; run_under_mimalloc(); "
         "print('libmimalloc' in open('/proc/self/maps').read())")


def _probe(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in (ENV, "LD_PRELOAD")}
    res = subprocess.run([sys.executable, "-c", PROBE], env={**base, **env},
                         capture_output=True, text=True, timeout=120, check=True)
    return res.stdout.strip()


def test_preload_env_decides_from_the_library_and_the_operators_settings() -> None:
    assert preload_env({"PATH": "/bin"}, "/x/libmimalloc.so") == {
        "PATH": "/bin", "LD_PRELOAD": "/x/libmimalloc.so"}
    assert preload_env({}, None) is None  # not installed
    assert preload_env({ENV: "system"}, "/x/libmimalloc.so") is None
    assert preload_env({"LD_PRELOAD": "/y/libjemalloc.so"}, "/x/libmimalloc.so") is None
    # an empty LD_PRELOAD preloads nothing: it is no choice of the operator's
    assert preload_env({"LD_PRELOAD": ""}, "/x/lib.so") == {"LD_PRELOAD": "/x/lib.so"}


@needs_lib
def test_a_process_that_asks_runs_again_under_mimalloc() -> None:
    assert _probe() == "True"


@needs_lib
def test_the_operator_keeps_the_system_allocator_or_their_own() -> None:
    assert _probe(**{ENV: "system"}) == "False"
    # a name the dynamic loader finds on any glibc system (Debian's /lib/x86_64-linux-gnu,
    # Fedora's /lib64), not a path of one distribution's layout
    assert _probe(LD_PRELOAD="libc.so.6") == "False"


@needs_lib
def test_serve_runs_under_mimalloc(server: Server) -> None:
    maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
    assert LIB is not None and os.path.realpath(LIB) in {
        os.path.realpath(line.split()[-1]) for line in maps.splitlines() if "/" in line}
