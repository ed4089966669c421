-- Upsert instruments from the universe (`universe_instruments`) into ref.instrument.
insert or replace into ref.instrument by name
select * from universe_instruments
