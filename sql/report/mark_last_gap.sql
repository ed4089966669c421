-- report/mark_last_gap: the intervals of marts.rpt_mark_last_gap at one interval length, with their
-- episodes (runs of consecutive intervals over the threshold).
select
    vendor, venue, instrument_key, timestamp_type, ts, gap_bps, threshold_bps,
    episode_start, episode_end, episode_intervals
from marts.rpt_mark_last_gap
where interval = $interval
  and ts >= $start and ts < $end
  and ($instruments::varchar[] is null or list_contains($instruments::varchar[], instrument_key))
order by instrument_key, venue, vendor, timestamp_type, ts
