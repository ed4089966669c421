-- int_finest_loaded_interval: one row per (vendor, venue, instrument_key, timestamp_type): the
-- finest interval natively loaded for it (raw.load_log), so a source loaded at 1m and 1h counts
-- each observation once (a coarser row repeats finer ones).
with

intervals as (
    select * from ref.intervals
),

finest as (
    select log.vendor, log.venue, log.instrument_key, log.timestamp_type, arg_min(log.interval, i.seconds) as interval
    from raw.load_log as log
    inner join intervals as i using (interval)
    group by all
)

select * from finest
