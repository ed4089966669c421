-- the partitions a batch replaces beyond those it fills: every instrument a walked coin-month held,
-- so instruments the vendor no longer serves go too (walked: the batch's whole coin-months)
select distinct 'cayolargo' as vendor, r.venue, r.instrument_key, 'exchange' as timestamp_type, '10m' as interval, r.month
from raw.cayolargo_futures as r semi join walked using (coin, month)
