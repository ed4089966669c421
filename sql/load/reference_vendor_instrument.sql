-- Upsert each vendor's naming of instruments (`universe_vendor_instruments`): replace the rows that
-- differ, keep the others (rows already as given are not rewritten).
delete from ref.vendor_instrument r
using (
    select * from universe_vendor_instruments
    except
    select * from ref.vendor_instrument
) as u
where r.vendor = u.vendor and r.vendor_exchange = u.vendor_exchange
  and r.vendor_instrument_class = u.vendor_instrument_class and r.vendor_instrument = u.vendor_instrument;
insert into ref.vendor_instrument by name
select * from universe_vendor_instruments
except
select * from ref.vendor_instrument;
