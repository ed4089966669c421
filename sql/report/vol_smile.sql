-- report/vol_smile: marts.rpt_vol_smile at each underlying's latest hourly snapshot in the range
-- (per vendor and venue): the out-of-the-money volatility by log-moneyness, one line per expiry.
with

latest as (
    select vendor, venue, underlying, max(ts) as ts
    from marts.rpt_vol_smile
    where ts >= $start and ts < $end
      and ($instruments::varchar[] is null or list_contains($instruments::varchar[], instrument_key))
    group by all
)

select s.vendor, s.venue, s.underlying, s.expiry, s.ts, s.strike, s.log_moneyness, s.iv_mark * 100 as iv_pct
from marts.rpt_vol_smile as s
inner join latest using (vendor, venue, underlying, ts)
where $instruments::varchar[] is null or list_contains($instruments::varchar[], s.instrument_key)
order by s.underlying, s.vendor, s.venue, s.expiry, s.log_moneyness
