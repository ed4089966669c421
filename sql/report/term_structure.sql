-- report/term_structure: the curves of marts.rpt_term_structure at the snapshots in $snapshot_ts
-- (found by report/term_structure_snapshots).
select
    vendor, venue, coin, quote, settle, ts, tenor_rank, instrument_key, kind, dte_days,
    annualized_basis_pct, funding_annualized_pct
from marts.rpt_term_structure
where list_contains($snapshot_ts::timestamptz[], ts)
  and ($instruments::varchar[] is null or list_contains($instruments::varchar[], instrument_key))
order by coin, vendor, venue, quote, settle, ts, tenor_rank
