-- int_price_observations: one row per (vendor, venue, instrument_key, timestamp_type, interval, ts):
-- every vendor's natively loaded price rows in one shape. Vendors that do not compute pct
-- changes or ratios leave those columns null; the marts compute them.
-- `sources` below: each source's relation in this shape, as its SOURCE declares it
-- (pipelines/sources/<vendor>/source.py, `observations`), one `select * from` each, unioned by name.
with

unioned as (
    {sources}
)

select * from unioned
