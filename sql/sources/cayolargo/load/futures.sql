-- Load validated CayøLargo snapshot rows into raw.cayolargo_futures.
-- Inputs: `staged_rows` (Arrow, already converted: UTC timestamps, venue + Atlas instrument_key,
-- month), $loaded_at.
insert into raw.cayolargo_futures by name
select *, $loaded_at::timestamptz as loaded_at
from staged_rows
