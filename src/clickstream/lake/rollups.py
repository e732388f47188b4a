"""The four count views materialised beside the sessions table: one pair file per layer and view.

``pageviews_daily``, ``traffic_sources``, ``top_pages`` and ``devices`` each count page views and
*distinct* visitors per group. A distinct count does not add up across runs, so what is stored is
the set of (group, visitor) pairs: for each layer of the sessions table
(``_sessions/<hex>.parquet``) a sibling ``_sessions/<hex>.<view>.parquet`` with the view's group
columns, ``anonymous_user_id``, ``pageviews`` (that layer's page views of the pair) and ``new``
(the pair is in no earlier layer).
A base layer holds every pair once (all new); a run's delta holds the run's pairs, ``new`` where the
visitor had none in that group before (one narrow scan of the stored pairs for the run's visitors).
Each pair also carries ``vh`` and ``kh``, DuckDB's 64-bit hashes of its visitor and of its group:
finding a run's pairs among millions of stored ones then reads two integer columns instead of
decoding every stored pair's text (1.3 -> 0.45 s on a 10M-row lake). A visitor hash shared by two
visitors is detected (the sessions table's scan sees every stored visitor) and compared as text;
so is a file whose hashes this DuckDB does not reproduce (another version's hash). What is left is
two groups of one visitor sharing a 64-bit hash: odds of about 1e-13 per run (the event ids rely
on 128 bits of md5 the same way).
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


#: Each sibling file records this DuckDB's hash of a fixed value (Parquet key-value metadata),
#: so a file hashed by a DuckDB whose hash differs (another version) is compared as text.
PROBE_KEY = "clickstream_hash_probe"
_PROBE = "hash('clickstream', DATE '2024-01-31', 1920, NULL::VARCHAR)::VARCHAR"


def _probe(con: Any) -> str:
    row = con.execute(f"SELECT {_PROBE}").fetchone()
    return str(row[0]) if row else ""


def _copy(con: Any, select: str, path: str) -> None:
    probe = f"{{{PROBE_KEY}: {sql_literal(_probe(con))}}}"
    con.execute(
        f"COPY ({select}) TO {sql_literal(path)} "
        f"(FORMAT parquet, COMPRESSION zstd, KV_METADATA {probe})"
    )


#: A visitor's hash, ``vh`` (the sessions table finds a run's stored visitors by it too).
VISITOR_HASH = "hash({})"


def visitor_hash(column: str = "anonymous_user_id") -> str:
    return VISITOR_HASH.format(column)


def _hashes(view: str) -> tuple[str, str]:
    """The expressions of a pair's ``vh`` and ``kh`` (see the module docstring)."""
    return visitor_hash(), f"hash({', '.join(_keys(view))})"


def _pairs(view: str, events: str, pageviews: str = "count(*)", new: str = "TRUE") -> str:
    """Every (group, visitor) pair of ``events``, in the sibling file's column order."""
    keys = ", ".join(_keys(view))
    vh, kh = _hashes(view)
    return (
        f"SELECT {keys}, anonymous_user_id, CAST({pageviews} AS BIGINT) AS pageviews, "
        f"{new} AS new, {vh} AS vh, {kh} AS kh FROM {events} GROUP BY {keys}, anonymous_user_id"
    )


def write_base(con: Any, layer: str, events: str) -> None:
    """Siblings of a base layer: every pair of ``events`` (whole visitors), all new."""
    for view in ROLLUPS:
        _copy(con, _pairs(view, events), sibling(layer, view))


def write_delta(
    con: Any, layer: str, old_layers: list[str], events: str, known: str, by_text: bool
) -> None:
    """Siblings of a run's delta: the run's pairs, ``new`` unless an older layer holds the pair.

    ``known`` is a table of the run's visitors that have page views in the lake already (those
    with stored sessions), with their ``vh``: only their stored pairs are read, and none when
    there are none. ``by_text``: two visitors share a hash, so pairs are compared as text.
    """
    row = con.execute(f"SELECT count(*) FROM {known}").fetchone()
    returning = bool(row and row[0])
    by_text = by_text or (returning and not _hashes_hold(con, old_layers))
    for view in ROLLUPS:
        keys = _keys(view)
        cols = ", ".join(keys)
        run = _pairs(view, events, new="NULL")
        if not returning:  # no visitor of the run has a stored pair: every pair is new
            _copy(con, f"SELECT * REPLACE (TRUE AS new) FROM ({run})", sibling(layer, view))
            continue
        old = [sibling(p, view) for p in old_layers]
        if by_text:
            same = " AND ".join(f"r.{k} IS NOT DISTINCT FROM o.{k}" for k in keys)
            stored = f"SELECT DISTINCT {cols}, anonymous_user_id FROM read_parquet({sql_list(old)})"
            match = f"r.anonymous_user_id = o.anonymous_user_id AND {same}"
            probe = f"anonymous_user_id IN (SELECT anonymous_user_id FROM {known})"
        else:
            stored = f"SELECT DISTINCT vh, kh FROM read_parquet({sql_list(old)})"
            match = "r.vh = o.vh AND r.kh = o.kh"
            probe = f"vh IN (SELECT vh FROM {known})"
        select = f"""WITH r AS ({run}), o AS ({stored} WHERE {probe})
SELECT r.* REPLACE (o.hit IS NULL AS new)
FROM r LEFT JOIN (SELECT *, TRUE AS hit FROM o) o ON {match}"""
        _copy(con, select, sibling(layer, view))


def _hashes_hold(con: Any, layers: list[str]) -> bool:
    """Whether every sibling of ``layers`` was hashed as this DuckDB hashes (its probe value)."""
    files = [sibling(layer, view) for layer in layers for view in ROLLUPS]
    row = con.execute(
        f"SELECT count(DISTINCT file_name) FROM parquet_kv_metadata({sql_list(files)}) "
        # (A literal: DuckDB's first bound parameter imports numpy, 0.25 s.)
        f"WHERE key::VARCHAR = {sql_literal(PROBE_KEY)} "
        f"AND value::VARCHAR = {sql_literal(_probe(con))}"
    ).fetchone()
    return bool(row) and row[0] == len(files)


def write_consolidated(con: Any, layer: str, old_layers: list[str]) -> None:
    """Siblings of one base replacing ``old_layers``: each pair once, page views summed (and
    hashed again: the new base is written by this DuckDB)."""
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
        ("vh", "UBIGINT"),
        ("kh", "UBIGINT"),
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
