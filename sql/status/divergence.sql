-- the vendors_agree check: the vendor pairs with intervals further apart than $bound bps
select vendor_a, vendor_b, venue, instrument_key, interval, count(*) as intervals,
       max(abs(mark_diff_bps)) as worst_mark_bps, max(abs(last_diff_bps)) as worst_last_bps
from marts.rpt_vendor_divergence
where abs(mark_diff_bps) > $bound or abs(last_diff_bps) > $bound or abs(index_diff_bps) > $bound
group by all
order by intervals desc
