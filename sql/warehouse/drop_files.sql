-- markhouse repair: one snapshot that takes the data files listed (and their delete files) out of
-- the lake. DuckLake's own DELETE reads a file to find the rows it removes, so a file that is lost
-- or cannot be read is removed here, in the catalog (__ducklake_metadata_lake), in one transaction.
insert into __ducklake_metadata_lake.ducklake_snapshot
select
    snapshot_id + 1 as snapshot_id, now() as snapshot_time, schema_version, next_catalog_id, next_file_id
from __ducklake_metadata_lake.ducklake_snapshot
order by snapshot_id desc
limit 1;

insert into __ducklake_metadata_lake.ducklake_snapshot_changes
select
    (select max(snapshot_id) from __ducklake_metadata_lake.ducklake_snapshot) as snapshot_id,
    string_agg(distinct 'deleted_from_table:' || table_id, ',') as changes_made,
    'markhouse repair' as author,
    $message as commit_message,
    null as commit_extra_info
from __ducklake_metadata_lake.ducklake_data_file
where data_file_id in (select unnest($files::bigint[])) and end_snapshot is null;

update __ducklake_metadata_lake.ducklake_table_stats as s
set
    record_count = s.record_count - coalesce((
        select sum(f.record_count) from __ducklake_metadata_lake.ducklake_data_file as f
        where f.table_id = s.table_id and f.data_file_id in (select unnest($files::bigint[])) and f.end_snapshot is null
    ), 0),
    file_size_bytes = s.file_size_bytes - coalesce((
        select sum(f.file_size_bytes) from __ducklake_metadata_lake.ducklake_data_file as f
        where f.table_id = s.table_id and f.data_file_id in (select unnest($files::bigint[])) and f.end_snapshot is null
    ), 0);

update __ducklake_metadata_lake.ducklake_delete_file
set end_snapshot = (select max(snapshot_id) from __ducklake_metadata_lake.ducklake_snapshot)
where data_file_id in (select unnest($files::bigint[])) and end_snapshot is null;

update __ducklake_metadata_lake.ducklake_data_file
set end_snapshot = (select max(snapshot_id) from __ducklake_metadata_lake.ducklake_snapshot)
where data_file_id in (select unnest($files::bigint[])) and end_snapshot is null
