"""The `alphatrace` entry point: forward the command to a server when one should run it
(`cli/remote.py`), else run the typer app (`cli/app.py`) here. `serve` first starts itself
again under mimalloc (`server/allocator.py`), before the app is even imported."""

from __future__ import annotations

from typing import Any

__all__ = ["main"]  # and `app`, imported on first use (`__getattr__`)


def __getattr__(name: str) -> Any:
    if name == "app":  # imported on first use: `main` may replace the process before
        from alphatrace.cli.app import app

        return app
    raise AttributeError(name)


def main() -> None:
    import sys

    if "serve" in sys.argv[1:2]:
        from alphatrace.server.allocator import run_under_mimalloc

        run_under_mimalloc()
    from alphatrace.cli.app import app
    from alphatrace.cli.remote import forward, local_args

    code = forward(sys.argv[1:])  # a server (remote, or holding the store) runs the command
    if code is not None:
        raise SystemExit(code)
    app(args=local_args(sys.argv[1:]))


if __name__ == "__main__":
    main()
