"""Reading the materialised ``sessions`` table (``lake.sessions_table``) only when it is fresh.

The table replaces the computed view in a query session only when its pointer names exactly the
lake's committed runs and the very table files this session reads, its layer files are regular
files inside ``_sessions/``, and its columns and types equal the view's. Anything else (an older
lake, a crash between a run's commit and the table's update, a full refresh or a compaction not
yet followed, an S3 lake, a corrupt or hostile pointer) leaves the computed view in place: slower,
never wrong.
"""

from __future__ import annotations

import logging
from typing import Any

from clickstream import s3
from clickstream.errors import CorruptMetadataError
from clickstream.lake import sessions_table as st

log = logging.getLogger(__name__)


def fresh_layers(root: str, table_files: list[str]) -> list[str] | None:
    """The layer files when the table covers exactly this lake state, else None."""
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
        return st.layer_paths(root, pointer)
    except (CorruptMetadataError, OSError) as err:
        log.warning("%s", err)
        return None


def use_if_fresh(con: Any, root: str, table_files: list[str]) -> list[str]:
    """Point the ``sessions`` view of ``con`` at the table when fresh; the files it reads.

    Call after the computed views are defined and before external access is closed.
    """
    import duckdb

    layers = fresh_layers(root, table_files)
    if not layers:
        return []
    sql = st.live_sql(layers)
    try:
        computed = con.execute("DESCRIBE sessions").fetchall()
        stored = con.execute(f"DESCRIBE {sql}").fetchall()
        if [r[:2] for r in stored] != [r[:2] for r in computed]:
            log.warning("the sessions table's columns differ from the view's; not used")
            return []
        con.execute(f"CREATE OR REPLACE VIEW sessions AS {sql}")
    except duckdb.Error as err:
        log.warning("the sessions table cannot be read (%s); not used", str(err).splitlines()[0])
        return []
    return layers


__all__ = ["fresh_layers", "use_if_fresh"]
