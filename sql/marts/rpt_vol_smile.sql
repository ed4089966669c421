-- materialized: incremental
-- needs kind: option
-- rpt_vol_smile: one row per (vendor, venue, underlying, expiry, ts, strike) of an hourly snapshot
-- (fct_option_vol's 1h rows) where the out-of-the-money option of that strike has a mark volatility:
-- the put below the forward, the call at or above it (the side that trades; in-the-money marks
-- carry little volatility information). Time column: ts; computes $window_start <= ts < $window_end.
-- A chart of iv_mark against strike (or log_moneyness) is the smile by strike; against delta, by delta.
with

vols as (
    select * from marts.fct_option_vol
    where ts >= $window_start::timestamptz and ts < $window_end::timestamptz
      and interval = '1h' and iv_mark is not null
),

out_of_the_money as (
    select * from vols
    where (option_type = 'put' and strike < forward_price) or (option_type = 'call' and strike >= forward_price)
),

final as (
    select
        vendor, venue, underlying, expiry, ts, strike,
        instrument_key, option_type, forward_price, forward_source, years_to_expiry,
        ln(strike / forward_price) as log_moneyness, delta, iv_mark
    from out_of_the_money
)

select * from final
