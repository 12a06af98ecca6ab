"""Policy files: YAML (or TOML) with sections per area, validated by each area's pydantic model.

Errors point at the file, line and column of the offending key (from YAML node marks), so a
policy that fails to load tells the user exactly where to look. The policy hash is over the
canonical JSON of the parsed document, so reformatting a file does not change it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from alphatrace.errors import PolicyError

DEFAULT_POLICY = "default.yaml"

M = TypeVar("M", bound=BaseModel)


def _marks(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], tuple[int, int]]) -> None:
    out[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[(*path, key)] = (k.start_mark.line + 1, k.start_mark.column + 1)
            _marks(v, (*path, key), out)
            out[(*path, key)] = (k.start_mark.line + 1, k.start_mark.column + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _marks(v, (*path, i), out)


@dataclass
class Policy:
    """A loaded policy document. Areas read their section with `section()`."""

    data: dict[str, Any]
    path: str
    positions: dict[tuple[Any, ...], tuple[int, int]] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return policy_hash(self.data)

    def locate(self, keypath: Sequence[Any]) -> tuple[int | None, int | None]:
        """Line and column of the deepest known prefix of `keypath`."""
        kp = tuple(keypath)
        while kp:
            if kp in self.positions:
                return self.positions[kp]
            kp = kp[:-1]
        return None, None

    def error(self, keypath: Sequence[Any], message: str, suggestion: str | None = None) -> PolicyError:
        line, col = self.locate(keypath)
        where = ".".join(str(k) for k in keypath)
        return PolicyError(f"{where}: {message}" if where else message, path=self.path,
                           line=line, column=col, suggestion=suggestion)

    def section(self, name: str, model: type[M]) -> M:
        """The section validated by `model`; a missing section means all defaults."""
        raw = self.data.get(name) or {}
        try:
            return model.model_validate(raw)
        except ValidationError as e:
            first = e.errors()[0]
            loc = (name, *first["loc"])
            raise self.error(loc, first["msg"]) from None

    def section_hash(self, name: str) -> str:
        return policy_hash(self.data.get(name) or {})


def policy_hash(data: Any) -> str:
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canon.encode()).hexdigest()


def parse_policy_text(text: str, path: str) -> Policy:
    if path.endswith(".toml"):
        try:
            return Policy(tomllib.loads(text), path)
        except tomllib.TOMLDecodeError as e:
            raise PolicyError(str(e), path=path) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        raise PolicyError(
            f"YAML syntax error: {e.problem}", path=path,
            line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None,
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError("a policy must be a mapping of sections", path=path, line=1, column=1)
    positions: dict[tuple[Any, ...], tuple[int, int]] = {}
    if node is not None:
        _marks(node, (), positions)
    return Policy(data, path, positions)


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy at `path`, or the shipped default."""
    if path is None:
        text = resources.files("alphatrace.policies").joinpath(DEFAULT_POLICY).read_text("utf-8")
        return parse_policy_text(text, f"<default policy {DEFAULT_POLICY}>")
    p = Path(path)
    if not p.is_file():
        raise PolicyError("no such policy file", path=str(p))
    return parse_policy_text(p.read_text("utf-8"), str(p))
