"""`make demo` shows progress from its first second, and the package metadata builds without
deprecation warnings (the SPDX license string)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_announces_each_step_and_never_runs_pip_quietly() -> None:
    # --no-print-directory: under `make test` the nested make would announce its directory first
    out = subprocess.run(["make", "--no-print-directory", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].startswith('echo "==> [1/3]')  # the very first thing make does is say so
    pips = [line for line in out if " -m pip install" in line]
    assert len(pips) == 2
    for line in pips:
        assert not re.search(r"\s-q\b|--quiet", line), line
        assert out[out.index(line) - 1].startswith('echo "==>'), line
    demo = next(i for i, line in enumerate(out) if "alphatrace demo" in line)
    assert out[demo - 1].startswith('echo "==>')


def test_license_is_an_spdx_string() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in meta["build-system"]["requires"]
