-- markhouse summary: rows natively loaded per series and month (rollups are derived from them),
-- of the months [$first, $after) only: a daily refresh of one month reads that month's files
select
    vendor, venue, instrument_key, timestamp_type, interval, strftime(date_trunc('month', ts), '%Y-%m') as month,
    count(*) as rows, min(ts) as first_ts, max(ts) as last_ts
from marts.fct_price_interval
where interval = source_interval and ts >= $first::timestamptz and ts < $after::timestamptz
group by all
order by all
