"""CLI commands of the dashboard area (filled in by that area)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this area's commands to the app."""
