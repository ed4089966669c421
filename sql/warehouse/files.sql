-- markhouse verify, repair and backup: every data and delete file the snapshots $snapshots
-- reference, read from DuckLake's catalog (attached as __ducklake_metadata_lake): its table, its
-- month ('YYYY-MM' from the file's partition values; null for an unpartitioned table), its path
-- (schema, table and file paths are each relative to the one before, the first to $data_path) and
-- the size and row count the catalog recorded.
with

files as (
    select
        'data' as kind, data_file_id, table_id, path, path_is_relative, file_size_bytes, record_count,
        begin_snapshot, end_snapshot
    from __ducklake_metadata_lake.ducklake_data_file
    union all
    select
        'delete' as kind, data_file_id, table_id, path, path_is_relative, file_size_bytes, delete_count,
        begin_snapshot, end_snapshot
    from __ducklake_metadata_lake.ducklake_delete_file
),

referenced as (
    select f.*
    from files as f
    where exists (
        select 1 from unnest($snapshots::bigint[]) as s (id)
        where f.begin_snapshot <= s.id and (f.end_snapshot is null or f.end_snapshot > s.id)
    )
),

tables as (
    select
        t.table_id,
        s.schema_name || '.' || t.table_name as table_name,
        case
            when not t.path_is_relative then t.path
            when s.path_is_relative then $data_path || s.path || t.path
            else s.path || t.path
        end as table_path
    from __ducklake_metadata_lake.ducklake_table as t
    inner join __ducklake_metadata_lake.ducklake_schema as s using (schema_id)
    qualify row_number() over (partition by t.table_id order by t.begin_snapshot desc, s.begin_snapshot desc) = 1
),

months as (
    select
        v.data_file_id,
        coalesce(
            max(left(v.partition_value, 7)) filter (where c.transform = 'identity'),
            max(v.partition_value) filter (where c.transform = 'year')
            || '-' || lpad(max(v.partition_value) filter (where c.transform = 'month'), 2, '0')
        ) as month
    from __ducklake_metadata_lake.ducklake_file_partition_value as v
    inner join __ducklake_metadata_lake.ducklake_data_file as d using (data_file_id)
    inner join __ducklake_metadata_lake.ducklake_partition_column as c
        on d.partition_id = c.partition_id and v.partition_key_index = c.partition_key_index
    group by v.data_file_id
)

select
    r.kind,
    r.data_file_id,
    t.table_name,
    m.month,
    case when r.path_is_relative then t.table_path || r.path else r.path end as path,
    r.file_size_bytes,
    r.record_count
from referenced as r
inner join tables as t using (table_id)
left join months as m using (data_file_id)
order by t.table_name, m.month, r.kind, path
