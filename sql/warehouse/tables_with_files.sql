-- The lake's tables that hold at least one data file, from DuckLake's file list (no table is
-- scanned): the staging views union only the vendors that have loaded something.
select s.schema_name || '.' || t.table_name as table_name
from ducklake_table_info('lake') as t
inner join __ducklake_metadata_lake.ducklake_schema as s using (schema_id)
where s.end_snapshot is null and t.file_count > 0
