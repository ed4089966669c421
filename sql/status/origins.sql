-- One row per vendor of raw.load_log: where its rows came from ('vendor', 'emulator', or both,
-- joined by ' and '; a load before origins were recorded: 'unrecorded'). Read by `markhouse status`.
select
    vendor,
    string_agg(distinct coalesce(origin, 'unrecorded'), ' and ' order by 1) as origins
from raw.load_log
group by vendor
order by vendor
