-- fct_futures_rolled: one row per (vendor, venue, coin, settle, interval, ts) where any dated future of
-- the curve (one vendor's futures of one coin and settlement currency on one venue) has an
-- exchange-time row in marts.fct_price_interval: the continuous front and second futures.
-- Roll rule: a contract is eligible from its first row at that interval (its listing, as far as the
-- vendor shows it) until its roll instant, 00:00 UTC of the day N days before its expiry date,
-- N = ref.settings 'futures_roll_days_before_expiry' (MARKHOUSE_FUTURES_ROLL_DAYS, default 8:
-- the roll date of CME's quarterly equity-index futures, the Thursday 8 calendar days before the
-- expiry Friday, when liquidity has moved to the next contract; Deribit's and Binance's
-- quarterlies expire on a Friday at 08:00 UTC, so the default rolls on the Thursday before at
-- 00:00 UTC, ahead of the expiry week's thinning book and the settlement averaging).
-- front = the eligible contract with the earliest expiry, second = the next one. The rule reads
-- the calendar, not the prices: a contract missing its row at ts leaves the price null there, it
-- never hands the slot to another contract.
-- Returns are ratio-adjusted: front_mark_return_pct is the front contract's own close-to-close
-- mark return (fct_price_interval.mark_return_pct: against its own previous interval), so on the
-- roll interval it is the new contract's return, never new price / old contract's price; the
-- ratio-adjusted continuous price is the running product of (1 + return / 100) (rpt_futures_rolls
-- gives each roll's ratio). A view: N applies at once to all history, and a universe without
-- dated futures reads no price row (the semi join on ref.instrument's futures is empty).
with

settings as (
    select value::integer as roll_days from ref.settings
    where name = 'futures_roll_days_before_expiry'
),

instruments as (
    select venue, instrument_key, base as coin, settle, expiry from ref.instrument
    where kind = 'future'
),

prices as (
    select p.vendor, p.venue, i.coin, i.settle, p.interval, p.instrument_key, i.expiry, p.ts, p.mark_price, p.mark_return_pct
    from marts.fct_price_interval as p
    inner join instruments as i using (venue, instrument_key)
    where p.timestamp_type = 'exchange'
),

-- each contract of each curve and interval, with small integer ids: the heavy steps below (as-of
-- join, grouping, lag) key on them, the names are joined back once at the end
contracts as (
    select
        vendor, venue, coin, settle, interval,
        instrument_key,
        expiry,
        min(ts) as first_ts,
        date_trunc('day', expiry) - to_days(any_value(s.roll_days)) as roll_at,
        dense_rank() over (order by vendor, venue, coin, settle, interval) as curve_id,
        row_number() over (order by vendor, venue, coin, settle, interval, expiry, instrument_key) as contract_id
    from prices
    cross join settings as s
    group by vendor, venue, coin, settle, interval, instrument_key, expiry
),

-- the instants where a curve's eligible set changes (a listing, a roll): between two of them the
-- front and second are fixed, worked out once per segment from the few contracts of the curve
boundaries as (
    select curve_id, first_ts as segment_start from contracts
    union
    select curve_id, roll_at from contracts
),

ranked as (
    select
        b.curve_id,
        b.segment_start,
        c.contract_id,
        row_number() over (partition by b.curve_id, b.segment_start order by c.contract_id) as position
    from boundaries as b
    inner join contracts as c
        on b.curve_id = c.curve_id and b.segment_start >= c.first_ts and b.segment_start < c.roll_at
    qualify position <= 2
),

segments as (
    select
        curve_id,
        segment_start,
        max(contract_id) filter (where position = 1) as front_id,
        max(contract_id) filter (where position = 2) as second_id
    from ranked
    group by all
),

-- each contract's stretches as front (1) or second (2): a segment's role until the next boundary
roles as (
    select
        curve_id,
        front_id,
        second_id,
        unnest([front_id, second_id]) as contract_id,
        unnest([1, 2]) as position,
        segment_start,
        coalesce(lead(segment_start) over (partition by curve_id order by segment_start), 'infinity'::timestamptz)
            as segment_end
    from segments
),

-- each price row in the stretches where its contract is front or second, with its segment's front
-- and second (a hash join on the contract against a few rows; after a curve's last roll: no row)
placed as (
    select r.curve_id, r.front_id, r.second_id, r.position, p.ts, p.mark_price, p.mark_return_pct
    from prices as p
    inner join contracts as c using (vendor, venue, interval, instrument_key)
    inner join roles as r
        on c.contract_id = r.contract_id and p.ts >= r.segment_start and p.ts < r.segment_end
),

positioned as (
    select
        p.curve_id,
        p.ts,
        any_value(p.front_id) as front_id,
        any_value(p.second_id) as second_id,
        max(p.mark_price) filter (where p.position = 1) as front_mark_price,
        max(p.mark_return_pct) filter (where p.position = 1) as front_mark_return_pct,
        max(p.mark_price) filter (where p.position = 2) as second_mark_price,
        max(p.mark_return_pct) filter (where p.position = 2) as second_mark_return_pct
    from placed as p
    group by p.curve_id, p.ts
),

with_rolls as (
    select
        *,
        coalesce(lag(front_id) over (partition by curve_id order by ts) <> front_id, false) as is_roll
    from positioned
),

final as (
    select
        f.vendor,
        f.venue,
        f.coin,
        f.settle,
        f.interval,
        r.ts,
        f.instrument_key as front_instrument_key,
        f.expiry as front_expiry,
        f.roll_at as front_roll_at,
        r.front_mark_price,
        r.front_mark_return_pct,
        s.instrument_key as second_instrument_key,
        s.expiry as second_expiry,
        r.second_mark_price,
        r.second_mark_return_pct,
        r.is_roll
    from with_rolls as r
    inner join contracts as f on r.front_id = f.contract_id
    left join contracts as s on r.second_id = s.contract_id
)

select * from final
