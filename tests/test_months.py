"""A month is one type from the command line to the SQL; Dagster's partition keys are converted in
one place, and a run's months come from its partition tags."""

from __future__ import annotations

from datetime import date

import pytest

from pipelines.months import months_between, parse_month, partition_key
from pipelines.partitions import RANGE_END, RANGE_START, run_months


def test_a_month_is_read_from_the_command_line_or_a_partition_key_and_written_back() -> None:
    assert parse_month("2026-03") == date(2026, 3, 1) == parse_month("2026-03-01")
    assert partition_key(date(2026, 3, 1)) == "2026-03-01"
    for wrong in ("2026-03-15", "2026", "march", "2026-13"):
        with pytest.raises(ValueError):
            parse_month(wrong)


def test_the_months_between_two_cross_a_year_end() -> None:
    assert months_between(date(2025, 11, 1), date(2026, 2, 1)) == [
        date(2025, 11, 1),
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
    ]
    assert months_between(date(2026, 5, 1), date(2026, 5, 1)) == [date(2026, 5, 1)]


def test_a_runs_months_come_from_its_partition_tags() -> None:
    assert run_months({"dagster/partition": "2026-05-01"}) == [date(2026, 5, 1)]
    assert run_months({RANGE_START: "2026-03-01", RANGE_END: "2026-05-01"}) == [
        date(2026, 3, 1),
        date(2026, 4, 1),
        date(2026, 5, 1),
    ]
    assert run_months({"markhouse/command": "backfill"}) is None  # no month named: every loaded month
