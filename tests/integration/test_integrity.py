"""Every input record is accounted for, or the run fails before writing (inputs made on the fly)."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from pathlib import Path

import pytest

from clickstream.errors import InputError, InvariantError
from clickstream.integrity import MAX_RECORD_BYTES, Census, census
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.sources import read_header
from tests.conftest import HEADER, lake_rows, write_csv

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


def line(i: int) -> str:
    return f"u{i},https://a.com/p{i},{1_706_745_600 + i},Chrome,Linux,1x1"


def nothing_written(lake: Path) -> bool:
    return not any((lake / "clickstream").rglob("*.parquet")) and not any(
        (lake / "_runs").glob("*.json")
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clickstream", *args], capture_output=True, text=True
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_truncated_gzip_fails_the_run_naming_the_file(tmp_path: Path, engine: str) -> None:
    full = gzip.compress(("\n".join([HEADER, *map(line, range(20_000))]) + "\n").encode())
    src = tmp_path / "in" / "cut.csv.gz"
    src.parent.mkdir()
    src.write_bytes(full[: int(len(full) * 0.6)])
    lake = tmp_path / "lake"
    with pytest.raises(InputError, match=r"cut\.csv\.gz: truncated gzip"):
        run_etl(EtlOptions(input=str(src), lake=str(lake), engine=engine))
    assert nothing_written(lake)


def test_truncated_gzip_is_one_line_on_the_cli(tmp_path: Path) -> None:
    full = gzip.compress(("\n".join([HEADER, *map(line, range(5_000))]) + "\n").encode())
    src = tmp_path / "cut.csv.gz"
    src.write_bytes(full[: len(full) // 2])
    proc = cli("etl", "-i", str(src), "-l", str(tmp_path / "lake"), "-q")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    [message] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert message.startswith("error:") and "cut.csv.gz" in message


def test_corrupt_gzip_and_trailing_garbage_fail(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(("\n".join([HEADER, *map(line, range(2_000))])).encode()))
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "flip.csv.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="flip.csv.gz"):
        run_etl(EtlOptions(input=str(bad), lake=str(tmp_path / "lake")))
    tail = tmp_path / "tail.csv.gz"
    tail.write_bytes(gzip.compress(f"{HEADER}\n{line(1)}\n".encode()) + b"not gzip")
    with pytest.raises(InputError, match="tail.csv.gz"):
        run_etl(EtlOptions(input=str(tail), lake=str(tmp_path / "lake")))
    with pytest.raises(InputError, match="after the end of the gzip stream"):
        _census(gzip.compress(b"h\n1\n") + b"not gzip", "t.csv.gz")
    assert not any((tmp_path / "lake" / "_runs").glob("*.json"))


def test_multi_member_gzip_is_read_whole(tmp_path: Path) -> None:
    src = tmp_path / "two.csv.gz"
    first = gzip.compress(f"{HEADER}\n{line(1)}\n".encode())
    src.write_bytes(first + gzip.compress(f"{line(2)}\n{line(3)}\n".encode()))
    report = run_etl(EtlOptions(input=str(src), lake=str(tmp_path / "lake")))
    assert report.rows_read == 3 and report.rows_written == 3


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_huge_record_fails_naming_file_and_line(tmp_path: Path, engine: str) -> None:
    # 33 MiB: DuckDB's reader skipped such a record without a word (2 of 3 rows, exit 0).
    huge = "u2,https://a.com/?q=" + "x" * (33 * 1024 * 1024) + ",1706745600,Chrome,Linux,1x1"
    src = write_csv(tmp_path / "huge.csv", [line(1), huge, line(3)])
    lake = tmp_path / "lake"
    with pytest.raises(InputError, match=r"huge\.csv: line 3: the record starting here is longer"):
        run_etl(EtlOptions(input=str(src), lake=str(lake), engine=engine))
    assert nothing_written(lake)


def test_record_just_under_the_limit_is_read(tmp_path: Path) -> None:
    url = "https://a.com/?q=" + "x" * (MAX_RECORD_BYTES - 200)
    src = write_csv(tmp_path / "big.csv", [line(1), f"u2,{url},1706745600,Chrome,Linux,1x1"])
    report = run_etl(EtlOptions(input=str(src), lake=str(tmp_path / "lake")))
    assert report.rows_read == 2 and report.rows_written == 2
    rows = {r["anonymous_user_id"]: r for r in lake_rows(tmp_path / "lake")}
    assert rows["u2"]["url"] == url


@pytest.mark.parametrize("engine", ENGINES)
def test_header_over_64_kib_is_read_whole(tmp_path: Path, engine: str) -> None:
    extra = [f"extra_column_{i}" for i in range(10_000)]
    columns = [*extra[:5_000], *HEADER.split(","), *extra[5_000:]]
    values = ["v"] * 5_000 + line(1).split(",") + ["v"] * 5_000
    src = write_csv(tmp_path / "wide.csv", [",".join(values)], header=",".join(columns))
    assert len(",".join(columns)) > 64 * 1024
    assert read_header(src) == columns
    report = run_etl(EtlOptions(input=str(src), lake=str(tmp_path / "lake"), engine=engine))
    assert (report.rows_read, report.rows_written, report.rows_rejected) == (1, 1, 0)


def _census(data: bytes, name: str = "f.csv") -> Census:
    return census(name, [data[i : i + 7] for i in range(0, len(data), 7)])


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_census_counts_records_by_the_rfc_4180_rule(step: int) -> None:
    def records(data: bytes) -> int:
        return census("f.csv", [data[i : i + step] for i in range(0, len(data), step)]).records

    c = _census(b"h\n1\n\n2\r\n\r\n3")
    assert (c.lines, c.blank_lines, c.quotes, c.records) == (6, 2, 0, 3)
    assert records(b"h\na\n\n\n\nb\n") == 2
    assert records(b'h\n"a\nb",1\n') == 1
    assert records(b'h\n"a\n\nb",1\n2\n') == 2  # a blank line inside quotes is data
    assert records(b'\xef\xbb\xbf"h"\n"a""\n""b",1\r\n2\r\n') == 2
    assert records(b'h\n"",""""\n"x\r\ny"\n') == 2
    assert records(b'h\n1\n"never closed\n2\n3\n') == 2  # the rest of the file is one record
    assert records(b"h\n1\n2\r") == 2
    assert records(b"h\n   \n") == 1  # whitespace is a record (malformed), not a blank line
    assert _census(gzip.compress(b"h\n1\n2\n"), "f.csv.gz").records == 2
    assert records(b"") == 0


