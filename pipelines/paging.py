"""Each vendor's paging style is a paginator; ``paginate`` drives any of them, bounded in pages and time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

from pipelines.http import HttpClient, VendorHTTPError
from pipelines.progress import page_fetched


class PageRequest(NamedTuple):
    url: str
    params: Mapping[str, Any] | None = None


class PagingError(VendorHTTPError):
    """The vendor's paging misbehaved (a repeated continuation, too many pages, too slow)."""


class PagingProblem(Exception):
    """Raised by a paginator; ``paginate`` names the vendor and request."""


class SinglePage:
    """One request; a subclass follows the vendor's continuations."""

    def __init__(self, url: str, params: Mapping[str, Any] | None = None):
        self._request = PageRequest(url, params)

    def first(self) -> PageRequest:
        return self._request

    def next(self, page: Any) -> PageRequest | None:
        return None


class NextUrlPaginator(SinglePage):
    """Follows ``next_url`` as given; a continuation seen before would loop forever: an error."""

    def __init__(self, url: str, params: Mapping[str, Any]):
        super().__init__(url, params)
        self._seen: set[str] = set()

    def next(self, page: Any) -> PageRequest | None:
        if not (url := page.get("next_url") if isinstance(page, dict) else None):
            return None
        if url in self._seen:
            raise PagingProblem("next_url repeats an earlier page; stopping instead of looping")
        self._seen.add(url)
        return PageRequest(url)


class TimeWindowPaginator(SinglePage):
    """Asks again from the last timestamp received (``fresh`` drops rows seen twice); a full page all at
    the window's start cannot advance, so it is asked again with the limit doubled, up to ``max_limit``."""

    def __init__(
        self,
        url: str,
        params: Mapping[str, Any],
        *,
        limit: int,
        rows: Callable[[Any], list[Any]],
        timestamp: Callable[[Any], str],
        key: Callable[[Any], str] = str,
        max_limit: int | None = None,
    ):
        self._url, self._limit = url, limit
        self.params = dict(params)  # the next request's, ``from`` included
        self._max_limit = max(limit, max_limit or limit)
        self._rows, self._timestamp, self._key = rows, timestamp, key
        self._boundary: str | None = None  # the last timestamp received
        self._seen: set[str] = set()  # keys of the rows received at ``_boundary``

    def first(self) -> PageRequest:
        return PageRequest(self._url, {**self.params, "limit": self._limit})

    def next(self, page: Any) -> PageRequest | None:
        rows = self._rows(page)
        if len(rows) < self._limit:
            return None
        last = self._timestamp(rows[-1])
        if self._timestamp(rows[0]) == last and last == self.params.get("from"):
            if self._limit >= self._max_limit:
                raise PagingProblem(
                    f"more than limit={self._limit} rows share timestamp {last}; raise the page limit"
                )
            self._limit = min(self._limit * 2, self._max_limit)  # same window, a page that can hold it
        self.params["from"] = last
        return self.first()

    def fresh(self, page: Any) -> list[Any]:
        """The rows not received before (once per page, in order): those at the boundary already seen."""
        rows = self._rows(page)
        fresh = [r for r in rows if self._timestamp(r) != self._boundary or self._key(r) not in self._seen]
        if rows:
            last = self._timestamp(rows[-1])
            if last != self._boundary:
                self._boundary, self._seen = last, set()
            self._seen.update(self._key(r) for r in rows if self._timestamp(r) == last)
        return fresh


def paginate(
    http: HttpClient,
    paginator: SinglePage,
    *,
    parse: Callable[[bytes], Any] | None = None,
    max_pages: int = 100_000,
    max_seconds: float = 3600.0,
) -> Iterator[Any]:
    """Each page's body as JSON or ``parse(body)``, whose ValueError names the page and its URL."""
    started, pages = time.monotonic(), 0
    request: PageRequest | None = paginator.first()
    while request is not None:
        current = request
        too_long = f"paging took over {max_seconds:.0f}s" if time.monotonic() - started > max_seconds else ""
        if pages >= max_pages or too_long:
            problem = too_long if pages < max_pages else f"more than {max_pages} pages"
            raise PagingError(http.vendor, f"{problem}; stopping", url=http.redact(request.url))
        if parse is None:
            page = http.get_json(request.url, request.params)
        else:
            resp = http.get(request.url, request.params)
            try:
                page = parse(resp.content)
            except ValueError as exc:  # a body that is not a page: say which page of which request
                raise PagingError(
                    http.vendor, f"page {pages + 1}: {exc}", url=http.redact(resp.url)
                ) from None
        pages += 1
        page_fetched(http.vendor)
        yield page
        try:
            request = paginator.next(page)
        except PagingProblem as exc:
            raise PagingError(http.vendor, str(exc), url=http.redact(current.url)) from None
