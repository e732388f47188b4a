"""Data printed faithfully: never markup, never terminal control, valid JSON, nested CSV."""

from __future__ import annotations

import decimal
import json

import pytest

from tests.attack.conftest import Sandbox, one_line_error
from tests.conftest import write_csv


def _strict_json(text: str) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"invalid JSON constant {name}")

    # Decimal: an integer past Python's 4,300-digit text limit is still valid JSON
    return json.loads(text, parse_constant=refuse, parse_int=decimal.Decimal)


def test_markup_and_escape_sequences_in_data(sandbox: Sandbox) -> None:
    proc = sandbox.sql(
        "SELECT 'a[/x]b' AS s, '[bold red]x[/]' AS t, url_decode('%1b%5d0%3bPWNED%07') AS u, "
        "utm_source FROM clickstream ORDER BY utm_source"
    )
    assert proc.returncode == 0, proc.stderr
    for raw in ("\x1b", "\x07", "\x9b"):
        assert raw not in proc.stdout + proc.stderr
    assert "a[/x]b" in proc.stdout and "[bold red]x[/]" in proc.stdout
    assert "\\x1b]0;PWNED\\x07" in proc.stdout


def test_markup_in_error_messages(sandbox: Sandbox) -> None:
    one_line_error(sandbox.run("sql", "SELECT 1", "-l", "/nonexistent/[/x]"), "[/x]")
    proc = sandbox.run("sql", "SELECT 1", "-l", "/nonexistent/\x1b]0;PWNED\x07")
    assert "\x1b" not in proc.stderr and "\\x1b" in one_line_error(proc)


def test_json_is_rfc_8259(sandbox: Sandbox) -> None:
    proc = sandbox.sql(
        "SELECT 1 AS a, 2 AS a, 'nan'::DOUBLE AS n, 'inf'::DOUBLE AS i, '-inf'::FLOAT AS m, "
        "'\\x00\\xff'::BLOB AS b, 1.50::DECIMAL(10, 2) AS d, now() AS t, "
        "MAP {'k': [1, 2]} AS mp, {'x': 'y'} AS st, INTERVAL 1 DAY AS iv, "
        "url_decode('%1b') AS c",
        "-f",
        "json",
    )
    assert proc.returncode == 0, proc.stderr
    (row,) = _strict_json(proc.stdout)  # type: ignore[misc]
    assert row["a"] == 1 and row["a_2"] == 2
    assert row["n"] is None and row["i"] is None and row["m"] is None
    assert row["b"] == "AP8=" and row["d"] == 1.5 and '"d":1.50' in proc.stdout
    assert row["mp"] == {"k": [1, 2]} and row["st"] == {"x": "y"} and row["c"] == "\x1b"
    assert row["t"].endswith("+00")  # UTC, whatever TZ the user's machine has


