"""What a failed ``markhouse`` command tells a person: one line and an exit code per kind of cause.
A run's failure reaches the CLI as Dagster's serialized error, so causes are told apart by class name."""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any, NamedTuple

from pipelines import sources


class ExitCode(IntEnum):
    OK = 0
    PROBLEMS = 1  # status found problems; a failure of no known kind
    USAGE = 2  # the command line is wrong (argparse's own code)
    CONFIG = 3  # the universe file or a setting is wrong, or a request can only produce nothing
    VENDOR = 4  # a vendor (or the network to it) failed or served something that is not data
    WAREHOUSE = 5  # the warehouse or serving copy cannot be read or written
    INTERRUPTED = 130  # Ctrl-C


class RequestError(Exception):
    """A request markhouse refuses before anything runs; the message says what to change."""

    def __init__(self, message: str, code: ExitCode = ExitCode.CONFIG):
        super().__init__(message)
        self.code = code


# class name of the cause -> kind, by the class name alone (a run's error arrives serialized);
# markhouse's assets raise Failure for a request they cannot serve
_KINDS: dict[str, ExitCode] = {
    name: code
    for code, names in (
        (ExitCode.USAGE, "ReportInputError"),
        (ExitCode.CONFIG, "UniverseError SymbolError VenueError MappingError RequestError Failure"),
        (ExitCode.CONFIG, "MixedOriginError"),
        (ExitCode.VENDOR, "VendorHTTPError PagingError PageError ConnectionError Timeout SchemaError"),
        (ExitCode.VENDOR, "FileValidationError MonthValidationError PageValidationError SchemaErrors"),
        (ExitCode.WAREHOUSE, "WarehouseBusyError IOException PermissionError PermissionException OSError"),
        (ExitCode.WAREHOUSE, "FileNotFoundError IsADirectoryError NotADirectoryError SerializationException"),
        (ExitCode.WAREHOUSE, "WarehouseCorruptError WarehouseOpenError NothingPublishedError"),
        (ExitCode.WAREHOUSE, "LegacyWarehouseError"),
        (ExitCode.INTERRUPTED, "KeyboardInterrupt DagsterExecutionInterruptedError"),
    )
    for name in names.split()
}
# causes whose message says what to do (the kind's hint would point elsewhere)
_SELF_EXPLAINED = {"MixedOriginError", "NothingPublishedError", "LegacyWarehouseError"}

HINTS = {
    ExitCode.CONFIG: "fix that entry (the universe file is MARKHOUSE_UNIVERSE) or the command line",
    ExitCode.VENDOR: (
        "check the vendor's base URL and API key (<VENDOR>_BASE_URL, <VENDOR>_API_KEY) and the network, "
        "or try again later"
    ),
    ExitCode.WAREHOUSE: (
        "check that the path is writable and not damaged (MARKHOUSE_WAREHOUSE, MARKHOUSE_SERVING), "
        "and that no other program holds it"
    ),
    ExitCode.INTERRUPTED: "months already committed stay; run the same backfill again to finish",
    ExitCode.PROBLEMS: "run again with --debug for the traceback",
}


NOT_SERVED = "the vendor does not serve it: check the venue and symbol in the universe (MARKHOUSE_UNIVERSE)"


class Diagnosis(NamedTuple):
    code: ExitCode
    message: str
    hint: str | None = None

    @property
    def from_vendor(self) -> bool:
        """A vendor failed, not the request or the warehouse: the other vendors' loads are published."""
        return self.code is ExitCode.VENDOR or self.hint == NOT_SERVED

    def line(self) -> str:
        hint = HINTS.get(self.code, "") if self.hint is None else self.hint
        for vendor in (v for v in sources.names() if self.message.lower().startswith(v)):
            hint = hint.replace("<VENDOR>", vendor.upper())
        return f"markhouse: {self.message}" + (f" -> {hint}" if hint else "")


def _chain(error: Any) -> list[Any]:
    """The error and its causes, outermost first (a SerializableErrorInfo or an exception)."""
    out: list[Any] = []
    while error is not None and all(e is not error for e in out):  # a cycle ends it
        out.append(error)
        if isinstance(error, BaseException):
            error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        else:
            error = getattr(error, "cause", None) or getattr(error, "context", None)
    return out


def _name(error: Any) -> str:
    return str(getattr(error, "cls_name", None) or type(error).__name__)


def _message(error: Any) -> str:
    text = str(getattr(error, "message", "") if hasattr(error, "cls_name") else error).strip()
    text = text.splitlines()[0] if text else _name(error)
    # Dagster's serialized message starts with the qualified class name
    return re.sub(rf"^([\w.]*\.)?{re.escape(_name(error))}: ", "", text)


def diagnose(error: Any) -> Diagnosis:
    """The outermost cause of a known kind (past Dagster's wrappers) wins, else the innermost
    one that is not Dagster's own."""
    chain = _chain(error)
    for item in chain:
        code = _KINDS.get(_name(item))
        if code is ExitCode.VENDOR and ": HTTP 404: " in _message(item):
            return Diagnosis(ExitCode.CONFIG, _message(item), NOT_SERVED)
        if code is ExitCode.INTERRUPTED:
            return Diagnosis(code, "interrupted (Ctrl-C)")
        if code is not None:
            return Diagnosis(code, _message(item), "" if _name(item) in _SELF_EXPLAINED else None)
    for item in reversed(chain):
        if not _name(item).startswith("Dagster"):
            return Diagnosis(ExitCode.PROBLEMS, f"{_name(item)}: {_message(item)}")
    return Diagnosis(ExitCode.PROBLEMS, _message(chain[0]) if chain else "unknown failure")
