-- Upsert instruments from the universe (`universe_instruments`) into ref.instrument: replace the
-- rows of the universe's (venue, instrument_key), keep the others.
delete from ref.instrument r using universe_instruments u
where r.venue = u.venue and r.instrument_key = u.instrument_key;
insert into ref.instrument by name
select * from universe_instruments;