def test_csv_nests_as_json_and_timestamptz_works(sandbox: Sandbox) -> None:
    proc = sandbox.sql(
        "SELECT MAP {'k': 'v'} AS m, [1, 2] AS l, TIMESTAMPTZ '2024-01-01 00:00:00+00' AS t",
        "-f",
        "csv",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == 'm,l,t\n"{""k"":""v""}","[1,2]",2024-01-01 00:00:00.000000Z\n'


_NS = "TIMESTAMP_NS '2024-01-01 12:00:00.123456789'"
_EXACT = (
    f"SELECT {_NS} AS t, [{_NS}] AS l, {{'a': TIME_NS '12:00:00.000000001'}} AS s, "
    f"MAP {{'k': {_NS}}} AS m, TIME_NS '23:59:59.999999999' AS tn, "
    "TIMESTAMP 'infinity' AS inf, TIMESTAMPTZ '-infinity' AS ninf, DATE 'infinity' AS d, "
    "[DATE '-infinity', DATE '2024-01-02'] AS li, {'x': TIMESTAMP '-infinity'} AS si"
)


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_nanoseconds_and_infinities_print_exactly(sandbox: Sandbox, fmt: str) -> None:
    """Python's datetime holds neither nanoseconds nor DuckDB's ±infinity, and pyarrow needs
    pandas (which ``sql`` says is absent) for the former: every format still prints them."""
    sandbox.env["COLUMNS"] = "400"  # a table wide enough not to wrap the values
    proc = sandbox.sql(_EXACT, "-f", fmt)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr and "out of range" not in proc.stdout
    if fmt == "json":
        (row,) = _strict_json(proc.stdout)  # type: ignore[misc]
        assert row == {
            "t": "2024-01-01 12:00:00.123456789",
            "l": ["2024-01-01 12:00:00.123456789"],
            "s": {"a": "12:00:00.000000001"},
            "m": {"k": "2024-01-01 12:00:00.123456789"},
            "tn": "23:59:59.999999999",
            "inf": "infinity",
            "ninf": "-infinity",
            "d": "infinity",
            "li": ["-infinity", "2024-01-02"],
            "si": {"x": "-infinity"},
        }
        return
    text = proc.stdout.replace('""', '"')
    for value in (
        "2024-01-01 12:00:00.123456789",
        '["2024-01-01 12:00:00.123456789"]',
        '{"a":"12:00:00.000000001"}',
        '{"k":"2024-01-01 12:00:00.123456789"}',
        "23:59:59.999999999",
        '["-infinity","2024-01-02"]',
        '{"x":"-infinity"}',
    ):
        assert value in text, (value, proc.stdout)
    assert text.count("-infinity") == 3 and text.count("infinity") == 5


_ALL_TYPES = (
    "SELECT uhugeint, hugeint, time_tz, bit, date, time, timestamp, timestamp_tz, "
    "timestamp_ns, float, fixed_int_array, list_of_fixed_int_array, fixed_struct_array "
    "FROM test_all_types()"
)
#: DuckDB's own text of test_all_types()'s extremes: Arrow carries none of them as is
#: (UHUGEINT wraps, TIME WITH TIME ZONE loses its offset, BIT is bytes) and Python holds
#: neither the years nor 24:00:00.
_EXTREMES = [
    "340282366920938463463374607431768211455",
    "-170141183460469231731687303715884105728",
    "24:00:00-15:59:59",
    "00:00:00+15:59:59",
    "10101",
    "5881580-07-10",
    "5877642-06-25 (BC)",
    "24:00:00",
    "294247-01-10 04:00:54.775806",
    "290309-12-22 (BC) 00:00:00",
    "294247-01-10 04:00:54.776806+00",
    "2262-04-11 23:47:16.854775806",
    "3.4028235e+38",
]


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_duckdb_types_at_their_extremes_print_as_duckdb_writes_them(
    sandbox: Sandbox, fmt: str
) -> None:
    sandbox.env["COLUMNS"] = "1000"
    proc = sandbox.sql(_ALL_TYPES, "-f", fmt)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr and "out of range" not in proc.stdout
    text = proc.stdout.replace('""', '"')
    for value in _EXTREMES:
        assert value in text, (value, proc.stdout)
    assert "[4,5,6]" in text and "[[4,5,6],[null,2,3],[4,5,6]]" in text.replace(" ", "")
    if fmt == "json":
        rows = _strict_json(proc.stdout)
        assert rows[1]["uhugeint"] == 2**128 - 1 and rows[0]["hugeint"] == -(2**127)  # type: ignore[index]
        assert rows[1]["bit"] == "10101" and rows[2]["time_tz"] is None  # type: ignore[index]
    if fmt == "csv":  # numbers stay unquoted, like every other number
        assert "\n0,-170141183460469231731687303715884105728," in proc.stdout


_ODD = (
    "SELECT [TIMESTAMP_NS '2024-01-01 12:00:00.123456789']::TIMESTAMP_NS[1] AS fa, "
    "union_value(t := TIMESTAMP_NS '2024-01-01 12:00:00.123456789')"
    "::UNION(t TIMESTAMP_NS, i INT) AS u, "
    "'infinity'::TIMESTAMP_NS AS ni, ['-infinity'::TIMESTAMP_NS] AS nl, "
    "{'x': '-infinity'::TIMESTAMP_NS} AS ns, 0.1::FLOAT AS f, sum(1) AS s, "
    "true AS b, [true, NULL] AS lb, [MAP {}] AS em"
)


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_fixed_arrays_unions_and_nanosecond_infinities(sandbox: Sandbox, fmt: str) -> None:
    """Each once crashed or printed a date centuries away (1677-09-21, 2262-04-11)."""
    sandbox.env["COLUMNS"] = "400"
    proc = sandbox.sql(_ODD, "-f", fmt)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr
    assert "2262" not in proc.stdout and "1677" not in proc.stdout
    if fmt == "json":
        (row,) = _strict_json(proc.stdout)  # type: ignore[misc]
        assert row == {
            "fa": ["2024-01-01 12:00:00.123456789"],
            "u": {"t": "2024-01-01 12:00:00.123456789"},
            "ni": "infinity",
            "nl": ["-infinity"],
            "ns": {"x": "-infinity"},
            "f": 0.1,
            "s": 1,
            "b": True,
            "lb": [True, None],
            "em": [{}],
        }
        assert '"f":0.1,' in proc.stdout
        return
    text = proc.stdout.replace('""', '"')
    for value in (
        '["2024-01-01 12:00:00.123456789"]',
        '{"t":"2024-01-01 12:00:00.123456789"}',
        '["-infinity"]',
        '{"x":"-infinity"}',
        "[{}]",
    ):
        assert value in text, (value, proc.stdout)
    assert "0.1000" not in text
    if fmt == "csv":
        assert proc.stdout.splitlines()[1].endswith(',0.1,1,true,"[true,null]","[{}]"'), proc.stdout


_NUMBERS = (
    "SELECT 0::DECIMAL(18,7) AS z, -0.0000009::DECIMAL(38,10) AS e, "
    "[0.0000001::DECIMAL(18,7), 0::DECIMAL(18,7)] AS l, MAP {'k': 0.0000001::DECIMAL(18,7)} AS m, "
    "'NaN'::JSON AS j, '[Infinity, -Infinity, NaN, 0.1]'::JSON AS k, ['NaN'::JSON] AS lj, "
    "('1' || repeat('0', 5000))::BIGNUM AS b, [('1' || repeat('0', 5000))::BIGNUM] AS lb, "
    "true AS t"
)


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_decimals_json_values_and_huge_numbers(sandbox: Sandbox, fmt: str) -> None:
    """Decimals in plain digits (never ``1E-7``), a JSON value's NaN never in JSON output, a
    5,001-digit number (past Python's int text limit) whole, booleans as DuckDB says them."""
    sandbox.env["COLUMNS"] = "20000"
    proc = sandbox.sql(_NUMBERS, "-f", fmt)
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr and "E-" not in proc.stdout
    big = "1" + "0" * 5000
    assert proc.stdout.count(big) == 2
    if fmt == "json":
        (row,) = _strict_json(proc.stdout)  # type: ignore[misc]
        assert row["z"] == 0 and row["e"] == -0.0000009 and row["l"] == [0.0000001, 0]
        assert '"z":0.0000000,' in proc.stdout and '"e":-0.0000009000,' in proc.stdout
        assert row["j"] is None and row["k"] == [None, None, None, 0.1] and row["lj"] == [None]
        assert row["t"] is True
        return
    text = proc.stdout.replace('""', '"')
    for value in ("0.0000000", "-0.0000009000", "[0.0000001,0.0000000]", '{"k":0.0000001}',
                  "[Infinity, -Infinity, NaN, 0.1]", "[null]", "true"):  # fmt: skip
        assert value in text, (value, proc.stdout)
    assert "True" not in text


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 1::VARIANT AS v",
        "SELECT {'a': 1::VARIANT} AS v WHERE false",
        "SELECT " + "[" * 63 + "1" + "]" * 63 + " AS deep",
    ],  # fmt: skip
)
def test_a_result_arrow_cannot_carry_is_one_line(sandbox: Sandbox, query: str) -> None:
    for fmt in ("table", "json"):
        one_line_error(sandbox.sql(query, "-f", fmt), "cannot be printed", "VARCHAR")


