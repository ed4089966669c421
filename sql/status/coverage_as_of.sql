-- markhouse status: one row per (vendor, venue, instrument_key, month) at the finest interval
-- loaded for the series, as the warehouse stood at $as_of. Months after it are left out, and the
-- month holding it is recounted from the intervals complete by then, so data loaded later never
-- shows as a negative age. {intervals} is (interval, seconds) values.
with

coverage as (
    select c.*, i.seconds, d.expiry
    from marts.rpt_coverage as c
    inner join (values {intervals}) as i (interval, seconds) using (interval)
    left join marts.dim_instrument as d using (venue, instrument_key)
    where c.month <= date_trunc('month', $as_of::timestamptz)
),

finest as (
    select vendor, venue, instrument_key, min(seconds) as seconds from coverage group by all
),

-- the month holding as_of: intervals that started before the last interval boundary at as_of
cut as (
    select
        c.vendor, c.venue, c.instrument_key, c.interval, c.month,
        to_timestamp(floor(epoch($as_of::timestamptz) / c.seconds) * c.seconds) as cut_ts,
        least(
            c.month::timestamptz + interval 1 month,
            to_timestamp(floor(epoch(coalesce(c.loaded_at, $as_of::timestamptz)) / c.seconds) * c.seconds),
            to_timestamp(ceil(epoch(coalesce(c.expiry, 'infinity'::timestamptz)) / c.seconds) * c.seconds)
        ) as expected_end,
        c.expected_rows,
        c.seconds
    from coverage as c
    where c.month = date_trunc('month', $as_of::timestamptz)
),

cut_loaded as (
    select
        cut.vendor, cut.venue, cut.instrument_key, cut.interval, cut.month,
        greatest(0, cut.expected_rows - greatest(0, (epoch(cut.expected_end) - epoch(cut.cut_ts)) // cut.seconds))::bigint
            as expected_rows,
        count(distinct p.ts) filter (where p.ts < cut.expected_end)::bigint as loaded_rows,
        max(p.ts) as last_ts
    from cut
    left join marts.fct_price_interval as p
        on p.vendor = cut.vendor
        and p.venue = cut.venue
        and p.instrument_key = cut.instrument_key
        and p.interval = cut.interval
        and p.ts >= date_trunc('month', $as_of::timestamptz)
        and p.ts < cut.cut_ts
    group by all
)

select
    c.vendor, c.venue, c.instrument_key, c.interval, c.month,
    coalesce(k.expected_rows, c.expected_rows) as expected_rows,
    coalesce(k.loaded_rows, c.loaded_rows) as loaded_rows,
    greatest(coalesce(k.expected_rows, c.expected_rows) - coalesce(k.loaded_rows, c.loaded_rows), 0)
        as missing_intervals,
    case when k.vendor is null then c.last_ts else k.last_ts end as last_ts,
    c.expiry
from coverage as c
inner join finest as f using (vendor, venue, instrument_key, seconds)
left join cut_loaded as k using (vendor, venue, instrument_key, interval, month)
where k.vendor is null or k.last_ts is not null
order by all
