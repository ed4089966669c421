"""The emulator's generated months kept on disk between processes.

Every ``markhouse`` command on the embedded default starts a new emulator, which built each month it
serves again in pure Python: about 3 s of a demo one-month refresh went to the three vendors' synthetic
minutes, snapshots and files. A generator wrapped here is pure (its result depends on its arguments,
the emulator's code and the shipped sample), so its result is kept under
``$XDG_CACHE_HOME/markhouse/emulator-<hash>/``, the hash taken over that code, the sample and the
library versions: an edit or an upgrade starts a new folder and removes the old ones.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import shutil
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

F = TypeVar("F", bound=Callable[..., Any])
PACKAGE = Path(__file__).resolve().parent.parent  # pipelines/
_folders: dict[Path, Path] = {}


def _inputs() -> list[Path]:
    """The emulator's code and sample: pipelines/emulator/ and each vendor folder's emulator.py."""
    found = [p for p in (PACKAGE / "emulator").rglob("*") if p.suffix in (".py", ".parquet")]
    return sorted(found + list((PACKAGE / "sources").glob("*/emulator.py")))


def folder() -> Path:
    """This code's folder in the user's cache (read per call: tests point it at their own)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "markhouse"
    if root not in _folders:
        digest = hashlib.sha256(f"{sys.version}\0{pa.__version__}".encode())
        for path in _inputs():
            digest.update(f"{path.relative_to(PACKAGE)}\0".encode() + path.read_bytes())
        here = root / f"emulator-{digest.hexdigest()[:16]}"
        if not here.is_dir():  # a new version of the emulator: the old ones' months are never read again
            for old in root.glob("emulator-*"):
                shutil.rmtree(old, ignore_errors=True)
        _folders[root] = here
    return _folders[root]


def on_disk(generate: F) -> F:
    """``generate``'s result for the same arguments from the cache, or generated and kept there."""

    @functools.wraps(generate)
    def cached(*args: Any) -> Any:
        key = hashlib.sha256(repr(args).encode()).hexdigest()[:24]
        path = folder() / f"{generate.__module__}.{generate.__qualname__}-{key}.pickle"
        with suppress(OSError, EOFError, pickle.UnpicklingError):  # none yet, or a partial one
            return pickle.loads(path.read_bytes())
        value = generate(*args)
        with suppress(OSError):  # a read-only home: generated each time, as before
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            partial.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(partial, path)  # whole or absent for a reader in another process
        return value

    return cached  # type: ignore[return-value]
