"""The suite's hypothesis settings: no test may depend on the machine's speed."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def test_loaded_profile_has_no_deadline_and_tolerates_slow_data() -> None:
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check