def test_invisible_characters_are_escaped(sandbox: Sandbox) -> None:
    """Zero-width spaces and joiners, the soft hyphen, the word joiner and the BOM would hide
    text in a terminal: shown escaped, nested too."""
    marks = [0x200B, 0x200D, 0x00AD, 0x2060, 0xFEFF]
    word = " || ".join(f"chr({c})" for c in marks)
    proc = sandbox.sql(f"SELECT 'a' || {word} || 'b' AS s, ['x' || chr(8203)] AS l")
    assert proc.returncode == 0, proc.stderr
    assert not any(chr(c) in proc.stdout for c in marks)
    assert "a\\u200b\\u200d\\xad\\u2060\\ufeffb" in proc.stdout
    assert "\\u200b" in proc.stdout


def test_empty_table_after_full_refresh_of_rejects(sandbox: Sandbox) -> None:
    bad = write_csv(sandbox.outside / "bad.csv", ["u,not-a-url,1706745600,B,O,1x1"])
    etl = sandbox.run("etl", "-q", "--full-refresh", "-i", str(bad), "-l", str(sandbox.lake))
    assert etl.returncode == 0, etl.stderr
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]
    proc = sandbox.sql("SELECT count(*) AS n FROM clickstream", "-f", "csv")
    assert proc.returncode == 0 and proc.stdout == "n\n0\n", proc.stderr
    cat = sandbox.run("catalog", "-o", str(sandbox.outside / "c.duckdb"), "-l", str(sandbox.lake))
    assert cat.returncode == 0, cat.stderr
    sandbox.expected = sandbox.state()  # type: ignore[attr-defined]


