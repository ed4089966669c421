-- int_aperiodic__basis_check: one row per (venue, instrument_key, timestamp_type, interval, ts) where
-- Aperiodic's `basis` metric and its `derivative_price` both have the interval: the vendor's basis
-- (the last mark - index of the interval) beside markhouse's own (the interval's final mark - final
-- index). They agree when they differ by at most 0.01 bps of the index (1e-6 relative: the vendor's
-- rounding of a basis, far below any basis that matters); `markhouse status` and the asset check
-- `vendor_basis_agrees` report the intervals that do not.
with

vendor_basis as (
    select * from raw.aperiodic_basis
    where basis is not null
),

prices as (
    select * from raw.aperiodic_derivative_price
    where mark_price is not null and index_price is not null
),

compared as (
    select
        b.venue,
        b.instrument_key,
        b.timestamp_type,
        b.interval,
        b.ts,
        b.basis as vendor_basis,
        p.mark_price - p.index_price as own_basis,
        (b.basis - (p.mark_price - p.index_price)) / p.index_price * 10000 as difference_bps,
        abs(b.basis - (p.mark_price - p.index_price)) <= abs(p.index_price) * 1e-6 as agrees
    from vendor_basis as b
    inner join prices as p using (venue, instrument_key, timestamp_type, interval, ts)
)

select * from compared
