"""The one fetch-and-write loop every source runs.

Fetches run on a bounded thread pool (network-bound, and parsing releases the GIL), all submitted
up front so later months download while earlier ones are written; a single writer commits months
in batches, one transaction per batch, in month order. A transaction per month would pay a
checkpoint each (see docs/benchmarks.md), and every month in a batch is still replaced whole.
The first failure (or an interrupt) cancels what has not started, stops the running fetches at
their next request, and propagates; batches already committed stay.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from datetime import date
from typing import TypeVar

import duckdb

from pipelines.http import RequestsCancelled, cancellable
from pipelines.progress import Ticker
from pipelines.storage import Warehouse

T = TypeVar("T")


def fetch_and_write(
    warehouse: Warehouse,
    jobs: Mapping[date, Sequence[Callable[[], T]]],
    write_batch: Callable[[duckdb.DuckDBPyConnection, list[T]], None],
    *,
    workers: int,
    months_per_transaction: int,
    on_batch: Callable[[int, int], None],
    thread_name: str = "fetch",
    ticker: Ticker | None = None,
    rows_of: Callable[[T], int] = lambda _: 0,
) -> None:
    """Run every month's jobs, then ``write_batch`` each run of ``months_per_transaction`` months'
    results; ``on_batch(months_done, months_total)`` after each commit. ``ticker`` hears of every
    finished job (``rows_of`` its result) and ticks while the writer waits, so a person sees
    movement every few seconds, not only per committed batch."""
    months = sorted(jobs)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name)
    cancel = threading.Event()

    def cancellable_job(job: Callable[[], T]) -> Callable[[], T]:
        def run() -> T:
            with cancellable(cancel):
                return job()

        return run

    def counted(future: Future[T]) -> None:
        if future.cancelled():
            return
        if future.exception() is not None:
            cancel.set()  # the run fails with it: the other fetches stop at their next request
        elif ticker is not None:
            ticker.unit_done(rows_of(future.result()))

    try:
        futures: dict[date, list[Future[T]]] = {
            m: [pool.submit(cancellable_job(job)) for job in jobs[m]] for m in months
        }
        for pending in futures.values():
            for future in pending:
                future.add_done_callback(counted)
        done = 0
        with warehouse.writer() as con:
            for i in range(0, len(months), months_per_transaction):
                batch = months[i : i + months_per_transaction]
                waiting = [f for m in batch for f in futures[m]]
                every = ticker.every if ticker is not None else None
                while wait(waiting, timeout=every, return_when=FIRST_EXCEPTION)[1]:
                    if any(f.done() and f.exception() for f in waiting):
                        break
                    if ticker is not None:
                        ticker.tick()
                failure = _cause([f for pending in futures.values() for f in pending])
                if failure is not None:
                    raise failure
                write_batch(con, [f.result() for f in waiting])
                done += len(batch)
                on_batch(done, len(months))
                if ticker is not None:
                    ticker.months_done(done, len(months))
    except BaseException:
        cancel.set()  # a failure or an interrupt: the fetches still running stop at their next request
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _cause(futures: Sequence[Future[T]]) -> BaseException | None:
    """The failure to report among finished fetches: one that is not a fetch stopped because of
    it (a cancelled request in an earlier month must not hide the later month's real error)."""
    failures = [e for f in futures if f.done() and not f.cancelled() and (e := f.exception()) is not None]
    return next(
        (e for e in failures if not isinstance(e, RequestsCancelled)), failures[0] if failures else None
    )
