-- CayøLargo's raw table, declared by its SOURCE (pipelines/sources/cayolargo/source.py) and
-- created by pipelines/warehouse/lake.py after sql/schema/raw.sql; partitioned by its month column.

-- one row per (venue, instrument_key, ts): CayøLargo Deribit futures/perpetual snapshots (10m);
-- partition = (venue, instrument_key, month). expiration_timestamp as the vendor sent it
-- (3000-01-01 for perpetuals); funding_interval_hours from the mapping (perpetuals only).
create table if not exists raw.cayolargo_futures (
    venue varchar not null, instrument_key varchar not null, coin varchar not null, instrument_id varchar not null,
    month date not null, ts timestamptz not null,
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
