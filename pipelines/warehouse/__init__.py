"""The warehouse, at the bottom of the house (it imports nothing from the sources or the models):

- ``lake``: the DuckLake, opened to read a published snapshot or to write, and atomic replaces;
- ``concurrency``: how writers, readers and killed runs share it (the one story);
- ``serving``: the read-only file of views that BI tools open;
- ``maintenance``: files merged, snapshots expired, unreferenced files deleted;
- ``legacy``: the previous layout's single DuckDB file, imported once.
"""
