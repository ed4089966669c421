-- Internal layers: the schemas, reference data from the universe and a load log. Each vendor's raw
-- tables (rows as it served them, converted at the boundary: numbers, TIMESTAMPTZ, venue + Atlas
-- instrument_key) are in its own sql/sources/<vendor>/raw.sql, run after this file. Every raw.*
-- table is partitioned by its month column. Idempotent. DuckLake tables take no primary keys: the
-- loads replace by key themselves.
create schema if not exists raw;
create schema if not exists ref;
create schema if not exists staging;
create schema if not exists intermediate;
create schema if not exists marts;
create schema if not exists meta;

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
    loaded_at timestamptz not null,
    origin varchar  -- 'vendor' (its API) or 'emulator' (the embedded one); null: loaded before 2026-12-07
);
alter table raw.load_log add column if not exists origin varchar;

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

-- one row per (venue, instrument_key, valid_from) of a perpetual: the funding interval in force from
-- valid_from on (1970-01-01: from the start), and where it comes from: 'venue default' (the venue's
-- documented default, pipelines/venues.py) or 'universe' (the universe's funding_interval_hours,
-- which may give a history); replaced per instrument from the universe on every load
create table if not exists ref.funding_interval (
    venue varchar not null,
    instrument_key varchar not null,
    valid_from timestamptz not null,
    funding_interval_hours double not null,
    source varchar not null
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
