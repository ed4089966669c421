-- stg_aperiodic__open_interest: one row per (venue, instrument_key, timestamp_type, interval, ts)
-- with the last open interest Aperiodic observed in the interval, in base-asset units (coins; the
-- catalog states no unit, see pipelines/sources/aperiodic/README.md), and its statistics.
with

renamed as (
    -- the raw columns, but the partition month and the load time
    select 'aperiodic' as vendor, * exclude (month, loaded_at), 'base' as open_interest_unit
    from raw.aperiodic_open_interest
)

select * from renamed
