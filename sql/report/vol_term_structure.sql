-- report/vol_term_structure: marts.rpt_vol_term_structure's at-the-money volatility at each
-- underlying's latest hourly snapshot in the range that has one (per vendor and venue), by days to expiry.
with

atm as (
    select * from marts.rpt_vol_term_structure
    where ts >= $start and ts < $end and atm_vol is not null
),

latest as (
    select vendor, venue, underlying, max(ts) as ts from atm
    group by all
)

select a.vendor, a.venue, a.underlying, a.ts, a.expiry, a.years_to_expiry * 365 as days_to_expiry, a.atm_vol * 100 as atm_vol_pct
from atm as a
inner join latest using (vendor, venue, underlying, ts)
order by a.underlying, a.vendor, a.venue, days_to_expiry
