"""Reading the materialised ``sessions`` table and its rollups only when they are fresh.

The table replaces the computed view in a query session only when its pointer names exactly the
lake's committed runs and the very table files this session reads, its layer files are regular
files inside ``_sessions/``, and its columns and types equal the view's. Anything else (an older
lake, a crash between a run's commit and the table's update, a full refresh or a compaction not
yet followed, an S3 lake, a corrupt or hostile pointer) leaves the computed view in place: slower,
never wrong. The rollups (``lake.rollups``: ``pageviews_daily``, ``traffic_sources``,
``top_pages``, ``devices``) follow the same pointer, each checked on its own the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from clickstream import s3
from clickstream.errors import CorruptMetadataError
from clickstream.lake import rollups
from clickstream.lake import sessions_table as st
from clickstream.lake.sessions_sql import VIEW_COLUMNS

log = logging.getLogger(__name__)


@dataclass
class Materialised:
    """What a query session reads from the table: view -> its files (empty: none is used)."""

    views: dict[str, list[str]] = field(default_factory=dict)

    @property
    def files(self) -> list[str]:
        return [f for files in self.views.values() for f in files]


def fresh_pointer(root: str, table_files: list[str]) -> st.Pointer | None:
    """The table's pointer when it covers exactly this lake state, else None."""
    if s3.is_s3(root):
        return None
    try:
        pointer = st.read_pointer(root)
        if pointer is None:
            return None
        if list(pointer.runs) != st.committed_runs(root):
            return None
        if pointer.table_files_sha256 != st.files_digest(root, table_files):
            return None
        return pointer
    except (CorruptMetadataError, OSError) as err:
        log.warning("%s", err)
        return None


def fresh_layers(root: str, table_files: list[str]) -> list[str] | None:
    """The sessions layer files when the table covers exactly this lake state, else None."""
    pointer = fresh_pointer(root, table_files)
    return None if pointer is None else _files(root, pointer, None)


def _files(root: str, pointer: st.Pointer, view: str | None) -> list[str] | None:
    """The sessions layers (``view`` None) or a rollup's siblings, each checked to be a regular
    file of ``_sessions/``; None when one is not. A missing sibling is quiet: a lake from before
    the rollups has none."""
    try:
        if view is None:
            return st.layer_paths(root, pointer)
        return st.rollup_paths(root, pointer, view)
    except (CorruptMetadataError, OSError) as err:
        log.log(logging.WARNING if view is None else logging.DEBUG, "%s", err)
        return None


def _replace(
    con: Any,
    view: str,
    sql: str,
    files: list[str],
    layout: list[tuple[str, str]],
    columns: list[tuple[str, str]],
) -> bool:
    """Point ``view`` at ``sql`` when every file has the ``layout`` (DuckDB reads a list of files
    with the first one's schema) and the result has the view's ``columns`` and types."""
    import duckdb

    try:
        bad = st.files_have_layout(con, files, layout)
        if bad is not None:
            log.warning("%s: not a file of the materialised %s; not used", bad, view)
            return False
        stored = [tuple(r[:2]) for r in con.execute(f"DESCRIBE {sql}").fetchall()]
        if stored != [tuple(c) for c in columns]:
            log.warning("the materialised %s differs from the view's columns; not used", view)
            return False
        con.execute(f"CREATE OR REPLACE VIEW {view} AS {sql}")
    except duckdb.InterruptException:  # Ctrl-C inside a query: the user's, never swallowed
        raise KeyboardInterrupt from None
    except duckdb.Error as err:
        log.warning("the materialised %s cannot be read (%s); not used", view,
                    str(err).splitlines()[0])  # fmt: skip
        return False
    return True


def use_if_fresh(con: Any, root: str, table_files: list[str]) -> Materialised:
    """Point ``sessions`` and the rollup views of ``con`` at the table where fresh.

    Call after the computed views are defined and before external access is closed.
    """
    used = Materialised()
    pointer = fresh_pointer(root, table_files)
    if pointer is None or not _table_as_built(con):
        return used
    layers = _files(root, pointer, None)
    live = st.live_sql(layers or [])
    if layers and _replace(con, "sessions", live, layers, st.LAYER_TYPES, list(VIEW_COLUMNS)):
        used.views["sessions"] = layers
    for view in rollups.ROLLUPS:
        files = _files(root, pointer, view)
        sql = rollups.read_sql(view, files or [])
        layout, columns = rollups.layer_columns(view), rollups.view_columns(view)
        if files and _replace(con, view, sql, files, layout, columns):
            used.views[view] = files
    return used


def _table_as_built(con: Any) -> bool:
    """The page-view columns the table is built from have the types it was built with; then the
    computed views' columns are the table's (``tests/query`` checks that against the views' SQL).
    One description of ``clickstream`` instead of one per view (each binds every data file)."""
    types = {r[0]: r[1] for r in con.execute("DESCRIBE clickstream").fetchall()}
    if all(types.get(c) == t for c, t in st.EVENT_TYPES):
        return True
    log.warning("the clickstream table's columns are not those the sessions table was built from")
    return False


__all__ = ["Materialised", "fresh_layers", "fresh_pointer", "use_if_fresh"]
