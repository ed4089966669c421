-- fct_funding_realized: one row per (vendor, venue, instrument_key, day) of a perpetual with funding
-- in marts.fct_carry: the funding actually accrued that day and over trailing 7 and 30 days.
-- Settlements: every funding_interval_hours (the interval in force, fct_carry) from 00:00 UTC
-- (8 h: 00:00, 08:00, 16:00). The rate settled at instant T is fct_carry.funding_rate on the row
-- whose ts is T: Aperiodic's row starting at T carries the last rate settled at or before its
-- end (the catalog's "last funding rate in the interval"), CayøLargo's snapshot taken at T the rate
-- in force at T. A settlement without a row at T is missed: it adds nothing, and funded_hours
-- (each settled rate pays for its funding_interval_hours) falls short of 24.
--   realized_funding_rate = sum of the rates settled that day (fraction of notional a long pays)
--   realized_apr_pct = realized_funding_rate x 8760 / funded_hours x 100 (the day's settlements, annualized)
--   realized_<N>d_apr_pct = sum of settled rates over the N days ending that day x 8760
--     / sum of their funded_hours x 100: complete days give sum x 365 / N x 100; a missed
--     settlement is left out of numerator and hours alike, so gaps do not read as zero funding
--   predicted_<N>d_apr_pct = mean of fct_carry.predicted_funding_annualized_pct over every row of
--     the perpetual in those N days (null where the source sends no predicted rate: Kaiko, CayøLargo)
-- A view: the trailing windows cross months, and a universe without funding reads nothing.
with

carry as (
    select
        vendor,
        venue,
        instrument_key,
        ts,
        funding_rate,
        funding_interval_hours,
        predicted_funding_annualized_pct,
        epoch_us(ts) % (funding_interval_hours * 3600000000)::bigint = 0 as is_settlement
    from marts.fct_carry
    where kind = 'perpetual' and funding_interval_hours > 0
      and (funding_rate is not null or predicted_funding_rate is not null)
),

days as (
    select
        vendor,
        venue,
        instrument_key,
        ts::date as day,
        count(funding_rate) filter (where is_settlement) as settlements,
        -- sums in DECIMAL: exact, so the figures do not depend on the order rows are scanned in
        sum(funding_rate::decimal(38, 18)) filter (where is_settlement) as realized_funding_rate,
        sum(funding_interval_hours) filter (where is_settlement and funding_rate is not null) as funded_hours,
        sum(predicted_funding_annualized_pct::decimal(38, 12)) as predicted_apr_sum,
        count(predicted_funding_annualized_pct) as predicted_obs
    from carry
    group by all
),

windows as (
    select
        *,
        sum(realized_funding_rate) over last_7 as rate_7d,
        sum(funded_hours) over last_7 as funded_hours_7d,
        sum(realized_funding_rate) over last_30 as rate_30d,
        sum(funded_hours) over last_30 as funded_hours_30d,
        (sum(predicted_apr_sum) over last_7)::double / nullif(sum(predicted_obs) over last_7, 0) as predicted_7d_apr_pct,
        (sum(predicted_apr_sum) over last_30)::double / nullif(sum(predicted_obs) over last_30, 0) as predicted_30d_apr_pct
    from days
    window
        last_7 as (
            partition by vendor, venue, instrument_key order by day
            range between interval 6 days preceding and current row
        ),
        last_30 as (
            partition by vendor, venue, instrument_key order by day
            range between interval 29 days preceding and current row
        )
),

final as (
    select
        vendor,
        venue,
        instrument_key,
        day,
        settlements::integer as settlements,
        coalesce(funded_hours, 0) as funded_hours,
        realized_funding_rate::double as realized_funding_rate,
        realized_funding_rate::double * 8760 / nullif(funded_hours, 0) * 100 as realized_apr_pct,
        coalesce(funded_hours_7d, 0) as funded_hours_7d,
        rate_7d::double * 8760 / nullif(funded_hours_7d, 0) * 100 as realized_7d_apr_pct,
        predicted_7d_apr_pct,
        coalesce(funded_hours_30d, 0) as funded_hours_30d,
        rate_30d::double * 8760 / nullif(funded_hours_30d, 0) * 100 as realized_30d_apr_pct,
        predicted_30d_apr_pct
    from windows
)

select * from final
