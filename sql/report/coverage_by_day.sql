-- report/coverage_by_day: one row per (vendor, venue, instrument_key, interval, day) in [$start, $end)
-- of a month marts.rpt_coverage holds, at the finest interval loaded for the instrument (the native
-- one): the intervals the day should hold, those loaded, and those missing. The months are
-- `markhouse status`'s (status/coverage_as_of at $as_of, filled in below): rpt_coverage's, with the
-- month holding $as_of cut at it, so the running day expects only the intervals ended by then. A month's
-- expected window starts at the month (or at a dated contract's first observation) and holds
-- expected_rows intervals, so a month's days add up to its expected_rows.
with

intervals as (
    select * from (values {intervals}) as i (interval, seconds)
),

coverage as (
    select c.*, i.seconds
    from ({coverage}) as c
    inner join intervals as i using (interval)
    where $instruments::varchar[] is null or list_contains($instruments::varchar[], c.instrument_key)
),

first_seen as (
    select vendor, venue, instrument_key, interval, min(first_ts) as first_seen from marts.rpt_coverage group by all
),

months as (
    select
        c.vendor, c.venue, c.instrument_key, c.interval, c.seconds, c.month::timestamptz as month_start,
        c.expected_rows, d.kind, f.first_seen
    from coverage as c
    inner join first_seen as f using (vendor, venue, instrument_key, interval)
    left join marts.dim_instrument as d using (venue, instrument_key)
),

windows as (
    select
        *,
        case when kind in ('future', 'option') then greatest(month_start, first_seen) else month_start end as expected_start,
        expected_start + to_seconds(expected_rows * seconds) as expected_end
    from months
),

days as (
    select unnest(range($start::timestamptz, $end::timestamptz, interval 1 day)) as day
),

expected as (
    select
        w.vendor, w.venue, w.instrument_key, w.interval, d.day,
        greatest(
            0, (epoch(least(d.day + interval 1 day, w.expected_end)) - epoch(greatest(d.day, w.expected_start))) // w.seconds
        )::bigint as expected_rows
    from windows as w
    inner join days as d on d.day >= w.month_start and d.day < w.month_start + interval 1 month
),

loaded as (
    select p.vendor, p.venue, p.instrument_key, p.interval, date_trunc('day', p.ts) as day, count(distinct p.ts) as loaded_rows
    from marts.fct_price_interval as p
    -- inside the month's expected window only: nothing past $as_of's cut (or an expiry) counts as loaded
    semi join windows as w
        on p.vendor = w.vendor and p.venue = w.venue and p.instrument_key = w.instrument_key
        and p.interval = w.interval and p.ts >= w.month_start and p.ts < w.expected_end
    where p.ts >= $start::timestamptz and p.ts < $end::timestamptz
    group by all
),

final as (
    select
        e.vendor, e.venue, e.instrument_key, e.interval, e.day, e.expected_rows,
        coalesce(l.loaded_rows, 0) as loaded_rows,
        greatest(e.expected_rows - coalesce(l.loaded_rows, 0), 0) as missing_intervals
    from expected as e
    left join loaded as l using (vendor, venue, instrument_key, interval, day)
)

select * from final
order by instrument_key, venue, vendor, interval, day
