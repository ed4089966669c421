"""The source registry: every folder here with a ``source.py`` is a vendor.

Each folder declares one ``SOURCE`` (``pipelines.sources.source.Source``); definitions, the
universe loader, the CLI, the backfill plan, the emulator and the tests all read this registry,
so adding a vendor is a new folder, not edits across the code base. ``names()`` only lists the
folders (cheap: the CLI builds its parser from it); ``sources()`` imports them.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.sources.source import Source

_HERE = Path(__file__).parent


@cache
def sources() -> tuple[Source, ...]:
    """Every vendor folder's ``SOURCE``, in load order."""
    found = []
    for folder in sorted(p for p in _HERE.iterdir() if (p / "source.py").is_file()):
        source = importlib.import_module(f"{__name__}.{folder.name}.source").SOURCE
        if source.name != folder.name:
            raise RuntimeError(
                f"{folder}/source.py declares {source.name!r}; it must be named for its folder"
            )
        found.append(source)
    return tuple(sorted(found, key=lambda s: (s.order, s.name)))


@cache
def names() -> tuple[str, ...]:
    """The vendor names in load order, from the folders (``order`` is read from each source)."""
    return tuple(s.name for s in sources())


def get(name: str) -> Source:
    for source in sources():
        if source.name == name:
            return source
    raise KeyError(f"no source {name!r}; the sources are {', '.join(names())}")


def env_prefixes() -> tuple[str, ...]:
    """``APERIODIC_`` and the like: what the tests clear so they never reach a real vendor."""
    return tuple(s.env_prefix for s in sources())
