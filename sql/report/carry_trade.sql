-- report/carry_trade: per coin, the 5 trades of marts.rpt_carry_trade (a pair of legs) with the highest
-- mean annualized return over [$start, $end), each averaged per {bucket} (day, or hour over short ranges).
with

trades as (
    select
        coin,
        ts,
        annualized_return_pct,
        trade || ': long ' || coalesce(long_instrument_key, 'index') || ' · ' || long_venue || ' (' || long_vendor
        || '), short ' || short_instrument_key || ' · ' || short_venue || ' (' || short_vendor || ')' as pair
    from marts.rpt_carry_trade
    where ts >= $start and ts < $end
      and (
          $instruments::varchar[] is null
          or list_contains($instruments::varchar[], long_instrument_key)
          or list_contains($instruments::varchar[], short_instrument_key)
      )
),

best as (
    select coin, pair, avg(annualized_return_pct) as mean_return_pct
    from trades
    group by coin, pair
    qualify row_number() over (partition by coin order by mean_return_pct desc, pair asc) <= 5
),

final as (
    select t.coin, t.pair, b.mean_return_pct, date_trunc('{bucket}', t.ts) as bucket, avg(t.annualized_return_pct) as return_pct
    from trades as t
    inner join best as b using (coin, pair)
    group by t.coin, t.pair, b.mean_return_pct, bucket
)

select * from final
order by coin asc, mean_return_pct desc, pair asc, bucket asc
