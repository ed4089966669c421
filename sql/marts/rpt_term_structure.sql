-- rpt_term_structure: one row per (vendor, venue, coin, quote, settle, ts, instrument_key): the
-- perpetual and every live dated future (dte_days > 0) of a coin at one snapshot, numbered along
-- the curve by tenor_rank (0 = perpetual, 1 = nearest expiry, ...), so one query plots the curve:
--   select dte_days, annualized_basis_pct from marts.rpt_term_structure
--   where vendor = 'cayolargo' and coin = 'BTC' and ts = ... order by tenor_rank
with

carry as (
    select * from marts.fct_carry
),

instruments as (
    select * from ref.instrument
),

live as (
    select
        c.*,
        i.base as coin,
        i.quote,
        i.settle
    from carry as c
    inner join instruments as i using (venue, instrument_key)
    where c.kind = 'perpetual' or c.dte_days > 0
),

ranked as (
    select
        *,
        case
            when kind = 'perpetual' then 0
            else row_number() over (
                partition by vendor, venue, coin, quote, settle, ts, kind order by expiry, instrument_key
            )
        end as tenor_rank
    from live
),

final as (
    select
        vendor, venue, coin, quote, settle, ts,
        tenor_rank, instrument_key,
        kind, expiry, dte_days,
        mark_price, index_price, basis, basis_pct,
        annualized_basis_pct,
        funding_annualized_pct,
        coalesce(annualized_basis_pct, funding_annualized_pct) as carry_annualized_pct,
        oi_usd
    from ranked
)

select * from final
