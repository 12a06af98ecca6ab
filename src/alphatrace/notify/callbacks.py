"""In-process listeners of appended decisions: `db.on_decision(fn)` and the dispatcher's wake.

A listener runs after the appending transaction commits (never for one that rolls back), on
the thread that committed, with the records as stored; keep it short (hand work to a queue).
What it raises is logged and does not undo the append.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alphatrace.store import Store

Records = list[dict[str, Any]]
Listener = Callable[[Records], None]

_lock = threading.Lock()
_by_store: weakref.WeakKeyDictionary[Store, list[Listener]] = weakref.WeakKeyDictionary()
# (store file or None for in-memory stores, listener): every Store of that file in this process
_by_path: list[tuple[Path | None, Callable[[Records], None]]] = []


def on_decision(store: Store, fn: Listener) -> None:
    """Call `fn(records)` after each commit that appends decision records through `store`."""
    with _lock:
        _by_store.setdefault(store, []).append(fn)


def on_file(path: Path | None, fn: Listener) -> Callable[[], None]:
    """Call `fn(records)` after any Store of the file `path` in this process appends records
    (the server's command route opens its own Store); returns the function that stops it."""
    key = path.resolve() if path is not None else None
    entry = (key, fn)
    with _lock:
        _by_path.append(entry)

    def remove() -> None:
        with _lock:
            if entry in _by_path:
                _by_path.remove(entry)

    return remove


def appended(store: Store, records: Records) -> None:
    """Schedule the listeners of `store` for when its transaction commits."""
    if not records:
        return
    with _lock:
        listeners = list(_by_store.get(store, []))
        key = store.path.resolve() if store.path is not None else None
        listeners += [fn for p, fn in _by_path if p is not None and p == key]
    for fn in listeners:
        store.after_commit(lambda fn=fn: fn([dict(r) for r in records]))  # type: ignore[misc]
