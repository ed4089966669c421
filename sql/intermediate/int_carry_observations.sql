-- int_carry_observations: one row per (vendor, venue, instrument_key, ts) with the inputs of carry:
-- mark and index, and funding and open interest where the vendor carries them (each source's
-- int_<vendor>__carry_observations says how it picks its rows).
-- open_interest_unit says how fct_carry turns open interest into USD: 'contracts' (CayøLargo) or
-- 'base' (Aperiodic).
-- `sources` below: each source's relation in this shape, as its SOURCE declares it
-- (pipelines/sources/<vendor>/source.py, `observations`), one `select * from` each, unioned by name.
with

unioned as (
    {sources}
)

select * from unioned
