-- Aperiodic's raw tables, declared by its SOURCE (pipelines/sources/aperiodic/source.py) and
-- created by pipelines/warehouse/lake.py after sql/schema/raw.sql; each is partitioned by its month column.

-- one row per (venue, instrument_key, timestamp_type, interval, ts); partition = (venue,
-- instrument_key, timestamp_type, interval, month)
create table if not exists raw.aperiodic_derivative_price (
    venue varchar not null,
    instrument_key varchar not null,
    timestamp_type varchar not null,
    interval varchar not null,
    month date not null,
    ts timestamptz not null,
    last_price double,
    index_price double,
    mark_price double,
    last_price_pct_change double,
    index_price_pct_change double,
    mark_price_pct_change double,
    mark_index_pct_change_ratio double,
    mark_last_pct_change_ratio double,
    index_last_pct_change_ratio double,
    loaded_at timestamptz not null
);

-- one row per (venue, instrument_key, timestamp_type, interval, ts) of an interval in which the
-- venue settled funding (Aperiodic `funding`; layout assumed, see pipelines/sources/aperiodic/README.md):
-- funding_rate is the rate settled in the interval, a fraction per funding period (the last one if
-- several settled). No interval column: the vendor sends none, staging derives it from the
-- settlement times. Partition as raw.aperiodic_derivative_price.
create table if not exists raw.aperiodic_funding (
    venue varchar not null,
    instrument_key varchar not null,
    timestamp_type varchar not null,
    interval varchar not null,
    month date not null,
    ts timestamptz not null,
    funding_rate double not null,
    loaded_at timestamptz not null
);

-- one row per (venue, instrument_key, timestamp_type, interval, ts) from Aperiodic `open_interest`
-- (layout assumed, as above): the last open interest observed in the interval, in base-asset
-- units of the contract (coins). Partition as raw.aperiodic_derivative_price.
create table if not exists raw.aperiodic_open_interest (
    venue varchar not null,
    instrument_key varchar not null,
    timestamp_type varchar not null,
    interval varchar not null,
    month date not null,
    ts timestamptz not null,
    open_interest double,
    loaded_at timestamptz not null
);
