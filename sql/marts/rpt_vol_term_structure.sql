-- materialized: incremental
-- needs kind: option
-- rpt_vol_term_structure: one row per (vendor, venue, underlying, expiry, ts) of an hourly smile in
-- marts.rpt_vol_smile: its at-the-money volatility and 25-delta risk reversal and butterfly, so one
-- query plots the ATM term structure (atm_vol against years_to_expiry at one ts).
-- Time column: ts; computes $window_start <= ts < $window_end. Interpolated, never extrapolated:
--   atm_vol: linear in strike between the nearest smile strikes below and at or above the forward
--   call_25d_vol / put_25d_vol: linear in delta between the calls (puts) bracketing delta 0.25 (-0.25)
--   rr_25d = call_25d_vol - put_25d_vol; bf_25d = (call_25d_vol + put_25d_vol) / 2 - atm_vol
-- each null where the smile has no strike (delta) on one side.
with

smile as (
    select * from marts.rpt_vol_smile
    where ts >= $window_start::timestamptz and ts < $window_end::timestamptz
),

brackets as (
    select
        vendor, venue, underlying, expiry, ts,
        any_value(forward_price) as forward_price,
        any_value(forward_source) as forward_source,
        any_value(years_to_expiry) as years_to_expiry,
        count(*) as strikes,
        arg_max(struct_pack(x := strike, y := iv_mark), strike) filter (where strike <= forward_price) as atm_low,
        arg_min(struct_pack(x := strike, y := iv_mark), strike) filter (where strike >= forward_price) as atm_high,
        arg_max(struct_pack(x := delta, y := iv_mark), delta)
            filter (where option_type = 'call' and delta <= 0.25) as call_low,
        arg_min(struct_pack(x := delta, y := iv_mark), delta)
            filter (where option_type = 'call' and delta >= 0.25) as call_high,
        arg_max(struct_pack(x := delta, y := iv_mark), delta)
            filter (where option_type = 'put' and delta <= -0.25) as put_low,
        arg_min(struct_pack(x := delta, y := iv_mark), delta)
            filter (where option_type = 'put' and delta >= -0.25) as put_high
    from smile
    group by vendor, venue, underlying, expiry, ts
),

-- y at x on the line through two points (x, y); a point alone when both are the same
interpolated as (
    select
        *,
        case
            when atm_low['x'] = atm_high['x'] then atm_low['y']
            else atm_low['y'] + (atm_high['y'] - atm_low['y'])
                * (forward_price - atm_low['x']) / (atm_high['x'] - atm_low['x'])
        end as atm_vol,
        case
            when call_low['x'] = call_high['x'] then call_low['y']
            else call_low['y'] + (call_high['y'] - call_low['y'])
                * (0.25 - call_low['x']) / (call_high['x'] - call_low['x'])
        end as call_25d_vol,
        case
            when put_low['x'] = put_high['x'] then put_low['y']
            else put_low['y'] + (put_high['y'] - put_low['y'])
                * (-0.25 - put_low['x']) / (put_high['x'] - put_low['x'])
        end as put_25d_vol
    from brackets
),

final as (
    select
        * exclude (atm_low, atm_high, call_low, call_high, put_low, put_high),
        call_25d_vol - put_25d_vol as rr_25d,
        (call_25d_vol + put_25d_vol) / 2 - atm_vol as bf_25d
    from interpolated
)

select * from final
