"""How concurrent work on the warehouse stays safe: the one story, and the code that keeps it.

- **One writing process at a time**, holding an exclusive ``flock`` on ``<catalog>.lock`` while it
  writes: ``markhouse backfill`` for its whole run (loads, marts, publish), a run Dagster's daemon or
  UI launched for each step. The kernel releases the lock however the process ends, so a killed run
  never leaves a stale one. A second run waits (``--wait``), saying every few seconds whom for: the
  holder writes its name (run id, command, pid, host) into the lock file.
- **Inside that process, threads share one writer** (one DuckDB instance with the lake attached, a
  cursor each); their write transactions take turns (``transaction``), their fetches run at once.
  Nothing else is needed: no Dagster pool, no slot to free.
- **Every write is one transaction**, one snapshot (delete the partitions' rows, insert the new
  ones, commit): a failure or a kill leaves the previous snapshot, never a mix.
- **What a killed run leaves** the next writer finds when it takes the lock: parquet files never
  committed, staging folders and partial serving copies named with a pid that no longer runs (all
  removed), and its name still in the lock file (a clean release empties it), which the command
  reports and turns into a failed Dagster run (``pipelines.resources``).
- **Readers never wait**: they attach the latest *published* snapshot read-only (the SQLite catalog
  is in WAL mode), so they never see a half-finished run and never block a writer.
- **Several hosts** on one PostgreSQL catalog have no lock in common: a commit that meets another
  host's is rerun whole a bounded number of times (``with_commit_retry``), and the daemon's run
  queue admits one warehouse-writing run at a time (``deploy/postgres/dagster.yaml``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypedDict, TypeVar, Unpack

import duckdb
from psutil import pid_exists

from pipelines.redaction import redact

log = logging.getLogger("markhouse.warehouse")

T = TypeVar("T")
Con = duckdb.DuckDBPyConnection
Opener = Callable[[], Con]
COMMIT_ATTEMPTS = 6
RETRYABLE = ("database is locked", "conflict", "busy")
WAIT_NOTICE_SECONDS = 5.0
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp(?:\.wal)?$")
_STAGING = re.compile(r"^[a-z]+-(?P<pid>\d+)-")


class WarehouseBusyError(RuntimeError):
    """Another process holds the warehouse for writing longer than we were willing to wait."""


class Holder(TypedDict, total=False):
    """Who takes the lock (its name and run, written into the lock file) and whom a wait is told."""

    holder: str | None
    run_id: str | None
    on_wait: Callable[[str], None] | None


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove ``.<name>.<pid>.tmp`` and ``.staging/<vendor>-<pid>-*`` of dead pids (a killed run's)."""
    removed: list[Path] = []
    staging = folder / ".staging"
    candidates = [(p, _TEMPORARY.match(p.name)) for p in folder.glob(".*.tmp*")]
    candidates += [(p, _STAGING.match(p.name)) for p in (staging.iterdir() if staging.is_dir() else ())]
    for path, match in candidates:
        if match is None or pid_exists(int(match["pid"])):
            continue
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        removed.append(path)
        log.info("removed %s, left by a run that no longer exists (pid %s)", path, match["pid"])
    return removed


def with_commit_retry(work: Callable[[], T], what: str, also: Sequence[str] = ()) -> T:
    """Rerun ``work`` (a whole transaction) while its commit meets another writer's (``also``: texts)."""
    for attempt in range(1, COMMIT_ATTEMPTS):
        try:
            return work()
        except duckdb.Error as exc:
            if not any(s in str(exc).lower() for s in (*RETRYABLE, *also)):
                raise
            delay = min(0.1 * 2**attempt, 5.0)
            log.info(  # routine between two writers: shown with --debug, not in every demo
                f"{what}: commit conflict ({redact(str(exc))}); "
                f"retrying in {delay:.1f}s ({attempt}/{COMMIT_ATTEMPTS})"
            )
            time.sleep(delay)
    return work()


_WRITING = threading.RLock()  # one transaction at a time in this process: its threads take turns


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction (one snapshot): committed if the block returns, rolled back otherwise."""
    with _WRITING:
        con.execute("begin transaction")
        try:
            yield
            con.execute("commit")
        except BaseException:
            with suppress(duckdb.Error):  # a failed commit has already ended it
                con.execute("rollback")
            raise


@dataclass
class _Hold:
    con: duckdb.DuckDBPyConnection
    lock: IO[str]
    previous: dict[str, Any] | None  # the record a killed holder left in the lock file
    users: int = 0


_HOLDS: dict[Path, _Hold] = {}
_HOLDS_LOCK = threading.Lock()


@contextmanager
def shared_writer(path: Path, opener: Opener, wait: float, **who: Unpack[Holder]) -> Iterator[Con]:
    """This process's one writer: the first caller takes the lock and opens it, the last one releases both."""
    key = path.resolve()
    with _HOLDS_LOCK:
        if key not in _HOLDS:
            _HOLDS[key] = _take(path, opener, wait, who)
        hold = _HOLDS[key]
        hold.users += 1
    try:
        yield hold.con
    finally:
        with _HOLDS_LOCK:
            hold.users -= 1
            if hold.users == 0:
                del _HOLDS[key]
                try:
                    hold.con.close()
                finally:
                    _release(hold.lock)


def killed_holder(lock_path: Path) -> dict[str, Any] | None:
    """The record a killed writer left in the lock file this process took, once: to the first who asks."""
    if (hold := _HOLDS.get(lock_path.resolve())) is None:
        return None
    previous, hold.previous = hold.previous, None
    return previous


def _take(lock_path: Path, open_writer: Opener, wait_seconds: float, who: Holder) -> _Hold:
    """Lock, keep a killed holder's record (a clean release empties it), write ours, clear, open."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(lock_path, "a+")  # noqa: SIM115 (held until the hold is released)
    try:
        started, said = time.monotonic(), -WAIT_NOTICE_SECONDS
        while True:
            with suppress(BlockingIOError):
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            waited, record = time.monotonic() - started, _read_record(lock)
            holder = record["holder"] if record else f"another process (lock {lock_path})"
            if waited >= wait_seconds:
                raise WarehouseBusyError(
                    f"gave up after {waited:.0f}s: the warehouse is being written by {holder}; "
                    "try again when it ends (or raise --wait)"
                )
            if waited - said >= WAIT_NOTICE_SECONDS:
                (who.get("on_wait") or log.info)(
                    f"markhouse: {datetime.now(UTC):%H:%M:%S} waiting for {holder} to finish writing "
                    f"the warehouse ({waited:.0f}s)"
                )
                said = waited
            time.sleep(0.2)
        previous = _read_record(lock)
        host, pid = socket.gethostname(), os.getpid()
        name = who.get("holder") or f"pid {pid} on {host}"
        _write_record(
            lock, json.dumps({"holder": name, "run_id": who.get("run_id"), "pid": pid, "host": host})
        )
        remove_stale_temporaries(lock_path.parent)
        return _Hold(open_writer(), lock, previous)
    except BaseException:
        _release(lock)
        raise


def _read_record(lock: IO[str]) -> dict[str, Any] | None:
    lock.seek(0)
    with suppress(ValueError):
        record = json.loads(lock.read().strip() or "null")
        return record if isinstance(record, dict) else None
    return None


def _write_record(lock: IO[str], text: str) -> None:
    lock.seek(0)
    lock.truncate()
    lock.write(text)
    lock.flush()


def _release(lock: IO[str]) -> None:
    """Empty the record (a clean end), then unlock and close."""
    try:
        _write_record(lock, "")
    finally:
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        lock.close()
