-- rpt_mark_last_gap: one row per (vendor, venue, instrument_key, timestamp_type, interval, ts) where
-- |mark - last| / mark exceeds the threshold in ref.settings ('mark_last_gap_threshold_bps'),
-- with the episode (run of consecutive such intervals) it belongs to. The gap between mark and
-- last is where liquidation engines act on a price that trades elsewhere.
with

prices as (
    select * from marts.fct_price_interval
),

settings as (
    select value as threshold_bps from ref.settings where name = 'mark_last_gap_threshold_bps'
),

intervals as (
    select * from ref.intervals
),

gaps as (
    select
        p.vendor, p.venue, p.instrument_key, p.timestamp_type, p.interval, p.ts,
        p.mark_price, p.last_price,
        (p.mark_price - p.last_price) / p.mark_price * 10000 as gap_bps,
        s.threshold_bps,
        i.seconds
    from prices as p
    cross join settings as s
    inner join intervals as i using (interval)
    where p.mark_price > 0 and p.last_price is not null
      and abs(p.mark_price - p.last_price) / p.mark_price * 10000 > s.threshold_bps
),

-- consecutive intervals share (interval number - row number): a gaps-and-islands episode key
episodes as (
    select
        *,
        epoch(ts) // seconds - row_number() over (
            partition by vendor, venue, instrument_key, timestamp_type, interval order by ts
        ) as episode_key
    from gaps
),

final as (
    select
        vendor, venue, instrument_key, timestamp_type, interval, ts,
        mark_price,
        last_price,
        gap_bps,
        threshold_bps,
        min(ts) over episode as episode_start,
        max(ts) over episode as episode_end,
        count(*) over episode as episode_intervals
    from episodes
    window episode as (partition by vendor, venue, instrument_key, timestamp_type, interval, episode_key)
)

select * from final
