-- report/term_structure: the curves of marts.rpt_term_structure at their snapshots (the registered
-- table snapshots: report/term_structure_snapshots' rows), each with its days_before; another
-- curve's rows at the same instant are not one of its snapshots. $snapshot_ts (their instants)
-- narrows the view before the join: computing it whole costs seconds.
select
    t.vendor, t.venue, t.coin, t.quote, t.settle, t.ts, t.tenor_rank, t.instrument_key, t.kind, t.dte_days,
    t.annualized_basis_pct, t.funding_annualized_pct, s.days_before
from marts.rpt_term_structure as t
inner join snapshots as s
    on t.vendor = s.vendor and t.venue = s.venue and t.coin = s.coin and t.quote = s.quote
    and t.settle is not distinct from s.settle and t.ts = s.ts
where list_contains($snapshot_ts::timestamptz[], t.ts)
  and ($instruments::varchar[] is null or list_contains($instruments::varchar[], t.instrument_key))
order by t.coin, t.vendor, t.venue, t.quote, t.settle, t.ts, t.tenor_rank
