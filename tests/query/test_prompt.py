"""The interactive prompt: refusals leave the session as it was; data prints as plain text.

The terminal is the boundary here: ``input()`` is fed lines (no tty in tests); everything
behind it (fence, session, DuckDB, output) is real.
"""

from __future__ import annotations

import builtins
import io
from pathlib import Path

import pytest
from rich.console import Console

from clickstream.cli import sql as sql_cli
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.query.session import open_lake
from tests.conftest import write_csv


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    src = write_csv(tmp_path / "a.csv", ["u1,https://a.com/x,1706745599,Chrome,Linux,1x1"])
    run_etl(EtlOptions(input=str(src), lake=str(tmp_path / "lake")))
    return tmp_path / "lake"


def test_prompt_session(lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = iter(
        [
            "EXPLAIN ANALYZE CREATE OR REPLACE VIEW sessions AS",
            "SELECT 1 AS hijacked;",
            "SELECT count(*) AS n,",
            "'a[/x]b' AS s FROM sessions;",
            ".schema clickstream",
            ".tables",
            ".quit",
        ]
    )
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(lines))
    monkeypatch.setattr(sql_cli, "HISTORY", tmp_path / "history")
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sql_cli, "out_console", Console(file=out, width=150))
    monkeypatch.setattr(sql_cli, "err_console", Console(file=err, width=150))
    with open_lake(str(lake)) as session:
        sql_cli.repl(session, "table")
    assert "refused: EXPLAIN ANALYZE" in err.getvalue()
    assert "hijacked" not in out.getvalue()
    assert "a[/x]b" in out.getvalue() and "│ 1 " in out.getvalue()  # one real session
    assert "event_id" in out.getvalue() and "pageviews_daily" in out.getvalue()


def test_a_compaction_under_an_open_prompt_is_named_and_the_session_reopens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files a session listed are replaced by a compaction: the failed query says so (not
    DuckDB's "file system operations are disabled"), and the next one answers the same."""
    from clickstream.lake.compact import compact

    lake = tmp_path / "lake"
    for i in range(3):
        row = f"u{i},https://a.com/x{i},{1706745599 + i * 3600},Chrome,Linux,1x1"
        run_etl(EtlOptions(input=str(write_csv(tmp_path / f"{i}.csv", [row])), lake=str(lake)))
    query = "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM clickstream;"

    def prompts():  # type: ignore[no-untyped-def]
        yield query
        assert compact(str(lake)).run_id is not None  # between two prompts
        yield query
        yield query
        yield ".quit"

    lines = prompts()
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(lines))
    monkeypatch.setattr(sql_cli, "HISTORY", tmp_path / "history")
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sql_cli, "out_console", Console(file=out, width=150))
    monkeypatch.setattr(sql_cli, "err_console", Console(file=err, width=150))
    session = open_lake(str(lake))
    try:
        sql_cli.repl(session, "table")
        assert not session.stale()
    finally:
        session.close()
    assert "the lake changed while this session was open" in err.getvalue(), err.getvalue()
    assert "file system operations" not in err.getvalue()
    assert "reopened the session" in err.getvalue()
    assert out.getvalue().count("│ 3 │ 3") == 2, out.getvalue()
