"""A caller's file arguments, as the server will see them.

The server cannot read the caller's disk, so every file a command or method reads is uploaded
and the command runs in a scratch folder on the server where each file sits under a name it
can open. A path given relative and inside the working directory (`events.jsonl`,
`data/bars`) keeps its exact text, so what the store records (the ingested file's path in
`quarantine`, a policy error's file name) reads as it would locally. Any other path
(absolute, `..`, `~`) is named by its absolute path without the leading `/`
(`/data/ev/pnl.jsonl` → `data/ev/pnl.jsonl`): still recognisable, and the file name kept
(market import reads the symbol and the interval from it). A folder is uploaded as the files
the command would read from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

Expand = Callable[[list[str]], list[str]]


def safe_name(name: str) -> bool:
    """A relative path that stays inside the folder it is opened in (checked by the server
    for every name it is sent, and by the client to keep a name as given)."""
    if not name or name.startswith(("/", "~", "\\")) or "\\" in name or ":" in name[:2]:
        return False
    parts = PurePosixPath(name).parts
    return bool(parts) and ".." not in parts


@dataclass
class Uploads:
    """The files to send (server name → local path) and the names given to the caller's
    paths (local path text → server name)."""

    files: dict[str, Path] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)  # made on the server before the command

    def name_for(self, given: str) -> str:
        """The server name of the caller's path `given` (the same text when safe)."""
        if given not in self.names:
            if safe_name(given):
                self.names[given] = given
            else:
                absolute = PurePosixPath(os.path.abspath(os.path.expanduser(given)))
                self.names[given] = "/".join(absolute.parts[1:]) or "file"
        return self.names[given]

    def add(self, given: str, expand: Expand | None = None) -> str:
        """Upload `given` (a file, or a folder's files as `expand` lists them, default every
        file); its server name. A missing path is left to the server, which names it in the
        same error as a local run."""
        name = self.name_for(given)
        path = Path(given).expanduser()
        if path.is_file():
            self.files[name] = path
        elif path.is_dir():
            for f in _inside(path, expand):
                self.files[f"{name.rstrip('/')}/{f.relative_to(path).as_posix()}"] = f
        return name

    def output(self, given: str) -> str:
        """A file the command writes (uploaded too when it exists: it may be appended to)."""
        name = self.add(given)
        self.outputs.add(name)
        parent = PurePosixPath(name).parent.as_posix()
        if parent != "." and Path(given).expanduser().parent.is_dir():
            self.folders.add(parent)  # it exists here: the command may write into it there
        return name

    def local(self, name: str) -> Path | None:
        """Where the server's file `name` goes on the caller's disk: only to a path the caller
        named (a server cannot write anywhere else)."""
        for given, n in self.names.items():
            if n == name and n in self.outputs:
                return Path(given).expanduser()
        return None


def _inside(folder: Path, expand: Expand | None) -> Iterator[Path]:
    if expand is not None:
        yield from (Path(p) for p in expand([str(folder)]))
        return
    yield from sorted(p for p in folder.rglob("*") if p.is_file())
