-- rpt_futures_rolls: one row per roll of a curve's front future (vendor, venue, coin, settle,
-- roll_ts), read off marts.fct_futures_rolled at the curve's finest interval: where the front
-- contract changes, which contract it rolled from and to, and the two contracts' marks at the
-- last interval before the roll. roll_ratio = to_mark_price / from_mark_price is the factor a
-- ratio-adjusted continuous series applies at the roll (back-adjusting: history before the roll
-- times roll_ratio); fct_futures_rolled's returns already leave the jump out.
with

rolled as (
    select * from marts.fct_futures_rolled
),

intervals as (
    select * from ref.intervals
),

-- each curve at its finest interval
finest as (
    select r.*
    from rolled as r
    inner join intervals as i using (interval)
    qualify i.seconds = min(i.seconds) over (partition by r.vendor, r.venue, r.coin, r.settle)
),

changes as (
    select
        *,
        lag(ts) over curve as previous_ts,
        lag(front_instrument_key) over curve as from_instrument_key,
        lag(front_expiry) over curve as from_expiry,
        lag(front_roll_at) over curve as from_roll_at,
        lag(front_mark_price) over curve as from_mark_price,
        lag(second_instrument_key) over curve as previous_second_key,
        lag(second_mark_price) over curve as previous_second_mark_price
    from finest
    window curve as (partition by vendor, venue, coin, settle order by ts)
),

final as (
    select
        vendor, venue, coin, settle, interval,
        ts as roll_ts,
        from_roll_at as scheduled_roll_at,
        previous_ts,
        from_instrument_key,
        from_expiry,
        front_instrument_key as to_instrument_key,
        front_expiry as to_expiry,
        (epoch(from_expiry) - epoch(ts)) / 86400.0 as from_dte_days,
        from_mark_price,
        case when previous_second_key = front_instrument_key then previous_second_mark_price end as to_mark_price,
        case
            when previous_second_key = front_instrument_key
                then previous_second_mark_price / nullif(from_mark_price, 0)
        end as roll_ratio
    from changes
    where from_instrument_key <> front_instrument_key
)

select * from final
