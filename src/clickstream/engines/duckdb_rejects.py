"""DuckDB's quarantine rows made identical to Spark's: line numbers and raw text.

DuckDB's CSV reader hands over its rejects with a ``line`` that counts blank lines but not
newlines inside quotes, a ``csv_line`` that starts at the newline of a blank line before the
record, and undecodable bytes as '?' that swallow the valid byte after an invalid lead byte.
Spark numbers a file's records by physical line (header = 1), unless a record spans lines (then
it reads the file whole and numbers records). These functions rebuild Spark's numbering from
the census of each file (``integrity``), and the raw text of undecodable records from the file's
bytes (``integrity.escaped_raw``, as the Spark engine does too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clickstream.contract.rules import RAW_LINE_MAX_CHARS
from clickstream.integrity import escaped_raw, raw_records
from clickstream.sources import SourceFile
from clickstream.sqltext import sql_list

if TYPE_CHECKING:
    import duckdb


def malformed_select(groups: int) -> str:
    """One row per record the reader rejected (it may log one error per field), over the
    ``reader_rejects_<g>`` / ``reader_scans_<g>`` tables of each scan."""
    parts = [
        f"SELECT s.file_path AS source_file, e.line AS line_number, "
        # A record never starts with CR or LF: those belong to blank lines before it.
        f"ltrim(first(e.csv_line ORDER BY e.column_idx), chr(13) || chr(10)) AS raw_line, "
        f"bool_or(e.error_type = 'INVALID ENCODING') AS undecodable "
        f"FROM reader_rejects_{g} e JOIN reader_scans_{g} s USING (scan_id, file_id) "
        f"GROUP BY s.file_path, e.line"
        for g in range(groups)
    ]
    return " UNION ALL ".join(parts)


def decode_undecodable(con: duckdb.DuckDBPyConnection) -> None:
    """Raw text of the ``malformed`` records as ``integrity.escaped_raw`` writes it: backslashes
    doubled; the records that are not UTF-8 decoded again from their bytes, each invalid byte
    written ``\\xNN`` (DuckDB's ``csv_line`` has '?' for them, and swallows valid bytes).

    Python touches only the undecodable records (rare, and quarantined), read back in one pass
    per file.
    """
    import pyarrow as pa

    con.execute(
        "UPDATE malformed SET raw_line = replace(raw_line, '\\', '\\\\') WHERE NOT undecodable"
    )
    found = con.execute(
        "SELECT source_file, list(line_number) FROM malformed WHERE undecodable GROUP BY ALL"
    ).fetchall()
    if not found:
        return
    files, numbers, texts = [], [], []
    for path, lines in found:
        # 4 bytes a character at most: enough bytes for the characters raw_line keeps.
        for number, data in raw_records(path, lines, 4 * RAW_LINE_MAX_CHARS + 8).items():
            files.append(path)
            numbers.append(number)
            texts.append(escaped_raw(data))
    decoded = pa.table(
        {
            "source_file": pa.array(files, pa.string()),
            "line_number": pa.array(numbers, pa.int64()),
            "text": pa.array(texts, pa.string()),
        }
    )
    con.register("decoded", decoded)
    try:
        con.execute(
            "UPDATE malformed m SET raw_line = d.text FROM decoded d "
            "WHERE m.undecodable AND m.source_file = d.source_file "
            "AND m.line_number = d.line_number"
        )
    finally:
        con.unregister("decoded")


def line_tables(con: duckdb.DuckDBPyConnection, sources: list[SourceFile]) -> None:
    """``files`` (numbered by physical line, or by record where a record spans lines) and
    ``blank`` (each file's blank lines, with how many records precede them), from the census."""
    physical = [s.census is None or not s.census.multiline for s in sources]
    blank_at = [s.census.blank_at if s.census is not None else () for s in sources]
    # SQL literals, not Arrow tables or parameters: both import pandas (0.4 s of every run).
    paths = sql_list(s.path for s in sources)
    flags = ", ".join("true" if p else "false" for p in physical)
    con.execute(
        f"CREATE TABLE files AS SELECT unnest({paths}::VARCHAR[]) AS source_file, "
        f"unnest([{flags}]::BOOLEAN[]) AS physical"
    )
    owners = sql_list(sources[i].path for i, at in enumerate(blank_at) for _ in at)
    lines = ", ".join(str(int(b)) for at in blank_at for b in at)
    # The j-th blank line (1-based) at logical line b follows b - j - 1 records.
    con.execute(
        "CREATE TABLE blank AS SELECT source_file, b, row_number() OVER w AS j, "
        "b - row_number() OVER w - 1 AS rec_before FROM ("
        f"  SELECT unnest({owners}::VARCHAR[]) AS source_file, unnest([{lines}]::BIGINT[]) AS b) "
        "WINDOW w AS (PARTITION BY source_file ORDER BY b)"
    )


def numbered_rejects(redact: str, run_id: str) -> str:
    """Every reject of the run (rule rejects in ``staged``, reader rejects in ``malformed``)
    with its line number: source_file, line_number, raw_line, reject_reason, run_id.

    Each reject gets k, its 0-based index among its file's records. A malformed record's comes
    from the reader's line (the blank lines before it taken off); an accepted record's from its
    place among the accepted (``rowid`` in insertion order), shifted by the malformed records
    before it. Its line is then k + 2 (header = line 1), plus the blank lines before it where
    the file is numbered by physical line. ASOF joins keep every step a sort, not a product.

    ``redact`` is the SQL of the malformed records' raw_line (over ``raw_line``); ``run_id`` a
    quoted literal.
    """
    return f"""
      WITH bad AS (
        SELECT m.source_file, m.raw_line, m.line_number - 2 - coalesce(b.j, 0) AS k
        FROM malformed m ASOF LEFT JOIN blank b
          ON m.source_file = b.source_file AND m.line_number > b.b),
      bad_ranked AS (
        SELECT source_file, k - row_number() OVER w + 1 AS good_before, row_number() OVER w AS n
        FROM bad WINDOW w AS (PARTITION BY source_file ORDER BY k)),
      bad_steps AS (
        SELECT source_file, good_before, max(n) AS n FROM bad_ranked GROUP BY ALL),
      blank_steps AS (
        SELECT source_file, rec_before, max(j) AS j FROM blank GROUP BY ALL),
      rule AS (
        SELECT s.source_file, s.rowid - f.r0 AS pos, s.raw_line, s.reject_reason
        FROM staged s JOIN per_file f USING (source_file) WHERE s.reject_reason IS NOT NULL),
      indexed AS (
        SELECT r.source_file, r.pos + coalesce(b.n, 0) AS k, r.raw_line, r.reject_reason
        FROM rule r ASOF LEFT JOIN bad_steps b
          ON r.source_file = b.source_file AND r.pos >= b.good_before
        UNION ALL
        SELECT source_file, k, {redact}, 'malformed_csv' FROM bad)
      SELECT x.source_file,
             CAST(x.k + 2 + CASE WHEN f.physical THEN coalesce(b.j, 0) ELSE 0 END AS BIGINT)
               AS line_number,
             x.raw_line, x.reject_reason, {run_id} AS run_id
      FROM indexed x JOIN files f USING (source_file)
      ASOF LEFT JOIN blank_steps b ON x.source_file = b.source_file AND x.k >= b.rec_before
    """
