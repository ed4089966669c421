-- Aperiodic's raw tables, declared by its SOURCE (pipelines/sources/aperiodic/source.py) and
-- created by pipelines/warehouse/lake.py after sql/schema/raw.sql; each is partitioned by its month column.

-- one row per (venue, instrument_key, timestamp_type, interval, ts); partition = (venue,
-- instrument_key, timestamp_type, interval, month)
create table if not exists raw.aperiodic_derivative_price (
    venue varchar not null, instrument_key varchar not null, timestamp_type varchar not null,
    interval varchar not null, month date not null, ts timestamptz not null,
    last_price double, index_price double, mark_price double,
    last_price_pct_change double,
    index_price_pct_change double,
    mark_price_pct_change double,
    mark_index_pct_change_ratio double,
    mark_last_pct_change_ratio double,
    index_last_pct_change_ratio double,
    loaded_at timestamptz not null
);

-- one row per (venue, instrument_key, timestamp_type, interval, ts) from Aperiodic `funding`, in the
-- catalog's layout (pipelines/sources/aperiodic/README.md): statistics of the interval. funding_rate
-- is the last funding rate in the interval, a fraction per funding period; predicted_funding_rate the
-- last predicted one; the spreads are predicted - funding (bps of abs(funding_rate)); frequencies are
-- updates per second, the average update interval in seconds. No interval column: the vendor sends
-- none; the marts take it from ref.funding_interval. Partition as raw.aperiodic_derivative_price.
create table if not exists raw.aperiodic_funding (
    venue varchar not null, instrument_key varchar not null, timestamp_type varchar not null,
    interval varchar not null, month date not null, ts timestamptz not null,
    funding_rate double not null,
    loaded_at timestamptz not null,
    predicted_funding_rate double,
    predicted_funding_rate_spread double,
    predicted_funding_rate_spread_bps double,
    predicted_funding_rate_spread_mean double,
    predicted_funding_rate_std double,
    predicted_funding_rate_spread_bps_std double,
    funding_rate_update_frequency double,
    funding_rate_avg_update_interval double,
    predicted_funding_rate_update_frequency double
);

-- one row per (venue, instrument_key, timestamp_type, interval, ts) from Aperiodic `open_interest`:
-- the last open interest observed in the interval, in base-asset units of the contract (coins; the
-- catalog states no unit, see the README), its pct change within the interval, the standard
-- deviation of its tick-to-tick pct changes, and its pct change / the mark's. Partition as above.
create table if not exists raw.aperiodic_open_interest (
    venue varchar not null, instrument_key varchar not null, timestamp_type varchar not null,
    interval varchar not null, month date not null, ts timestamptz not null,
    open_interest double,
    loaded_at timestamptz not null,
    open_interest_pct_change double,
    open_interest_volatility double,
    oi_price_change_ratio double
);

-- one row per (venue, instrument_key, timestamp_type, interval, ts) from Aperiodic `basis`: the last
-- mark - index in the interval (basis, and in bps of the index), the last mark - last (and in bps of
-- last), their means and the standard deviations of the bps. Checked against markhouse's own basis
-- (intermediate.int_aperiodic__basis_check). Partition as above.
create table if not exists raw.aperiodic_basis (
    venue varchar not null, instrument_key varchar not null, timestamp_type varchar not null,
    interval varchar not null, month date not null, ts timestamptz not null,
    basis double,
    basis_bps double,
    mark_price_spread double,
    mark_price_spread_bps double,
    basis_mean double,
    basis_bps_std double,
    mark_price_spread_mean double,
    mark_price_spread_bps_std double,
    loaded_at timestamptz not null
);

-- a warehouse made before issue 24 (funding and open interest of two columns): the published
-- columns are added once, when this file runs for raw.aperiodic_basis
alter table raw.aperiodic_funding add column if not exists predicted_funding_rate double;
alter table raw.aperiodic_funding add column if not exists predicted_funding_rate_spread double;
alter table raw.aperiodic_funding add column if not exists predicted_funding_rate_spread_bps double;
alter table raw.aperiodic_funding add column if not exists predicted_funding_rate_spread_mean double;
alter table raw.aperiodic_funding add column if not exists predicted_funding_rate_std double;
alter table raw.aperiodic_funding add column if not exists predicted_funding_rate_spread_bps_std double;
alter table raw.aperiodic_funding add column if not exists funding_rate_update_frequency double;
alter table raw.aperiodic_funding add column if not exists funding_rate_avg_update_interval double;
alter table raw.aperiodic_funding add column if not exists predicted_funding_rate_update_frequency double;
alter table raw.aperiodic_open_interest add column if not exists open_interest_pct_change double;
alter table raw.aperiodic_open_interest add column if not exists open_interest_volatility double;
alter table raw.aperiodic_open_interest add column if not exists oi_price_change_ratio double;
