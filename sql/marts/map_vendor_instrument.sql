-- map_vendor_instrument: one row per (vendor, vendor_exchange, vendor_instrument_class, vendor_instrument).
with

mappings as (
    select * from ref.vendor_instrument
)

select
    vendor,
    vendor_exchange,
    vendor_instrument_class,
    vendor_instrument,
    venue,
    instrument_key
from mappings
