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


def _three_runs(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    for i in range(3):
        row = f"u{i},https://a.com/x{i},{1706745599 + i * 3600},Chrome,Linux,1x1"
        run_etl(EtlOptions(input=str(write_csv(tmp_path / f"{i}.csv", [row])), lake=str(lake)))
    return lake


def _prompt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lines
) -> tuple[io.StringIO, io.StringIO]:  # type: ignore[no-untyped-def]  # noqa: E501
    monkeypatch.setattr(builtins, "input", lambda prompt="": next(lines))
    monkeypatch.setattr(sql_cli, "HISTORY", tmp_path / "history")
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sql_cli, "out_console", Console(file=out, width=150))
    monkeypatch.setattr(sql_cli, "err_console", Console(file=err, width=150))
    return out, err


QUERY = "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM clickstream;"


def test_the_prompt_reopens_after_a_compaction_replaced_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files the session listed are replaced by a compaction between two prompts: the next
    statement and dot command answer on the lake as it is (not DuckDB's "file system
    operations are disabled"); a mistake afterwards keeps its own message."""
    from clickstream.lake.compact import compact

    lake = _three_runs(tmp_path)

    def prompts():  # type: ignore[no-untyped-def]
        yield QUERY
        assert compact(str(lake)).run_id is not None  # between two prompts
        yield ".schema clickstream"
        yield QUERY
        assert compact(str(lake)).run_id is None
        yield "SELECT no_such_column FROM clickstream;"
        yield ".quit"

    out, err = _prompt(monkeypatch, tmp_path, prompts())
    with open_lake(str(lake)) as session:
        sql_cli.repl(session, "table")
        assert not session.stale()
    assert "file system operations" not in err.getvalue()
    assert err.getvalue().count("reopened the session") == 1, err.getvalue()
    assert out.getvalue().count("│ 3 │ 3") == 2, out.getvalue()
    assert "event_id" in out.getvalue()  # .schema answered
    assert "no_such_column" in err.getvalue() and "lake changed" not in err.getvalue()


def test_a_query_on_a_session_whose_files_were_replaced_says_so(tmp_path: Path) -> None:
    from clickstream.errors import QueryError
    from clickstream.lake.compact import compact
    from clickstream.query.session import run_query

    lake = _three_runs(tmp_path)
    with open_lake(str(lake)) as session:
        assert run_query(session, QUERY)[1] == [(3, 3)]
        assert compact(str(lake)).run_id is not None
        with pytest.raises(QueryError, match="the lake changed while this session was open"):
            run_query(session, QUERY)
        # An error that is not about files keeps its own message, stale or not.
        with pytest.raises(QueryError, match="boom") as caught:
            run_query(session, "SELECT error('boom')")
        assert "lake changed" not in str(caught.value)
        session.reopen()
        assert run_query(session, QUERY)[1] == [(3, 3)]


def test_the_prompt_outlives_a_lake_that_cannot_be_reopened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    lake = _three_runs(tmp_path)
    moved = tmp_path / "moved"

    def prompts():  # type: ignore[no-untyped-def]
        yield QUERY
        lake.rename(moved)  # the lake is gone: every reopen fails
        yield QUERY
        yield ".tables"
        shutil.move(str(moved), str(lake))  # back: the next line reopens
        yield QUERY
        lake.rename(moved)
        yield ".quit"  # leaving needs no lake

    out, err = _prompt(monkeypatch, tmp_path, prompts())
    with open_lake(str(lake)) as session:
        sql_cli.repl(session, "table")
    assert err.getvalue().count("no lake at") == 2, err.getvalue()
    assert err.getvalue().count("reopened the session") == 1, err.getvalue()
    assert out.getvalue().count("│ 3 │ 3") == 2, out.getvalue()


def test_an_interrupted_query_leaves_the_prompt_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C inside a long query cancels that query (DuckDB's interrupt, as its signal
    handler sends it), and the prompt answers the next one."""
    import threading

    lake = _three_runs(tmp_path)
    slow = "SELECT count(*) FROM range(10000000000) a, range(10) b WHERE a.range % 7 = b.range;"
    out, err = _prompt(monkeypatch, tmp_path, iter([slow, QUERY, ".quit"]))
    with open_lake(str(lake)) as session:
        timer = threading.Timer(1.0, session.con.interrupt)
        timer.start()
        sql_cli.repl(session, "table")
        timer.join()
    assert "error: INTERRUPT Error: Interrupted!" in err.getvalue(), err.getvalue()
    assert out.getvalue().count("│ 3 │ 3") == 1, out.getvalue()


def test_a_failure_of_ours_in_one_query_leaves_the_prompt_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (simulated: the printer raises a plain ValueError once) is one error line, and
    the prompt goes on; there is no real input left that does this, hence the stand-in."""
    lake = _three_runs(tmp_path)
    real, calls = sql_cli.print_result, []

    def flaky(*args):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("boom")
        return real(*args)

    monkeypatch.setattr(sql_cli, "print_result", flaky)
    out, err = _prompt(monkeypatch, tmp_path, iter([QUERY, QUERY, ".quit"]))
    with open_lake(str(lake)) as session:
        sql_cli.repl(session, "table")
    assert "error: unexpected error (ValueError: boom)" in err.getvalue(), err.getvalue()
    assert out.getvalue().count("│ 3 │ 3") == 1, out.getvalue()
