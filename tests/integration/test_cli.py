"""The command line as a user meets it: one-line errors, clean exits, determinism, startup."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import lake_rows, write_csv


def cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "clickstream", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


def assert_one_line_error(proc, *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one line, however long (never wrapped)
    text = lines[0]
    assert text.startswith("error:"), proc.stderr
    for fragment in fragments:
        assert fragment in text


def test_missing_input(tmp_path: Path) -> None:
    assert_one_line_error(
        cli("etl", "-i", str(tmp_path / "nope.csv"), "-l", str(tmp_path / "l")), "not found"
    )


def test_no_csv_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_line_error(
        cli("etl", "-i", str(tmp_path / "empty"), "-l", str(tmp_path / "l")), "no *.csv"
    )


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    src = write_csv(
        tmp_path / "x.csv", ["u,http://a.com,1,b,o"], header="anonymous_user_id,url,time,browser,os"
    )
    proc = cli("etl", "-i", str(src), "-l", str(tmp_path / "l"))
    assert_one_line_error(
        proc, "x.csv", "required column 'screen_resolution' is missing from the header (found: "
    )
    assert not (tmp_path / "l").exists()


def test_unknown_engine_lists_valid_ones(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "x.csv", [])
    assert_one_line_error(
        cli("etl", "-i", str(src), "--engine", "oracle", "-l", str(tmp_path / "l")),
        "unknown engine",
        "duckdb",
    )


def test_bad_memory_limit(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "x.csv", ["u,http://a.com,1600000000,b,o,1x1"])
    assert_one_line_error(
        cli("etl", "-i", str(src), "--memory-limit", "lots", "-l", str(tmp_path / "l")),
        "memory limit",
    )


def test_bad_generate_options(tmp_path: Path) -> None:
    assert_one_line_error(
        cli("generate", "-n", "5", "-o", str(tmp_path / "x.csv"), "--bad-fraction", "2"),
        "bad-fraction",
    )
    assert_one_line_error(cli("generate", "-n", "5", "-o", str(tmp_path / "x.txt")), ".csv")


def test_generate_is_deterministic_per_seed(tmp_path: Path) -> None:
    for name, seed in (("a.csv", "1"), ("b.csv", "1"), ("c.csv", "2")):
        assert (
            cli(
                "generate",
                "-n",
                "3000",
                "-o",
                str(tmp_path / name),
                "--seed",
                seed,
                "--bad-fraction",
                "0.05",
            ).returncode
            == 0
        )
    a, b, c = ((tmp_path / n).read_bytes() for n in ("a.csv", "b.csv", "c.csv"))
    assert a == b and a != c
    assert len(a.splitlines()) == 3001


def test_generated_data_exercises_the_contract(tmp_path: Path) -> None:
    src = tmp_path / "g.csv.gz"
    assert cli("generate", "-n", "20000", "-o", str(src), "--bad-fraction", "0.05").returncode == 0
    proc = cli("etl", "-i", str(src), "-l", str(tmp_path / "lake"))
    assert proc.returncode == 0, proc.stderr
    rows = lake_rows(tmp_path / "lake")
    rejected = lake_rows(tmp_path / "lake", "clickstream_rejected")
    assert {r["reject_reason"] for r in rejected} == {
        "malformed_csv",
        "missing_user_id",
        "invalid_time",
        "time_out_of_range",
        "invalid_url",
    }
    users = {}
    for r in rows:
        users[r["anonymous_user_id"]] = users.get(r["anonymous_user_id"], 0) + 1
    assert max(users.values()) >= 3  # repeat visitors
    assert {r["url_port"] for r in rows} >= {None, 80, 8443}
    assert any(r["url_fragment"] for r in rows) and any(
        r["utm_campaign"] == "spring sale" for r in rows
    )
    assert len({(r["year"], r["month"]) for r in rows}) == 12
    assert not any("s3cret" in (r["url"] or "") for r in rows)
    assert not any("s3cret" in r["raw_line"] for r in rejected)


def test_demo_runs_offline_in_an_empty_folder(tmp_path: Path) -> None:
    proc = cli("demo", "--rows", "5000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Top traffic sources" in proc.stdout
    assert (tmp_path / "lake" / "clickstream").is_dir()
    assert "rows written" in proc.stderr


def test_cli_import_stays_light() -> None:
    code = (
        "import sys, clickstream.cli.app; heavy = {'duckdb', 'pyarrow', 'pyspark', 'boto3'}"
        " & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_etl_and_sql_never_import_pandas(tmp_path: Path) -> None:
    """pandas costs 0.4 s to import (pyarrow and DuckDB's parameters pull it in): a run with
    quarantined rows, blank lines and a duplicate, then queries as a table and CSV, must not
    need it. ``--format json`` hands batches to DuckDB as Arrow, which would import it: ``sql``
    tells DuckDB it is not installed, and the JSON must come out whole."""
    src = write_csv(
        tmp_path / "in" / "a.csv",
        [
            "u1,https://a.com/x?utm_source=s,1706745599,Chrome,Linux,1x1",
            "",
            "u1,https://a.com/x?utm_source=s,1706745599,Chrome,Linux,1x1",
            "u2,not a url,1706745599,Chrome,Linux,1x1",
            'u3,"broken,1706745599',
        ],
    )
    guard = (
        "import os, sys, runpy, traceback\n"
        "class NoPandas:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pandas':\n"
        "            traceback.print_stack()\n"
        "            os._exit(97)\n"
        "sys.meta_path.insert(0, NoPandas())\n"
        "sys.argv = ['clickstream', *sys.argv[1:]]\n"
        "runpy.run_module('clickstream', run_name='__main__')\n"
    )
    lake = tmp_path / "lake"
    for args in (
        ["etl", "-i", str(src.parent), "-l", str(lake)],
        ["sql", "SELECT count(*) FROM clickstream", "-l", str(lake), "-f", "csv"],
        ["sql", "SELECT * FROM sessions", "-l", str(lake)],
        [
            "sql",
            "SELECT anonymous_user_id, url_host FROM clickstream",
            "-l",
            str(lake),
            "-f",
            "json",
        ],
    ):
        proc = subprocess.run([sys.executable, "-c", guard, *args], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "error" not in proc.stderr
    assert json.loads(proc.stdout) == [{"anonymous_user_id": "u1", "url_host": "a.com"}]


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Asia/Kolkata"])
def test_results_do_not_depend_on_the_machine_time_zone(tmp_path: Path, zone: str) -> None:
    src = write_csv(
        tmp_path / "tz.csv",
        [
            "u1,https://a.com/,1706745599.5,b,o,1x1",  # 2024-01-31T23:59:59.5Z
            "u2,https://a.com/,1706745600,b,o,1x1",  # 2024-02-01T00:00:00Z
            "u3,https://a.com/,1704067199,b,o,1x1",  # 2023-12-31T23:59:59Z
        ],
    )
    import os

    proc = cli("etl", "-i", str(src), "-l", str(tmp_path / zone), env={**os.environ, "TZ": zone})
    assert proc.returncode == 0, proc.stderr
    got = {
        r["anonymous_user_id"]: (r["year"], r["month"], str(r["event_time"]), str(r["event_date"]))
        for r in lake_rows(tmp_path / zone)
    }
    assert got == {
        "u1": (2024, 1, "2024-01-31 23:59:59.500000", "2024-01-31"),
        "u2": (2024, 2, "2024-02-01 00:00:00", "2024-02-01"),
        "u3": (2023, 12, "2023-12-31 23:59:59", "2023-12-31"),
    }


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (("--threads", "-1"), ("--threads -1",)),
        (("--memory-limit", "-5GB"), ("memory limit '-5GB'",)),
        (("--memory-limit", "0GB"), ("memory limit '0GB'",)),
        (("--master", "local[2]"), ("duckdb engine does not take --master",)),
        (("--engine", "spark", "--memory-limit", "4GB"), ("spark engine", "--memory-limit")),
        (("--engine", "spark", "--threads", "2"), ("spark engine", "--threads")),
    ],
    ids=[
        "threads",
        "negative-memory",
        "zero-memory",
        "duckdb-master",
        "spark-memory",
        "spark-threads",
    ],
)
def test_an_option_the_engine_does_not_take_is_refused(
    tmp_path: Path, flags: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    src = write_csv(tmp_path / "x.csv", ["u,http://a.com,1600000000,b,o,1x1"])
    proc = cli("etl", "-i", str(src), "-l", str(tmp_path / "l"), *flags)
    assert_one_line_error(proc, *fragments)
    assert not (tmp_path / "l" / "clickstream").exists()


def test_valid_engine_options_are_taken(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "x.csv", ["u,http://a.com,1600000000,b,o,1x1"])
    proc = cli(
        "etl", "-i", str(src), "-l", str(tmp_path / "l"), "--threads", "1",
        "--memory-limit", "512MiB", "-q",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_an_unexpected_failure_is_still_one_line(tmp_path: Path) -> None:
    # A lake file that is not Parquet: whatever layer meets it, the user gets one line.
    # A committed run's own file, overwritten (files of no committed run are not read at all).
    src = write_csv(tmp_path / "a.csv", ["u,http://a.com/p,1600000000,b,o,1x1"])
    assert cli("etl", "-q", "-i", str(src), "-l", str(tmp_path / "lake")).returncode == 0
    [data] = list((tmp_path / "lake" / "clickstream").rglob("*.parquet"))
    data.write_bytes(b"not parquet")
    proc = cli("sql", "SELECT count(*) FROM clickstream", "--lake", str(tmp_path / "lake"))
    assert_one_line_error(proc, data.name)
    debug = cli("--debug", "sql", "SELECT 1 FROM clickstream", "--lake", str(tmp_path / "lake"))
    assert debug.returncode != 0 and "Traceback" in debug.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["etl", "-i", "x", "--auto-compact", "abc"], "--auto-compact"),
        (["etl", "-i", "x", "--threads", "two"], "--threads"),
        (["etl"], "--input"),
        (["compact", "--min-files", "many"], "--min-files"),
        (["sql", "--bogus"], "--bogus"),
        (["sql", "-f"], "-f"),
        (["--no-such-flag"], "--no-such-flag"),
        (["no-such-command"], "no-such-command"),
        (["generate", "-n", "\x1b[31mten"], "--rows"),
        (["stream", "publish", "--poll", "soon"], "--poll"),
    ],
)
def test_a_command_line_mistake_is_one_line(args: list[str], fragment: str) -> None:
    """Typer's usage box is several lines (and echoes what was typed): a mistake on the
    command line is one line naming the option and where the help is, exit 2."""
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert_one_line_error(proc, fragment, "--help`)")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "╭" not in proc.stderr and "\x1b" not in proc.stderr
