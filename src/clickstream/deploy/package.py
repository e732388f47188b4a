"""The Spark job artifact: a launcher script and a zip of the code it needs.

``spark-submit --py-files clickstream.zip clickstream_job.py --input ... --lake ...`` runs the ETL
on any cluster (EMR included) with nothing installed there but Spark: the zip carries this package
and sqlglot (pure Python), which renders the contract for Spark on the driver.
"""

from __future__ import annotations

import zipfile
from importlib import import_module
from pathlib import Path

#: Packages the driver imports, bundled whole.
BUNDLED = ("clickstream", "sqlglot")
#: Never shipped: compiled caches (the cluster's Python compiles its own).
SKIPPED_SUFFIXES = (".pyc",)

LAUNCHER = '''"""spark-submit entry point: the clickstream ETL on Spark."""
from clickstream.cli.job import main

main()
'''


def _package_root(name: str) -> Path:
    module = import_module(name)
    assert module.__file__ is not None
    return Path(module.__file__).parent


def build_spark_artifact(out: Path) -> tuple[Path, Path]:
    """Write ``clickstream.zip`` and ``clickstream_job.py`` into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    archive = out / "clickstream.zip"
    tmp = archive.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in BUNDLED:
            root = _package_root(name)
            for path in sorted(root.rglob("*")):
                if (
                    path.is_file()
                    and "__pycache__" not in path.parts
                    and not path.name.endswith(SKIPPED_SUFFIXES)
                ):
                    zf.write(path, Path(name) / path.relative_to(root))
    tmp.replace(archive)
    launcher = out / "clickstream_job.py"
    launcher.write_text(LAUNCHER)
    return archive, launcher
