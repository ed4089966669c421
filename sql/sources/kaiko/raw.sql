-- Kaiko's raw table, declared by its SOURCE (pipelines/sources/kaiko/source.py) and created by
-- pipelines/warehouse/lake.py after sql/schema/raw.sql; partitioned by its month column.

-- one row per (venue, instrument_key, interval, ts) from Kaiko derivatives.v2/price (exchange time;
-- a coarser row is the last minute of its period); partition = (venue, instrument_key, interval,
-- month)
create table if not exists raw.kaiko_derivative_price (
    venue varchar not null, instrument_key varchar not null, interval varchar not null,
    month date not null, ts timestamptz not null,
    last_price double, index_price double, mark_price double,
    loaded_at timestamptz not null
);
