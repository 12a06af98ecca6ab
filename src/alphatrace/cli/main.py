"""The `alphatrace` entry point: forward the command to a server when one should run it
(`cli/remote.py`), else run the typer app (`cli/app.py`) here."""

from __future__ import annotations

from alphatrace.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    import sys

    from alphatrace.cli.remote import forward, local_args

    code = forward(sys.argv[1:])  # a server (remote, or holding the store) runs the command
    if code is not None:
        raise SystemExit(code)
    app(args=local_args(sys.argv[1:]))


if __name__ == "__main__":
    main()
