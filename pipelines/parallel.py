"""How ``markhouse backfill`` runs its job: Dagster's multiprocess executor, one process per step.

Why: the load pools (``pipelines.partitions.load_pool``) let the three vendors write their raw
tables at once, but an in-process run executes one step after another. Through ``execute_job`` on a
reconstructable job, each step runs in its own process, as under ``dagster dev``; the pools decide
what overlaps (the vendors' loads) and what waits (the marts, after every load, one at a time).

A step process is forked from a fork server that imported the definitions once
(:func:`executor_config`) and reconstructs the job with :func:`refresh_job`; it inherits the
command's environment, so it resolves the same settings and vendors (an embedded emulator of its own, which
serves the same deterministic data with the same ``today``), renders progress on the inherited
stderr (``pipelines.progress``), and dies with the command (:func:`die_with_command`).
"""

from __future__ import annotations

import os
import re
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg

MAX_CONCURRENT = 3
"""Step processes at once by default: the three vendors' loads (override: MARKHOUSE_MAX_CONCURRENT)."""
COMMAND_PID = "MARKHOUSE_COMMAND_PID"
"""Set by ``markhouse backfill`` for its step processes: the process they must not outlive."""
_HOLD_SECONDS = 0.3
"""How long the filtered stderr holds a step's line before copying it (see without_dagster_debug_lines)."""
_DAGSTER_DEBUG_LINE = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} - dagster - DEBUG - ")


def max_concurrent() -> int:
    """Step processes at once: MARKHOUSE_MAX_CONCURRENT, else 3 (1 = one step after another)."""
    text = os.environ.get("MARKHOUSE_MAX_CONCURRENT", str(MAX_CONCURRENT))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        from pipelines.errors import RequestError

        raise RequestError(f"MARKHOUSE_MAX_CONCURRENT must be a whole number >= 1, got {text!r}")
    return value


PRELOAD = ["pipelines.definitions"]
"""What the fork server imports once for every step process: Dagster, DuckDB, pyarrow and the
definitions. A spawned step imported them itself, about 3 s per step on an idle machine here (5-8 s
under load), three or more times a run."""


def executor_config(processes: int) -> dict[str, Any]:
    """Run config for the jobs' default executor (``multi_or_in_process_executor``): step
    processes forked from a fork server that has imported :data:`PRELOAD`, each at most
    ``processes`` at once. The server opens no connection and starts no Python thread at import;
    its only other threads are the allocators' idle background ones (jemalloc in pyarrow and
    polars, fork-safe), and the libraries' worker pools start in each step on first use."""
    start = {"forkserver": {"preload_modules": PRELOAD}}
    return {"execution": {"config": {"multiprocess": {"max_concurrent": processes, "start_method": start}}}}


@contextmanager
def step_processes(debug: bool) -> Iterator[None]:
    """What one run's step processes need from the command, set up before the command imports the
    definitions: the environment they read (:data:`COMMAND_PID`, progress on stderr), the filtered
    stderr (unless ``debug``) and the fork server, started now so that it imports :data:`PRELOAD`
    on the other core while the command imports the same to build the run (they took turns, about
    2.5 s, when the executor started it at the first step). Ended, and the environment restored,
    on the way out."""
    from pipelines.progress import PROGRESS_STDERR

    children = {COMMAND_PID: str(os.getpid()), PROGRESS_STDERR: "1"}
    saved = {name: os.environ.get(name) for name in children}
    os.environ.update(children)  # before the fork server starts: its children get its environment
    try:
        with nullcontext() if debug else without_dagster_debug_lines():
            try:
                _start_fork_server()
                yield
            finally:  # before the filtered stderr waits for its pipe to end
                stop_fork_server()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_fork_server() -> None:
    """Start the fork server the executor's ``forkserver`` start method then reuses (one per
    Python process); it does not wait for the server's imports."""
    import multiprocessing
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()


def stop_fork_server() -> None:
    """End the run's fork server (Python keeps it until the command exits).

    Why: it holds the filtered stderr pipe open (:func:`without_dagster_debug_lines` waits for that
    pipe's end), and it carries the environment it was started with, which the next run in the
    same process (tests call the command in process) must not inherit. CPython has no public call
    for this; ``_stop`` is what its own tests use, so its absence only leaves the server running."""
    from multiprocessing import forkserver

    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is not None:
        stop()


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state; the name may hold spaces