@pytest.mark.parametrize("step", [1, 2, 5, 1000])
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'h\n1\na"b,2\n', "line 3: a '\"' inside an unquoted field"),
        (b'h\n1\n "a",2\n', "line 3: a '\"' inside an unquoted field"),
        (b'h\n"a"b,2\n', "line 2: a '\"' after a closing quote"),
        (b'h\n"a\nb"c\n', "line 3: a '\"' after a closing quote"),
        (b"h\n1\n2\r3\n", r"line 3: a carriage return \(\\r\) that does not end the line"),
        (b"h\r1\r2\r", r"line 1: a carriage return"),
    ],
)
def test_census_refuses_what_readers_disagree_on(step: int, data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message) if "(" not in message else message):
        census("f.csv", [data[i : i + step] for i in range(0, len(data), step)])


def test_census_check_catches_a_reader_that_loses_or_invents_records() -> None:
    plain = _census(b"h\n1\n2\n3\n")
    plain.check(3)
    with pytest.raises(InvariantError, match="returned 2 records but the file holds 3"):
        plain.check(2)
    quoted = _census(b'h\n"1\n1",x\n2\n')
    quoted.check(2)
    with pytest.raises(InvariantError, match="returned 3 records but the file holds 2"):
        quoted.check(3)


def test_whitespace_only_and_blank_lines_reconcile(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "gaps.csv", [line(1), "", "   ", line(2), "", ""])
    report = run_etl(EtlOptions(input=str(src), lake=str(tmp_path / "lake")))
    assert report.rows_read == 3 and report.rows_written == 2
    assert report.rejected_by_reason == {"malformed_csv": 1}


def _members(sizes: list[int]) -> tuple[bytes, bytes]:
    """A multi-member gzip (as `cat a.gz b.gz` makes) whose members hold ``sizes`` lines."""
    plain, packed, start = b"", b"", 0
    for n in sizes:
        body = "".join(f"{line(i)},{'x' * 40}\n" for i in range(start, start + n)).encode()
        plain, packed, start = plain + body, packed + gzip.compress(body), start + n
    return plain, packed


@pytest.mark.parametrize(
    "sizes", [[1, 1], [20_000, 10], [20_000, 20_000, 3], [5, 60_000], [10_000, 0, 10_000]]
)
@pytest.mark.parametrize("chunk", [7, 64 * 1024, 1024 * 1024])
def test_multi_member_gzip_census_is_exact_and_ends(sizes: list[int], chunk: int) -> None:
    # The first member of [20_000, ...] inflates to more than 1 MiB: this used to loop forever.
    plain, packed = _members(sizes)
    pieces = [packed[i : i + chunk] for i in range(0, len(packed), chunk)]
    c = census("m.csv.gz", pieces)
    assert (c.bytes, c.lines) == (len(plain), plain.count(b"\n"))


