-- materialized: incremental
-- rpt_carry_trade: one row per (coin, ts, trade, long leg, short leg): the annualized return of the
-- classic carry trades on one hourly clock, every vendor and venue against every other, ranked.
-- Time column: ts, the hour's start; computes the hours $window_start <= ts < $window_end, each
-- from the last fct_carry row of each instrument in [ts, ts + 1 h) (Aperiodic's 1h row, Kaiko's
-- minute 59, CayøLargo's :50 snapshot: each the hour's close).
--   perp_vs_future: long a perpetual, short a dated future of the same coin (any vendor, venue,
--     settlement currency): annualized_return_pct = short_annualized_basis_pct
--     - long_funding_annualized_pct: the future's premium over its index, earned as it converges
--     at expiry, less the funding the long perpetual pays at the current rate (negative funding
--     is received); the perpetual's own premium is assumed unchanged over the holding period.
--   cash_and_carry: long the index (spot), short a dated future: annualized_return_pct =
--     short_annualized_basis_pct = (mark - index) / index x 100 x 365 / dte_days.
-- A negative figure is what the reverse trade would earn. rank_in_hour: 1 = the trade that pays
-- most for the coin in that hour. Only coins with a live dated future appear: a universe without
-- dated futures (the bench's perpetuals) reads their hours and writes nothing.
with

instruments as (
    select venue, instrument_key, base as coin, settle from ref.instrument
    where kind in ('perpetual', 'future')
),

-- the window's hours, each whole: the last window of a run reaches one instant into the next month
-- (models.month_windows), whose hour is then computed from every row fct_carry holds for it
carry as (
    select
        c.vendor,
        c.venue,
        c.instrument_key,
        c.kind,
        i.coin,
        i.settle,
        c.ts,
        date_trunc('hour', c.ts) as hour,
        c.expiry,
        c.dte_days,
        c.mark_price,
        c.index_price,
        c.annualized_basis_pct,
        c.funding_annualized_pct
    from marts.fct_carry as c
    inner join instruments as i using (venue, instrument_key)
    where c.ts >= $window_start::timestamptz
      and c.ts < date_trunc('hour', $window_end::timestamptz - interval 1 microsecond) + interval 1 hour
      and (
          (c.kind = 'future' and c.dte_days > 0 and c.annualized_basis_pct is not null)
          or (c.kind = 'perpetual' and c.funding_annualized_pct is not null)
      )
),

hourly as (
    select
        vendor,
        venue,
        instrument_key,
        kind,
        coin,
        settle,
        hour,
        arg_max(expiry, ts) as expiry,
        arg_max(dte_days, ts) as dte_days,
        arg_max(mark_price, ts) as mark_price,
        arg_max(index_price, ts) as index_price,
        arg_max(annualized_basis_pct, ts) as annualized_basis_pct,
        arg_max(funding_annualized_pct, ts) as funding_annualized_pct
    from carry
    group by all
),

futures as (
    select * from hourly where kind = 'future'
),

perpetuals as (
    select * from hourly where kind = 'perpetual'
),

trades as (
    select
        f.coin,
        f.hour as ts,
        'perp_vs_future' as trade,
        p.vendor as long_vendor,
        p.venue as long_venue,
        p.instrument_key as long_instrument_key,
        p.settle as long_settle,
        p.mark_price as long_mark_price,
        p.funding_annualized_pct as long_funding_annualized_pct,
        f.vendor as short_vendor,
        f.venue as short_venue,
        f.instrument_key as short_instrument_key,
        f.settle as short_settle,
        f.expiry as short_expiry,
        f.dte_days as short_dte_days,
        f.mark_price as short_mark_price,
        f.index_price as short_index_price,
        f.annualized_basis_pct as short_annualized_basis_pct,
        f.annualized_basis_pct - p.funding_annualized_pct as annualized_return_pct
    from futures as f
    inner join perpetuals as p using (coin, hour)
    union all
    select
        coin,
        hour as ts,
        'cash_and_carry' as trade,
        vendor as long_vendor,
        venue as long_venue,
        null as long_instrument_key,
        null as long_settle,
        index_price as long_mark_price,
        null as long_funding_annualized_pct,
        vendor as short_vendor,
        venue as short_venue,
        instrument_key as short_instrument_key,
        settle as short_settle,
        expiry as short_expiry,
        dte_days as short_dte_days,
        mark_price as short_mark_price,
        index_price as short_index_price,
        annualized_basis_pct as short_annualized_basis_pct,
        annualized_basis_pct as annualized_return_pct
    from futures
),

final as (
    select
        coin,
        ts,
        trade,
        long_vendor,
        long_venue,
        long_instrument_key,
        long_settle,
        long_mark_price,
        long_funding_annualized_pct,
        short_vendor,
        short_venue,
        short_instrument_key,
        short_settle,
        short_expiry,
        short_dte_days,
        short_mark_price,
        short_index_price,
        short_annualized_basis_pct,
        annualized_return_pct,
        rank() over (partition by coin, ts order by annualized_return_pct desc) as rank_in_hour
    from trades
)

select * from final
