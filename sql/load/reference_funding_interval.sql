-- Replace the funding-interval history (`universe_funding_intervals`) of the instruments it names
-- in ref.funding_interval: an instrument whose rows differ in any way has them all replaced;
-- rows already as given are not rewritten, so a batch repeating unchanged reference data writes
-- nothing there.
delete from ref.funding_interval r
using (
    select n.venue, n.instrument_key from (
        select * from universe_funding_intervals
        except
        select * from ref.funding_interval
    ) as n
    union
    select o.venue, o.instrument_key from (
        select * from ref.funding_interval
        semi join universe_instruments using (venue, instrument_key)
        except
        select * from universe_funding_intervals
    ) as o
) as u
where r.venue = u.venue and r.instrument_key = u.instrument_key;
insert into ref.funding_interval by name
select * from universe_funding_intervals
except
select * from ref.funding_interval;