def test_multi_member_gzip_over_1_mib_is_read_whole_on_the_cli(tmp_path: Path) -> None:
    rows = [line(i) for i in range(40_000)]
    first = gzip.compress(("\n".join([HEADER, *rows[:20_000]]) + "\n").encode())
    assert len(gzip.decompress(first)) > 1024 * 1024
    src = tmp_path / "cc.csv.gz"
    src.write_bytes(first + gzip.compress(("\n".join(rows[20_000:]) + "\n").encode()))
    proc = subprocess.run(
        [sys.executable, "-m", "clickstream", "etl", "-i", str(src), "-l", str(tmp_path / "lk")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(lake_rows(tmp_path / "lk")) == 40_000


def _quoted(body: str) -> str:
    """A record whose url field is quoted and holds ``body`` (newlines included)."""
    return f'u2,"https://a.com/?q={body}",1706745600,Chrome,Linux,1x1'


@pytest.mark.parametrize("engine", ENGINES)
def test_quoted_record_over_the_limit_fails_naming_file_and_line(
    tmp_path: Path, engine: str
) -> None:
    # 24 MiB of short lines inside one quoted field: DuckDB split it into hundreds of malformed
    # rows that all reconciled (rows_read wrong, exit 0).
    body = "x\n" * (12 * 1024 * 1024)
    src = write_csv(tmp_path / "quoted.csv", [line(1), _quoted(body), line(3)])
    lake = tmp_path / "lake"
    with pytest.raises(
        InputError, match=r"quoted\.csv: line 3: the record starting here is longer"
    ):
        run_etl(EtlOptions(input=str(src), lake=str(lake), engine=engine))
    assert nothing_written(lake)


def test_unclosed_quote_running_past_the_limit_fails_naming_its_line(tmp_path: Path) -> None:
    rows = [line(i) for i in range(2, 200_000)]  # ~9.5 MiB after the open quote
    src = write_csv(tmp_path / "open.csv", [line(1), 'u9,"https://a.com/', *rows])
    with pytest.raises(InputError, match=r"open\.csv: line 3: the record starting here"):
        run_etl(EtlOptions(input=str(src), lake=str(tmp_path / "lake")))
    assert nothing_written(tmp_path / "lake")


def test_quoted_record_under_the_limit_is_one_record(tmp_path: Path) -> None:
    body = "x\n" * (3 * 1024 * 1024)  # 6 MiB of short lines in one field
    src = write_csv(tmp_path / "q.csv", [line(1), _quoted(body), "", line(3)])
    report = run_etl(EtlOptions(input=str(src), lake=str(tmp_path / "lake")))
    assert (report.rows_read, report.rows_written) == (3, 2)
    assert report.rejected_by_reason == {"invalid_url": 1}  # a URL never holds a newline
    [rejected] = lake_rows(tmp_path / "lake", "clickstream_rejected")
    assert rejected["line_number"] == 3 and rejected["raw_line"].endswith("…[truncated]")


def test_a_40_mib_quoted_record_fails_in_bounded_memory(tmp_path: Path) -> None:
    # DuckDB grew past 7 GB on this input; the census refuses it before DuckDB sees it.
    src = write_csv(tmp_path / "big.csv", [line(1), _quoted("x\n" * (20 * 1024 * 1024))])
    probe = (
        "import resource, subprocess, sys; "
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "print(p.stderr, end='')"
    )
    command = [sys.executable, "-m", "clickstream", "etl", "-i", str(src), "-l", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-c", probe, *command], capture_output=True, text=True, timeout=300
    )
    status, *errors = proc.stdout.splitlines()
    code, max_rss_kib = map(int, status.split())
    assert code == 1 and len(errors) == 1, proc.stdout
    assert errors[0].startswith("error: ") and "big.csv: line 3:" in errors[0]
    assert max_rss_kib < 1024 * 1024, f"peak RSS {max_rss_kib // 1024} MiB"


@pytest.mark.parametrize("engine", ENGINES)
def test_quoted_fields_reconcile_exactly(tmp_path: Path, engine: str) -> None:
    rows = [
        line(1),
        'u2,"https://a.com/?q=a,b",1706745600,"Chrome ""x""",Linux,1x1',
        'u3,https://a.com/,1706745600,"multi\nline\n\nbrowser",Linux,1x1',
        '"u4",https://a.com/,1706745600,"",Linux,""',
        "",
        '"broken,quote',
    ]
    src = write_csv(tmp_path / "q.csv", rows)
    report = run_etl(EtlOptions(input=str(src), lake=str(tmp_path / "lake"), engine=engine))
    assert report.rows_read == 5 and report.rows_written == 4
    assert report.rejected_by_reason == {"malformed_csv": 1}
    kept = {r["anonymous_user_id"]: r for r in lake_rows(tmp_path / "lake")}
    assert kept["u2"]["browser"] == 'Chrome "x"' and kept["u3"]["browser"].count("\n") == 3
