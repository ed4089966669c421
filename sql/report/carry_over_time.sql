-- report/carry_over_time: marts.fct_carry's annualized carry per coin and series, averaged per {bucket}
-- (day, or hour over short ranges): funding for perpetuals, annualized basis for dated futures.
with

carry as (
    select c.*, i.base as coin
    from marts.fct_carry as c
    inner join marts.dim_instrument as i using (venue, instrument_key)
    where c.ts >= $start and c.ts < $end
      and ($instruments::varchar[] is null or list_contains($instruments::varchar[], c.instrument_key))
),

final as (
    select
        coin,
        vendor,
        venue,
        instrument_key,
        kind,
        date_trunc('{bucket}', ts) as bucket,
        avg(case when kind = 'perpetual' then funding_annualized_pct else annualized_basis_pct end) as carry_pct
    from carry
    group by all
    having carry_pct is not null
)

select * from final
order by coin asc, kind desc, instrument_key asc, venue asc, vendor asc, bucket asc
