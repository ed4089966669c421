"""Every folder here with a ``source.py`` is a vendor: a new vendor is a folder, not edits elsewhere."""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.sources.source import Source


@cache
def sources() -> tuple[Source, ...]:
    found = []
    for folder in sorted(p for p in Path(__file__).parent.iterdir() if (p / "source.py").is_file()):
        source = importlib.import_module(f"{__name__}.{folder.name}.source").SOURCE
        if source.name != folder.name:
            raise RuntimeError(
                f"{folder}/source.py declares {source.name!r}; it must be named for its folder"
            )
        found.append(source)
    return tuple(sorted(found, key=lambda s: (s.order, s.name)))


@cache
def names() -> tuple[str, ...]:
    return tuple(s.name for s in sources())


def get(name: str) -> Source:
    for source in sources():
        if source.name == name:
            return source
    raise KeyError(f"no source {name!r}; the sources are {', '.join(names())}")


def env_prefixes() -> tuple[str, ...]:
    """What the tests clear so they never reach a real vendor."""
    return tuple(s.env_prefix for s in sources())
