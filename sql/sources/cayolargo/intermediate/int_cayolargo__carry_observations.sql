-- int_cayolargo__carry_observations: CayøLargo's rows in int_carry_observations' shape. Its
-- snapshots carry funding (per instrument, with its interval) and open interest in contracts.
with

cayolargo as (
    select * from staging.stg_cayolargo__futures
),

cayolargo_carry as (
    select
        vendor,
        venue,
        instrument_key,
        ts,
        mark_price,
        index_price,
        funding_rate,
        funding_interval_hours,
        open_interest,
        'contracts' as open_interest_unit,
        contract_size
    from cayolargo
)

select * from cayolargo_carry
