-- materialized: incremental
-- fct_carry_constant_maturity: one row per (vendor, venue, coin, settle, ts) where at least one
-- live dated future of the curve has carry in marts.fct_carry (its finest loaded interval: Kaiko
-- 1m, CayøLargo 10m snapshots, ...). Time column: ts. Computes $window_start <= ts < $window_end.
-- A curve is one vendor's dated futures of one coin (base) and settlement currency on one venue.
-- At each tenor T of 7, 30, 60, 90 and 180 days, from the contracts observed at that very ts:
--   near = the contract with the largest dte_days <= T, far = the one with the smallest dte_days >= T
--   annualized_basis_<T>d_pct = near + (far - near) x (T - near_dte) / (far_dte - near_dte)
--     (both sides fct_carry.annualized_basis_pct = (mark - index) / index x 100 x 365 / dte_days:
--     linear in days to expiry; a contract expiring exactly at T is both near and far, its own value)
--   forward_premium_<T>d_pct = annualized_basis_<T>d_pct x T / 365: the premium over the index, in
--     percent, that a contract expiring in exactly T days would trade at on that curve
-- Null where no pair brackets T (T below the nearest or beyond the farthest live expiry): never
-- extrapolated. The perpetual is not used, not even as a 0-day point: it never expires and pays
-- funding, not a convergence to the index, so a 7-day tenor below the nearest expiry stays null.
with

instruments as (
    select venue, instrument_key, base as coin, settle from ref.instrument
    where kind = 'future'
),

-- only dated futures' rows (an empty set where the universe has none: the bench's perpetuals)
futures as (
    select c.vendor, c.venue, i.coin, i.settle, c.ts, c.expiry, c.dte_days, c.annualized_basis_pct
    from marts.fct_carry as c
    inner join instruments as i using (venue, instrument_key)
    where c.ts >= $window_start::timestamptz and c.ts < $window_end::timestamptz
      and c.kind = 'future' and c.dte_days > 0 and c.annualized_basis_pct is not null
),

tenors as (
    select unnest([7, 30, 60, 90, 180]) as tenor_days
),

curves as (
    select vendor, venue, coin, settle, ts, count(*) as live_futures
    from futures
    group by all
),

brackets as (
    select
        f.vendor,
        f.venue,
        f.coin,
        f.settle,
        f.ts,
        t.tenor_days,
        max(f.dte_days) filter (where f.dte_days <= t.tenor_days) as near_dte,
        arg_max(f.expiry, f.dte_days) filter (where f.dte_days <= t.tenor_days) as near_expiry,
        arg_max(f.annualized_basis_pct, f.dte_days) filter (where f.dte_days <= t.tenor_days) as near_basis,
        min(f.dte_days) filter (where f.dte_days >= t.tenor_days) as far_dte,
        arg_min(f.expiry, f.dte_days) filter (where f.dte_days >= t.tenor_days) as far_expiry,
        arg_min(f.annualized_basis_pct, f.dte_days) filter (where f.dte_days >= t.tenor_days) as far_basis
    from futures as f
    cross join tenors as t
    group by all
),

interpolated as (
    select
        *,
        case
            when near_dte = far_dte then near_basis
            else near_basis + (far_basis - near_basis) * (tenor_days - near_dte) / (far_dte - near_dte)
        end as basis_pct,
        near_dte is not null and far_dte is not null as bracketed
    from brackets
),

pivoted as (
    select
        vendor,
        venue,
        coin,
        settle,
        ts,
        max(basis_pct) filter (where tenor_days = 7) as annualized_basis_7d_pct,
        max(basis_pct) filter (where tenor_days = 30) as annualized_basis_30d_pct,
        max(basis_pct) filter (where tenor_days = 60) as annualized_basis_60d_pct,
        max(basis_pct) filter (where tenor_days = 90) as annualized_basis_90d_pct,
        max(basis_pct) filter (where tenor_days = 180) as annualized_basis_180d_pct,
        max(near_expiry) filter (where tenor_days = 7 and bracketed) as near_expiry_7d,
        max(far_expiry) filter (where tenor_days = 7 and bracketed) as far_expiry_7d,
        max(near_expiry) filter (where tenor_days = 30 and bracketed) as near_expiry_30d,
        max(far_expiry) filter (where tenor_days = 30 and bracketed) as far_expiry_30d,
        max(near_expiry) filter (where tenor_days = 60 and bracketed) as near_expiry_60d,
        max(far_expiry) filter (where tenor_days = 60 and bracketed) as far_expiry_60d,
        max(near_expiry) filter (where tenor_days = 90 and bracketed) as near_expiry_90d,
        max(far_expiry) filter (where tenor_days = 90 and bracketed) as far_expiry_90d,
        max(near_expiry) filter (where tenor_days = 180 and bracketed) as near_expiry_180d,
        max(far_expiry) filter (where tenor_days = 180 and bracketed) as far_expiry_180d
    from interpolated
    group by all
),

final as (
    select
        p.vendor,
        p.venue,
        p.coin,
        p.settle,
        p.ts,
        c.live_futures,
        p.annualized_basis_7d_pct,
        p.annualized_basis_30d_pct,
        p.annualized_basis_60d_pct,
        p.annualized_basis_90d_pct,
        p.annualized_basis_180d_pct,
        p.annualized_basis_7d_pct * 7 / 365 as forward_premium_7d_pct,
        p.annualized_basis_30d_pct * 30 / 365 as forward_premium_30d_pct,
        p.annualized_basis_60d_pct * 60 / 365 as forward_premium_60d_pct,
        p.annualized_basis_90d_pct * 90 / 365 as forward_premium_90d_pct,
        p.annualized_basis_180d_pct * 180 / 365 as forward_premium_180d_pct,
        p.near_expiry_7d,
        p.far_expiry_7d,
        p.near_expiry_30d,
        p.far_expiry_30d,
        p.near_expiry_60d,
        p.far_expiry_60d,
        p.near_expiry_90d,
        p.far_expiry_90d,
        p.near_expiry_180d,
        p.far_expiry_180d
    from pivoted as p
    inner join curves as c using (vendor, venue, coin, settle, ts)
)

select * from final
