"""The Glue catalog (tables with partition projection) and the Athena views.

Deploy may be pointed at a database that is not its own (``glue_database = "analytics"``), or
at one another project uses. It alters only what it created: the database carries
``OWNER_PARAMETER`` when deploy created it, each table carries it too, and the views deploy
created through Athena are listed in the deploy manifest. A table or view of the same name that
belongs to someone else stops the deploy, before anything is created, with one line naming it
and its owner; teardown drops only the project's own tables and views, and the database only when
deploy created it and nothing else is left in it.
"""

from __future__ import annotations

import time
from typing import Any, cast

from clickstream.contract.schema import OUTPUT_COLUMNS, PARTITION_COLUMNS, REJECTED_COLUMNS
from clickstream.deploy.actions import Executor, Outcome
from clickstream.deploy.config import OWNER_PARAMETER, DeploySettings, names
from clickstream.deploy.manifest import Manifest, load, remember
from clickstream.errors import DeployError
from clickstream.lake.layout import REJECTED_TABLE, TABLE
from clickstream.query.ddl import athena_views, hive_type, projection_properties
from clickstream.query.views import VIEW_NAMES

#: Bound on waiting for one DDL statement (Athena answers DDL in seconds).
ATHENA_TIMEOUT_SECONDS = 120
MISSING = ("EntityNotFoundException",)

PARQUET = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    },
}


def _table_input(
    s: DeploySettings, name: str, columns: tuple[Any, ...], partitioned: bool
) -> dict[str, Any]:
    location = f"{s.lake_uri()}/{name}/"
    params = {"EXTERNAL": "TRUE", "classification": "parquet", OWNER_PARAMETER: s.project}
    if partitioned:
        params.update(projection_properties(location))
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": params,
        "PartitionKeys": [{"Name": c.name, "Type": hive_type(c)} for c in PARTITION_COLUMNS]
        if partitioned
        else [],
        "StorageDescriptor": {
            "Columns": [
                {"Name": c.name, "Type": hive_type(c), "Comment": c.doc[:255]} for c in columns
            ],
            "Location": location,
            **PARQUET,
        },
    }


def _owner(found: dict[str, Any] | None, key: str) -> str | None:
    owner = ((found or {}).get(key) or {}).get("Parameters", {}).get(OWNER_PARAMETER)
    return None if owner is None else str(owner)


def _within(want: Any, have: Any) -> bool:
    """Whether Glue already holds ``want`` (it adds fields of its own: those are ignored)."""
    if have is None and want in ([], {}):
        return True  # Glue may omit an empty list or map
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_within(v, have.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(_within(w, h) for w, h in zip(want, have, strict=True))
        )
    return bool(want == have)


def _database(ex: Executor, s: DeploySettings) -> dict[str, Any] | None:
    return cast(
        "dict[str, Any] | None", ex.exists("glue", "get_database", MISSING, Name=s.glue_database)
    )


def _table(ex: Executor, database: str, name: str) -> dict[str, Any] | None:
    found = ex.exists("glue", "get_table", MISSING, DatabaseName=database, Name=name)
    return cast("dict[str, Any] | None", found)


def _refuse(s: DeploySettings, name: str, owner: str | None, what: str = "table") -> DeployError:
    whose = f"belongs to project {owner!r}" if owner else "was not created by clickstream deploy"
    return DeployError(
        f"glue {what} {s.glue_database}.{name} already exists and {whose}: refusing to replace "
        f"it (set glue_database to a database of this project's own)"
    )


def check_glue(ex: Executor, s: DeploySettings, manifest: Manifest | None = None) -> bool:
    """Refuse, before any change, a table or view of ours that another owner already holds.
    Returns whether the database exists."""
    if _database(ex, s) is None:
        return False
    manifest = manifest if manifest is not None else load(ex, s)
    for name in (TABLE, REJECTED_TABLE):
        found = _table(ex, s.glue_database, name)
        if found is not None and _owner(found, "Table") != s.project:
            raise _refuse(s, name, _owner(found, "Table"))
    for name in VIEW_NAMES:
        found = _table(ex, s.glue_database, name)
        if found is not None and f"{s.glue_database}.{name}" not in manifest.views:
            raise _refuse(s, name, _owner(found, "Table"), "view")
    return True


