"""Realistic synthetic clickstream, generated inside DuckDB and deterministic for a seed.

Every value is a function of (seed, row index) through DuckDB's hash(), so output does not depend
on thread scheduling. Visitors come back for several page views; URLs mix hosts, ports, encoded
UTM values, fragments and the odd credential; a ``bad_fraction`` of rows breaks one contract rule
each (and a few rows repeat exactly, as duplicates).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from clickstream.contract.schema import REQUIRED_INPUT_COLUMNS
from clickstream.errors import ConfigError
from clickstream.sqltext import sql_list

HOSTS = [
    "www.example.com", "shop.example.com", "blog.example.org", "Example.COM",
    "shop.example.com:8443", "www.example.com:80",
]  # fmt: skip
PATHS = [
    "/", "/products", "/products/shoes%20red", "/cart", "/checkout", "/search",
    "/blog/2024/hello-world", "/about", "/products/42", "",
]  # fmt: skip
UTMS = [
    "", "", "", "", "",
    "?utm_source=google&utm_medium=cpc&utm_campaign=brand",
    "?utm_source=facebook&utm_medium=social&utm_campaign=spring+sale",
    "?utm_source=newsletter&utm_medium=email&utm_campaign=black%20friday&utm_content=hero",
    "?UTM_Source=Twitter&utm_medium=social&utm_campaign=%F0%9F%8E%89launch",
    "?utm_source=bing&utm_medium=cpc&utm_term=running+shoes&utm_campaign=q3",
    "?q=shoes&page=2",
    "?utm_source=partner&utm_medium=referral&utm_campaign=100%off",
]  # fmt: skip
FRAGMENTS = ["", "", "", "", "#reviews", "#top?from=nav"]
BROWSERS = ["Chrome", "Firefox", "Safari", "Edge", "Opera", "Samsung Internet"]
OSES = ["Windows", "macOS", "Linux", "Android", "iOS", "ChromeOS"]
RESOLUTIONS = ["1920x1080", "1366x768", "1440x900", "2560x1440", "390x844", "412X915", "0x0", ""]

#: 2024-01-01T00:00:00Z; events spread over a year, so every month and its boundaries appear.
START_EPOCH = 1_704_067_200
SPAN_SECONDS = 366 * 86_400

BAD_KINDS = [
    "missing_user_id", "invalid_time", "time_out_of_range", "invalid_url",
    "extra_field", "missing_field", "duplicate",
]  # fmt: skip


def _pick(options: list[str], h: str) -> str:
    arr = sql_list(options)
    return f"{arr}[1 + (({h}) % {len(options)})::BIGINT]"


def generate_sql(rows: int, seed: int, bad_fraction: float) -> str:
    """SQL returning one column ``line`` (a CSV record), in row order.

    No ORDER BY: DuckDB keeps range() order (preserve_insertion_order), and sorting 10M lines
    would cost memory and time.
    """

    def h(tag: str, idx: str = "i") -> str:
        return f"hash({seed}, {idx}, '{tag}')"

    bad_per_million = int(round(bad_fraction * 1_000_000))
    n_users = max(1, rows // 6)
    # j: the row whose values this row takes; a "duplicate" bad row copies its predecessor.
    kind = _pick(BAD_KINDS, h("kind"))
    return f"""
    WITH base AS (
      SELECT i,
        CASE WHEN {h("bad")} % 1000000 < {bad_per_million} THEN {kind} END AS bad
      FROM range({rows}) r(i)
    ), src AS (
      SELECT i, bad, CASE WHEN bad = 'duplicate' AND i > 0 THEN i - 1 ELSE i END AS j FROM base
    ), visits AS (
      -- A visitor makes a few visits; the page views of one visit fall within 25 minutes.
      SELECT *, {h("user", "j")} % {n_users} AS u, {h("visit", "j")} % 4 AS visit FROM src
    ), fields AS (
      SELECT i, bad,
        substr(md5('{seed}-' || u::VARCHAR), 1, 16) AS user_id,
        CASE WHEN {h("cred", "j")} % 500 = 0 THEN 'https://visitor:s3cret@' ELSE
          CASE WHEN {h("tls", "j")} % 4 = 0 THEN 'http://' ELSE 'https://' END END
          || {_pick(HOSTS, h("host", "j"))} || {_pick(PATHS, h("path", "j"))}
          || {_pick(UTMS, h("utm", "j"))} || {_pick(FRAGMENTS, h("frag", "j"))} AS url,
        ({START_EPOCH} + hash({seed}, u, visit) % {SPAN_SECONDS} + {h("within", "j")} % 1500)::VARCHAR
          || CASE WHEN {h("frac", "j")} % 3 = 0
                  THEN '.' || lpad(({h("us", "j")} % 1000000)::VARCHAR, 6, '0') ELSE '' END
          AS ts,
        {_pick(BROWSERS, h("browser", "j"))} AS browser,
        {_pick(OSES, h("os", "j"))} AS os,
        {_pick(RESOLUTIONS, h("res", "j"))} AS res
      FROM visits
    )
    SELECT CASE bad
      WHEN 'missing_user_id' THEN concat_ws(',', '', url, ts, browser, os, res)
      WHEN 'invalid_time' THEN concat_ws(',', user_id, url, 'not-a-time', browser, os, res)
      WHEN 'time_out_of_range' THEN concat_ws(',', user_id, url, split_part(ts, '.', 1) || '000', browser, os, res)
      WHEN 'invalid_url' THEN concat_ws(',', user_id, 'ftp://files.example.com/x', ts, browser, os, res)
      WHEN 'extra_field' THEN concat_ws(',', user_id, url, ts, browser, os, res, 'extra')
      WHEN 'missing_field' THEN concat_ws(',', user_id, url, ts, browser, os)
      ELSE concat_ws(',', user_id, url, ts, browser, os, res)
    END AS line
    FROM fields
    """  # noqa: E501


def generate(out: Path, rows: int, seed: int = 42, bad_fraction: float = 0.0) -> Path:
    """Write ``rows`` records (plus the header) to ``out`` (.csv, or .csv.gz for gzip)."""
    if rows < 0:
        raise ConfigError("--rows must be zero or more")
    if not 0.0 <= bad_fraction <= 1.0:
        raise ConfigError("--bad-fraction must be between 0 and 1")
    name = out.name.lower()
    if not name.endswith((".csv", ".csv.gz")):
        raise ConfigError(f"{out}: output must end in .csv or .csv.gz")
    out.parent.mkdir(parents=True, exist_ok=True)
    header = ",".join(REQUIRED_INPUT_COLUMNS)
    compression = "gzip" if name.endswith(".gz") else "none"
    con = duckdb.connect()
    try:
        # One text column whose name is the header; no quoting, so each line is written as built.
        con.execute(
            f'COPY (SELECT line AS "{header}" FROM ({generate_sql(rows, seed, bad_fraction)})) '
            f"TO '{str(out).replace(chr(39), chr(39) * 2)}' "
            f"(FORMAT csv, HEADER true, QUOTE '', ESCAPE '', DELIMITER '\x1f', "
            f"COMPRESSION {compression})"
        )
    finally:
        con.close()
    return out
