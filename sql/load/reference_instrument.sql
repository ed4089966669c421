-- Upsert instruments (`universe_instruments`) into ref.instrument: replace the rows of their
-- (venue, instrument_key) that differ, keep the others. Rows already as given are not rewritten,
-- so a batch repeating unchanged reference data writes nothing there.
delete from ref.instrument r
using (
    select * from universe_instruments
    except
    select * from ref.instrument
) as u
where r.venue = u.venue and r.instrument_key = u.instrument_key;
insert into ref.instrument by name
select * from universe_instruments
except
select * from ref.instrument;
