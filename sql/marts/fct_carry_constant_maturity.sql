-- materialized: incremental
-- needs kind: future
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

points as (
    select *, struct_pack(dte := dte_days, basis := annualized_basis_pct, expiry := expiry) as point
    from futures
),

-- each curve and ts in one pass: at each tenor, the near and far contract as a whole (its days to
-- expiry, basis and expiry together), so the pair used is always one contract's own values
brackets as (
    select
        vendor,
        venue,
        coin,
        settle,
        ts,
        count(*) as live_futures,
        arg_max(point, point['dte']) filter (where point['dte'] <= 7) as near_7d,
        arg_min(point, point['dte']) filter (where point['dte'] >= 7) as far_7d,
        arg_max(point, point['dte']) filter (where point['dte'] <= 30) as near_30d,
        arg_min(point, point['dte']) filter (where point['dte'] >= 30) as far_30d,
        arg_max(point, point['dte']) filter (where point['dte'] <= 60) as near_60d,
        arg_min(point, point['dte']) filter (where point['dte'] >= 60) as far_60d,
        arg_max(point, point['dte']) filter (where point['dte'] <= 90) as near_90d,
        arg_min(point, point['dte']) filter (where point['dte'] >= 90) as far_90d,
        arg_max(point, point['dte']) filter (where point['dte'] <= 180) as near_180d,
        arg_min(point, point['dte']) filter (where point['dte'] >= 180) as far_180d
    from points
    group by all
),

interpolated as (
    select
        *,
        case
            when near_7d['dte'] = far_7d['dte'] then near_7d['basis']
            else near_7d['basis']
                + (far_7d['basis'] - near_7d['basis']) * (7 - near_7d['dte']) / (far_7d['dte'] - near_7d['dte'])
        end as annualized_basis_7d_pct,
        case
            when near_30d['dte'] = far_30d['dte'] then near_30d['basis']
            else near_30d['basis']
                + (far_30d['basis'] - near_30d['basis']) * (30 - near_30d['dte']) / (far_30d['dte'] - near_30d['dte'])
        end as annualized_basis_30d_pct,
        case
            when near_60d['dte'] = far_60d['dte'] then near_60d['basis']
            else near_60d['basis']
                + (far_60d['basis'] - near_60d['basis']) * (60 - near_60d['dte']) / (far_60d['dte'] - near_60d['dte'])
        end as annualized_basis_60d_pct,
        case
            when near_90d['dte'] = far_90d['dte'] then near_90d['basis']
            else near_90d['basis']
                + (far_90d['basis'] - near_90d['basis']) * (90 - near_90d['dte']) / (far_90d['dte'] - near_90d['dte'])
        end as annualized_basis_90d_pct,
        case
            when near_180d['dte'] = far_180d['dte'] then near_180d['basis']
            else near_180d['basis']
                + (far_180d['basis'] - near_180d['basis']) * (180 - near_180d['dte']) / (far_180d['dte'] - near_180d['dte'])
        end as annualized_basis_180d_pct
    from brackets
),

final as (
    select
        vendor, venue, coin, settle, ts,
        live_futures,
        annualized_basis_7d_pct,
        annualized_basis_30d_pct,
        annualized_basis_60d_pct,
        annualized_basis_90d_pct,
        annualized_basis_180d_pct,
        annualized_basis_7d_pct * 7 / 365 as forward_premium_7d_pct,
        annualized_basis_30d_pct * 30 / 365 as forward_premium_30d_pct,
        annualized_basis_60d_pct * 60 / 365 as forward_premium_60d_pct,
        annualized_basis_90d_pct * 90 / 365 as forward_premium_90d_pct,
        annualized_basis_180d_pct * 180 / 365 as forward_premium_180d_pct,
        case when far_7d['dte'] is not null then near_7d['expiry'] end as near_expiry_7d,
        case when near_7d['dte'] is not null then far_7d['expiry'] end as far_expiry_7d,
        case when far_30d['dte'] is not null then near_30d['expiry'] end as near_expiry_30d,
        case when near_30d['dte'] is not null then far_30d['expiry'] end as far_expiry_30d,
        case when far_60d['dte'] is not null then near_60d['expiry'] end as near_expiry_60d,
        case when near_60d['dte'] is not null then far_60d['expiry'] end as far_expiry_60d,
        case when far_90d['dte'] is not null then near_90d['expiry'] end as near_expiry_90d,
        case when near_90d['dte'] is not null then far_90d['expiry'] end as far_expiry_90d,
        case when far_180d['dte'] is not null then near_180d['expiry'] end as near_expiry_180d,
        case when near_180d['dte'] is not null then far_180d['expiry'] end as far_expiry_180d
    from interpolated
)

select * from final
