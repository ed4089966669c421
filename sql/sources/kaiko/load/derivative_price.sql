-- Load validated Kaiko rows into raw.kaiko_derivative_price.
-- Inputs: `staged_rows` (venue, instrument_key, interval, month, ts, last_price, index_price,
-- mark_price: converted at the boundary, de-duplicated), $loaded_at.
insert into raw.kaiko_derivative_price by name
select
    venue,
    instrument_key,
    interval,
    month,
    ts::timestamptz as ts,
    last_price,
    index_price,
    mark_price,
    $loaded_at::timestamptz as loaded_at
from staged_rows
