"""The four count views materialised beside the sessions table: one pair file per layer and view.

``pageviews_daily``, ``traffic_sources``, ``top_pages`` and ``devices`` each count page views and
*distinct* visitors per group. A distinct count does not add up across runs, so what is stored is
the set of (group, visitor) pairs: for each layer of the sessions table
(``_sessions/<hex>.parquet``) a sibling ``_sessions/<hex>.<view>.parquet`` with the view's group
columns, ``anonymous_user_id``, ``pageviews`` (that layer's page views of the pair) and ``new``
(the pair is in no earlier layer).
A base layer holds every pair once (all new); a run's delta holds the run's pairs, ``new`` where the
visitor had none in that group before (one narrow scan of the stored pairs for the run's visitors).
Each pair also carries ``pair_hi`` and ``pair_lo``, the md5 of its visitor and group (two
64-bit halves: Parquet stores a 128-bit integer as a DOUBLE): a run's pairs are found among
millions of stored ones by those integer columns instead of decoding every stored pair's text
(1.43 -> ~0.6 s on a 10M-row lake). md5, not DuckDB's ``hash()``: that one has 64 bits, may
change between versions, and is easily inverted, so a visitor could pick a page whose hash equals
another page's and go uncounted there. md5 is fixed, and its known collisions are binary
blocks: no practical way is known to give one the form of URL parts or visitor ids (the event ids
rely on md5 the same way).
The view is then ``sum(pageviews)`` and ``count(*) FILTER (new)`` per group over the siblings: a
scan of narrow dictionary-encoded columns into a handful of groups, instead of a distinct
aggregation over every page view.

Siblings share their layer's life: written before the pointer switch, named by it (every layer
has one per view), removed with it. A missing, foreign or ill-typed sibling leaves that view
computed (``query.materialized``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clickstream.sqltext import sql_list, sql_literal

#: View -> its group columns with their DuckDB types, as in ``query/sql/<view>.sql``.
ROLLUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "pageviews_daily": (("event_date", "DATE"),),
    "traffic_sources": (
        ("utm_source", "VARCHAR"),
        ("utm_medium", "VARCHAR"),
        ("utm_campaign", "VARCHAR"),
    ),
    "top_pages": (("url_host", "VARCHAR"), ("url_path", "VARCHAR")),
    "devices": (
        ("browser", "VARCHAR"),
        ("os", "VARCHAR"),
        ("screen_width", "INTEGER"),
        ("screen_height", "INTEGER"),
    ),
}


def sibling(layer: str | Path, view: str) -> str:
    """``…/<hex>.parquet`` -> ``…/<hex>.<view>.parquet``."""
    text = str(layer)
    if view not in ROLLUPS or not text.endswith(".parquet"):
        raise ValueError(f"no rollup {view!r} for {text!r}")
    return f"{text[: -len('.parquet')]}.{view}.parquet"


def is_sibling_name(name: str) -> str | None:
    """The layer file name a sibling file name belongs to, or None."""
    for view in ROLLUPS:
        suffix = f".{view}.parquet"
        if name.endswith(suffix):
            return name[: -len(suffix)] + ".parquet"
    return None


def _keys(view: str) -> list[str]:
    return [c for c, _ in ROLLUPS[view]]


def view_columns(view: str) -> list[tuple[str, str]]:
    """The view's columns and DuckDB types, in its order."""
    return [*ROLLUPS[view], ("pageviews", "BIGINT"), ("unique_users", "BIGINT")]


def read_sql(view: str, files: list[str]) -> str:
    """The view over its sibling files (all layers)."""
    keys = ", ".join(_keys(view))
    return (
        f"SELECT {keys}, CAST(sum(pageviews) AS BIGINT) AS pageviews, "
        "count(*) FILTER (WHERE new) AS unique_users "
        f"FROM read_parquet({sql_list(files)}) GROUP BY {keys}"
    )


def _copy(con: Any, select: str, path: str) -> None:
    con.execute(f"COPY ({select}) TO {sql_literal(path)} (FORMAT parquet, COMPRESSION zstd)")


def _pair_id(view: str) -> str:
    """md5 of a JSON list of the pair's visitor and group values as text (NULL as null), so two
    different pairs never hash the same text."""
    parts = ", ".join(["anonymous_user_id", *(f"CAST({k} AS VARCHAR)" for k in _keys(view))])
    return f"md5_number(to_json([{parts}]))"


_LOW_64 = "CAST(18446744073709551615 AS UHUGEINT)"


def _pairs(view: str, events: str, pageviews: str = "count(*)", new: str = "TRUE") -> str:
    """Every (group, visitor) pair of ``events``, in the sibling file's column order."""
    keys = ", ".join(_keys(view))
    grouped = (
        f"SELECT {keys}, anonymous_user_id, CAST({pageviews} AS BIGINT) AS pageviews, "
        f"{new} AS new, {_pair_id(view)} AS m FROM {events} GROUP BY {keys}, anonymous_user_id"
    )
    return (
        "SELECT * EXCLUDE (m), CAST(m >> 64 AS UBIGINT) AS pair_hi, "
        f"CAST(m & {_LOW_64} AS UBIGINT) AS pair_lo FROM ({grouped})"
    )


def write_base(con: Any, layer: str, events: str) -> None:
    """Siblings of a base layer: every pair of ``events`` (whole visitors), all new."""
    for view in ROLLUPS:
        _copy(con, _pairs(view, events), sibling(layer, view))


def write_delta(con: Any, layer: str, old_layers: list[str], events: str, known: str) -> None:
    """Siblings of a run's delta: the run's pairs, ``new`` unless an older layer holds the pair.

    ``known`` is a table of the run's visitors that have page views in the lake already (those
    with stored sessions): the stored pairs (their md5 halves) are read only if it has any.
    """
    row = con.execute(f"SELECT count(*) FROM {known}").fetchone()
    returning = bool(row and row[0])
    for view in ROLLUPS:
        if not returning:  # no visitor of the run has a stored pair: every pair is new
            _copy(con, _pairs(view, events), sibling(layer, view))
            continue
        run = _pairs(view, events, new="NULL")
        old = sql_list(sibling(p, view) for p in old_layers)
        same = "s.pair_hi = r.pair_hi AND s.pair_lo = r.pair_lo"
        select = f"""WITH r AS ({run}), o AS (
  SELECT DISTINCT s.pair_hi, s.pair_lo FROM read_parquet({old}) s SEMI JOIN r ON {same}
)
SELECT r.* REPLACE (s.pair_hi IS NULL AS new) FROM r LEFT JOIN o s ON {same}"""
        _copy(con, select, sibling(layer, view))


def write_consolidated(con: Any, layer: str, old_layers: list[str]) -> None:
    """Siblings of one base replacing ``old_layers``: each pair once, page views summed."""
    for view in ROLLUPS:
        old = f"read_parquet({sql_list(sibling(p, view) for p in old_layers)})"
        _copy(con, _pairs(view, old, pageviews="sum(pageviews)"), sibling(layer, view))


def layer_columns(view: str) -> list[tuple[str, str]]:
    """A sibling file's columns and DuckDB types."""
    return [
        *ROLLUPS[view],
        ("anonymous_user_id", "VARCHAR"),
        ("pageviews", "BIGINT"),
        ("new", "BOOLEAN"),
        ("pair_hi", "UBIGINT"),
        ("pair_lo", "UBIGINT"),
    ]


__all__ = [
    "ROLLUPS",
    "is_sibling_name",
    "layer_columns",
    "read_sql",
    "sibling",
    "view_columns",
    "write_base",
    "write_consolidated",
    "write_delta",
]
