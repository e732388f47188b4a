"""The Glue catalog (tables with partition projection) and the Athena views."""

from __future__ import annotations

import time
from typing import Any

from clickstream.contract.schema import OUTPUT_COLUMNS, PARTITION_COLUMNS, REJECTED_COLUMNS
from clickstream.deploy.actions import Executor
from clickstream.deploy.config import DeploySettings
from clickstream.errors import DeployError
from clickstream.lake.layout import REJECTED_TABLE, TABLE
from clickstream.query.ddl import athena_views, hive_type, projection_properties
from clickstream.query.views import VIEW_NAMES

#: Bound on waiting for one DDL statement (Athena answers DDL in seconds).
ATHENA_TIMEOUT_SECONDS = 120

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
    params = {"EXTERNAL": "TRUE", "classification": "parquet"}
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


def ensure_glue(ex: Executor, s: DeploySettings) -> None:
    db = ex.exists("glue", "get_database", ("EntityNotFoundException",), Name=s.glue_database)
    if db is None:
        ex.change(
            "glue",
            "create_database",
            DatabaseInput={
                "Name": s.glue_database,
                "Description": "clickstream lake (managed by clickstream)",
            },
        )
    ex.record(f"glue database {s.glue_database}", db is None)
    for name, columns, partitioned in (
        (TABLE, OUTPUT_COLUMNS, True),
        (REJECTED_TABLE, REJECTED_COLUMNS, False),
    ):
        table = _table_input(s, name, columns, partitioned)
        found = (
            None
            if db is None
            else ex.exists(
                "glue",
                "get_table",
                ("EntityNotFoundException",),
                DatabaseName=s.glue_database,
                Name=name,
            )
        )
        op = "create_table" if found is None else "update_table"
        ex.change("glue", op, DatabaseName=s.glue_database, TableInput=table)
        ex.record(
            f"glue table {s.glue_database}.{name}",
            found is None,
            "partition projection" if partitioned else "",
        )
    # Views are SQL objects: Athena creates them (CREATE OR REPLACE, so re-running is harmless).
    for name, statement in zip(VIEW_NAMES, athena_views(), strict=True):
        run_athena(ex, s, f"{s.glue_database}.{name}", statement)
        ex.record(
            f"athena view {s.glue_database}.{name}", created=False, detail="create or replace"
        )


def run_athena(ex: Executor, s: DeploySettings, what: str, statement: str) -> None:
    """Run one statement and wait for Athena's verdict: a view that does not compile fails the
    deploy with Athena's reason, instead of a success report over a broken catalog."""
    started = ex.change(
        "athena",
        "start_query_execution",
        QueryString=statement,
        QueryExecutionContext={"Database": s.glue_database},
        ResultConfiguration={"OutputLocation": f"s3://{s.code_bucket}/athena-results/"},
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
