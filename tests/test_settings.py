"""Settings.from_env: defaults, overrides, and every problem reported at once."""

from __future__ import annotations

import pytest

from contract.decision import Status, Thresholds
from contract.environment import Environment
from lambdas.checker.settings import ConfigurationError, Settings

REQUIRED = {
    "BINS_TABLE": "bins",
    "CHECKS_TABLE": "checks",
    "IDEMPOTENCY_TABLE": "idempotency",
    "ALERTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts",
    "ENDPOINT_NAME": "counter",
}


def test_minimal_environment_gives_the_defaults():
    settings = Settings.from_env(REQUIRED)
    assert settings == Settings(
        bins_table="bins",
        checks_table="checks",
        idempotency_table="idempotency",
        alerts_topic_arn="arn:aws:sns:us-east-1:123456789012:alerts",
        endpoint_name="counter",
    )
    assert settings.endpoint_input == "s3_uri"
    assert settings.thresholds == Thresholds(match=0.449, mismatch=0.022)
    assert settings.alert_statuses == {Status.MISMATCH, Status.UNCERTAIN}
    assert settings.max_image_bytes == 5 * 1024 * 1024
    assert (settings.endpoint_read_timeout_s, settings.connect_timeout_s) == (10.0, 2.0)
    assert (settings.max_attempts, settings.idempotency_ttl_s) == (3, 86400)


def test_overrides_are_applied():
    settings = Settings.from_env(
        {
            **REQUIRED,
            "ENDPOINT_INPUT": "bytes",
            "MATCH_THRESHOLD": "0.7",
            "MISMATCH_THRESHOLD": "0.2",
            "ALERT_STATUSES": "MISMATCH",
            "MAX_IMAGE_BYTES": "1048576",
            "AWS_MAX_ATTEMPTS": "5",
        }
    )
    assert settings.endpoint_input == "bytes"
    assert settings.thresholds == Thresholds(match=0.7, mismatch=0.2)
    assert settings.alert_statuses == {Status.MISMATCH}
    assert settings.max_image_bytes == 1048576
    assert settings.max_attempts == 5


def test_missing_variables_are_all_named_in_one_error():
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({})
    assert str(caught.value) == (
        "checker configuration: BINS_TABLE is required; CHECKS_TABLE is required; "
        "IDEMPOTENCY_TABLE is required; ALERTS_TOPIC_ARN is required; ENDPOINT_NAME is required"
    )


def test_blank_required_variable_counts_as_missing():
    with pytest.raises(
        ConfigurationError, match=r"^checker configuration: ENDPOINT_NAME is required$"
    ):
        Settings.from_env({**REQUIRED, "ENDPOINT_NAME": "  "})


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        (
            {"ENDPOINT_INPUT": "base64"},
            "ENDPOINT_INPUT must be one of ('s3_uri', 'bytes'), got 'base64'",
        ),
        ({"MATCH_THRESHOLD": "abc"}, "MATCH_THRESHOLD must be a number, got 'abc'"),
        (
            {"MATCH_THRESHOLD": "0.5", "MISMATCH_THRESHOLD": "0.9"},
            "thresholds need 0 <= mismatch < match <= 1, got mismatch=0.9 match=0.5",
        ),
        ({"ALERT_STATUSES": "NOPE"}, "ALERT_STATUSES has unknown statuses ['NOPE']"),
        ({"MAX_IMAGE_BYTES": "0"}, "MAX_IMAGE_BYTES must be > 0, got '0'"),
    ],
)
def test_bad_values_are_reported(overrides, problem):
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({**REQUIRED, **overrides})
    assert str(caught.value) == f"checker configuration: {problem}"


def test_bad_values_are_reported_together():
    env = {
        "ENDPOINT_INPUT": "base64",
        "MATCH_THRESHOLD": "abc",
        "ALERT_STATUSES": "NOPE",
        "MAX_IMAGE_BYTES": "0",
    }
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(env)
    message = str(caught.value)
    for problem in [
        "BINS_TABLE is required",
        "ENDPOINT_NAME is required",
        "ENDPOINT_INPUT must be one of",
        "MATCH_THRESHOLD must be a number, got 'abc'",
        "ALERT_STATUSES has unknown statuses ['NOPE']",
        "MAX_IMAGE_BYTES must be > 0, got '0'",
    ]:
        assert problem in message


def test_a_setting_is_read_without_its_surrounding_spaces_and_reported_as_read():
    read = Environment({"A": " 7 ", "B": " 1.5x ", "C": "-2", "D": " yes ", "E": "11"})
    assert read.number("A", 3) == 7
    assert read.number("B", 2.0) == 2.0  # the default, and a problem
    assert read.number("C", 1.0, positive=False) == -2.0
    assert read.flag("D", False) is True
    assert read.number("E", 5, most=10) == 11
    with pytest.raises(ConfigurationError) as caught:
        read.check("thing")
    assert str(caught.value) == (
        "thing configuration: B must be a number, got '1.5x'; E must be > 0 and <= 10, got '11'"
    )
    Environment({}).check("thing")  # no problem, no error
