"""--out never lands inside the lake: whatever names it, the lake stays byte-identical."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.report.conftest import make_lake
from tests.report.test_cli import cli, one_line_error


def tree_hash(root: Path) -> str:
    """Every entry under root (names, kinds, link targets, file bytes) in one digest."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = Path(folder) / name
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            if path.is_symlink():
                digest.update(b"link:" + os.readlink(path).encode())
            elif path.is_file():
                digest.update(b"file:" + path.read_bytes())
            else:
                digest.update(b"dir")
    return digest.hexdigest()


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_lake(tmp_path_factory.mktemp("report-guard"), 2_000)


def _targets(lake: Path, outside: Path) -> list[tuple[str, Path]]:
    parquet = sorted((lake / "clickstream").rglob("*.parquet"))[0]
    run = sorted((lake / "_runs").glob("*.json"))[0]
    link = outside / "innocent.html"
    link.unlink(missing_ok=True)
    link.symlink_to(parquet)
    dangling = outside / "new.html"
    dangling.unlink(missing_ok=True)
    dangling.symlink_to(parquet.parent / "new.parquet")
    folder_link = outside / "lakelink"
    if not folder_link.is_symlink():
        folder_link.symlink_to(lake)
    return [
        ("existing parquet file", parquet),
        ("new file in a partition", parquet.parent / "x.parquet"),
        ("run report", run),
        ("lake root file", lake / "report.html"),
        ("relative path via ..", lake / "clickstream" / ".." / "report.html"),
        ("symlink to a lake file", link),
        ("dangling symlink into the lake", dangling),
        ("path through a symlinked folder", folder_link / "_runs" / run.name),
    ]


def test_out_inside_the_lake_is_refused_and_the_lake_is_untouched(small_lake, tmp_path):
    targets = _targets(small_lake, tmp_path)
    for _, out in targets:
        before = tree_hash(small_lake)
        proc = cli("--lake", str(small_lake), "--out", str(out))
        one_line_error(proc, 2, "inside the lake")
        assert tree_hash(small_lake) == before, out


def test_lake_given_through_a_symlink_is_guarded_too(small_lake, tmp_path):
    lake_link = tmp_path / "lake-alias"
    lake_link.symlink_to(small_lake)
    before = tree_hash(small_lake)
    one_line_error(
        cli("--lake", str(lake_link), "--out", str(small_lake / "r.html")), 2, "inside the lake"
    )
    assert tree_hash(small_lake) == before


def test_out_beside_the_lake_is_fine(small_lake):
    out = small_lake.parent / "lake-report.html"  # a sibling whose name starts like the lake's
    proc = cli("--lake", str(small_lake), "--out", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