@pytest.mark.parametrize("target", ["folder", "proc"])
def test_catalog_out_mistakes_are_one_line(sandbox: Sandbox, target: str) -> None:
    out = str(sandbox.outside) if target == "folder" else "/proc/clickstream-cat.duckdb"
    proc = sandbox.run("catalog", "-o", out, "-l", str(sandbox.lake))
    one_line_error(proc)


_NON_FINITE = (
    "SELECT '[nan, inf, -inf, NaN, -NaN, Infinity, -Infinity, INF, nAn]'::JSON AS j, "
    "['{\"a\": inf, \"nan\": \"inf\"}'::JSON] AS lj, {'k': '[-nan]'::JSON} AS sj, "
    '\'{"k":"NaN","k":2}\'::JSON AS d, '
    "(repeat('[', 400) || 'NaN' || repeat(']', 400))::JSON AS deep"
)


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_every_spelling_of_nan_in_json_values(sandbox: Sandbox, fmt: str) -> None:
    """DuckDB's JSON accepts nan, inf, -NaN, INF, ... in any case: none reaches --format json
    (nor a nested value's JSON text), strings that spell them stay, 400 levels deep too."""
    sandbox.env["COLUMNS"] = "20000"
    proc = sandbox.sql(_NON_FINITE, "-f", fmt)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() in ("", "1 row"), proc.stderr
    text = proc.stdout.replace('""', '"')
    assert '[{"a":null,"nan":"inf"}]' in text and '{"k":[null]}' in text, proc.stdout
    assert '{"k":"NaN","k":2}' in text  # duplicate keys kept as written, in every format
    if fmt == "json":
        (row,) = _strict_json(proc.stdout)  # type: ignore[misc]
        assert row["j"] == [None] * 9
        deep = row["deep"]
        for _ in range(400):
            (deep,) = deep
        assert deep is None


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
@pytest.mark.parametrize(
    "value", ["to_hours(2562048)", "[to_hours(3000000)]", "MAP {'a': to_hours(3000000)}"]
)
def test_an_interval_the_export_would_wrap_is_refused(
    sandbox: Sandbox, fmt: str, value: str
) -> None:
    """DuckDB exports an INTERVAL's microseconds as int64 nanoseconds: past 106,751 days in its
    time part the value wraps (``PT-9223371273.709551616S``). Refused, never printed wrong."""
    proc = sandbox.sql(f"SELECT to_hours(2562047) AS ok, {value} AS bad", "-f", fmt)
    one_line_error(proc, "INTERVAL", "VARCHAR")
    assert "-922337" not in proc.stdout and "2124095" not in proc.stdout
    ok = sandbox.sql("SELECT to_hours(2562047) AS ok, [to_days(5)] AS l", "-f", fmt)
    assert ok.returncode == 0, ok.stderr
    assert "PT9223369200S" in ok.stdout and "P5D" in ok.stdout


