"""`schemathesis run --checks all` against the live collector's OpenAPI document: no failures.

Generated requests include schema-violating bodies, missing/odd auth, unsupported methods and
a stateful phase (create → list → revoke keys); the admin key's own revocation is refused, so the
run cannot lock itself out. A known run_id is supplied so GET /v1/runs reaches the 200 path.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import start_server

pytestmark = pytest.mark.slow  # see `make test-fast`

pytest.importorskip("schemathesis")


def test_openapi_contract_holds(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    try:
        ev = [{"type": "alpha", "run_id": "st-run", "agent": "St", "symbol": "BTC",
               "direction": "LONG", "ts": "2025-03-01T08:00:00Z"}]
        assert httpx.post(srv.url + "/v1/events", json=ev, headers=srv.auth("ingest")).status_code == 200
        cfg = tmp_path / "schemathesis.toml"
        # An event that breaks its kind's schema is answered per event (207, `rejected`, kept
        # in quarantine), not by failing the batch: for /v1/events that is the rejection.
        cfg.write_text('[parameters]\n"path.run_id" = "st-run"\n\n'
                       '[checks.negative_data_rejection]\nexpected-statuses = ['
                       '"207", "400", "401", "403", "404", "405", "406", "409", "415", "422", '
                       '"428", "429", "5XX"]\n'
                       # A market file's content (a CSV or Parquet body) and whether one bar
                       # shows its interval are rejections no schema can express: 400/415
                       # answer a schema-valid body there, saying what to change.
                       + "".join(
                           f'\n[[operations]]\ninclude-name = "POST /v1/market/{t}"\n'
                           'checks.positive_data_acceptance.expected-statuses = ['
                           '"2xx", "3xx", "400", "401", "403", "404", "409", "415", "429", '
                           '"5xx"]\n' for t in ("bars", "funding")))
        exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or "schemathesis"
        res = subprocess.run(
            [exe, "--config-file", str(cfg), "run", srv.url + "/openapi.json",
             "-H", f"Authorization: Bearer {srv.keys['admin']}",
             "--checks", "all", "--max-examples", "40", "--seed", "20250301",
             "--generation-database", "none"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
        assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
        assert "failure" not in res.stdout.split("SUMMARY")[-1].lower()
        # The server is still up and its admin key still works.
        assert httpx.get(srv.url + "/v1/keys", headers=srv.auth("admin")).status_code == 200
    finally:
        srv.stop()
    assert "Traceback" not in srv.log.read_text()
