"""SQL access to the lake: views defined once, opened read-only on DuckDB, rendered for others."""
