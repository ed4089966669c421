"""The paginators on their own (no HTTP, no emulator): page and time bounds, a repeated next URL,
rows at a window boundary. Expected requests and rows are written out by hand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pipelines.paging import (
    NextUrlPaginator,
    PageRequest,
    PagingError,
    PagingProblem,
    SinglePage,
    TimeWindowPaginator,
    paginate,
)


def test_single_page_asks_once() -> None:
    p = SinglePage("http://x/list", {"a": 1})
    assert p.first() == PageRequest("http://x/list", {"a": 1})
    assert p.next({"files": []}) is None


def test_next_url_is_followed_as_given_and_ends_without_one() -> None:
    p = NextUrlPaginator("http://x/price", {"page_size": 2})
    assert p.first() == PageRequest("http://x/price", {"page_size": 2})
    assert p.next({"next_url": "http://x/price?token=b"}) == PageRequest("http://x/price?token=b")
    assert p.next({"next_url": "http://x/price?token=c"}) == PageRequest("http://x/price?token=c")
    assert p.next({"next_url": None}) is None
    assert p.next({}) is None


def test_a_repeated_next_url_is_an_error_not_a_loop() -> None:
    p = NextUrlPaginator("http://x/price", {})
    p.next({"next_url": "http://x/price?token=b"})
    p.next({"next_url": "http://x/price?token=c"})
    with pytest.raises(PagingProblem, match="repeats an earlier page"):
        p.next({"next_url": "http://x/price?token=b"})


def row(ts: str, iid: str) -> dict[str, str]:
    return {"timestamp": ts, "instrument_id": iid}


def window(limit: int, max_limit: int | None = None) -> TimeWindowPaginator:
    return TimeWindowPaginator(
        "http://x/futures",
        {"coin": "BTC", "from": "t0"},
        limit=limit,
        max_limit=max_limit,
        rows=lambda page: page,
        timestamp=lambda r: r["timestamp"],
        key=lambda r: r["instrument_id"],
    )


def test_time_window_asks_again_from_the_last_timestamp_of_a_full_page() -> None:
    p = window(limit=3)
    assert p.first() == PageRequest("http://x/futures", {"coin": "BTC", "from": "t0", "limit": 3})
    page = [row("t0", "A"), row("t0", "B"), row("t1", "A")]
    assert p.next(page) == PageRequest("http://x/futures", {"coin": "BTC", "from": "t1", "limit": 3})
    assert p.next([row("t1", "B"), row("t2", "A")]) is None  # a short page is the last


def test_boundary_rows_are_neither_lost_nor_doubled() -> None:
    p = window(limit=3)
    first = [row("t0", "A"), row("t0", "B"), row("t1", "A")]
    # the next window starts at t1: it repeats t1/A, in another order than before
    second = [row("t1", "B"), row("t1", "A"), row("t2", "A")]
    third = [row("t2", "A"), row("t2", "B")]
    assert p.fresh(first) == first
    assert p.fresh(second) == [row("t1", "B"), row("t2", "A")]
    assert p.fresh(third) == [row("t2", "B")]
    assert p.fresh([]) == []


def test_a_snapshot_wider_than_the_page_doubles_the_limit_up_to_the_maximum() -> None:
    p = window(limit=2, max_limit=4)
    request = p.next([row("t0", "A"), row("t0", "B")])  # from=t0 already: cannot advance
    assert request == PageRequest("http://x/futures", {"coin": "BTC", "from": "t0", "limit": 4})
    with pytest.raises(PagingProblem, match="more than limit=4 rows share timestamp t0"):
        p.next([row("t0", i) for i in "ABCD"])


class FakeHttp:
    """Answers every request with the next body of a script; records what was asked."""

    vendor = "fake"

    def __init__(self, bodies: list[Any]):
        self.bodies = bodies
        self.asked: list[tuple[str, Mapping[str, Any] | None]] = []

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        self.asked.append((url, params))
        return self.bodies[len(self.asked) - 1]

    def redact(self, text: str) -> str:
        return text.replace("secret", "REDACTED")


def test_paginate_stops_after_max_pages_naming_the_request() -> None:
    bodies = [{"next_url": f"http://x/p?token=secret{i}"} for i in range(10)]
    http = FakeHttp(bodies)
    pages = paginate(http, NextUrlPaginator("http://x/p", {}), max_pages=3)  # type: ignore[arg-type]
    with pytest.raises(PagingError) as err:
        list(pages)
    assert len(http.asked) == 3
    assert "more than 3 pages" in str(err.value) and "token=REDACTED2" in str(err.value)


def test_paginate_stops_after_max_seconds() -> None:
    http = FakeHttp([{"next_url": f"http://x/p?t={i}"} for i in range(10)])
    pages = paginate(http, NextUrlPaginator("http://x/p", {}), max_seconds=-1)  # type: ignore[arg-type]
    with pytest.raises(PagingError, match="paging took over"):
        list(pages)
    assert http.asked == []


def test_paginate_names_the_request_of_a_repeated_continuation() -> None:
    http = FakeHttp([{"next_url": "http://x/p?t=1"}, {"next_url": "http://x/p?t=1"}])
    with pytest.raises(PagingError) as err:
        list(paginate(http, NextUrlPaginator("http://x/p", {})))  # type: ignore[arg-type]
    assert "repeats an earlier page" in str(err.value) and "http://x/p?t=1" in str(err.value)
