-- materialized: incremental
-- needs kind: option
-- fct_option_vol: one row per (vendor, venue, instrument_key, interval, ts) of an option in
-- marts.fct_price_interval (exchange timestamps) with a mark or a last price. Time column: ts.
-- Computes $window_start <= ts < $window_end.
-- Valued at the interval's end (its final prices): years_to_expiry = (expiry - (ts + interval)) / 365 days.
-- Forward: the mark of the dated future of the same coin and expiry at the same (vendor, interval,
-- ts), one of the option's own exchange first (okx-options -> okx-futures); else the option row's
-- index with zero carry.
-- Black-76, undiscounted, in forward terms (Deribit's and OKX's convention): the premium fitted is a
-- USD-quoted premium as quoted, a coin-quoted one (OKX BTC-USD:BTC) times the forward;
-- premium_usd is what the premium is worth now (a coin premium times the index).
-- The volatility and greeks come from black76() (pipelines/options.py, registered on the connection).
with

instruments as (
    select
        venue,
        instrument_key,
        base,
        settle,
        expiry,
        split_part(instrument_key, '-', -2)::double as strike,
        split_part(instrument_key, '-', -1) = 'C' as is_call,
        settle in ('USD', 'USDT', 'USDC') as usd_premium
    from ref.instrument
    where kind = 'option'
),

futures as (
    select venue, instrument_key, base, expiry from ref.instrument
    where kind = 'future'
),

prices as (
    select p.vendor, p.venue, p.instrument_key, p.interval, p.ts, p.mark_price, p.last_price, p.index_price
    from marts.fct_price_interval as p
    where p.ts >= $window_start::timestamptz and p.ts < $window_end::timestamptz
      and p.timestamp_type = 'exchange'
),

options as (
    select p.*, i.base, i.settle, i.expiry, i.strike, i.is_call, i.usd_premium, n.seconds
    from prices as p
    inner join instruments as i using (venue, instrument_key)
    inner join ref.intervals as n using (interval)
    where p.mark_price is not null or p.last_price is not null
),

-- the futures' marks, the first (by venue, then key) per exchange and per coin and expiry: a window
-- over the futures' rows, not over every option row's candidates
future_marks as (
    select
        p.vendor, split_part(f.venue, '-', 1) as exchange, f.base, f.expiry, p.interval, p.ts,
        f.instrument_key as forward_instrument_key,
        p.mark_price as forward_price,
        row_number() over (
            partition by p.vendor, f.base, f.expiry, p.interval, p.ts order by f.venue, f.instrument_key
        ) as overall
    from prices as p
    inner join futures as f using (venue, instrument_key)
    where p.mark_price > 0
    qualify row_number() over (
        partition by p.vendor, exchange, f.base, f.expiry, p.interval, p.ts order by f.venue, f.instrument_key
    ) = 1
),

-- each option row's forward: the future of the same coin and expiry on the option's exchange
-- first, then the first by venue; else the index with zero carry
inputs as (
    select
        o.*,
        coalesce(own.forward_price, best.forward_price, o.index_price) as forward_price,
        case
            when coalesce(own.forward_price, best.forward_price) is not null then 'future'
            when o.index_price is not null then 'index'
        end as forward_source,
        coalesce(own.forward_instrument_key, best.forward_instrument_key) as forward_instrument_key,
        (epoch(o.expiry) - epoch(o.ts) - o.seconds) / (365 * 86400) as years_to_expiry
    from options as o
    left join future_marks as own
        on own.vendor = o.vendor and own.exchange = split_part(o.venue, '-', 1) and own.base = o.base
        and own.expiry = o.expiry and own.interval = o.interval and own.ts = o.ts
    left join future_marks as best
        on best.vendor = o.vendor and best.base = o.base and best.expiry = o.expiry
        and best.interval = o.interval and best.ts = o.ts and best.overall = 1
),

fitted as (
    select
        *,
        case when usd_premium then mark_price else mark_price * forward_price end as mark_forward_terms,
        case when usd_premium then last_price else last_price * forward_price end as last_forward_terms,
        case when usd_premium then mark_price else mark_price * index_price end as premium_usd,
        case when is_call then greatest(forward_price - strike, 0) else greatest(strike - forward_price, 0) end
            as intrinsic
    from inputs
),

solved as (
    select
        *,
        black76(is_call, forward_price, strike, years_to_expiry, mark_forward_terms, last_forward_terms) as mark_fit
    from fitted
),

final as (
    select
        vendor, venue, instrument_key, interval, ts,
        base as underlying, expiry, strike,
        case when is_call then 'call' else 'put' end as option_type,
        settle as premium_currency,
        forward_price,
        forward_source,
        forward_instrument_key,
        years_to_expiry,
        index_price,
        mark_price,
        last_price,
        premium_usd,
        mark_fit['iv'] as iv_mark,
        mark_fit['iv_last'] as iv_last,
        mark_fit['delta'] as delta,
        mark_fit['gamma'] as gamma,
        mark_fit['vega'] as vega,
        mark_fit['theta'] as theta,
        case
            when mark_fit['iv'] is not null then null
            when mark_price is null then 'no_mark'
            when years_to_expiry <= 0 then 'expired'
            when forward_price is null or forward_price <= 0 then 'no_forward'
            when mark_forward_terms <= intrinsic then 'below_intrinsic'
            when mark_forward_terms >= case when is_call then forward_price else strike end then 'above_maximum'
            else 'no_fit'
        end as iv_null_reason
    from solved
)

select * from final