def test_a_narrow_table_folds_values_never_cuts_them(sandbox: Sandbox) -> None:
    """On an 80-column terminal (or a pipe) a long value wraps onto more lines: no "…"."""
    sandbox.env["COLUMNS"] = "80"
    digits = "9" * 150
    url = "https://shop.example.com/" + "x" * 120 + "?utm_source=news"
    proc = sandbox.sql(f"SELECT '{digits}'::BIGNUM AS a, '{url}' AS u, 12.5 AS d")
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout
    assert proc.stdout.count("9") == 150
    cells = "".join(ln.split("│")[2].strip() for ln in proc.stdout.splitlines() if "│" in ln)
    assert cells == url, proc.stdout


def test_json_with_hundreds_of_columns(sandbox: Sandbox) -> None:
    proc = sandbox.sql("SELECT " + ", ".join(f"{i} AS c{i}" for i in range(600)), "-f", "json")
    assert proc.returncode == 0, proc.stderr
    (row,) = _strict_json(proc.stdout)  # type: ignore[misc]
    assert row == {f"c{i}": i for i in range(600)}


def test_every_format_character_is_escaped_in_data_names_and_errors(sandbox: Sandbox) -> None:
    """Tag characters (hidden text), the deprecated format controls, musical formatting marks:
    every Unicode format or control character is shown escaped, in cells, column names and
    the one-line error."""
    hidden = [0xE0001, 0xE0049, 0x206A, 0x1D173, 0x0600, 0x110BD, 0x2028]
    word = " || ".join(f"chr({c})" for c in hidden)
    name = "n" + chr(0xE0041) + chr(0x206E) + "m"
    proc = sandbox.sql(f"SELECT 'ok' || {word} AS \"{name}\", 'é日本' || chr(129655) AS plain")
    assert proc.returncode == 0, proc.stderr
    assert not any(chr(c) in proc.stdout for c in [*hidden, 0xE0041, 0x206E])
    assert "ok\\U000e0001\\U000e0049\\u206a\\U0001d173\\u0600\\U000110bd\\u2028" in proc.stdout
    assert "n\\U000e0041\\u206em" in proc.stdout
    assert "é日本\U0001fa77" in proc.stdout  # a Unicode 15 emoji (unassigned to Python 3.11)
    err = sandbox.sql(f'SELECT * FROM "x{chr(0xE0041)}y"')
    line = one_line_error(err, "x\\U000e0041y")
    assert chr(0xE0041) not in line


def test_the_table_shows_ten_thousand_rows_and_says_so(sandbox: Sandbox) -> None:
    """The real cap (no patched constant): 10,001 rows show 10,000 and a note on stderr;
    csv and json print every row."""
    proc = sandbox.sql("SELECT range AS n FROM range(10001)")
    assert proc.returncode == 0, proc.stderr
    shown = [ln for ln in proc.stdout.splitlines() if ln.startswith("│")]
    assert len(shown) == 10_000 and "9999" in shown[-1], shown[-1]
    assert "first 10,000 rows shown" in proc.stderr
    full = sandbox.sql("SELECT range AS n FROM range(10000)")
    assert "rows shown" not in full.stderr
    csv_rows = sandbox.sql("SELECT range AS n FROM range(10001)", "-f", "csv").stdout.splitlines()
    assert len(csv_rows) == 10_002


def test_read_only_introspection_answers(sandbox: Sandbox) -> None:
    for sql in (
        "SELECT count(*) AS n FROM duckdb_settings()",
        "SELECT count(*) AS n FROM duckdb_secrets()",
        "SHOW TABLES",
        "DESCRIBE clickstream",
        "SUMMARIZE SELECT 1 AS x",
    ):
        proc = sandbox.sql(sql, "-f", "json")
        assert proc.returncode == 0, (sql, proc.stderr)
        assert _strict_json(proc.stdout), sql
    tables = {r["name"] for r in _strict_json(sandbox.sql("SHOW TABLES", "-f", "json").stdout)}  # type: ignore[union-attr,index]
    assert {"clickstream", "clickstream_rejected", "sessions"} <= tables
