-- report/constant_maturity: marts.fct_carry_constant_maturity's annualized basis per curve and tenor,
-- averaged per {bucket} (day, or hour over short ranges); a tenor no pair of expiries brackets is left out.
with

curves as (
    select c.* from marts.fct_carry_constant_maturity as c
    where c.ts >= $start and c.ts < $end
      and (
          $instruments::varchar[] is null
          or exists (
              select 1 from marts.dim_instrument as d
              where list_contains($instruments::varchar[], d.instrument_key)
                and d.venue = c.venue and d.base = c.coin and d.settle = c.settle
          )
      )
),

tenors as (
    select
        vendor,
        venue,
        coin,
        settle,
        date_trunc('{bucket}', ts) as bucket,
        unnest([7, 30, 60, 90, 180]) as tenor_days,
        unnest([
            annualized_basis_7d_pct, annualized_basis_30d_pct, annualized_basis_60d_pct,
            annualized_basis_90d_pct, annualized_basis_180d_pct
        ]) as basis_pct
    from curves
),

final as (
    select vendor, venue, coin, settle, tenor_days, bucket, avg(basis_pct) as basis_pct
    from tenors
    group by all
    having basis_pct is not null
)

select * from final
order by coin asc, tenor_days asc, venue asc, vendor asc, settle asc, bucket asc
