-- report/term_structure_snapshots: the snapshots of each curve (vendor, venue, coin, quote, settle)
-- to draw: its latest snapshot with a live dated future in [$start, $end), and the last one at or
-- before 7, 30 and 90 days earlier (a snapshot picked twice is drawn once, at its smallest lag).
-- Read from marts.fct_carry: computing the marts.rpt_term_structure view whole costs seconds.
with

snapshots as (
    select distinct c.vendor, c.venue, i.base as coin, i.quote, i.settle, c.ts
    from marts.fct_carry as c
    inner join marts.dim_instrument as i using (venue, instrument_key)
    where c.kind = 'future' and c.dte_days > 0
      and c.ts >= $start and c.ts < $end
      and ($instruments::varchar[] is null or list_contains($instruments::varchar[], c.instrument_key))
),

lags as (
    select vendor, venue, coin, quote, settle, unnest([0, 7, 30, 90]) as days_before, max(ts) as latest_ts
    from snapshots
    group by all
),

picked as (
    select l.vendor, l.venue, l.coin, l.quote, l.settle, l.days_before, s.ts
    from (select *, latest_ts - to_days(days_before) as target_ts from lags) as l
    asof inner join snapshots as s
        on l.vendor = s.vendor and l.venue = s.venue and l.coin = s.coin and l.quote = s.quote
        and l.settle is not distinct from s.settle and s.ts <= l.target_ts
)

select vendor, venue, coin, quote, settle, ts, min(days_before) as days_before
from picked
group by all
order by all
