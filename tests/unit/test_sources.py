from pathlib import Path

import pytest

from clickstream.errors import InputError, MissingColumnError, NoInputFilesError
from clickstream.sources import discover, header_positions, inspect, read_header
from tests.conftest import write_csv


def test_columns_matched_by_name_in_any_order_case_and_space_insensitive() -> None:
    header = [" Screen_Resolution ", "OS", "extra", "TIME", "url", "Browser", "anonymous_user_id"]
    assert header_positions("f", header) == (6, 4, 3, 5, 1, 0)


def test_missing_column_names_file_and_column() -> None:
    with pytest.raises(MissingColumnError) as err:
        header_positions("in/a.csv", ["anonymous_user_id", "url", "time", "browser", "os"])
    assert err.value.column == "screen_resolution"
    assert "in/a.csv" in str(err.value) and "screen_resolution" in str(err.value)


def test_header_with_bom_and_crlf_and_gzip(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv.gz"):
        path = write_csv(
            tmp_path / name, ["u,http://a.com,1600000000,b,o,1x1"], newline="\r\n", bom=True
        )
        assert read_header(path)[0] == "anonymous_user_id"
        assert read_header(path)[-1] == "screen_resolution"


def test_discover_file_folder_glob(tmp_path: Path) -> None:
    a = write_csv(tmp_path / "d" / "a.csv", [])
    b = write_csv(tmp_path / "d" / "sub" / "b.csv.gz", [])
    (tmp_path / "d" / "notes.txt").write_text("x")
    assert discover(str(a)) == [a.resolve()]
    assert discover(str(tmp_path / "d")) == sorted([a.resolve(), b.resolve()])
    assert discover(str(tmp_path / "d" / "*.csv")) == [a.resolve()]
    with pytest.raises(NoInputFilesError):
        discover(str(tmp_path / "d" / "*.json"))
    with pytest.raises(InputError, match="not found"):
        discover(str(tmp_path / "missing"))


def test_inspect_records_identity(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", ["u,http://a.com,1600000000,b,o,1x1"])
    [source] = inspect([path])
    assert source.size == path.stat().st_size and source.field_count == 6


def test_empty_file_is_a_missing_header(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(MissingColumnError, match="empty header"):
        inspect([path])
