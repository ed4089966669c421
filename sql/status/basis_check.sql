-- One row per (venue, instrument_key, timestamp_type, interval) where Aperiodic's `basis` metric and
-- markhouse's own basis (mark - index of its derivative_price) disagree on any interval
-- (intermediate.int_aperiodic__basis_check): how many, of how many compared, the worst difference
-- in bps of the index and the first interval that disagrees. Read by `markhouse status` and the
-- asset check vendor_basis_agrees.
select
    venue,
    instrument_key,
    timestamp_type,
    interval,
    count(*) filter (where not agrees) as disagreeing,
    count(*) as compared,
    max(abs(difference_bps)) as worst_bps,
    min(ts) filter (where not agrees) as first_ts
from intermediate.int_aperiodic__basis_check
group by all
having count(*) filter (where not agrees) > 0
order by all
