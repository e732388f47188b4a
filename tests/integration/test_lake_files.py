"""Files in the table folder that are not the lake are read by nobody.

The lake is the writer-named files of committed runs. Planted here: a copy of a run's file
named like a writer's under a run id with no report (as a run killed before its commit could
not leave one, but a careless copy or an attacker can), a non-Parquet file with such a name, and
a plain stray file. Attacked: `clickstream compact` and `etl --auto-compact` must neither merge
them in (their rows would enter the lake, a copy twice) nor delete them; a run's duplicate check
must not drop new rows because a planted file holds their ids (the rows would be lost: queries
never see the planted file), nor fail on a planted file that is not Parquet.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from clickstream.generate import generate
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.query.session import open_lake, run_query
from tests.integration.test_compact import answers, cli, small_runs

GHOST = "20200101T000000Z-aaaaaa"
BROKEN = "20200101T000000Z-bbbbbb"


def _digests(lake: Path) -> dict[str, str]:
    return {
        str(p.relative_to(lake)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((lake / "clickstream").rglob("*"))
        if p.is_file()
    }


def _plant(lake: Path, source: Path | None = None) -> dict[str, str]:
    """Plants the three files in every partition; returns their digests."""
    for month in sorted((lake / "clickstream").glob("year=*/month=*")):
        original = source or sorted(month.glob("*.parquet"))[0]
        shutil.copyfile(original, month / f"{GHOST}_0.parquet")
        (month / f"{BROKEN}_0.parquet").write_bytes(b"not a parquet file\n")
        shutil.copyfile(original, month / "stray.parquet")
    return {k: v for k, v in _digests(lake).items() if GHOST in k or BROKEN in k or "stray" in k}


def _still_there(lake: Path, planted: dict[str, str]) -> None:
    now = _digests(lake)
    assert {k: now.get(k) for k in planted} == planted


def test_compact_neither_merges_nor_deletes_files_of_no_committed_run(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    small_runs(tmp_path, lake, 4)
    before = answers(lake)
    planted = _plant(lake)
    assert answers(lake) == before  # queries never read them
    proc = cli("compact", "-l", str(lake))
    assert proc.returncode == 0, proc.stderr
    assert "compacted 12 partition(s): 36 files -> 12" in proc.stderr
    _still_there(lake, planted)
    assert answers(lake) == before
    # The compacted partitions hold one lake file each beside the planted ones.
    for month in (lake / "clickstream").glob("year=*/month=*"):
        lake_files = [p for p in month.glob("*.parquet") if p.name not in
                      {f"{GHOST}_0.parquet", f"{BROKEN}_0.parquet", "stray.parquet"}]  # fmt: skip
        assert len(lake_files) == 1, sorted(p.name for p in month.iterdir())


def test_auto_compaction_leaves_them_alone_too(tmp_path: Path) -> None:
    lake, plain = tmp_path / "lake", tmp_path / "plain"
    inputs = [generate(tmp_path / f"in{i}" / "p.csv", 200, seed=40 + i) for i in range(4)]
    for src in inputs[:2]:
        for target in (lake, plain):
            assert cli("etl", "-q", "-i", str(src), "-l", str(target)).returncode == 0
    planted = _plant(lake)
    for src in inputs[2:]:
        proc = cli("etl", "-q", "-i", str(src), "-l", str(lake), "--auto-compact", "2")
        assert proc.returncode == 0, proc.stderr
        assert (
            cli("etl", "-q", "-i", str(src), "-l", str(plain), "--auto-compact", "0").returncode
            == 0
        )
    assert any(r.name.endswith(".json") for r in (lake / "_runs").iterdir())
    compactions = [p for p in (lake / "_runs").glob("*.json") if b'"compact"' in p.read_bytes()]
    assert compactions, "auto compaction ran"
    _still_there(lake, planted)
    assert answers(lake) == answers(plain)


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_a_planted_copy_of_new_rows_does_not_make_them_duplicates(
    tmp_path: Path, engine: str
) -> None:
    src = generate(tmp_path / "in" / "p.csv", 400, seed=7)
    scratch, lake = tmp_path / "scratch", tmp_path / "lake"
    expected = run_etl(EtlOptions(input=str(src), lake=scratch))
    # The lake already holds other rows in the same months, and planted copies of src's rows.
    small_runs(tmp_path, lake, 2)
    for copy in sorted((scratch / "clickstream").rglob("*.parquet")):
        month = lake / copy.parent.relative_to(scratch)
        month.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copy, month / f"{GHOST}_0.parquet")
        (month / f"{BROKEN}_0.parquet").write_bytes(b"not a parquet file\n")
    before = answers(lake)[0][0][0]
    report = run_etl(EtlOptions(input=str(src), lake=lake, engine=engine))
    assert report.rows_written == expected.rows_written > 0
    assert report.rows_duplicate == expected.rows_duplicate
    assert answers(lake)[0][0][0] == before + expected.rows_written


@pytest.mark.slow
def test_one_shot_queries_racing_compactions_and_full_refreshes(tmp_path: Path) -> None:
    """Files vanish between a session's listing, its view definitions and its query: every
    answer is right, or one line saying the lake changed; never an "unexpected error"."""
    import threading

    from clickstream.lake.compact import compact

    lake = tmp_path / "lake"
    inputs = small_runs(tmp_path, lake, 3)
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            # Every file replaced now and then; else a small run's file added, then merged.
            if n % 8 == 0:
                run_etl(EtlOptions(input=str(inputs[0]), lake=lake, full_refresh=True))
            else:
                src = generate(tmp_path / f"churn{n}" / "p.csv", 30, seed=1000 + n)
                run_etl(EtlOptions(input=str(src), lake=lake))
            compact(str(lake))
            n += 1

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    outcomes = []
    try:
        for _ in range(30):
            proc = cli("sql", "-l", str(lake), "-f", "csv",
                       "SELECT count(*), count(DISTINCT event_id) FROM clickstream "
                       "JOIN sessions USING (anonymous_user_id)")  # fmt: skip
            outcomes.append(proc)
    finally:
        stop.set()
        worker.join(timeout=120)
    for proc in outcomes:
        assert "unexpected error" not in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        if proc.returncode:
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert "lake changed" in proc.stderr or "committing" in proc.stderr, proc.stderr
    assert any(p.returncode == 0 for p in outcomes)
    for proc in outcomes:
        if proc.returncode == 0:
            count, ids = (int(x) for x in proc.stdout.splitlines()[1].split(","))
            assert count >= ids > 0


def test_compact_of_no_lake_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    proc = cli("compact", "-l", str(missing))
    assert proc.returncode == 1 and proc.stderr.startswith("error: no lake at"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not missing.exists()
    afile = tmp_path / "a-file"
    afile.write_text("x")
    proc = cli("compact", "-l", str(afile))
    assert proc.returncode == 1 and proc.stderr.startswith("error: no lake at"), proc.stderr


def test_a_failed_auto_compaction_says_the_run_is_committed(tmp_path: Path) -> None:
    """A file a committed run's name covers but that is not Parquet (damage, a bad copy)
    fails the compaction in DuckDB: the line still says the run itself is in the lake."""
    lake = tmp_path / "lake"
    small_runs(tmp_path, lake, 2)
    month = sorted((lake / "clickstream").glob("year=*/month=*"))[0]
    owner = sorted(month.glob("*.parquet"))[0].name.split("_")[0]
    (month / f"{owner}_7.parquet").write_bytes(b"junk")
    src = generate(tmp_path / "new" / "p.csv", 200, seed=77)
    proc = cli("etl", "-q", "-i", str(src), "-l", str(lake), "--auto-compact", "2")
    assert proc.returncode == 1
    assert "is committed, but compacting after it failed" in proc.stderr, proc.stderr
    assert "unexpected error" not in proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")] == [
        proc.stderr.splitlines()[-1]
    ]
    runs = [p for p in (lake / "_runs").glob("*.json") if ".commit." not in p.name]
    assert len(runs) == 3  # two runs and this one: committed


def test_a_quarantine_file_of_no_committed_run_is_not_read(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    src = generate(tmp_path / "in" / "p.csv", 500, seed=5, bad_fraction=0.2)
    run_etl(EtlOptions(input=str(src), lake=lake))

    def rejected() -> str:
        proc = cli("sql", "-l", str(lake), "-f", "csv", "SELECT count(*) FROM clickstream_rejected")
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    before = rejected()
    original = sorted((lake / "clickstream_rejected").glob("*.parquet"))[0]
    shutil.copyfile(original, lake / "clickstream_rejected" / f"{GHOST}.parquet")
    assert int(before.split()[-1]) > 0
    assert rejected() == before


def test_a_full_refresh_leaves_planted_symlinks_alone_and_the_lake_usable(tmp_path: Path) -> None:
    """A symlink named like a committed run's file, and a partition folder that is a symlink,
    are no files of the lake: a full refresh must neither follow them (the targets outside stay)
    nor write a commit log it then refuses to apply (every later run would fail on it)."""
    lake = tmp_path / "lake"
    outside = tmp_path / "outside"
    outside.mkdir()
    first = generate(tmp_path / "a.csv", 400, seed=31)
    run_etl(EtlOptions(input=str(first), lake=str(lake)))
    (run,) = (p.stem for p in (lake / "_runs").glob("*.json"))
    month = sorted((lake / "clickstream").glob("year=*/month=*"))[0]
    target = outside / "target.parquet"
    shutil.copyfile(sorted(month.glob("*.parquet"))[0], target)
    (month / f"{run}_9.parquet").symlink_to(target)
    elsewhere = outside / "month"
    elsewhere.mkdir()
    shutil.copyfile(target, elsewhere / f"{run}_0.parquet")
    (lake / "clickstream" / "year=2031").mkdir()
    (lake / "clickstream" / "year=2031" / "month=1").symlink_to(elsewhere)
    kept = {p: p.read_bytes() for p in (target, elsewhere / f"{run}_0.parquet")}
    second = generate(tmp_path / "b.csv", 300, seed=32)
    refresh = run_etl(EtlOptions(input=str(second), lake=str(lake), full_refresh=True))
    assert not list((lake / "_runs").glob("*.commit.json"))
    assert all(p.read_bytes() == data for p, data in kept.items())
    assert (month / f"{run}_9.parquet").is_symlink()  # left, and still read by nobody
    assert _count(lake) == refresh.rows_written
    again = run_etl(EtlOptions(input=str(first), lake=str(lake)))
    assert _count(lake) == refresh.rows_written + again.rows_written


def _count(lake: Path) -> int:
    """Rows as queries see them (``clickstream sql``'s session)."""
    return int(run_query(open_lake(lake), "SELECT count(*) FROM clickstream")[1][0][0])


@pytest.mark.parametrize("where", ["clickstream/year=2024/month=1", "_index/year=2024"])
@pytest.mark.parametrize("refresh", [False, True])
def test_a_symlinked_folder_the_run_writes_into_stops_it_before_its_commit_point(
    tmp_path: Path, where: str, refresh: bool
) -> None:
    """A partition or index folder that is a symlink (to a folder outside): the run's files
    would be moved through it. The run fails in one line *before* its commit log exists — no log
    left to wedge every later run, nothing to roll forward — and once the real folder is put
    back, the next run ingests everything (nothing lost)."""
    lake = tmp_path / "lake"
    first = generate(tmp_path / "a.csv", 600, seed=41)
    run_etl(EtlOptions(input=str(first), lake=str(lake)))
    real, outside = lake / where, tmp_path / "outside"
    shutil.move(real, outside)
    real.symlink_to(outside, target_is_directory=True)
    before = _digests(lake)
    outside_before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    second = generate(tmp_path / "b.csv", 500, seed=42)
    args = ["etl", "-q", "-i", str(second), "-l", str(lake)] + (
        ["--full-refresh"] if refresh else []
    )
    proc = cli(*args)
    assert proc.returncode != 0
    [line] = proc.stderr.strip().splitlines()
    assert "leads outside" in line and "nothing was written" in line, line
    assert not list((lake / "_runs").glob("*.commit.json"))
    assert _digests(lake) == before
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == outside_before
    real.unlink()
    shutil.move(outside, real)
    again = run_etl(EtlOptions(input=str(second), lake=str(lake), full_refresh=refresh))
    assert again.rows_read == 500
    expected = again.rows_written if refresh else None
    if expected is not None:
        assert _count(lake) == expected
    else:
        reference = run_etl(EtlOptions(input=str(first), lake=str(tmp_path / "ref")))
        assert _count(lake) == reference.rows_written + again.rows_written
