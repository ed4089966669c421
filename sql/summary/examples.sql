-- the example queries `markhouse summary` prints and runs, each titled by its comment
-- sqlfluff:exclude_rules:LT02,LT09,LT14,ST05,ST06,ST07,ST09,RF02,RF04,AM04,AL05,AM03

-- What do the perpetuals pay? Funding APR per venue (fct_carry)
select vendor, venue, instrument_key, count(funding_rate) as funding_obs,
       min(funding_interval_hours) as min_interval_h, max(funding_interval_hours) as max_interval_h,
       round(avg(funding_annualized_pct), 2) as mean_funding_apr_pct,
       round(arg_max(funding_annualized_pct, ts), 2) as last_funding_apr_pct,
       round(arg_max(predicted_funding_annualized_pct, ts), 2) as last_predicted_apr_pct,
       any_value(funding_interval_source) as interval_from,
       round(arg_max(oi_usd, ts) / 1e6, 1) as last_oi_usd_m
from marts.fct_carry
where kind = 'perpetual' and funding_rate is not null
group by all
order by all;

-- Do the vendors agree? (rpt_vendor_divergence)
select vendor_a, vendor_b, venue, instrument_key, interval, count(*) as intervals,
       round(median(abs(mark_diff_bps)), 2) as median_abs_mark_bps,
       round(max(abs(last_diff_bps)), 2) as max_abs_last_bps
from marts.rpt_vendor_divergence
where interval = '1h'
group by all
order by intervals desc, vendor_a, vendor_b, venue, instrument_key, interval
limit 5;

-- Where is mark far from last? (rpt_mark_last_gap)
select vendor, venue, instrument_key, interval, count(*) as intervals_over_threshold,
       max(episode_intervals) as longest_episode, round(max(abs(gap_bps)), 1) as worst_gap_bps
from marts.rpt_mark_last_gap
group by all
order by worst_gap_bps desc, vendor, venue, instrument_key, interval
limit 5;

-- What does a 30-day future pay today? Annualized basis at a constant 30-day maturity per coin (fct_carry_constant_maturity)
with curves as (select * from marts.fct_carry_constant_maturity),

today as (select coin, max(ts)::date as day from curves group by all),

latest as (
    select c.* from curves as c inner join today as t on c.coin = t.coin and c.ts >= t.day
    qualify row_number() over (
        partition by c.coin order by c.annualized_basis_30d_pct is null, c.ts desc, c.vendor, c.venue, c.settle
    ) = 1
),

bracketed as (
    select coin, ts, vendor, venue, annualized_basis_30d_pct from curves where annualized_basis_30d_pct is not null
    qualify row_number() over (partition by coin order by ts desc, vendor, venue, settle) = 1
)

select l.coin, l.vendor, l.venue, l.settle, strftime(l.ts, '%Y-%m-%d %H:%M') as ts_utc,
       coalesce(round(l.annualized_basis_30d_pct, 2)::varchar, 'none: no two expiries bracket 30 days') as basis_30d_apr_pct,
       coalesce(strftime(l.near_expiry_30d, '%Y-%m-%d') || ' .. ' || strftime(l.far_expiry_30d, '%Y-%m-%d'), '-') as between_expiries,
       strftime(b.ts, '%Y-%m-%d %H:%M') || ' ' || b.venue || ': ' || round(b.annualized_basis_30d_pct, 2) as last_bracketed
from latest as l left join bracketed as b using (coin)
order by l.coin;
