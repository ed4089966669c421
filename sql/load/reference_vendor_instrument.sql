-- Upsert each vendor's naming of the universe's instruments (`universe_vendor_instruments`).
insert or replace into ref.vendor_instrument by name
select * from universe_vendor_instruments