def ensure_glue(ex: Executor, s: DeploySettings) -> None:
    manifest = load(ex, s)
    exists = check_glue(ex, s, manifest)
    db = _database(ex, s) if exists else None
    # Views are SQL objects: Athena creates them (CREATE OR REPLACE). Whether one is there
    # decides what the report says: created the first time, replaced after.
    present = {
        name: db is not None and _table(ex, s.glue_database, name) is not None
        for name in VIEW_NAMES
    }
    new = tuple(f"{s.glue_database}.{name}" for name in VIEW_NAMES if not present[name])
    # Before anything is created in Glue: teardown must know where to look.
    remember(ex, s, databases=(s.glue_database,), views=new)
    if db is None:
        ex.change(
            "glue",
            "create_database",
            DatabaseInput={
                "Name": s.glue_database,
                "Description": f"clickstream lake of project {s.project} (managed by clickstream)",
                "Parameters": {OWNER_PARAMETER: s.project},
            },
        )
        ex.record(f"glue database {s.glue_database}", True)
    else:
        mine = _owner(db, "Database") == s.project
        ex.record(
            f"glue database {s.glue_database}",
            False,
            "" if mine else "not created by deploy: only this project's tables added",
        )
    for name, columns, partitioned in (
        (TABLE, OUTPUT_COLUMNS, True),
        (REJECTED_TABLE, REJECTED_COLUMNS, False),
    ):
        table = _table_input(s, name, columns, partitioned)
        found = None if db is None else _table(ex, s.glue_database, name)
        same = found is not None and _within(table, found["Table"])
        if not same:
            op = "create_table" if found is None else "update_table"
            ex.change("glue", op, DatabaseName=s.glue_database, TableInput=table)
        ex.record(
            f"glue table {s.glue_database}.{name}",
            found is None,
            "partition projection" if partitioned else "",
            changed="" if same else "update",
        )
    for name, statement in zip(VIEW_NAMES, athena_views(), strict=True):
        run_athena(ex, s, f"{s.glue_database}.{name}", statement)
        ex.record(f"athena view {s.glue_database}.{name}", not present[name], changed="replace")


def remove_glue(ex: Executor, s: DeploySettings, manifest: Manifest) -> None:
    """Drop the project's own tables and views, in ``glue_database`` and in every database an
    earlier deploy used (the manifest's); a database only if deploy created it and nothing else
    is in it. Everyone else's tables stay exactly as they are."""
    for database in sorted({s.glue_database, *manifest.databases}):
        views = [v.partition(".")[2] for v in manifest.views if v.partition(".")[0] == database]
        _remove_database(ex, s, database, views)


def _remove_database(ex: Executor, s: DeploySettings, database: str, views: list[str]) -> None:
    db = cast("dict[str, Any] | None", ex.exists("glue", "get_database", MISSING, Name=database))
    resource = f"glue database {database}"
    if db is None:
        ex.record_deleted(resource, False)
        return
    dropped: set[str] = set()
    for name in views:
        found = _table(ex, database, name)
        if found is not None:
            ex.change("glue", "delete_table", gone=MISSING, DatabaseName=database, Name=name)
            dropped.add(name)
        ex.record_deleted(f"athena view {database}.{name}", found is not None)
    for name in (TABLE, REJECTED_TABLE):
        found = _table(ex, database, name)
        owner = _owner(found, "Table")
        if found is not None and owner == s.project:
            ex.change("glue", "delete_table", gone=MISSING, DatabaseName=database, Name=name)
            dropped.add(name)
            ex.record_deleted(f"glue table {database}.{name}", True)
        elif found is not None:
            whose = f"project {owner}'s" if owner else "not created by deploy"
            ex.outcomes.append(Outcome(f"glue table {database}.{name}", "kept", whose))
    pages = ex.pages("glue", "get_tables", "TableList", gone=MISSING, DatabaseName=database)
    left = sorted(t["Name"] for t in pages if t["Name"] not in dropped)
    if _owner(db, "Database") != s.project:
        ex.outcomes.append(Outcome(resource, "kept", "not created by deploy"))
    elif left:
        detail = f"{len(left)} table(s) not created by deploy: {', '.join(left[:5])}"
        ex.outcomes.append(Outcome(resource, "kept", detail))
    else:
        ex.change("glue", "delete_database", gone=MISSING, Name=database)
        ex.record_deleted(resource, True)


def run_athena(ex: Executor, s: DeploySettings, what: str, statement: str) -> None:
    """Run one statement and wait for Athena's verdict: a view that does not compile fails the
    deploy with Athena's reason, instead of a success report over a broken catalog."""
    started = ex.change(
        "athena",
        "start_query_execution",
        QueryString=statement,
        QueryExecutionContext={"Database": s.glue_database},
        ResultConfiguration={"OutputLocation": f"s3://{s.code_bucket}/{names(s)['athena_prefix']}"},
    )
    if started is None:  # dry run
        return
    query_id = started["QueryExecutionId"]
    deadline = time.monotonic() + ATHENA_TIMEOUT_SECONDS
    delay = 0.25
    while True:
        status = ex.read("athena", "get_query_execution", QueryExecutionId=query_id)[
            "QueryExecution"
        ]["Status"]
        state = status.get("State", "")
        if state == "SUCCEEDED":
            return
        if state in ("FAILED", "CANCELLED"):
            reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get(
                "ErrorMessage", "no reason given"
            )
            reason = " ".join(str(reason).split())
            raise DeployError(f"athena view {what}: {state.lower()}: {reason}")
        if time.monotonic() > deadline:
            raise DeployError(
                f"athena view {what}: still {state} after {ATHENA_TIMEOUT_SECONDS} s "
                f"(query {query_id})"
            )
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
