"""The warehouse, at the bottom of the house (it imports nothing from the sources or the models):
``lake`` the DuckLake and atomic replaces, ``concurrency`` who writes when (the one story),
``serving`` the file BI tools open, ``maintenance``, and ``legacy`` the previous layout's import."""
