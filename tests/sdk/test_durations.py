"""The one duration grammar (``rollwise.durations``, docs/spec/durations.md) and its users.

Its other users are tested where they live: plans (tests/rollouts/test_plan.py), the results
``window`` (tests/server/test_results.py, tests/analysis/test_reduce.py), the CLI
(tests/server/test_cli.py) and the server's settings (tests/server/test_settings.py).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rollwise
from rollwise.analysis.reduce import parse_window
from rollwise.durations import (
    MAX_SECONDS,
    PATTERN,
    DurationError,
    format_duration,
    parse_duration,
)
from rollwise.errors import ConfigurationError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90", 90.0), (90, 90.0), (1.5, 1.5), ("0", 0.0), ("0.25", 0.25),
        ("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0), ("14d", 1209600.0), ("2w", 1209600.0),
        ("500ms", 0.5), ("1.5h", 5400.0), ("1h30m", 5400.0), ("1d12h", 129600.0),
        ("2m30s", 150.0), ("1s500ms", 1.5), ("1w2d3h4m5s6ms", 788645.006), (" 14d\n", 1209600.0),
        ("3652.5d", 3652.5 * 86400),
    ],
)  # fmt: skip
def test_durations_in_the_grammar(value: object, seconds: float) -> None:
    assert parse_duration(value, "f") == pytest.approx(seconds, rel=1e-15)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is not a duration"),
        ("d", "is not a duration"),
        ("1y", "is not a duration"),  # no calendar units
        ("2W", "is not a duration"),  # lowercase only
        ("10M", "is not a duration"),  # minutes or months? neither
        ("1 h", "is not a duration"),  # no inner space
        ("1e3s", "is not a duration"),  # no exponent
        (".5h", "is not a duration"),
        ("5.h", "is not a duration"),
        ("-1s", "is not a duration"),
        ("+1s", "is not a duration"),
        ("1,000s", "is not a duration"),
        ("nan", "is not a duration"),
        ("inf", "is not a duration"),
        ("1h" * 60, "is not a duration"),  # over 100 characters
        (True, "is not a duration"),
        (None, "is not a duration"),
        (float("nan"), "is not a duration"),
        ([1], "is not a duration"),
        ("30m1h", "has its units out of order"),
        ("1h1h", "has its units out of order"),
        ("1ms1s", "has its units out of order"),
        (-1, "is negative"),
        (-0.5, "is negative"),
        ("5300w", "is longer than 100 years"),
        (MAX_SECONDS + 1, "is longer than 100 years"),
        (float("inf"), "is longer than 100 years"),
        (10**400, "is longer than 100 years"),  # an int no float can hold
        ("9" * 99, "is longer than 100 years"),
    ],
)
def test_anything_else_is_refused_naming_the_field(value: object, reason: str) -> None:
    with pytest.raises(DurationError) as error:
        parse_duration(value, "attribution_window")
    message = str(error.value)
    assert message.startswith("attribution_window: ")
    assert reason in message
    assert isinstance(error.value, ConfigurationError)
    assert isinstance(error.value, ValueError)
    if error.value.malformed:  # says what a duration looks like
        assert "such as 90s, 30m, 1h30m, 14d, 2w or 500ms" in message
        assert "or a number of seconds" in message


def test_positive_and_unit_required() -> None:
    assert parse_duration("0s", "f") == 0.0
    with pytest.raises(DurationError, match="a positive duration is needed"):
        parse_duration("0s", "f", positive=True)
    assert parse_duration("90s", "--since", bare_seconds=False) == 90.0
    for bare in ("2026", 2026):
        with pytest.raises(DurationError, match="needs a unit") as error:
            parse_duration(bare, "--since", bare_seconds=False)
        assert "number of seconds" not in str(error.value)


def test_the_error_knows_its_parts() -> None:
    with pytest.raises(DurationError) as error:
        parse_duration("a" * 80, "window")
    assert error.value.field == "window"
    assert error.value.shown == repr("a" * 80)[:57] + "..."
    assert str(error.value) == f"window: {error.value.detail}"
    assert error.value.detail == f"{error.value.shown} {error.value.reason}"


def test_format_duration_is_the_largest_exact_unit() -> None:
    cases = {1209600: "2w", 86400: "1d", 5400: "90m", 90: "90s", 0.25: "250ms", 0: "0s",
             1.5: "1500ms", 3600.001: "3600001ms"}  # fmt: skip
    assert {seconds: format_duration(seconds) for seconds in cases} == cases
    with pytest.raises(ValueError, match="format_duration"):
        format_duration(-1)


@given(st.integers(min_value=0, max_value=int(MAX_SECONDS * 1000)))
def test_format_and_parse_round_trip_to_the_millisecond(millis: int) -> None:
    seconds = millis / 1000
    text = format_duration(seconds)
    assert re.fullmatch(PATTERN, text)
    assert parse_duration(text, "f") == pytest.approx(seconds, rel=1e-15, abs=1e-9)


@given(st.text(max_size=30))
def test_any_text_parses_or_is_refused_clearly(text: str) -> None:
    if re.fullmatch(PATTERN, text.strip()) is None:
        with pytest.raises(DurationError, match=r"^f: "):
            parse_duration(text, "f")
    else:  # in the grammar; refused only for its order of units or its length
        try:
            seconds = parse_duration(text, "f")
        except DurationError as error:
            refused = error
        else:
            assert 0 <= seconds <= MAX_SECONDS
            return
        assert not refused.malformed


def test_the_results_window_is_a_duration_or_none() -> None:
    assert parse_window("2w") == 1209600.0
    assert parse_window("1h30m") == 5400.0
    assert parse_window("none") is None
    with pytest.raises(ConfigurationError, match=r"^window: '2 w' is not a duration.*or none"):
        parse_window("2 w")


def test_the_sdk_reads_its_times_from_the_environment_as_durations() -> None:
    base = {"ROLLWISE_URL": "http://127.0.0.1:9", "ROLLWISE_SDK_KEY": "k"}
    config = rollwise.ClientConfig.from_env(
        {**base, "ROLLWISE_FLUSH_INTERVAL": "500ms", "ROLLWISE_DEDUP_TTL": "1h",
         "ROLLWISE_POLL_INTERVAL": "2.5", "ROLLWISE_STREAM_TIMEOUT": "1m30s"}
    )  # fmt: skip
    assert (config.flush_interval, config.dedup_ttl, config.poll_interval) == (0.5, 3600.0, 2.5)
    assert config.stream_timeout == 90.0
    with pytest.raises(ConfigurationError, match=r"^ROLLWISE_FLUSH_INTERVAL: '1 s' is not a"):
        rollwise.ClientConfig.from_env({**base, "ROLLWISE_FLUSH_INTERVAL": "1 s"})
    with pytest.raises(ConfigurationError, match=r"^ROLLWISE_CLOSE_TIMEOUT: '0' is not longer"):
        rollwise.ClientConfig.from_env({**base, "ROLLWISE_CLOSE_TIMEOUT": "0"})
