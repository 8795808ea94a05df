"""scale layer: the same compiled rules as SQL on DuckDB and Spark (docs/scale.md).

Public surface (docs/architecture.md): :func:`auditeql.scale.sql.compile_sql`,
:func:`auditeql.scale.duckdb.run`, :func:`auditeql.scale.spark.run` (each returns what
``auditeql.engine.run_batch`` returns), the pinned Parquet schema in
:mod:`auditeql.scale.parquet`. Submodules import DuckDB / PySpark lazily: they are extras.
"""
