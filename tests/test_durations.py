import math

import pytest

from slm_bench.durations import MAX_SECONDS, format_duration, parse_duration
from slm_bench.errors import BenchError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("6h", 21600), ("90m", 5400), ("45s", 45), ("2d", 172800), ("1w", 604800),
     ("1.5h", 5400), ("6 h", 21600), (120, 120), ("120", 120)],
)  # fmt: skip
def test_durations_in_every_unit(value, seconds):
    assert parse_duration(value, "config.yaml: time_limit") == seconds


@pytest.mark.parametrize(
    "value", ["0", "0s", -1, "-1h", "six hours", "", math.nan, math.inf, True, "31d", 10**30]
)
def test_bad_durations_are_one_line_errors(value):
    with pytest.raises(BenchError) as error:
        parse_duration(value, "config.yaml: time_limit")
    message = str(error.value)
    assert message.startswith("config.yaml: time_limit: ") and "\n" not in message


def test_bound_is_inclusive_and_formatting_is_exact():
    assert parse_duration(MAX_SECONDS, "x") == MAX_SECONDS
    assert [format_duration(s) for s in (21600, 5400, 45)] == ["6h", "90m", "45s"]
