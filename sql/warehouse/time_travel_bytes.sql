-- What `markhouse maintain` would free, against what the warehouse holds: the bytes of the data and
-- delete files the latest snapshot references, and of the files replaced before $cutoff (kept for
-- time travel until their snapshots expire). From DuckLake's catalog (attached as
-- __ducklake_metadata_lake); no file is read.
with

files as (
    select file_size_bytes, end_snapshot from __ducklake_metadata_lake.ducklake_data_file
    union all
    select file_size_bytes, end_snapshot from __ducklake_metadata_lake.ducklake_delete_file
)

select
    coalesce(sum(f.file_size_bytes) filter (where f.end_snapshot is null), 0) as current_bytes,
    coalesce(sum(f.file_size_bytes) filter (where s.snapshot_time < $cutoff), 0) as replaced_bytes
from files as f
left join ducklake_snapshots('lake') as s on f.end_snapshot = s.snapshot_id
