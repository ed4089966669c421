-- materialized: incremental
-- fct_carry: one row per (vendor, venue, instrument_key, ts) of a perpetual or dated future where
-- mark and index exist. Time column: ts. Computes $window_start <= ts < $window_end.
-- Options are left out: an option's mark is a premium, so a basis against the index means nothing.
with

observations as (
    select * from intermediate.int_carry_observations
    where ts >= $window_start::timestamptz and ts < $window_end::timestamptz
),

instruments as (
    select * from ref.instrument
),

-- issue 24: the funding interval in force at each ts, per instrument over time (venue default or universe)
funding_intervals as (
    select * from ref.funding_interval
),

joined as (
    select
        o.vendor,
        o.venue,
        o.instrument_key,
        o.ts,
        i.kind,
        i.expiry,
        o.mark_price,
        o.index_price,
        i.base,
        i.settle,
        o.funding_rate,
        o.predicted_funding_rate,
        -- the interval that applied to the observation: the vendor's where it sends one, else the
        -- reference data's in force at ts, else the instrument's; none where there is no funding rate
        case
            when o.funding_rate is not null or o.predicted_funding_rate is not null
                then coalesce(o.funding_interval_hours, fi.funding_interval_hours, i.funding_interval_hours)
        end as funding_interval_hours,
        case
            when o.funding_rate is null and o.predicted_funding_rate is null then null
            when o.funding_interval_hours is not null then 'vendor'
            when fi.funding_interval_hours is not null then fi.source
            when i.funding_interval_hours is not null then 'venue default'
        end as funding_interval_source,
        o.open_interest,
        o.open_interest_unit,
        coalesce(o.contract_size, i.contract_size) as contract_size
    from observations as o
    inner join instruments as i using (venue, instrument_key)
    asof left join funding_intervals as fi
        on o.venue = fi.venue and o.instrument_key = fi.instrument_key and o.ts >= fi.valid_from
    where i.kind in ('perpetual', 'future')
      and o.mark_price is not null
      and o.index_price is not null
),

computed as (
    select
        *,
        case when kind = 'future' then (epoch(expiry) - epoch(ts)) / 86400.0 end as dte_days,
        mark_price - index_price as basis,
        (mark_price - index_price) / nullif(index_price, 0) * 100 as basis_pct
    from joined
),

final as (
    select
        vendor, venue, instrument_key, ts,
        kind, expiry, dte_days,
        mark_price, index_price, basis, basis_pct,
        case when kind = 'future' and dte_days > 0 then basis_pct * 365 / dte_days end as annualized_basis_pct,
        funding_rate,
        case when kind = 'perpetual' then funding_interval_hours end as funding_interval_hours,
        funding_rate * 8760 / funding_interval_hours * 100 as funding_annualized_pct,
        -- issue 24: the predicted rate, the interval's source
        predicted_funding_rate,
        predicted_funding_rate * 8760 / funding_interval_hours * 100 as predicted_funding_annualized_pct,
        case when kind = 'perpetual' then funding_interval_source end as funding_interval_source,
        open_interest,
        contract_size,
        -- USD for every contract: open interest in base units x mark; an inverse contract's
        -- (settled in its base coin) contracts x USD per contract; a linear contract's contracts
        -- x base units per contract x mark
        case
            when open_interest_unit = 'base' then open_interest * mark_price
            when settle = base then open_interest * contract_size
            else open_interest * contract_size * mark_price
        end as oi_usd
    from computed
)

select * from final
