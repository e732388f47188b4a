"""EMR 7 (Serverless and EC2) runs Python 3.9: the Spark job's import closure is 3.9 code.

The closure is found statically (modulefinder follows every import statement, function-level ones
included) from the spark-submit entry point plus the Spark engine (loaded by name from the engine
registry). One edge is cut: ``clickstream/cli/__init__.py`` imports the typer app only inside
``main()``, which the job never calls (``cli/job.py`` is argparse). Three checks, weakest first:
vermin with a 3.9 target on exactly those modules; every module imported by a real Python 3.9
from the built zip (catches what vermin cannot: ``isinstance(x, A | B)``, a ``X | None`` alias
evaluated at import); the packaged job run end to end by spark-submit with Python 3.9 as driver
and workers (with the image's numpy and boto3), its lake, local and s3:// on the moto server,
compared with DuckDB's.
"""

from __future__ import annotations

import glob
import json
import modulefinder
import os
import shutil
import subprocess
import sys
from importlib.metadata import metadata
from pathlib import Path

import pytest

from clickstream.deploy.package import BUNDLED, build_spark_artifact

SRC = Path(__file__).resolve().parents[2] / "src"
#: Third-party modules are checked separately (their declared Requires-Python, then the imports).
EXTERNAL = ["pyspark", "duckdb", "pyarrow", "boto3", "botocore", "sqlglot", "typer", "rich"]
#: Reached only through ``clickstream.cli.main()`` (the typer app), never by the job.
NOT_ON_THE_JOB_PATH = ["clickstream.cli.app"]


def job_modules() -> dict[str, str]:
    """Module name -> file, for every clickstream module the job can import."""
    finder = modulefinder.ModuleFinder(
        path=[str(SRC), *sys.path], excludes=EXTERNAL + NOT_ON_THE_JOB_PATH
    )
    for entry in ("clickstream.cli.job", "clickstream.engines.spark"):
        finder.import_hook(entry)
    return {
        name: m.__file__
        for name, m in sorted(finder.modules.items())
        if name.startswith("clickstream") and m.__file__
    }


def python39() -> str | None:
    """A CPython 3.9 (EMR 7's): on PATH, or one of pyenv's builds."""
    found = shutil.which("python3.9")
    candidates = [found] if found else []
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")))
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
            capture_output=True,
            text=True,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return None


needs_python39 = pytest.mark.skipif(
    python39() is None, reason="no CPython 3.9 here (vermin still checks the closure)"
)


def test_the_job_import_path_is_found() -> None:
    found = {Path(f).relative_to(SRC).as_posix() for f in job_modules().values()}
    for needed in (
        "clickstream/cli/job.py",
        "clickstream/pipeline.py",
        "clickstream/engines/spark.py",
        "clickstream/lake/commit.py",
        "clickstream/lake/s3lake.py",
        "clickstream/contract/rules.py",
    ):
        assert needed in found
    # The cut edge really is the CLI app: the job never needs typer.
    assert "clickstream/cli/app.py" not in found


