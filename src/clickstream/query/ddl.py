"""Table and view definitions for each engine, rendered from the one contract and view files.

DuckDB reads the canonical SQL as is; Spark SQL and Athena (Trino) get it through sqlglot. The base
tables are engine-specific by nature (file scans vs. external tables) and built from the schema.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from clickstream.contract.schema import (
    OUTPUT_COLUMNS,
    PARTITION_COLUMNS,
    REJECTED_COLUMNS,
    Column,
)
from clickstream.errors import ConfigError
from clickstream.lake.layout import REJECTED_TABLE, TABLE
from clickstream.query.views import STREAM_VIEW_NAMES, VIEW_NAMES, view_sql
from clickstream.sqltext import sql_list, sql_literal
from clickstream.stream.tables import STREAM_FACTS, stream_facts_source, stream_facts_sql

DIALECTS = ("duckdb", "spark", "athena")

#: Oldest and newest year a partition can hold (the contract's time range).
YEARS = (2000, 2099)

_HIVE_TYPES = {
    "VARCHAR": "string",
    "INTEGER": "int",
    "BIGINT": "bigint",
    "TIMESTAMP": "timestamp",
    "DATE": "date",
    "MAP(VARCHAR, VARCHAR)": "map<string,string>",
}


def _join(location: str, *parts: str) -> str:
    return "/".join([location.rstrip("/"), *parts])


def _athena_microseconds(node: exp.Expression) -> exp.Expression:
    """A microsecond date_diff on Athena: the millisecond one times 1000.

    Athena reads a Glue ``timestamp`` column at millisecond precision (Trino's Hive connector,
    ``timestamp_precision`` MILLISECONDS: values rounded), and Trino's date_diff stops at
    milliseconds anyway. An integer count of milliseconds is exact; to_unixtime's doubles near
    1.7e9 s would add float noise to every duration. See ``docs/athena.md``.
    """
    unit = node.args.get("unit")
    if isinstance(node, exp.DateDiff) and unit is not None and unit.name.upper() == "MICROSECOND":
        millis = exp.DateDiff(
            this=node.this.copy(), expression=node.expression.copy(), unit=exp.var("MILLISECOND")
        )
        return exp.Mul(this=millis, expression=exp.Literal.number(1000))
    return node


def transpile(sql: str, dialect: str) -> str:
    if dialect == "duckdb":
        return sql
    tree = sqlglot.parse_one(sql, read="duckdb")
    if dialect == "athena":
        tree = tree.transform(_athena_microseconds)
    # Unnamed ROW keys (Trino) only order rows here, so sqlglot's note about them is noise.
    return tree.sql(dialect=dialect, pretty=True, unsupported_level=ErrorLevel.IGNORE)


def _views(dialect: str, create: str) -> list[str]:
    return [f"{create} {name} AS\n{transpile(view_sql(name), dialect)}" for name in VIEW_NAMES]


def base_table_sql(table: str, files: str | list[str]) -> str:
    """The SELECT behind a base table on DuckDB: a glob, or an explicit list of files.

    ``union_by_name`` tolerates files written by earlier schema versions (missing columns: NULL).
    An empty list gives a typed, empty table (a lake whose every row was rejected).
    """
    if table == STREAM_FACTS:  # the stream's statistics: clickstream.stream.tables
        return stream_facts_sql(files)
    columns = (*OUTPUT_COLUMNS, *PARTITION_COLUMNS) if table == TABLE else REJECTED_COLUMNS
    if isinstance(files, list) and not files:
        cols = ", ".join(f"CAST(NULL AS {c.type}) AS {c.name}" for c in columns)
        return f"SELECT {cols} WHERE FALSE"
    source = sql_literal(files) if isinstance(files, str) else sql_list(files)
    hive = "true" if table == TABLE else "false"
    return f"SELECT * FROM read_parquet({source}, hive_partitioning = {hive}, union_by_name = true)"


def duckdb_statements(tables: dict[str, str | list[str]]) -> list[str]:
    """CREATE VIEW statements for the base tables (name -> glob or files) and every view."""
    return [
        *(f"CREATE OR REPLACE VIEW {t} AS {base_table_sql(t, f)}" for t, f in tables.items()),
        *_views("duckdb", "CREATE OR REPLACE VIEW"),
        *(
            f"CREATE OR REPLACE VIEW {name} AS {view_sql(name)}"
            for name in STREAM_VIEW_NAMES
            if STREAM_FACTS in tables
        ),
    ]


def _duckdb(lake: str) -> list[str]:
    tables: dict[str, str | list[str]] = {
        TABLE: _join(lake, TABLE, "**", "*.parquet"),
        REJECTED_TABLE: _join(lake, REJECTED_TABLE, "*.parquet"),
    }
    stream = stream_facts_source(lake)  # a glob matching nothing would not bind
    if stream is not None:
        tables[STREAM_FACTS] = stream
    return duckdb_statements(tables)


def _spark(lake: str) -> list[str]:
    # Temporary views over the paths: Spark discovers the year=/month= partitions itself, so
    # nothing needs repairing; mergeSchema tolerates files from earlier schema versions.
    return [
        f"CREATE OR REPLACE TEMPORARY VIEW {TABLE} USING parquet "
        f"OPTIONS (path {sql_literal(_join(lake, TABLE))}, mergeSchema 'true')",
        f"CREATE OR REPLACE TEMPORARY VIEW {REJECTED_TABLE} USING parquet "
        f"OPTIONS (path {sql_literal(_join(lake, REJECTED_TABLE))})",
        *_views("spark", "CREATE OR REPLACE TEMPORARY VIEW"),
    ]


def _hive_columns(columns: tuple[Column, ...]) -> str:
    # Hive DDL escapes quotes with backslashes, Trino by doubling: keep comments free of them.
    return ",\n".join(
        f"  `{c.name}` {_HIVE_TYPES[c.type]} COMMENT '{c.doc.replace(chr(39), chr(34))}'"
        for c in columns
    )


def hive_type(column: Column) -> str:
    return _HIVE_TYPES[column.type]


def projection_properties(table_location: str) -> dict[str, str]:
    """Partition projection: Athena computes partition locations from these properties, so new
    months are queryable at once and MSCK REPAIR TABLE is never needed."""
    return {
        "projection.enabled": "true",
        "projection.year.type": "integer",
        "projection.year.range": f"{YEARS[0]},{YEARS[1]}",
        "projection.month.type": "integer",
        "projection.month.range": "1,12",
        "storage.location.template": table_location.rstrip("/") + "/year=${year}/month=${month}",
        "parquet.compression": "ZSTD",
    }


def athena_views() -> list[str]:
    return _views("athena", "CREATE OR REPLACE VIEW")


def _athena(lake: str) -> list[str]:
    table_location = _join(lake, TABLE) + "/"
    partitions = ", ".join(f"`{c.name}` {_HIVE_TYPES[c.type]}" for c in PARTITION_COLUMNS)
    properties = projection_properties(table_location)
    props = ",\n".join(f"  {sql_literal(k)} = {sql_literal(v)}" for k, v in properties.items())
    return [
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {TABLE} (\n{_hive_columns(OUTPUT_COLUMNS)}\n)\n"
        f"PARTITIONED BY ({partitions})\nSTORED AS PARQUET\n"
        f"LOCATION {sql_literal(table_location)}\nTBLPROPERTIES (\n{props}\n)",
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {REJECTED_TABLE} (\n"
        f"{_hive_columns(REJECTED_COLUMNS)}\n)\nSTORED AS PARQUET\n"
        f"LOCATION {sql_literal(_join(lake, REJECTED_TABLE) + '/')}",
        *athena_views(),
    ]


_RENDERERS = {"duckdb": _duckdb, "spark": _spark, "athena": _athena}


def ddl_statements(dialect: str, lake: str) -> list[str]:
    """Every statement an analyst runs to get the tables and views on ``dialect``."""
    try:
        render = _RENDERERS[dialect]
    except KeyError:
        raise ConfigError(
            f"unknown dialect '{dialect}' (choose one of: {', '.join(DIALECTS)})"
        ) from None
    return render(lake)
