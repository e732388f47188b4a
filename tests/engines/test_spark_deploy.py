"""The Spark job as EMR runs it (spark-submit + packaged artifact) and the Spark SQL views."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clickstream.deploy.emr import STEP_CONF
from clickstream.deploy.package import build_spark_artifact
from clickstream.engines.spark import get_session
from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.query.ddl import ddl_statements
from clickstream.query.session import open_lake, run_query
from clickstream.query.views import VIEW_NAMES
from tests.conftest import lake_rows

pytestmark = pytest.mark.spark


def bare_python() -> str:
    """The interpreter this virtualenv was made from: it has neither clickstream nor sqlglot."""
    candidate = Path(sys.base_prefix) / "bin" / "python3"
    probe = subprocess.run([str(candidate), "-c", "import clickstream"], capture_output=True)
    assert probe.returncode != 0, "the base interpreter must not see the project"
    return str(candidate)


def spark_submit_job(
    archive: Path,
    launcher: Path,
    src: Path,
    lake: str,
    env: dict[str, str],
    cwd: Path | None = None,
    log: list[str] | None = None,
) -> dict[str, object]:
    """Run the packaged job as EMR does (spark-submit, local[2]); return its run report (and
    append the job's output to ``log`` when given)."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    proc = subprocess.run(
        [
            str(spark_home / "bin" / "spark-submit"),
            "--master",
            "local[2]",
            "--conf",
            "spark.driver.bindAddress=127.0.0.1",
            "--conf",
            "spark.driver.host=127.0.0.1",
            *(arg for k, v in STEP_CONF.items() for arg in ("--conf", f"{k}={v}")),  # as EMR
            "--py-files",
            str(archive),
            str(launcher),
            "--input",
            str(src),
            "--lake",
            lake,
        ],
        env={**os.environ, "SPARK_HOME": str(spark_home), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    if log is not None:
        log.append(proc.stdout + proc.stderr)  # spark-submit sends Python's stderr to stdout
    [line] = [ln for ln in proc.stdout.splitlines() if ln.startswith('{"')]
    report: dict[str, object] = json.loads(line)
    return report


def without_numpy(tmp: Path) -> str:
    """A PYTHONPATH entry under which ``import numpy`` fails, as on an image without it (the
    bare interpreter here has Debian's numpy in its dist-packages)."""
    folder = tmp / "no-numpy"
    (folder / "numpy").mkdir(parents=True)
    (folder / "numpy" / "__init__.py").write_text(
        "raise ImportError('numpy is not installed on this image')\n"
    )
    return str(folder)


@pytest.mark.slow
@pytest.mark.parametrize("numpy", [True, False], ids=["with-numpy", "without-numpy"])
def test_spark_submit_runs_the_packaged_artifact(tmp_path: Path, numpy: bool) -> None:
    archive, launcher = build_spark_artifact(tmp_path / "dist")
    src = generate(tmp_path / "in" / "raw.csv", 3_000, seed=9, bad_fraction=0.05)
    python = bare_python()
    path = "" if numpy else without_numpy(tmp_path)
    env = {"PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python, "PYTHONPATH": path}
    log: list[str] = []
    report = spark_submit_job(archive, launcher, src, str(tmp_path / "lake"), env, log=log)
    assert report["engine"] == "spark" and report["rows_read"] == 3_000
    # The census ran, and without numpy it said so (and counted the same records).
    assert ("numpy is not installed: counting" in log[0]) is not numpy
    reference = tmp_path / "duck"
    run_etl(EtlOptions(input=str(src), lake=reference))
    assert lake_rows(tmp_path / "lake") == lake_rows(reference)


def test_spark_submit_bad_arguments_exit_cleanly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "clickstream.cli.job",
            "--input",
            str(tmp_path / "missing.csv"),
            "--lake",
            str(tmp_path / "lake"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and proc.stderr.startswith("error:")
    assert "Traceback" not in proc.stderr


SUMMARY = {
    "pageviews_daily": "count(*), sum(pageviews), sum(unique_users)",
    "traffic_sources": "count(*), sum(pageviews), sum(unique_users)",
    "top_pages": "count(*), sum(pageviews), sum(unique_users)",
    "devices": "count(*), sum(pageviews), sum(unique_users), sum(screen_width)",
    "sessions": "count(*), count(DISTINCT session_id), sum(pageviews), "
    "sum(CASE WHEN is_bounce THEN 1 ELSE 0 END), round(sum(duration_seconds), 3)",
}


def test_spark_ddl_views_run_on_a_spark_written_lake(tmp_path: Path) -> None:
    src = generate(tmp_path / "raw.csv", 4_000, seed=12, bad_fraction=0.02)
    lake = tmp_path / "lake"
    run_etl(EtlOptions(input=str(src), lake=lake, engine="spark"))
    spark = get_session()
    for statement in ddl_statements("spark", str(lake)):
        spark.sql(statement)
    duck = open_lake(lake)
    assert set(SUMMARY) == set(VIEW_NAMES)
    for view, aggregates in SUMMARY.items():
        query = f"SELECT {aggregates} FROM {view}"
        on_spark = [float(v) for v in spark.sql(query).collect()[0]]
        on_duckdb = [float(v) for v in run_query(duck, query)[1][0]]
        assert on_spark == on_duckdb, view
    assert spark.sql("SELECT count(*) FROM clickstream_rejected").collect()[0][0] > 0
