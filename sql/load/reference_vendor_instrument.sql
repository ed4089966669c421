-- Upsert each vendor's naming of the universe's instruments (`universe_vendor_instruments`).
delete from ref.vendor_instrument r using universe_vendor_instruments u
where r.vendor = u.vendor and r.vendor_exchange = u.vendor_exchange
  and r.vendor_instrument_class = u.vendor_instrument_class and r.vendor_instrument = u.vendor_instrument;
insert into ref.vendor_instrument by name
select * from universe_vendor_instruments;
