"""Typed errors: a CLI user sees one clear line, a Python caller gets something to catch.

Every error a user can cause derives from `AlphatraceError`; the CLI prints `str(err)` and exits
with `exit_code`, never a traceback. Anything else is a bug and is allowed to surface as one.
"""

from __future__ import annotations


class AlphatraceError(Exception):
    """Base of every user-facing error."""

    exit_code = 2


class InputError(AlphatraceError):
    """Input that cannot be read at all (missing file, unreadable format)."""


class SchemaError(AlphatraceError):
    """An event or record that breaks the contract of docs/architecture.md §Events or docs/architecture.md §Market."""


class PolicyError(AlphatraceError):
    """A policy file that does not load: names file, line, column and a suggestion."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.path, self.line, self.column, self.suggestion = path, line, column, suggestion
        where = path or "<policy>"
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        text = f"{where}: {message}"
        if suggestion:
            text += f" ({suggestion})"
        super().__init__(text)


class NotFoundError(AlphatraceError):
    """A run, agent or subject that the store does not know."""

    exit_code = 1


class StoreError(AlphatraceError):
    """The store cannot be opened or is in a state we refuse to work on."""


class GovernanceError(AlphatraceError):
    """A governance action that is not allowed (e.g. sizing a killed agent)."""
