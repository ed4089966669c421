"""The universe file and Atlas symbols are validated before anything is downloaded."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pipelines.settings import DEMO_UNIVERSE
from pipelines.symbology import SymbolError, parse_symbol
from pipelines.universe import UniverseError, load_universe
from pipelines.universe.instruments import parse_instrument


def test_parse_atlas_keys() -> None:
    perp = parse_symbol("perpetual-BTC-USDT:USDT")
    assert (perp.kind, perp.base, perp.quote, perp.settle, perp.expiry) == (
        "perpetual",
        "BTC",
        "USDT",
        "USDT",
        None,
    )
    fut = parse_symbol("future-BTC-USD:BTC-20260327")
    assert (fut.kind, fut.settle, fut.expiry) == ("future", "BTC", datetime(2026, 3, 27, tzinfo=UTC))


@pytest.mark.parametrize(
    "bad",
    [
        "BTCUSDT",
        "perpetual-btc-usdt:usdt",
        "future-BTC-USD:BTC",
        "perpetual-BTC-USDT:USDT-20260327",
        "future-BTC-USD:BTC-20261340",
        "swap-BTC-USDT:USDT",
    ],
)
def test_malformed_symbols_are_named(bad: str) -> None:
    with pytest.raises(SymbolError, match=repr(bad).replace("[", r"\[")):
        parse_symbol(bad)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "universe.yaml"
    path.write_text(text)
    return path


def test_demo_universe_loads() -> None:
    universe = load_universe(DEMO_UNIVERSE)
    assert universe.start_month == date(2026, 1, 1)
    assert universe.section("aperiodic") is not None
    assert [i.instrument_key for i in universe.section("aperiodic").instruments] == [
        "perpetual-BTC-USDT:USDT",
        "perpetual-ETH-USDT:USDT",
    ]
    assert universe.section("aperiodic").instruments[0].funding_interval_hours == 8
    # no `metrics` in the section: every Aperiodic derivative metric
    assert universe.section("aperiodic").metrics == ("derivative_price", "funding", "open_interest", "basis")
    # Kaiko's contracts at the section's 1m, the OKX option chain and its futures hourly (issue 23)
    kaiko = universe.section("kaiko")
    assert kaiko.intervals == ("1m",)
    assert {(i.venue.startswith("okx-"), i.intervals) for i in kaiko.instruments} == {
        (False, ()),
        (True, ("1h",)),
    }


def test_aperiodic_metrics_are_chosen_per_section(tmp_path: Path) -> None:
    body = "aperiodic:\n  metrics: [derivative_price, open_interest]\n  instruments:\n"
    body += "    - {venue: hyperliquid-perps, symbol: perpetual-BTC-USDC:USDC}\n"
    universe = load_universe(write(tmp_path, "start_month: 2026-01\n" + body))
    assert universe.section("aperiodic") is not None
    assert universe.section("aperiodic").metrics == ("derivative_price", "open_interest")
    assert universe.section("aperiodic").instruments[0].funding_interval_hours == 1  # Hyperliquid's default


def test_an_aperiodic_instruments_own_intervals_override_the_sections(tmp_path: Path) -> None:
    body = "aperiodic:\n  intervals: [1h]\n  instruments:\n"
    body += "    - {venue: binance-futures, symbol: perpetual-BTC-USDT:USDT, intervals: [1m, 5m]}\n"
    body += "    - {venue: binance-futures, symbol: perpetual-ETH-USDT:USDT}\n"
    section = load_universe(write(tmp_path, "start_month: 2026-01\n" + body)).section("aperiodic")
    assert section.intervals == ("1h",)
    assert [i.intervals for i in section.instruments] == [("1m", "5m"), ()]


def test_a_section_without_intervals_refuses_them_per_instrument() -> None:
    entry = {"venue": "binance-futures", "symbol": "perpetual-BTC-USDT:USDT", "intervals": ["1h"]}
    with pytest.raises(
        UniverseError, match=r"^u.yaml: s.instruments\[0\]: 'intervals' is not set per instrument"
    ):
        parse_instrument(entry, "u.yaml: s.instruments[0]", ("binance-futures",))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "aperiodic:\n  instruments:\n    - {venue: kraken-futures, symbol: perpetual-BTC-USD:USD}\n",
            "unknown venue 'kraken-futures'",
        ),
        (
            "aperiodic:\n  instruments:\n    - {venue: binance-futures, symbol: BTCUSDT}\n",
            "malformed Atlas symbol 'BTCUSDT'",
        ),
        (
            "aperiodic:\n  intervals: [2h]\n  instruments:\n    - {venue: binance-futures, symbol: perpetual-BTC-USDT:USDT}\n",
            "unknown interval '2h'",
        ),
        (
            "aperiodic:\n  instruments:\n    - {venue: binance-futures, symbol: perpetual-BTC-USDT:USDT, intervals: [2h]}\n",
            r"aperiodic.instruments\[0\]: unknown interval '2h'; expected one of 1m, 5m",
        ),
        (
            "kaiko:\n  instruments:\n    - {venue: binance-futures, symbol: perpetual-BTC-USDT:USDT, interval: [1h]}\n",
            r"kaiko.instruments\[0\]: unknown key\(s\) interval; expected venue, symbol, funding_interval_hours",
        ),
        ("aperiodic:\n  instruments: []\n", "'instruments' is empty"),
        (
            "aperiodic:\n  metrics: [trades]\n  instruments:\n    - {venue: binance-futures, symbol: perpetual-BTC-USDT:USDT}\n",
            "unknown metric 'trades'",
        ),
    ],
)
def test_bad_universe_entries_fail_at_load_time(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, "start_month: 2026-01\n" + body)
    with pytest.raises(UniverseError, match=message) as err:
        load_universe(path)
    assert str(path) in str(err.value)


def test_bad_start_month(tmp_path: Path) -> None:
    with pytest.raises(UniverseError, match="start_month must be YYYY-MM"):
        load_universe(write(tmp_path, "start_month: January\n"))


def test_timestamp_type_true_as_documented_is_the_word_not_a_yaml_boolean(tmp_path: Path) -> None:
    path = tmp_path / "u.yaml"
    path.write_text(
        "start_month: 2026-01\n"
        "aperiodic:\n"
        "  timestamp_types: [exchange, true] # exchange | true\n"
        "  instruments:\n"
        "    - {venue: binance-futures, symbol: perpetual-BTC-USDT:USDT}\n"
    )
    universe = load_universe(path)
    assert universe.section("aperiodic") is not None
    assert universe.section("aperiodic").timestamp_types == ("exchange", "true")
    path.write_text(path.read_text().replace("[exchange, true]", "[exchange, false]"))
    with pytest.raises(UniverseError, match="unknown timestamp_type 'false'"):
        load_universe(path)
