"""Deribit instrument ids <-> venue + Atlas key (the one mapping), and the universe section;
expected values written out by hand from PROTOCOLS.md's Atlas section."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.sources.cayolargo.source import VENUE, MappingError, from_deribit, to_deribit
from pipelines.universe import UniverseError, load_universe


@pytest.mark.parametrize(
    ("instrument_id", "key"),
    [
        ("BTC-PERPETUAL", "perpetual-BTC-USD:BTC"),
        ("ETH-PERPETUAL", "perpetual-ETH-USD:ETH"),
        ("BTC-28MAR26", "future-BTC-USD:BTC-20260328"),  # PROTOCOLS.md's example
        ("BTC-27MAR26", "future-BTC-USD:BTC-20260327"),
        ("ETH-25DEC26", "future-ETH-USD:ETH-20261225"),
        ("BTC-5JAN24", "future-BTC-USD:BTC-20240105"),  # no leading zero on the day
        ("SOL_USDC-PERPETUAL", "perpetual-SOL-USDC:USDC"),  # linear, margined in USDC
        ("SOL_USDC-27MAR26", "future-SOL-USDC:USDC-20260327"),
    ],
)
def test_both_directions(instrument_id: str, key: str) -> None:
    assert from_deribit(instrument_id).instrument_key == key
    assert to_deribit(key).instrument_id == instrument_id
    assert VENUE == "deribit"


def test_kind_and_funding_interval_come_from_the_mapping() -> None:
    perp, fut = from_deribit("BTC-PERPETUAL"), from_deribit("BTC-27MAR26")
    assert (perp.contract_type, perp.funding_interval_hours, perp.coin) == ("PERPETUALS", 8.0, "BTC")
    assert (fut.contract_type, fut.funding_interval_hours) == ("FUTURES", None)
    assert fut.instrument.expiry == datetime(2026, 3, 27, tzinfo=UTC)  # the date; the loader sets 08:00


@pytest.mark.parametrize("bad", ["BTCPERP", "BTC-27XYZ26", "BTC-31FEB26", "btc-perpetual", "BTC-27MAR26-C"])
def test_unknown_ids_are_named(bad: str) -> None:
    with pytest.raises(MappingError, match=re.escape(repr(bad))):
        from_deribit(bad)


@pytest.mark.parametrize(
    "key",
    [
        "perpetual-BTC-USDT:BTC",
        "perpetual-BTC-USD:USD",
        "spot-BTC-USD",
        "option-BTC-USD:BTC-20260626-100000-C",
        "nonsense",
    ],
)
def test_keys_deribit_has_no_name_for(key: str) -> None:
    with pytest.raises(MappingError):
        to_deribit(key)


def write(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "universe.yaml"
    path.write_text(f"start_month: 2026-01\ncayolargo:\n{section}")
    return path


def test_universe_section_lists_coins(tmp_path: Path) -> None:
    universe = load_universe(write(tmp_path, "  coins: [BTC, ETH]\n"))
    section = universe.section("cayolargo")
    assert section.coins == ("BTC", "ETH")
    assert section.instruments == ()  # discovered from the data


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  coins: []\n", "'coins' must be a non-empty list"),
        ("  coins: [btc]\n", "cayolargo.coins[0]: 'btc' is not a coin code"),
        ("  coins: [BTC, BTC]\n", "a coin is listed twice"),
        ("  coins: [BTC]\n  instruments: []\n", "unknown key(s) ['instruments']"),
    ],
)
def test_universe_section_errors_name_the_entry(tmp_path: Path, section: str, message: str) -> None:
    with pytest.raises(UniverseError, match=re.escape(message)):
        load_universe(write(tmp_path, section))
