"""The policy's notify section: what loads, what is refused (naming file, line and field)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.errors import InputError
from alphatrace.governance.policy import policy_errors
from alphatrace.notify.config import env_value, subject_matches
from alphatrace.policy import parse_policy_text
from tests.notify.util import policy, policy_text


def errors(text: str) -> list[str]:
    return [str(e) for e in policy_errors(parse_policy_text(text, "p.yaml"))]


def test_a_valid_section_loads_with_defaults() -> None:
    gp = policy([{"name": "ops", "url": "https://hooks.example.com/a", "secret_env": "HOOK"},
                 {"name": "chat", "kind": "slack", "url_env": "SLACK_URL",
                  "actions": ["kill"], "subjects": ["Momo", "mm-*"]}],
                retry={"horizon": "2h"}, dashboard_url="http://at.example.com:8700/")
    ops, chat = gp.notify.targets
    assert ops.kind == "webhook" and ops.actions == ["kill", "promote", "revive"]
    assert ops.subjects == "all" and chat.subjects == ["Momo", "mm-*"]
    assert gp.notify.retry.horizon_s == 7200 and gp.notify.retry.initial_s == 1.0
    assert gp.notify.retry.max_s == 3600
    assert gp.notify.dashboard_url == "http://at.example.com:8700"
    # not part of the decision hash: adding targets does not change what decisions cite
    assert gp.hash == policy([]).hash


def test_no_section_means_no_targets() -> None:
    assert policy_errors(parse_policy_text("gates: {min_runs: 3}\n", "p.yaml")) == []
    assert policy([]).notify.targets == []


@pytest.mark.parametrize(("target", "needle"), [
    ({"name": "a", "url": "https://x.example/h"}, "a webhook needs secret_env"),
    ({"name": "a", "kind": "slack", "url": "https://x.example/h", "secret_env": "S"},
     "Slack requests are not signed"),
    ({"name": "a", "secret_env": "S"}, "give exactly one of url and url_env"),
    ({"name": "a", "url": "https://x/h", "url_env": "U", "secret_env": "S"},
     "give exactly one of url and url_env"),
    ({"name": "a", "url": "ftp://x/h", "secret_env": "S"}, "is not an http:// or https:// URL"),
    ({"name": "a", "url": "https://x/h", "secret_env": "MY-SECRET"},
     "is not an environment variable name"),
    ({"name": "a", "url": "https://x/h", "secret_env": "S", "actions": ["kil"]},
     "notify.targets.0.actions.0"),
    ({"name": "a", "url": "https://x/h", "secret_env": "S", "subjects": []},
     "at least one non-empty name"),
    ({"name": "a", "url": "https://x/h", "secret_env": "S", "kind": "email"},
     "notify.targets.0.kind"),
    ({"name": "a", "url": "https://x/h", "secret": "hunter2"}, "unknown key"),
])
def test_bad_targets_are_named(target: dict[str, object], needle: str) -> None:
    found = errors(policy_text([target]))
    assert found and any(needle in e for e in found), found
    assert all(e.startswith("p.yaml:") for e in found)  # file and line


def test_the_error_points_at_the_line_of_the_target() -> None:
    text = ("gates: {min_runs: 3}\n"
            "notify:\n"
            "  targets:\n"
            "    - {name: ok, url: 'https://x/h', secret_env: S}\n"
            "    - {name: bad, url: 'https://x/h', secret_env: S, actions: [explode]}\n")
    (e,) = errors(text)
    assert e.startswith("p.yaml:5:") and "notify.targets.1.actions.0" in e


def test_duplicate_names_and_reversed_retry_are_refused() -> None:
    two = [{"name": "a", "url": "https://x/h", "secret_env": "S"}] * 2
    assert any("two targets are named 'a'" in e for e in errors(policy_text(two)))
    assert any("retry.initial must not exceed retry.max" in e for e in errors(
        policy_text([], retry={"initial": "2h", "max": "1h"})))
    assert any("notify.retry.horizon" in e for e in errors(
        policy_text([], retry={"horizon": "soon"})))


def test_the_secret_comes_from_the_environment_and_a_missing_one_is_named() -> None:
    assert env_value("HOOK", "its signing secret", "ops", {"HOOK": "s3"}) == "s3"
    with pytest.raises(InputError, match=r"'ops'.*HOOK.*its signing secret.*not set"):
        env_value("HOOK", "its signing secret", "ops", {})


names = st.text(st.characters(codec="ascii", exclude_characters="*?[]"), min_size=1, max_size=8)


@given(names, st.lists(names, min_size=1, max_size=5))
def test_a_list_of_plain_names_matches_exactly_those(subject: str, listed: list[str]) -> None:
    assert subject_matches(listed, subject) == (subject in listed)
    assert subject_matches("all", subject)


@given(names, names)
def test_a_glob_matches_by_prefix(prefix: str, rest: str) -> None:
    assert subject_matches(prefix + "*", prefix + rest)
    assert subject_matches([prefix + "*"], prefix + rest)
    assert not subject_matches(prefix + "?", prefix) if prefix else True
