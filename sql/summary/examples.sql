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
