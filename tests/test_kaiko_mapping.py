"""Kaiko codes <-> venue + Atlas key (the one mapping), the option extension, and the universe
section; expected values written out by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.sources.kaiko.source import KaikoCode, MappingError, from_kaiko, to_kaiko
from pipelines.symbology import parse_symbol
from pipelines.universe import UniverseError, load_universe


@pytest.mark.parametrize(
    ("venue", "key", "code"),
    [
        ("binance-futures", "perpetual-BTC-USDT:USDT", ("bnce", "perpetual-future", "btcusdt")),
        ("binance-futures", "future-ETH-USDT:USDT-20260626", ("bnce", "future", "ethusdt260626")),
        ("okx-perps", "perpetual-BTC-USDT:USDT", ("okex", "perpetual-future", "btc-usdt")),
        ("okx-perps", "perpetual-BTC-USD:BTC", ("okex", "perpetual-future", "btc-usd")),
        ("okx-futures", "future-BTC-USDT:USDT-20250117", ("okex", "future", "btcusdt250117")),
        (
            "okx-options",
            "option-BTC-USD:BTC-20260626-100000-C",
            ("okex", "option", "btc-usd-260626-100000-c"),
        ),
    ],
)
def test_codes_both_ways(venue: str, key: str, code: tuple[str, str, str]) -> None:
    assert to_kaiko(venue, parse_symbol(key)) == KaikoCode(*code)
    back_venue, back = from_kaiko(KaikoCode(*code))
    assert (back_venue, back.instrument_key) == (venue, key)


def test_dated_contracts_expire_at_0800_utc() -> None:
    _, future = from_kaiko(KaikoCode("bnce", "future", "btcusdt260327"))
    assert future.kind == "future" and future.expiry == datetime(2026, 3, 27, 8, tzinfo=UTC)
    _, option = from_kaiko(KaikoCode("okex", "option", "eth-usd-261225-3500-p"))
    assert option.instrument_key == "option-ETH-USD:ETH-20261225-3500-P"
    assert option.kind == "option" and option.expiry == datetime(2026, 12, 25, 8, tzinfo=UTC)
    _, perp = from_kaiko(KaikoCode("bnce", "perpetual-future", "ethusdt"))
    assert perp.expiry is None


def test_unmappable_names_fail_clearly() -> None:
    with pytest.raises(MappingError, match="no mapping for a perpetual on 'hyperliquid-perps'"):
        to_kaiko("hyperliquid-perps", parse_symbol("perpetual-BTC-USDT:USDT"))
    with pytest.raises(MappingError, match="no YYMMDD delivery date"):
        from_kaiko(KaikoCode("bnce", "future", "btcusdt"))
    with pytest.raises(MappingError, match="no venue"):
        from_kaiko(KaikoCode("drbt", "future", "btc-27mar26"))


def write(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "u.yaml"
    path.write_text("start_month: 2026-01\nkaiko:\n" + section)
    return path


def test_universe_section_names_each_instrument_and_sets_expiry(tmp_path: Path) -> None:
    universe = load_universe(
        write(
            tmp_path,
            "  intervals: [1m, 1h]\n  instruments:\n"
            "    - {venue: binance-futures, symbol: perpetual-BTC-USDT:USDT}\n"
            "    - {venue: binance-futures, symbol: future-BTC-USDT:USDT-20260626}\n",
        )
    )
    section = universe.section("kaiko")
    assert section.intervals == ("1m", "1h")
    perp, future = section.instruments
    assert section.code(future) == KaikoCode("bnce", "future", "btcusdt260626")
    assert future.instrument.expiry == datetime(2026, 6, 26, 8, tzinfo=UTC)
    assert perp.funding_interval_hours == 8 and future.funding_interval_hours is None


def test_an_instruments_own_intervals_override_the_sections(tmp_path: Path) -> None:
    universe = load_universe(
        write(
            tmp_path,
            "  intervals: [1m]\n  instruments:\n"
            "    - {venue: binance-futures, symbol: perpetual-BTC-USDT:USDT}\n"
            "    - {venue: okx-options, symbol: option-BTC-USD:BTC-20260605-80000-C, intervals: [1h, 1d, 1h]}\n",
        )
    )
    section = universe.section("kaiko")
    perp, option = section.instruments
    assert section.intervals == ("1m",)
    assert perp.intervals == ()  # the section's
    assert option.intervals == ("1h", "1d")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "  intervals: [5m]\n  instruments: [{venue: binance-futures, symbol: perpetual-BTC-USDT:USDT}]\n",
            "unknown interval '5m'; Kaiko serves 1m, 1h, 4h, 1d",
        ),
        (
            "  instruments:\n    - {venue: binance-futures, symbol: perpetual-BTC-USDT:USDT}\n"
            "    - {venue: binance-futures, symbol: future-BTC-USDT:USDT-20260626, intervals: [5m]}\n",
            "kaiko.instruments[1]: unknown interval '5m'; Kaiko serves 1m, 1h, 4h, 1d",
        ),
        (
            "  instruments: [{venue: binance-futures, symbol: perpetual-BTC-USDT:USDT, intervals: 1h}]\n",
            "kaiko.instruments[0]: intervals must be a non-empty list, one of 1m, 1h, 4h, 1d",
        ),
        (
            "  instruments: [{venue: hyperliquid-perps, symbol: perpetual-BTC-USDT:USDT}]\n",
            "kaiko.instruments[0]: venue 'hyperliquid-perps' is not served here",
        ),
        (
            "  instruments: [{venue: okx-futures, symbol: perpetual-BTC-USDT:USDT}]\n",
            "kaiko.instruments[0]: Kaiko has no mapping for a perpetual on 'okx-futures'",
        ),
        ("  instruments: []\n", "'instruments' is empty"),
    ],
)
def test_universe_section_errors_name_the_entry(tmp_path: Path, section: str, message: str) -> None:
    with pytest.raises(UniverseError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_universe(write(tmp_path, section))
