-- dim_instrument: one row per (venue, instrument_key).
-- An option's strike and right are the last two parts of its key
-- (option-<BASE>-<QUOTE>:<MARGIN>-<YYYYMMDD>-<STRIKE>-<C|P>); its premium is quoted in the margin
-- currency: OKX's and Deribit's coin-margined options (BTC-USD:BTC) in the coin, USDC-margined ones in
-- USDC, Binance's options (BTC-USDT:USDT) in USDT.
with

instruments as (
    select * from ref.instrument
)

select
    instrument_key,
    venue,
    kind,
    base,
    quote,
    settle,
    expiry,
    contract_size,
    funding_interval_hours,
    case when kind = 'option' then split_part(instrument_key, '-', -2)::double end as strike,
    case
        when kind != 'option' then null
        when instrument_key like '%-C' then 'call'
        else 'put'
    end as option_type,
    case when kind = 'option' then settle end as premium_currency
from instruments
