-- Internal layers: raw rows as each vendor served them (converted at the boundary: numbers,
-- TIMESTAMPTZ, venue + Atlas instrument_key), reference data from the universe, and a load log.
-- Idempotent. DuckLake tables take no primary keys: the loads replace by key themselves.
create schema if not exists raw;
create schema if not exists ref;
create schema if not exists staging;
create schema if not exists intermediate;
create schema if not exists marts;
create schema if not exists meta;

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

-- one row per (venue, instrument_key, interval, ts) from Kaiko derivatives.v2/price (exchange time;
-- a coarser row is the last minute of its period); partition = (venue, instrument_key, interval,
-- month)
create table if not exists raw.kaiko_derivative_price (
    venue varchar not null,
    instrument_key varchar not null,
    interval varchar not null,
    month date not null,
    ts timestamptz not null,
    last_price double,
    index_price double,
    mark_price double,
    loaded_at timestamptz not null
);

-- one row per (venue, instrument_key, ts): CayøLargo Deribit futures/perpetual snapshots (10m);
-- partition = (venue, instrument_key, month). expiration_timestamp as the vendor sent it
-- (3000-01-01 for perpetuals); funding_interval_hours from the mapping (perpetuals only).
create table if not exists raw.cayolargo_futures (
    venue varchar not null,
    instrument_key varchar not null,
    coin varchar not null,
    instrument_id varchar not null,
    month date not null,
    ts timestamptz not null,
    contract_type varchar not null,
    expiration_timestamp timestamptz not null,
    contract_size double not null,
    mark_price double not null,
    bid_price double,
    ask_price double,
    best_bid_amount double,
    best_ask_amount double,
    last_price double,
    open_interest double not null,
    index_price double not null,
    funding_rate double,
    funding_8h double,
    funding_interval_hours double,
    estimated_delivery_price double,
    loaded_at timestamptz not null
);

-- one row per loaded partition: what was loaded, from how many files, when
create table if not exists raw.load_log (
    vendor varchar not null,
    venue varchar not null,
    instrument_key varchar not null,
    timestamp_type varchar not null,
    interval varchar not null,
    month date not null,
    rows bigint not null,
    files integer not null,
    loaded_at timestamptz not null
);

-- one row per (venue, instrument_key), upserted from the universe on every load
create table if not exists ref.instrument (
    venue varchar not null,
    instrument_key varchar not null,
    kind varchar not null,
    base varchar not null,
    quote varchar not null,
    settle varchar,
    expiry timestamptz,
    contract_size double,
    funding_interval_hours double
);

-- one row per (vendor, vendor_exchange, vendor_instrument_class, vendor_instrument)
create table if not exists ref.vendor_instrument (
    vendor varchar not null,
    vendor_exchange varchar not null,
    vendor_instrument_class varchar not null,
    vendor_instrument varchar not null,
    venue varchar not null,
    instrument_key varchar not null
);

-- one row per standard interval, with its length
create table if not exists ref.intervals as
select * from (values
    ('1m', 60), ('5m', 300), ('10m', 600), ('15m', 900), ('30m', 1800),
    ('1h', 3600), ('4h', 14400), ('1d', 86400)
) as t (interval, seconds);

-- named thresholds the report views read (written from the environment on every model build)
create table if not exists ref.settings (
    name varchar not null,
    value double not null
);

-- one row per published snapshot (what readers read): written by each publish, after the run's
-- last commit, so the row for snapshot n lives in snapshot n + 1
create table if not exists meta.publication (
    snapshot_id bigint not null,
    published_at timestamptz not null,
    row_counts varchar not null
);
