"""File access: nothing outside the lake is read (any spelling, any symlink), nothing written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.attack.conftest import SECRET_TEXT, Sandbox, one_line_error

READERS = [
    "SELECT * FROM read_text('{p}')",
    "SELECT * FROM read_blob('{p}')",
    "SELECT * FROM read_csv('{p}')",
    "SELECT * FROM read_json_objects('{p}')",
    "SELECT * FROM read_parquet('{p}')",
    "SELECT * FROM parquet_metadata('{p}')",
    "SELECT * FROM parquet_schema('{p}')",
    "SELECT * FROM sniff_csv('{p}')",
    "SELECT * FROM glob('{p}')",
    "SELECT * FROM '{p}'",
]


def _spellings(box: Sandbox) -> dict[str, str]:
    secret = box.outside / "secret.txt"
    rel = os.path.relpath(secret, box.lake)
    return {
        "absolute": str(secret),
        "dotdot": f"{box.lake}/{rel}",
        "tilde": "~/secret.txt",
        "file-uri": f"file://{secret}",
        "percent": f"{box.lake}/%2e%2e/outside/secret.txt",
        "glob": f"{box.outside}/*",
        "etc": "/etc/hostname",
        "http": "http://127.0.0.1:9/secret.txt",
    }


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("spelling", list(_spellings(Sandbox(*[Path()] * 4))))
def test_no_read_outside_the_lake(sandbox: Sandbox, reader: str, spelling: str) -> None:
    path = _spellings(sandbox)[spelling]
    proc = sandbox.sql(reader.format(p=path), "-f", "csv")
    assert SECRET_TEXT not in proc.stdout + proc.stderr
    if not (spelling == "glob" and "glob(" in reader):
        one_line_error(proc)
    else:  # glob() of a refused folder lists nothing
        assert proc.returncode in (0, 1) and "secret" not in proc.stdout


def _plant_symlinks(box: Sandbox) -> None:
    """Links inside the lake to a Parquet file and a folder outside it."""
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM read_parquet('{box.lake}/clickstream/**/*.parquet', "
        f"hive_partitioning = false) LIMIT 1) TO '{box.outside}/stolen.parquet'"
    )
    con.close()
    month = next((box.lake / "clickstream").glob("year=*/month=*"))
    (month / "zz-link.parquet").symlink_to(box.outside / "stolen.parquet")
    (month / "zz-folder").symlink_to(box.outside, target_is_directory=True)
    (box.lake / "clickstream" / "year=2030").symlink_to(box.outside, target_is_directory=True)
    (box.lake / "secret-link.txt").symlink_to(box.outside / "secret.txt")


def test_symlinks_in_the_lake_lead_nowhere(sandbox: Sandbox) -> None:
    _plant_symlinks(sandbox)
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]
    count = sandbox.sql("SELECT count(*) AS n FROM clickstream", "-f", "csv")
    assert count.returncode == 0 and count.stdout == "n\n2\n"  # the linked file (1 row) is not read
    for sql in (
        f"SELECT * FROM read_text('{sandbox.lake}/secret-link.txt')",
        f"SELECT * FROM read_text('{sandbox.lake}/clickstream/year=2030/secret.txt')",
        f"SELECT count(*) FROM read_parquet('{sandbox.lake}/clickstream/**/zz-link.parquet')",
        f"SELECT * FROM read_csv('{sandbox.lake}/clickstream/year=2030/secret.csv')",
    ):
        proc = sandbox.sql(sql)
        one_line_error(proc)
        assert SECRET_TEXT not in proc.stdout + proc.stderr


def test_allow_path_reads_but_never_writes(sandbox: Sandbox) -> None:
    ok = sandbox.sql(
        f"SELECT * FROM read_csv('{sandbox.outside}/secret.csv')",
        "-f",
        "csv",
        "--allow-path",
        str(sandbox.outside),
    )
    assert ok.returncode == 0 and ok.stdout == f's\n"{SECRET_TEXT}"\n'
    for sql in (
        f"COPY (SELECT 1) TO '{sandbox.outside}/w.csv'",
        f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{sandbox.outside}/secret.csv' (USE_TMP_FILE false)",
    ):
        one_line_error(sandbox.sql(sql, "--allow-path", str(sandbox.outside)), "refused")


def test_no_temp_folder_is_left(sandbox: Sandbox) -> None:
    proc = sandbox.sql("SELECT * FROM clickstream ORDER BY event_id", "-f", "json")
    assert proc.returncode == 0
    assert list(sandbox.tmp.iterdir()) == []


def test_symlinks_in_the_stream_folder_lead_nowhere(sandbox: Sandbox) -> None:
    from clickstream.stream.tables import FOLDER, GROUP_KEY

    _plant_symlinks(sandbox)
    group = sandbox.lake / FOLDER / f"{GROUP_KEY}=evil"
    group.mkdir(parents=True)
    (group / "batch.parquet").symlink_to(sandbox.outside / "stolen.parquet")
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]
    proc = sandbox.sql("SELECT count(*) AS n FROM stream_facts", "-f", "csv")
    assert proc.returncode == 0 and proc.stdout == "n\n0\n", proc.stderr
    one_line_error(sandbox.sql(f"SELECT count(*) FROM read_parquet('{group}/batch.parquet')"))


STRAY_NAMES = [
    "\x1b]0;PWN\x07.parquet",
    "a=b.parquet",
    "x'], union_by_name=true) UNION ALL SELECT * FROM read_text(['\\x.parquet",
    "stray.parquet",
]


def test_stray_files_in_the_lake_are_not_read(sandbox: Sandbox) -> None:
    """Only files named as a writer names them are read: a planted copy neither adds rows nor
    breaks the reader, in `sql` and in the catalog file."""

    def counts() -> tuple[str, str]:
        kept = sandbox.sql("SELECT count(*) AS n FROM clickstream", "-f", "csv")
        rejected = sandbox.sql("SELECT count(*) AS n FROM clickstream_rejected", "-f", "csv")
        assert kept.returncode == 0 and rejected.returncode == 0, kept.stderr + rejected.stderr
        return kept.stdout, rejected.stdout

    before = counts()
    month = next((sandbox.lake / "clickstream").glob("year=*/month=*"))
    original = next(month.glob("*.parquet"))
    for name in STRAY_NAMES:
        shutil.copyfile(original, month / name)
    shutil.copyfile(original, sandbox.lake / "clickstream_rejected" / "stray.parquet")
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]
    assert counts() == before
    out = sandbox.tmp / "c.duckdb"
    made = sandbox.run("catalog", "--out", str(out), "-l", str(sandbox.lake))
    assert made.returncode == 0, made.stderr
    con = duckdb.connect(str(out), read_only=True)
    try:
        kept = con.sql("SELECT count(*) FROM clickstream").fetchone()
        rejected = con.sql("SELECT count(*) FROM clickstream_rejected").fetchone()
        assert (f"n\n{kept[0]}\n", f"n\n{rejected[0]}\n") == before  # type: ignore[index]
    finally:
        con.close()
    out.unlink()
