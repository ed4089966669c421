-- dim_instrument: one row per (venue, instrument_key).
with

instruments as (
    select * from ref.instrument
)

select
    instrument_key,
    venue,
    kind,
    base,
    quote,
    settle,
    expiry,
    contract_size,
    funding_interval_hours
from instruments