def die_with_command() -> None:
    """In a step process of ``markhouse backfill``: be killed when the command dies.

    Why: a ``kill -9`` of the command (or an OOM kill) runs no cleanup, and an orphaned step would
    go on writing the warehouse while the next backfill, seeing the command gone, frees the run's
    pool slots and loads the same vendor. The step's parent is the command's fork server, which
    outlives the command while any step lives (each step holds the server's "alive" pipe), so a
    parent-death signal would not fire: a thread waits on the command's pidfd and kills the step
    the moment the command ends.
    """
    parent = os.environ.get(COMMAND_PID)
    if not parent or int(parent) == os.getpid() or not hasattr(os, "pidfd_open"):
        return
    try:
        command = os.pidfd_open(int(parent))
    except ProcessLookupError:
        os._exit(1)  # the command is already gone
    server = os.getppid()  # checked after the pidfd is held: a reused pid is not an ancestor
    if int(parent) not in (server, _parent_of(server)):
        os._exit(1)

    def wait() -> None:
        select.select([command], [], [])  # readable once the command has exited
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait, name="markhouse-die-with-command", daemon=True).start()


@contextmanager
def without_dagster_debug_lines() -> Iterator[None]:
    """Drop Dagster's DEBUG lines from what the step processes write to the inherited stderr, and
    everything they write once Ctrl-C was pressed.

    Why: a step process announces itself ("Executing step ... in subprocess") through a console
    logger at DEBUG that it builds before it loads the job, so neither the run config's log level
    nor anything in markhouse can quiet it there; without ``--debug`` the command's stderr holds
    only its own lines. For the run, fd 2 (inherited by every step process) is a pipe whose lines
    are copied to the real stderr, those lines left out; progress lines are plain there. Ctrl-C
    reaches every process of the terminal's group, and each step and each of Dagster's log-capture
    helpers then printed a KeyboardInterrupt traceback: the signal's arrival (a byte on Python's
    signal wake-up fd, whichever handler Dagster has installed) mutes the copy, and the command
    says once what happened.
    """
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()  # outlives the run: it must not hold the pipe open
    sys.stderr.flush()
    read, write = os.pipe()
    real = os.dup(2)
    os.dup2(write, 2)
    os.close(write)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    try:
        previous_wakeup: int | None = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    except ValueError:  # not the main thread: no signals here to watch for
        previous_wakeup = None

    def copy() -> None:
        # lines wait HOLD_SECONDS before they are copied: a step may print before the command
        # itself is scheduled to take the signal, and what is still held is then dropped
        muted, partial = False, b""
        held: list[tuple[float, bytes]] = []
        while True:
            timeout = max(0.0, held[0][0] + _HOLD_SECONDS - time.monotonic()) if held else None
            ready, _, _ = select.select([read, wake_read], [], [], timeout)
            if wake_read in ready and bytes([signal.SIGINT]) in os.read(wake_read, 512):
                muted, held = True, []
            if read in ready:
                chunk = os.read(read, 1 << 16)
                if not chunk:
                    break
                *lines, partial = (partial + chunk).split(b"\n")
                if not muted:
                    now = time.monotonic()
                    held += [(now, line + b"\n") for line in lines if not _DAGSTER_DEBUG_LINE.match(line)]
            due = time.monotonic() - _HOLD_SECONDS
            out = b"".join(line for t, line in held if t <= due)
            held = [(t, line) for t, line in held if t > due]
            if out:
                os.write(real, out)
        if not muted:
            os.write(real, b"".join(line for _, line in held) + partial)

    copier = threading.Thread(target=copy, name="markhouse-stderr", daemon=True)
    copier.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        if previous_wakeup is not None:
            signal.set_wakeup_fd(previous_wakeup)
        os.dup2(real, 2)  # the pipe ends when the step processes (all gone by now) and fd 2 let go
        copier.join(timeout=10)
        os.close(real)
        os.close(wake_write)
        if not copier.is_alive():  # else a step outlived the run: leave the copier its pipes
            os.close(read)
            os.close(wake_read)


def refresh_job() -> dg.JobDefinition:
    """The refresh job, as a step process reconstructs it (``dg.reconstructable(refresh_job)``)."""
    die_with_command()
    from pipelines.definitions import defs

    return defs.resolve_job_def("refresh")
