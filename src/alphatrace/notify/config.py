"""The policy's `notify` section: targets, the actions and subjects each wants, retries.

Secrets never live in the policy file: a webhook names the environment variable that holds
its HMAC secret (`secret_env`), and a target may name the variable that holds its URL
(`url_env`; a Slack incoming-webhook URL is itself a credential).
"""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alphatrace.errors import InputError
from alphatrace.parse import parse_duration

Kind = Literal["webhook", "slack"]
# What a decision record's `action` can be, plus `warn_below` (reserved for the confidence
# warning: no record carries it yet, see docs/governance.md §Notifications).
NotifyAction = Literal["kill", "promote", "revive", "inconclusive", "hold", "error", "warn_below"]
DEFAULT_ACTIONS: tuple[NotifyAction, ...] = ("kill", "promote", "revive")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GLOB = re.compile(r"[*?\[]")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _env_name(v: str | None) -> str | None:
    if v is not None and not _ENV_NAME.match(v):
        raise ValueError(f"{v!r} is not an environment variable name (letters, digits, _)")
    return v


def check_url(url: str) -> str:
    """`url` if it is an absolute http(s) URL; ValueError naming what is wrong otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return url


class Target(_Model):
    """One place decisions go."""

    name: str = Field(min_length=1)
    kind: Kind = "webhook"
    url: str | None = None
    url_env: str | None = None
    secret_env: str | None = None
    actions: list[NotifyAction] = Field(default_factory=lambda: list(DEFAULT_ACTIONS),
                                        min_length=1)
    subjects: str | list[str] = "all"

    @field_validator("url_env", "secret_env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        return _env_name(v)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v)

    @field_validator("subjects")
    @classmethod
    def _subjects(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, str) and not v:
            raise ValueError('subjects must be "all", a glob or a list of names')
        if isinstance(v, list) and (not v or any(not s for s in v)):
            raise ValueError("subjects must list at least one non-empty name")
        return v

    @model_validator(mode="after")
    def _complete(self) -> Target:
        if (self.url is None) == (self.url_env is None):
            raise ValueError(f"target {self.name!r}: give exactly one of url and url_env")
        if self.kind == "webhook" and self.secret_env is None:
            raise ValueError(f"target {self.name!r}: a webhook needs secret_env, the "
                             "environment variable that holds its signing secret")
        if self.kind == "slack" and self.secret_env is not None:
            raise ValueError(f"target {self.name!r}: Slack requests are not signed; "
                             "remove secret_env (put the URL in url_env instead)")
        return self

    def wants(self, action: str, subject: str) -> bool:
        """Whether a record with this action about this subject goes to this target."""
        return action in self.actions and subject_matches(self.subjects, subject)


def subject_matches(subjects: str | list[str], subject: str) -> bool:
    """`all`; a glob (case-sensitive, `*`, `?`, `[...]`); or a list of names, each a glob
    when it has glob characters and an exact name otherwise."""
    if subjects == "all":
        return True
    patterns = [subjects] if isinstance(subjects, str) else subjects
    for p in patterns:
        if p == subject or (_GLOB.search(p) and fnmatch.fnmatchcase(subject, p)):
            return True
    return False


class Retry(_Model):
    """Exponential backoff with jitter: the n-th retry waits a uniform draw in
    [d/2, d], d = min(initial·2^(n-1), max), until `horizon` after the decision."""

    initial: str | int | float = "1s"
    max: str | int | float = "1h"
    horizon: str | int | float = "24h"

    @field_validator("initial", "max", "horizon")
    @classmethod
    def _duration(cls, v: str | int | float) -> str | int | float:
        parse_duration(v)
        return v

    @model_validator(mode="after")
    def _ordered(self) -> Retry:
        if self.initial_s > self.max_s:
            raise ValueError("retry.initial must not exceed retry.max")
        return self

    @property
    def initial_s(self) -> float:
        return parse_duration(self.initial).total_seconds()

    @property
    def max_s(self) -> float:
        return parse_duration(self.max).total_seconds()

    @property
    def horizon_s(self) -> float:
        return parse_duration(self.horizon).total_seconds()


class NotifySection(_Model):
    """`notify:` of a policy. No section: no targets."""

    targets: list[Target] = Field(default_factory=list)
    retry: Retry = Field(default_factory=Retry)
    dashboard_url: str | None = None  # base of the links in payloads, e.g. http://host:8700

    @field_validator("dashboard_url")
    @classmethod
    def _base(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v).rstrip("/")

    @model_validator(mode="after")
    def _unique(self) -> NotifySection:
        seen: set[str] = set()
        for t in self.targets:
            if t.name in seen:
                raise ValueError(f"two targets are named {t.name!r}: names must be unique "
                                 "(deliveries and `notify test` name them)")
            seen.add(t.name)
        return self

    def find(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


def env_value(var: str, what: str, target: str, environ: dict[str, str] | None = None) -> str:
    """The value of environment variable `var`; InputError naming it and the target if unset."""
    env: Any = os.environ if environ is None else environ
    value = env.get(var)
    if not value:
        raise InputError(f"notify target {target!r}: environment variable {var} ({what}) "
                         "is not set")
    return str(value)
