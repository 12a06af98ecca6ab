"""Run the collector with the dashboard mounted: `python -m tests.dashboard.serve_app DB PORT`.

Until `create_app` mounts the dashboard itself this is how the browser tests serve it; `mount`
is idempotent, so it keeps working after."""

from __future__ import annotations

import sys

import uvicorn

from alphatrace.server.app import create_app
from alphatrace.server.dashboard import mount


def main() -> None:
    db, port = sys.argv[1], int(sys.argv[2])
    app = create_app(db)
    mount(app)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
