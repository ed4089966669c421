"""Deterministic fault injection, switched on per test.

A test arms a fault (``emu.faults.inject("status", status=429, retry_after=1)``); the next
request(s) it applies to consume it. Nothing is random: which request fails is decided by the
target, the ``match`` substring and the count, so a failing test replays exactly.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal[
    "expired_url",
    "status",
    "truncate",
    "html_200",
    "drift_columns",
    "drop_connection",
    "repeat_next_url",
    "repeat_row",
    "missing_field",
    "non_finite",
    "implausible",
]
Target = Literal["list", "file", "any"]

FAULT_KINDS: frozenset[str] = frozenset(
    {"expired_url", "status", "truncate", "html_200", "drift_columns", "drop_connection"}
    | {"repeat_next_url", "repeat_row"}
    | {"missing_field", "non_finite", "implausible"}
)
VALUE_FAULTS = frozenset({"non_finite", "implausible"})
"""Kinds that put ``value`` into ``field`` of an answer's first row."""
TARGETS: frozenset[str] = frozenset({"list", "file", "any"})

# Faults that only make sense on one kind of request: a listing hands out URLs, a file has
# columns. An "any" fault of such a kind waits for a request it can act on.
_ONLY_ON: dict[str, str] = {
    "expired_url": "list",
    "drift_columns": "file",
    "missing_field": "list",
}

# Faults that act on a page reached by following a continuation (Kaiko's next_url): the answer's
# next_url repeats the page just served, or its first row repeats the previous page's last row.
_ONLY_CONTINUATION: frozenset[str] = frozenset({"repeat_next_url", "repeat_row"})


@dataclass
class Fault:
    """One armed fault. ``remaining`` = -1 means it never runs out."""

    kind: str
    target: str
    match: str
    remaining: int
    status: int | None = None
    retry_after: int | None = None
    field: str | None = None  # kinds "missing_field", "non_finite": the field acted on
    value: float | None = None  # kind "non_finite": what the first row's ``field`` becomes

    def applies_to(self, target: str, decoded_path: str, *, can_expire_urls: bool = False) -> bool:
        if self.target not in ("any", target):
            return False
        only = _ONLY_ON.get(self.kind)
        if only is not None and only != target:
            return False
        if self.kind == "expired_url" and not can_expire_urls:
            return False
        if self.kind in _ONLY_CONTINUATION and "continuation_token=" not in decoded_path:
            return False
        return self.match in decoded_path


class Faults:
    """Thread-safe registry of armed faults (the server's threads consume them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def inject(
        self,
        kind: FaultKind,
        *,
        target: Target = "any",
        match: str = "",
        times: int = 1,
        status: int | None = None,
        retry_after: int | None = None,
        field: str | None = None,
        value: float | None = None,
    ) -> Fault:
        """Arm a fault for the next ``times`` matching requests (-1 = forever).

        ``match`` is a substring of the decoded request path + query (e.g. "2026-02", "ETH").
        ``status``/``retry_after`` are for kind "status" (default 503; a 429 always carries
        Retry-After, 1 s unless given). ``field`` is for kind "missing_field" (CayøLargo: the
        answer's rows leave that field out; default "mark_price"). Kind "non_finite" puts
        ``value`` (NaN, inf or -inf; default NaN) into ``field`` (default "mark_price") of the first
        row of a data answer: an Aperiodic file (arm it with ``target="file"``), a Kaiko or CayøLargo page;
        kind "implausible" does the same with a finite ``value``.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")
        if target not in TARGETS:
            raise ValueError(f"unknown target {target!r}; known: {sorted(TARGETS)}")
        if times == 0 or times < -1:
            raise ValueError("times must be a positive count or -1 (forever)")
        if kind == "status":
            status = 503 if status is None else status
            if not 400 <= status <= 599:
                raise ValueError("a status fault needs a 4xx/5xx status")
            if status == 429 and retry_after is None:
                retry_after = 1
        if kind == "non_finite":
            value = float("nan") if value is None else float(value)
            if math.isfinite(value):
                raise ValueError("a non_finite fault needs NaN, inf or -inf")
        if kind == "implausible" and (value is None or not math.isfinite(value)):
            raise ValueError(
                "an implausible fault needs a finite value (a subnormal, a huge or a zero price)"
            )
        fault = Fault(kind, target, match, times, status, retry_after, field, value)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    @property
    def armed(self) -> list[Fault]:
        """A snapshot of the faults still armed, in injection order."""
        with self._lock:
            return list(self._faults)

    def take(self, target: str, decoded_path: str, *, can_expire_urls: bool = False) -> Fault | None:
        """Consume and return the first armed fault that applies to this request, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.applies_to(target, decoded_path, can_expire_urls=can_expire_urls):
                    if fault.remaining > 0:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None
