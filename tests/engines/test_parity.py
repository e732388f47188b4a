"""Parity is the acceptance test: DuckDB and Spark give identical lakes from identical inputs."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from clickstream.contract.schema import REJECT_REASON_NAMES
from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl
from tests.conftest import lake_rows, write_csv
from tests.contract.cases import CASES, NO_USER

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("parity") / "in"
    generate(folder / "gen" / "day1.csv.gz", 20_000, seed=5, bad_fraction=0.05)
    generate(folder / "gen" / "day2.csv", 5_000, seed=6, bad_fraction=0.05)
    lines = [f"{uid},{fields}" for uid, fields, _ in CASES] + [NO_USER]
    lines.insert(2, "extra,https://a.com/,1600000000,Chrome,Linux,1x1,surplus")
    lines.insert(4, 'quoted,"https://a.com/?utm_content=a,b",1600000000,"multi\nline",Linux,1x1')
    write_csv(folder / "cases.csv", lines + ['tail,"unterminated,1600000000,b,o,1x1'])
    # Same rows again in another file, with CRLF, BOM, gzip and another column order.
    header = "os,extra,screen_resolution,time,url,browser,anonymous_user_id"
    write_csv(
        folder / "z_copy.csv.gz",
        [
            f"Linux,x,1x1,{T},https://{h}.example.com/p?utm_source=Mail&utm_source=x,Chrome,u{i}"
            for i, (h, T) in enumerate([("a", "1706745599"), ("b", "1706745600")] * 3)
        ],
        header=header,
        newline="\r\n",
        bom=True,
    )
    write_csv(folder / "bad_utf8.csv", ["u1,https://a.com/,1706745600,Chrome,Linux,1x1"])
    with open(folder / "bad_utf8.csv", "ab") as fh:
        fh.write(b"u2,https://a.com/\xff\xfe,1706745600,Chrome,Linux,1x1\n")
        # A real U+FFFD is text (Spark reads it as it reads an invalid byte): a valid row.
        fh.write(b"u6,https://a.com/\xef\xbf\xbd,1706745600,Chrome,Linux,1x1\n")
    # Invalid bytes and backslashes in malformed records, in a file read whole (a quoted
    # newline) with a blank line: the same escaped raw_line and line numbers on both engines.
    write_csv(folder / "escapes.csv", ['q,"https://a.com/a\nb",1706745600,Chrome,Linux,1x1', ""])
    with open(folder / "escapes.csv", "ab") as fh:
        fh.write(b"u3,https://a.com/\xc3(\\,1706745600,Chrome,Linux,1x1\n")
        fh.write(b"u4,C:\\path\\x41?\n")
        fh.write(b'u5,"https://a.com/\xe2\x82",1706745600,Chrome,Linux,1x1\n')
        fh.write(b"u7,\xef\xbf\xbd\\\n")
    return folder


@pytest.fixture(scope="module")
def lakes(inputs: Path, tmp_path_factory):
    out = {}
    for engine in ("duckdb", "spark"):
        lake = tmp_path_factory.mktemp(f"lake-{engine}")
        report = run_etl(EtlOptions(input=str(inputs), lake=lake, engine=engine))
        out[engine] = (lake, report)
    return out


def test_same_rows_on_every_column(lakes) -> None:
    duck, spark = (lake_rows(lakes[e][0]) for e in ("duckdb", "spark"))
    assert len(duck) > 20_000
    assert duck == spark


def test_same_quarantine(lakes) -> None:
    def rejects(engine):
        rows = lake_rows(lakes[engine][0], "clickstream_rejected")
        return [
            (r["source_file"], r["line_number"], r["raw_line"], r["reject_reason"]) for r in rows
        ]

    assert rejects("duckdb") == rejects("spark")
    reasons = {r[3] for r in rejects("duckdb")}
    assert reasons == set(REJECT_REASON_NAMES)
    escaped = [r[1:3] for r in rejects("duckdb") if r[0].endswith("escapes.csv")]
    assert escaped[1:] == [
        (3, "u3,https://a.com/\\xc3(\\\\,1706745600,Chrome,Linux,1x1"),
        (4, "u4,C:\\\\path\\\\x41?"),
        (5, 'u5,"https://a.com/\\xe2\\x82",1706745600,Chrome,Linux,1x1'),
        (6, "u7,\ufffd\\\\"),
    ]
    assert not [r for r in rejects("duckdb") if r[0].endswith("bad_utf8.csv") and r[1] == 4]


def test_same_report_counts(lakes) -> None:
    def counts(engine):
        r = lakes[engine][1]
        return (
            r.rows_read,
            r.rows_written,
            r.rows_rejected,
            r.rejected_by_reason,
            r.rows_duplicate,
            [(p.year, p.month, p.rows) for p in r.partitions],
            [(f.path, f.rows_read) for f in r.input_files],
        )

    assert counts("duckdb") == counts("spark")
    assert lakes["spark"][1].engine == "spark" and lakes["spark"][1].rows_duplicate > 0


def test_same_partitions_and_file_schema(lakes) -> None:
    def layout(engine):
        lake = lakes[engine][0]
        folders = sorted(
            {
                p.parent.relative_to(lake).as_posix()
                for p in (lake / "clickstream").rglob("*.parquet")
            }
        )
        some = next((lake / "clickstream").rglob("*.parquet"))
        schema = duckdb.sql(
            f"DESCRIBE SELECT * FROM read_parquet('{some}', hive_partitioning = false)"
        ).fetchall()
        return folders, [(name, typ) for name, typ, *_ in schema]

    assert layout("duckdb") == layout("spark")


def test_spark_rerun_is_idempotent(lakes, inputs: Path) -> None:
    again = run_etl(EtlOptions(input=str(inputs), lake=lakes["spark"][0], engine="spark"))
    assert again.input_files == [] and len(again.skipped_files) == 6


BLANKS = [
    "u1,https://a.com/,1600000000,Chrome,Linux,1x1",
    "",
    "u2,https://a.com/,abc,Chrome,Linux,1x1",
    "u3,https://a.com/,1600000000,Chrome",
    "",
    "",
    "u4,https://a.com/,abc,Chrome,Linux,1x1",
    "u5,bad-url,1600000000,Chrome,Linux,1x1",
]
#: Physical lines of BLANKS' rejects (header = line 1): u2, u3, u4, u5.
BLANK_LINES = [4, 5, 8, 9]


def _rejected(lake: Path) -> list[tuple]:
    rows = lake_rows(lake, "clickstream_rejected")
    return [(r["line_number"], r["raw_line"].split(",")[0], r["reject_reason"]) for r in rows]


def test_spark_line_numbers_are_physical_after_blank_lines(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "blank.csv", BLANKS)
    run_etl(EtlOptions(input=str(src), lake=tmp_path / "spark", engine="spark"))
    assert [n for n, *_ in _rejected(tmp_path / "spark")] == BLANK_LINES


def test_duckdb_line_numbers_agree_after_blank_lines(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "blank.csv", BLANKS)
    run_etl(EtlOptions(input=str(src), lake=tmp_path / "duck", engine="duckdb"))
    assert [n for n, *_ in _rejected(tmp_path / "duck")] == BLANK_LINES


def test_a_file_split_across_tasks_keeps_line_numbers(tmp_path: Path) -> None:
    """One file read as many blocks (a tiny split size) numbers its lines as DuckDB does."""
    from clickstream.engines.spark import get_session

    src = generate(tmp_path / "in" / "big.csv", 30_000, seed=9, bad_fraction=0.05)
    active = get_session()
    active.conf.set("spark.sql.files.maxPartitionBytes", str(256 * 1024))
    try:
        run_etl(EtlOptions(input=str(src), lake=tmp_path / "spark", engine="spark"))
        blocks = active.read.text(str(src)).rdd.getNumPartitions()
    finally:
        active.conf.unset("spark.sql.files.maxPartitionBytes")
    assert blocks > 8
    run_etl(EtlOptions(input=str(src), lake=tmp_path / "duck", engine="duckdb"))
    duck, spark = _rejected(tmp_path / "duck"), _rejected(tmp_path / "spark")
    assert len(duck) > 1000 and duck == spark
    assert lake_rows(tmp_path / "duck") == lake_rows(tmp_path / "spark")


def _report_counts(report) -> tuple:
    return (
        report.rows_read,
        report.rows_written,
        report.rows_duplicate,
        [(p.year, p.month, p.rows) for p in report.partitions],
    )


def test_later_runs_dedupe_against_the_lake_as_duckdb(tmp_path: Path) -> None:
    """Runs after the first: copies of stored rows, repeats within the run and new rows give the
    same lake and counts on both engines; a run of nothing new writes nothing on both."""
    first = generate(tmp_path / "a" / "day1.csv", 3_000, seed=11, bad_fraction=0.05)
    fresh = generate(tmp_path / "b" / "new.csv", 400, seed=12, bad_fraction=0.05)
    old_lines = first.read_text().splitlines()
    new_lines = fresh.read_text().splitlines()
    header = old_lines[0]
    mixed = tmp_path / "c" / "mixed.csv"
    mixed.parent.mkdir()
    lines = [header, *old_lines[1:700], *new_lines[1:], *new_lines[1:60]]
    mixed.write_text("\n".join(lines) + "\n")
    copies = tmp_path / "d" / "copies.csv"
    copies.parent.mkdir()
    copies.write_text("\n".join([header, *old_lines[900:1500], *old_lines[900:950]]) + "\n")
    reports: dict[str, list] = {}
    for engine in ("duckdb", "spark"):
        lake = tmp_path / f"lake-{engine}"
        reports[engine] = [
            run_etl(EtlOptions(input=str(src), lake=lake, engine=engine))
            for src in (first, mixed, copies)
        ]
    for duck, spark in zip(reports["duckdb"], reports["spark"], strict=True):
        assert _report_counts(duck) == _report_counts(spark)
    mixed_run, copies_run = reports["spark"][1], reports["spark"][2]
    assert mixed_run.rows_duplicate > 650 and mixed_run.rows_written > 300
    assert copies_run.rows_written == 0 and copies_run.partitions == []
    assert copies_run.rows_duplicate > 600
    assert lake_rows(tmp_path / "lake-duckdb") == lake_rows(tmp_path / "lake-spark")


def test_a_local_session_jit_compiles_the_contract() -> None:
    """The contract's generated method is past HotSpot's size limit for JIT compilation: a local
    session we start passes the flag that lifts it (else the contract runs interpreted)."""
    from clickstream.engines.spark import get_session

    jvm = get_session().sparkContext._jvm
    args = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert "-XX:-DontCompileHugeMethods" in args
