"""Policy files: YAML (or TOML) with sections per area, validated by each area's pydantic model.

Errors point at the file, line and column of the offending key (from YAML node marks), so a
policy that fails to load tells the user exactly where to look. The policy hash is over the
canonical JSON of the parsed document, so reformatting a file does not change it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tomllib
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from alphatrace.errors import PolicyError

DEFAULT_POLICY = "default.yaml"
# The seed's gates (docs/architecture.md §Governance), for one evaluation at the end of a
# batch; its comments say why they do not suit the live loop, which the default's gates are
# sized for.
SEED_POLICY = "seed.yaml"

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
        value, errors = self.checked_section(name, model)
        if errors:
            raise errors[0]
        assert value is not None
        return value

    def checked_section(self, name: str, model: type[M]) -> tuple[M | None, list[PolicyError]]:
        """The section validated by `model` and every error in it (file, line, column and a
        suggestion each), so a check can report them all in one pass."""
        raw = self.data.get(name)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            return None, [self.error((name,), f"must be a mapping, got {type(raw).__name__}")]
        try:
            return model.model_validate(raw), []
        except ValidationError as e:
            return None, validation_errors(self, name, model, e)

    def section_hash(self, name: str) -> str:
        return policy_hash(self.data.get(name) or {})


def validation_errors(policy: Policy, name: str, model: type[BaseModel],
                      e: ValidationError) -> list[PolicyError]:
    """pydantic's errors of section `name` as PolicyErrors, unknown keys first (an unknown key
    beside a missing one is usually the same typo: the missing one is not repeated)."""
    errs = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")
    typo_parents = {tuple(x["loc"][:-1]) for x in errs if x["type"] == "extra_forbidden"}
    out: list[PolicyError] = []
    seen: set[tuple[Any, ...]] = set()
    for err in errs:
        loc = tuple(err["loc"])
        if (err["type"] == "missing" and loc[:-1] in typo_parents) or loc in seen:
            continue
        seen.add(loc)
        if err["type"] == "extra_forbidden":
            known = fields_at(model, loc)
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.5)
            suggestion = (f"did you mean {close[0]!r}?" if close
                          else f"known keys: {', '.join(known)}" if known else None)
            msg = "unknown key"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] in ("string_type", "int_type", "float_type", "bool_type",
                               "int_parsing", "float_parsing"):
                msg += f" (got {err['input']!r})"
            suggestion = type_hint(err["type"], err.get("input"))
        out.append(policy.error((name, *loc), msg, suggestion))
    return out


def fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model that `loc` points into, for 'did you mean'."""
    current: Any = model
    for key in loc[:-1]:
        if isinstance(key, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        fld = current.model_fields.get(str(key))
        if fld is None:
            return []
        current = _model_in(fld.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, dict, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def type_hint(kind: str, value: Any) -> str | None:
    """A fix for the common type mistakes of hand-written YAML."""
    if kind in ("int_type", "float_type", "int_parsing", "float_parsing") and isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return "write a number"
        return "write the number without quotes"
    if kind == "bool_type":
        return "write true or false"
    if kind == "string_type":
        return 'quote it, e.g. when: "error_rate > 0.2"'
    if kind in ("list_type", "dict_type", "model_type"):
        return "see the shipped default.yaml for the expected shape"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return "see the comments in the shipped default.yaml for the allowed range"
    return None


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


def shipped_policy(name: str) -> Policy:
    """A policy file shipped in `alphatrace/policies` (DEFAULT_POLICY, SEED_POLICY)."""
    return parse_policy_text(shipped_text(name), shipped_label(name))


def shipped_label(name: str) -> str:
    """What a shipped policy's `path` says (/healthz shows it); `shipped_name` reads it back."""
    return f"<default policy {name}>" if name == DEFAULT_POLICY else f"<shipped policy {name}>"


def shipped_name(label: str) -> str | None:
    """The shipped file a `shipped_label` names, else None (a user's file)."""
    m = re.fullmatch(r"<(?:default|shipped) policy ([\w.-]+)>", label)
    return m.group(1) if m else None


def shipped_text(name: str) -> str:
    return resources.files("alphatrace.policies").joinpath(name).read_text("utf-8")


# The shipped policies by the names `--policy` accepts for them (`load_policy`).
SHIPPED = {"default": DEFAULT_POLICY, "seed": SEED_POLICY}


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy at `path`, or the shipped default. A bare name of `SHIPPED` (`seed`,
    `default`) that is not a file in the working directory names the shipped policy, so users
    need not find the package's folder; a file of that name wins, so no existing command line
    changes meaning."""
    if path is None:
        return shipped_policy(DEFAULT_POLICY)
    p = Path(path)
    if p.is_file():
        return parse_policy_text(p.read_text("utf-8"), str(p))
    if str(path) in SHIPPED:
        return shipped_policy(SHIPPED[str(path)])
    raise PolicyError("no such policy file", path=str(p))
