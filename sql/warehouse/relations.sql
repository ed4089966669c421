-- The relations of the database a connection uses (the lake, or an in-memory one): its tables, its
-- views in the order they were first made, and every relation's columns. The serving file is
-- written from them, and the Dagster catalog's marts read from them.
select schema_name, table_name, comment
from duckdb_tables()
where database_name = current_database()
order by schema_name, table_name;

select schema_name, view_name, sql, comment
from duckdb_views()
where database_name = current_database() and not internal
order by schema_name, view_oid;

select schema_name, table_name, column_name, data_type, coalesce(comment, '') as comment
from duckdb_columns()
where database_name = current_database()
order by schema_name, table_name, column_index
