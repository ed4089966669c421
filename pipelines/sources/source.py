"""What a vendor folder's ``source.py`` declares; light (no Dagster, no clients): the CLI reads it."""

from __future__ import annotations

import os
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from pipelines.reference import Reference, VendorName
from pipelines.settings import SQL_DIR
from pipelines.universe.instruments import UniverseInstrument
from pipelines.warehouse.lake import CREATE_TABLE, Warehouse

VENDOR_TAG = "markhouse/vendor"
"""Tag on every source asset: ``markhouse backfill --vendor`` selects by it, not by asset name."""


def lazy(target: str) -> Callable[..., Any]:
    """``"module:attr.attr"``, imported and called at the first call, so the registry stays light."""
    return lambda *args: pkgutil.resolve_name(target)(*args)


class LoadRequest(NamedTuple):
    section: Any
    table: str  # the asset's name without the vendor prefix (e.g. "derivative_price")
    instruments: Sequence[str]  # Atlas keys from the run config; empty = everything configured
    months: list[date]
    resource: Any  # the vendor's ConfigurableResource
    warehouse: Warehouse
    progress: Callable[[str], None]
    reference: Reference = Reference()  # written with each batch


class Loaded(NamedTuple):
    rows: int
    metadata: dict[str, Any]  # lists and dicts are shown as JSON
    keys: Sequence[str] = ()  # instrument keys asked for; with ``must_have_rows``, 0 rows fails the run
    must_have_rows: bool = True
    failed: Sequence[Any] = ()  # the loader's ``Failed`` units: the rest loaded


class RawAsset(NamedTuple):
    table: str  # asset ``raw/<vendor>_<table>``
    description: str
    kinds: frozenset[str]


@dataclass(frozen=True)
class Source:
    name: str  # folder name, universe section, asset group, tag value, ``--vendor`` choice
    label: str  # as people spell it, for messages
    order: int  # load order (and the order messages list vendors in)
    parse_section: Callable[[Any, str], Any]  # universe section -> parsed section (``.instruments``)
    raw_assets: Callable[[Any], list[RawAsset]]  # parsed section -> the raw assets it asks for
    load: Callable[[LoadRequest], Loaded]
    resource: Callable[[], Any]  # its dg.ConfigurableResource, configured from the environment
    emulator_handler: Callable[[Any], Any]  # Emulator -> its VendorHandler (routes, faults)
    emulator_root: str = ""  # what the emulator's URL gets appended for this vendor's base URL
    vendor_names: Callable[[Any], list[VendorName]] = lambda section: []  # ref.vendor_instrument rows
    carries: Callable[[Any, date, str], bool] | None = None  # (section, start month, key); default: listed
    env: tuple[str, ...] = field(default=("BASE_URL", "API_KEY"))  # ``<NAME>_<what>`` it reads
    sql_dir: Path | None = None  # its SQL folder; default ``sql/sources/<name>/``
    # shared union model -> the relation giving this source's rows in its shape, e.g.
    # {"int_price_observations": "staging.stg_kaiko__derivative_price"}: its rows reach the marts
    observations: Mapping[str, str] = field(default_factory=dict)

    @property
    def sql_folder(self) -> Path:
        return self.sql_dir if self.sql_dir is not None else SQL_DIR / "sources" / self.name

    def raw_ddl(self) -> str:
        return (self.sql_folder / "raw.sql").read_text()

    def raw_tables(self) -> list[str]:
        return CREATE_TABLE.findall(self.raw_ddl())

    def load_sql(self, table: str) -> str:
        own = self.sql_folder / "load" / f"{table}.sql"
        if own.exists():
            return own.read_text()
        return (self.sql_folder / "load" / "tables.sql").read_text().replace("{table}", table)

    @property
    def env_prefix(self) -> str:
        return f"{self.name.upper()}_"

    def configured(self) -> bool:
        """Given a base URL or a key (else the embedded emulator serves it)."""
        return any(os.environ.get(self.env_prefix + what) for what in self.env[:2])

    def instruments(self, section: Any) -> list[UniverseInstrument]:
        return list(getattr(section, "instruments", ()))

    def serves(self, section: Any, start_month: date, key: str) -> bool:
        if self.carries is not None:
            return self.carries(section, start_month, key)
        return key in {i.instrument_key for i in self.instruments(section)}
