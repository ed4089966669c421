-- materialized: incremental
-- rpt_vendor_divergence: one row per (venue, instrument_key, interval, ts, vendor_a, vendor_b) where
-- two vendors cover the same interval of the same instrument (exchange timestamps), with their
-- mark, index and last side by side and the differences in basis points of vendor_b's price.
with

window_prices as (
    select * from marts.fct_price_interval
    where timestamp_type = 'exchange'
      and ts >= $window_start::timestamptz and ts < $window_end::timestamptz
),

-- only instruments more than one vendor covers in the window can pair (often none): a cheap
-- grouping saves the self join of every row
shared_instruments as (
    select venue, instrument_key
    from window_prices
    group by all
    having min(vendor) < max(vendor)
),

prices as (
    select p.*
    from window_prices as p
    semi join shared_instruments as s using (venue, instrument_key)
),

pairs as (
    select
        a.venue,
        a.instrument_key,
        a.interval,
        a.ts,
        a.vendor as vendor_a,
        b.vendor as vendor_b,
        a.mark_price as mark_price_a,
        b.mark_price as mark_price_b,
        a.index_price as index_price_a,
        b.index_price as index_price_b,
        a.last_price as last_price_a,
        b.last_price as last_price_b
    from prices as a
    inner join prices as b
        on a.venue = b.venue and a.instrument_key = b.instrument_key and a.interval = b.interval
        and a.ts = b.ts and a.vendor < b.vendor
),

final as (
    select
        *,
        (mark_price_a - mark_price_b) / nullif(mark_price_b, 0) * 10000 as mark_diff_bps,
        (index_price_a - index_price_b) / nullif(index_price_b, 0) * 10000 as index_diff_bps,
        (last_price_a - last_price_b) / nullif(last_price_b, 0) * 10000 as last_diff_bps
    from pairs
)

select * from final
