"""Local vendor emulator: serves the vendors' wire protocols from a shipped real-data sample.

Importing this package is cheap; the server and data modules load on first use::

    from pipelines.emulator import Emulator
    with Emulator() as emu:
        ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .market_data import derivative_price_table
    from .server import Emulator, serve_forever

__all__ = ["Emulator", "derivative_price_table", "serve_forever"]


def __getattr__(name: str) -> Any:
    if name in ("Emulator", "serve_forever"):
        from . import server

        return getattr(server, name)
    if name == "derivative_price_table":
        from . import market_data

        return market_data.derivative_price_table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
