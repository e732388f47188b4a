"""A DuckDB database file with the lake's tables and views, for any DuckDB client.

The file holds view definitions only (no data, no credentials): globs over the lake's absolute
path or s3:// URI, so it stays current as runs are committed. It carries none of the fences of
`clickstream sql`: whoever opens it with plain DuckDB can run any SQL their DuckDB allows.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from clickstream import s3
from clickstream.errors import ConfigError, LakeError
from clickstream.lake.layout import REJECTED_TABLE, TABLE
from clickstream.lake.store import open_store
from clickstream.query.session import check_readable, define_views
from clickstream.stream.tables import STREAM_FACTS, stream_facts_source

#: A run id (``20240101T000000Z-abcdef``) as a glob.
_RUN_GLOB = "????????T??????Z-??????"


def _table_glob(root: str, table_uri: str) -> str:
    # Locally, the names writers give their files (a run id), so a stray file dropped into the
    # lake later is not read by the catalog's views. On S3 a '?' would read as a URL query.
    if s3.is_s3(root):
        return s3.join(table_uri, "**", "*.parquet")
    return s3.join(table_uri, "year=*", "month=*", f"{_RUN_GLOB}_*.parquet")


def _rejected_glob(root: str, rejected_uri: str) -> str:
    return s3.join(rejected_uri, "*.parquet" if s3.is_s3(root) else f"{_RUN_GLOB}*.parquet")


def _target(out: str) -> Path:
    path = Path(out).expanduser()
    if path.is_dir():
        raise ConfigError(f"--out {out} is a folder; name the .duckdb file to write")
    if path.suffix not in (".duckdb", ".db"):
        raise ConfigError(f"--out {out}: the catalog file should end in .duckdb")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot create its folder ({err.strerror})") from None
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"--out {out}: its folder is not writable")
    return path


def write_catalog(out: str | os.PathLike[str], lake: str | os.PathLike[str]) -> list[str]:
    """Write ``out`` (replacing it atomically) with views over ``lake``; return the names.

    For an s3:// lake the views hold the URIs; the client brings its own S3 credentials.
    """
    import duckdb

    location = os.fspath(lake)
    store = open_store(location)
    check_readable(store, location)
    target = _target(os.fspath(out))
    tables: dict[str, str | list[str]] = {
        TABLE: _table_glob(store.root, store.table_uri) if store.table_files() else [],
        REJECTED_TABLE: _rejected_glob(store.root, store.rejected_uri)
        if store.rejected_files()
        else [],
        STREAM_FACTS: stream_facts_source(store.root) or [],
    }
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        con = duckdb.connect(str(tmp), config={"autoinstall_known_extensions": False,
                                               "autoload_known_extensions": False})  # fmt: skip
        try:
            if s3.is_s3(store.root):
                s3.configure_duckdb(con)  # to bind the views; the secret is temporary, not saved
            define_views(con, tables)
            names = [
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM information_schema.tables ORDER BY table_name"
                ).fetchall()
            ]
        finally:
            con.close()
        os.replace(tmp, target)
    except duckdb.Error as err:
        raise LakeError(f"cannot write the catalog: {str(err).splitlines()[0]}") from None
    except OSError as err:
        raise ConfigError(f"--out {target}: cannot write ({err.strerror})") from None
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(OSError):
                leftover.unlink()
    return names
