"""`clickstream sql`, `catalog` and `ddl` as users run them, and the read-only fence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlglot

from clickstream.pipeline import EtlOptions, run_etl
from clickstream.query.ddl import ddl_statements
from clickstream.query.session import open_lake, run_query
from clickstream.query.views import VIEW_NAMES
from tests.conftest import write_csv


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("q")
    src = write_csv(
        tmp / "a.csv",
        [
            "u1,https://a.com/x?utm_source=g,1706745599,Chrome,Linux,1x1",
            "u2,https://a.com/y,1706745600,Firefox,macOS,2x2",
            "u3,not-a-url,1706745600,Firefox,macOS,2x2",
        ],
    )
    run_etl(EtlOptions(input=str(src), lake=tmp / "lake"))
    return tmp / "lake"


def cli(*args: str, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "clickstream", *args], capture_output=True, text=True, input=stdin
    )


def lake_files(lake: Path) -> set[str]:
    return {str(p) for p in lake.rglob("*") if p.is_file() and p.name != "_lock"}


def test_copy_into_the_lake_is_refused(lake: Path) -> None:
    before = lake_files(lake)
    target = lake / "clickstream" / "year=2024" / "month=1" / "evil.parquet"
    proc = cli("sql", f"COPY (SELECT 1 AS x) TO '{target}' (FORMAT parquet)", "-l", str(lake))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "refused" in proc.stderr and "COPY" in proc.stderr
    assert lake_files(lake) == before


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t AS SELECT 1",
        "DROP VIEW clickstream",
        "ATTACH 'x.duckdb' AS x",
        "SET enable_external_access = true",
        "INSTALL httpfs",
        "SELECT 1; COPY (SELECT 1) TO 'x.csv'",
    ],
)
def test_other_writes_are_refused(lake: Path, sql: str) -> None:
    con = open_lake(lake)
    with pytest.raises(Exception, match="refused"):
        run_query(con, sql)


def test_reading_outside_the_lake_needs_opt_in(lake: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n42\n")
    proc = cli("sql", f"SELECT * FROM read_csv('{outside}')", "-l", str(lake))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "Permission" in proc.stderr and "--allow-path" in proc.stderr
    ok = cli(
        "sql",
        f"SELECT * FROM read_csv('{outside}')",
        "-l",
        str(lake),
        "-f",
        "csv",
        "--allow-path",
        str(outside),
    )
    assert ok.returncode == 0 and ok.stdout == "a\n42\n"


def test_formats_put_only_data_on_stdout(lake: Path) -> None:
    q = "SELECT anonymous_user_id, url_port, event_date FROM clickstream ORDER BY 1"
    csv_out = cli("sql", q, "-l", str(lake), "--format", "csv")
    assert (
        csv_out.stdout
        == 'anonymous_user_id,url_port,event_date\n"u1",,2024-01-31\n"u2",,2024-02-01\n'
    )
    js = json.loads(cli("sql", q, "-l", str(lake), "--format", "json").stdout)
    assert js == [
        {"anonymous_user_id": "u1", "url_port": None, "event_date": "2024-01-31"},
        {"anonymous_user_id": "u2", "url_port": None, "event_date": "2024-02-01"},
    ]
    table = cli("sql", "SELECT * FROM traffic_sources", "-l", str(lake))
    assert table.returncode == 0 and "utm_source" in table.stdout


def test_query_from_stdin_and_bad_query(lake: Path) -> None:
    piped = cli("sql", "-l", str(lake), "-f", "csv", stdin="SELECT count(*) AS n FROM clickstream;")
    assert piped.stdout == "n\n2\n"
    bad = cli("sql", "SELEC nonsense", "-l", str(lake))
    assert bad.returncode == 1 and "Parser Error" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("sql", "SELECT 1", "-l", str(lake), "-f", "xml").returncode == 2


def test_missing_lake_is_a_clear_error(tmp_path: Path) -> None:
    proc = cli("sql", "SELECT 1", "-l", str(tmp_path / "none"))
    assert proc.returncode == 1 and "no lake" in proc.stderr


def test_catalog_file_opens_in_another_client(lake: Path, tmp_path: Path) -> None:
    out = tmp_path / "cat" / "lake.duckdb"
    assert cli("catalog", "--out", str(out), "-l", str(lake)).returncode == 0
    code = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print(c.sql('SELECT count(*) FROM sessions').fetchone()[0], "
        "c.sql('SELECT count(*) FROM clickstream_rejected').fetchone()[0])"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, str(out)], capture_output=True, text=True, cwd=tmp_path
    )
    assert other.stdout.split() == ["2", "1"], other.stderr


def test_athena_ddl_parses_as_trino_with_partition_projection(lake: Path) -> None:
    proc = cli("ddl", "--dialect", "athena", "--lake", "s3://my-lake/prod")
    assert proc.returncode == 0
    statements = [s for s in proc.stdout.split(";\n") if s.strip()]
    assert len(statements) == 2 + len(VIEW_NAMES)
    table = statements[0]
    assert "PARTITIONED BY (`year` int, `month` int)" in table
    assert "STORED AS PARQUET" in table and "LOCATION 's3://my-lake/prod/clickstream/'" in table
    assert "'projection.enabled' = 'true'" in table
    assert "s3://my-lake/prod/clickstream/year=${year}/month=${month}" in table
    sqlglot.parse_one(table, read="athena")
    for view in statements[2:]:
        sqlglot.parse_one(view.strip(), read="trino")


def test_spark_ddl_parses(lake: Path) -> None:
    for statement in ddl_statements("spark", str(lake)):
        sqlglot.parse_one(statement, read="spark")


def test_duckdb_ddl_gives_the_same_answers(lake: Path) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for statement in ddl_statements("duckdb", str(lake)):
        con.execute(statement)
    reference = open_lake(lake)
    for view in VIEW_NAMES:
        q = f"SELECT * FROM {view} ORDER BY ALL"
        assert con.execute(q).fetchall() == run_query(reference, q)[1]


def test_unknown_dialect() -> None:
    proc = cli("ddl", "--dialect", "oracle")
    assert proc.returncode == 2 and "athena" in proc.stderr
