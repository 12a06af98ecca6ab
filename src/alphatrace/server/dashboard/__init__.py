"""The dashboard: the CLI's answers as pages (served by `alphatrace serve` at `/`) and as one
self-contained HTML file (`alphatrace report`). `mount(app)` adds it to a collector app."""

from alphatrace.server.dashboard.routes import mount

__all__ = ["mount"]