def test_spark_job_modules_are_python_39_code() -> None:
    vermin = Path(sys.executable).with_name("vermin")
    proc = subprocess.run(
        [
            str(vermin),
            "-t=3.9-",
            "--no-tips",
            "--violations",
            "--eval-annotations",
            *job_modules().values(),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_vermin_catches_what_it_is_trusted_with(tmp_path: Path) -> None:
    """The check can fail: the constructs this closure once had are flagged."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from datetime import UTC\nimport tomllib\nfor a, b in zip([1], [2], strict=True):\n"
        "    pass\n"
    )
    vermin = Path(sys.executable).with_name("vermin")
    proc = subprocess.run(
        [str(vermin), "-t=3.9-", "--no-tips", "--violations", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    for construct in ("datetime.UTC", "tomllib", "zip(strict)"):
        assert construct in proc.stdout


def test_bundled_dependencies_declare_python_39() -> None:
    for name in BUNDLED:
        if name == "clickstream":
            continue
        requires = metadata(name)["Requires-Python"] or ""
        assert requires.replace(" ", "") in (">=3.9", ">=3.8", ">=3.7", ""), (name, requires)


@needs_python39
def test_the_zip_imports_on_python_39(tmp_path: Path) -> None:
    """Every module of the closure (and the bundled sqlglot with its Spark dialect) imports on
    3.9 from the zip alone; the modules the job loads at run time are all in the checked set."""
    archive, _ = build_spark_artifact(tmp_path / "dist")
    expected = job_modules()
    script = (
        "import importlib, json, sys\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    importlib.import_module(name)\n"
        "from clickstream.engines import get_engine\n"
        "get_engine('spark')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('clickstream'))))\n"
    )
    py39 = python39()
    assert py39 is not None
    proc = subprocess.run(
        [py39, "-I", "-c", f"import sys; sys.path.insert(0, {str(archive)!r}); exec({script!r})"]
        + [json.dumps([*expected, "sqlglot", "sqlglot.dialects.spark", "clickstream.cli.job"])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = set(json.loads(proc.stdout.splitlines()[-1]))
    assert loaded <= set(expected), loaded - set(expected)


#: What the job needs from the image's Python besides the zip: numpy (the input census,
#: integrity.py) and boto3 (the s3:// lake), as EC2's bootstrap installs them (pip on 3.9 picks
#: the newest releases that still support 3.9); EMR Serverless must ship them (README).
IMAGE_PACKAGES = ("numpy>=1.20", "boto3>=1.35.2")


@pytest.fixture(scope="session")
def py39_site() -> str:
    """A site folder with the image's packages for Python 3.9, installed once (PyPI) and cached."""
    py39 = python39()
    assert py39 is not None
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    site = cache / "clickstream-tests" / "py39-site"
    if not all((site / name).is_dir() for name in ("numpy", "boto3", "botocore")):
        proc = subprocess.run(
            [py39, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            + ["--only-binary=:all:", "--target", str(site), *IMAGE_PACKAGES],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            pytest.skip(f"numpy/boto3 for Python 3.9 not installable: {proc.stderr[-300:]}")
    return str(site)


@needs_python39
@pytest.mark.spark
@pytest.mark.slow
def test_packaged_job_runs_on_python_39(tmp_path: Path, py39_site: str) -> None:
    """spark-submit with Python 3.9 as driver and workers, as on EMR 7: same lake as DuckDB."""
    from clickstream.generate import generate
    from clickstream.pipeline import EtlOptions, run_etl
    from tests.conftest import lake_rows
    from tests.engines.test_spark_deploy import spark_submit_job

    archive, launcher = build_spark_artifact(tmp_path / "dist")
    src = generate(tmp_path / "in" / "raw.csv", 2_000, seed=13, bad_fraction=0.05)
    py39 = python39()
    assert py39 is not None
    env = {"PYSPARK_PYTHON": py39, "PYSPARK_DRIVER_PYTHON": py39, "PYTHONPATH": py39_site}
    report = spark_submit_job(archive, launcher, src, str(tmp_path / "lake"), env)
    assert report["engine"] == "spark" and report["rows_read"] == 2_000
    reference = tmp_path / "duck"
    run_etl(EtlOptions(input=str(src), lake=str(reference)))
    assert lake_rows(tmp_path / "lake") == lake_rows(reference)


@needs_python39
@pytest.mark.spark
@pytest.mark.slow
def test_packaged_job_writes_an_s3_lake_on_python_39(tmp_path: Path, py39_site: str, aws) -> None:
    """As on EMR: Python 3.9 with the bootstrap's boto3 commits an s3:// lake (moto server),
    the lock's conditional put included; the lake equals DuckDB's."""
    from clickstream.generate import generate
    from clickstream.pipeline import EtlOptions, run_etl
    from tests.conftest import lake_rows
    from tests.engines.test_emr_job import download
    from tests.engines.test_spark_deploy import spark_submit_job

    bucket = f"py39-{os.getpid()}-{tmp_path.name[-8:]}".lower().replace("_", "-")
    aws.create_bucket(Bucket=bucket)
    archive, launcher = build_spark_artifact(tmp_path / "dist")
    src = generate(tmp_path / "in" / "raw.csv.gz", 1_500, seed=17, bad_fraction=0.05)
    py39 = python39()
    assert py39 is not None
    env = {"PYSPARK_PYTHON": py39, "PYSPARK_DRIVER_PYTHON": py39, "PYTHONPATH": py39_site}
    report = spark_submit_job(archive, launcher, src, f"s3://{bucket}/lake", env, cwd=tmp_path)
    assert report["rows_read"] == 1_500
    fetched = tmp_path / "fetched"
    download(aws, bucket, "lake", fetched)
    reference = tmp_path / "duck"
    run_etl(EtlOptions(input=str(src), lake=str(reference)))
    assert lake_rows(fetched) == lake_rows(reference)
