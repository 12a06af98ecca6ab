"""The governance methods of `alphatrace.Database` (mixed into it by alphatrace.api)."""

from __future__ import annotations

from alphatrace.store import Store


class GovernanceAPI:
    store: Store
