"""The session's second layer on its own: DuckDB's connection settings, with the statement fence
gone around (statements sent straight to the connection). README: two independent layers, each
enough on its own — so each statement here must fail at the connection, and nothing change."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pytest

from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.query.session import open_lake


def _tree(*roots: Path) -> dict[str, str]:
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("layer")
    src = generate(tmp / "in" / "a.csv", 300, seed=8)
    run_etl(EtlOptions(input=str(src), lake=str(tmp / "lake")))
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("aws_secret_access_key = do-not-read\n")
    return tmp / "lake", outside


def _attacks(lake: Path, outside: Path) -> list[str]:
    # Not here: an in-place overwrite of a file the session reads, which DuckDB's allow-list
    # permits (README, "Honest limits"); the fence stops it (tests/attack/test_statements.py).
    month = sorted((lake / "clickstream").glob("year=*/month=*"))[0]
    return [
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SET allowed_directories = ['/']",
        f"SET allowed_paths = ['{outside / 'secret.txt'}']",
        "SET autoinstall_known_extensions = true",
        "SET python_enable_replacements = true",
        f"COPY (SELECT 1 AS a) TO '{outside / 'written.csv'}'",
        f"COPY (SELECT 1 AS a) TO '{month / 'x.parquet'}'",
        f"COPY (SELECT 1 AS a) TO '{lake / 'new.parquet'}'",
        f"SELECT * FROM read_text('{outside / 'secret.txt'}')",
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM glob('{outside}/*')",
        f"ATTACH '{outside / 'x.duckdb'}'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SELECT * FROM python_local_table",
    ]


def test_the_connection_alone_refuses_every_write_read_and_setting(world) -> None:
    lake, outside = world
    python_local_table = pa.table({"secret": ["do-not-read"]})  # a replacement scan finds it
    assert python_local_table
    before = _tree(lake, outside)
    session = open_lake(lake)
    try:
        for sql in _attacks(lake, outside):
            with pytest.raises(Exception) as caught:  # noqa: PT011 - DuckDB's error classes vary
                session.con.execute(sql).fetchall()
            text = str(caught.value)
            assert "do-not-read" not in text, sql
            assert any(
                marker in text
                for marker in ("Cannot change configuration", "Permission Error", "disabled",
                               "does not exist")
            ), (sql, text)  # fmt: skip
        # and the fence's own queries still work
        assert session.con.execute("SELECT count(*) FROM clickstream").fetchone()[0] > 0
    finally:
        session.close()
    assert _tree(lake, outside) == before
    assert not (outside / "written.csv").exists() and not (lake / "new.parquet").exists()
