-- report/vendor_divergence: marts.rpt_vendor_divergence at one interval length.
select
    vendor_a, vendor_b, venue, instrument_key, ts, mark_diff_bps, index_diff_bps, last_diff_bps
from marts.rpt_vendor_divergence
where interval = $interval
  and ts >= $start and ts < $end
  and ($instruments::varchar[] is null or list_contains($instruments::varchar[], instrument_key))
order by instrument_key, venue, vendor_a, vendor_b, ts
