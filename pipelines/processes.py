"""Is the process that left this behind still running? (For leftovers of killed runs.)"""

from __future__ import annotations

import os
from pathlib import Path


def process_exists(pid: int) -> bool:
    """True if a process with ``pid`` exists on this host (whoever owns it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def process_start(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, Linux /proc), or None where unknown.

    With the pid it identifies a process uniquely: a pid reused by a later process has another start.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, starttime
