"""The universe file, validated completely at load time, so a typo fails before any download."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from pipelines import sources
from pipelines.months import parse_month
from pipelines.universe.instruments import UniverseError, brief

MAX_FILE_BYTES = 1 << 20  # a universe lists instruments by hand: a bigger file is a mistake (or an attack)
MAX_DEPTH = 10  # nesting a universe file may have (it needs 4: section, instruments, an instrument, its keys)
EARLIEST_MONTH = date(2009, 1, 1)  # no crypto derivative traded before the first bitcoin block: a typo


def _parse(text: str) -> Any:
    """YAML, first checked event by event (libyaml, fast): no aliases, so no file can expand into a
    huge structure (a 449-byte "billion laughs" file otherwise hangs the parser; a universe never
    needs them), and no nesting past ``MAX_DEPTH`` (5,000 levels were a RecursionError)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.AliasEvent):
            problem = f"YAML aliases (*{event.anchor}) are not allowed in a universe file"
        elif isinstance(event, yaml.CollectionStartEvent) and depth == MAX_DEPTH:
            problem = f"nested deeper than {MAX_DEPTH} levels (a universe needs 4)"
        else:
            depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
            continue
        raise yaml.MarkedYAMLError(problem=problem, problem_mark=event.start_mark)  # type: ignore[arg-type]  # libyaml's Mark
    return yaml.load(text, Loader=yaml.CSafeLoader)


@dataclass(frozen=True)
class Universe:
    path: Path
    start_month: date
    # vendor -> its section, as its source parsed it (``parse_section``: an object with ``.instruments``)
    sections: dict[str, Any] = field(default_factory=dict)

    def section(self, vendor: str) -> Any:
        return self.sections.get(vendor)


def _month(value: Any, where: str) -> date:
    text = str(value)
    try:
        first = parse_month(text)
    except ValueError:
        raise UniverseError(f"{where}: start_month must be YYYY-MM, got {brief(text)}") from None
    latest = datetime.now(UTC).date().replace(day=1)
    if not EARLIEST_MONTH <= first <= latest:
        raise UniverseError(
            f"{where}: start_month {text} is outside {EARLIEST_MONTH:%Y-%m} .. {latest:%Y-%m} (this month)"
        )
    return first


def load_universe(path: Path) -> Universe:
    try:
        if (size := Path(path).stat().st_size) > MAX_FILE_BYTES:
            raise UniverseError(
                f"universe file {path} is {size} bytes; the limit is {MAX_FILE_BYTES} (1 MiB)"
            )
        doc = _parse(Path(path).read_text())
    except FileNotFoundError:
        raise UniverseError(f"universe file {path} does not exist (MARKHOUSE_UNIVERSE)") from None
    except yaml.MarkedYAMLError as exc:
        line = f" line {mark.line + 1}" if (mark := exc.problem_mark or exc.context_mark) else ""
        raise UniverseError(
            f"universe file {path}{line} is not valid YAML: {exc.problem or exc.context}"
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UniverseError(f"universe file {path} is not valid YAML: {brief(str(exc), 200)}") from None
    if not isinstance(doc, dict) or "start_month" not in doc:
        raise UniverseError(f"{path}: expected a mapping with 'start_month' and one section per vendor")
    if unknown := set(doc) - {"start_month", *sources.names()}:
        raise UniverseError(f"{path}: unknown section(s) {sorted(unknown)}")
    start = _month(doc["start_month"], str(path))
    sections = {
        s.name: s.parse_section(doc[s.name] or {}, f"{path}: {s.name}")
        for s in sources.sources()
        if s.name in doc
    }
    return Universe(Path(path), start, sections)
