"""The materialised sessions table and its rollups against the full computation, row for row.

The rollups (``pageviews_daily``, ``traffic_sources``, ``top_pages``, ``devices``: distinct visitors
per group) are compared with their view's SQL over the page views after every run, the same way.

Random sequences of runs (seeded) over a few visitors whose page views sit at the edges of the
30-minute rule (exactly 30 minutes, 30 minutes + 1 µs, ties in time broken by event id), across a
month boundary, delivered out of order so later runs extend, start and merge the sessions of
earlier ones; reruns of the same file, the same rows under another name, and full refreshes. After
every run the table must be fresh (used by ``clickstream sql``) and equal the computed view. A
run killed between its commit and the table's update, and every kind of stale or hostile table,
must leave the computed view in place.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from clickstream.lake import rollups
from clickstream.lake import sessions_table as st
from clickstream.lake.compact import compact
from clickstream.pipeline import EtlOptions, run_etl
from clickstream.query.materialized import fresh_layers
from clickstream.query.session import open_lake, run_query
from clickstream.query.views import view_sql
from tests.conftest import write_csv

#: One hour before February 2024 (UTC), in microseconds.
BASE_US = int(datetime(2024, 1, 31, 23, 0, tzinfo=UTC).timestamp()) * 1_000_000
MIN_US = 60 * 1_000_000
STEPS = [0, 1, 30 * MIN_US, 30 * MIN_US + 1, 30 * MIN_US - 1, 29 * MIN_US, 31 * MIN_US, 5 * MIN_US]
PATHS = ["/", "/a", "/b", "/cart", "/checkout"]
UTMS = ["", "?utm_source=google&utm_medium=cpc", "?utm_campaign=x", "?utm_source=news"]


def _ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


#: Hosts and devices vary too, with the NULLs the rollups must group exactly (no browser, no size).
HOSTS = ["shop.example.com", "blog.example.com"]
DEVICES = ["Chrome,Linux,1x1", "Firefox,,1920x1080", ",Windows,0x0", "Chrome,Linux,oops"]


def _line(user: str, micros: int, path: str, utm: str = "", host: str = HOSTS[0],
          device: str = DEVICES[0]) -> str:  # fmt: skip
    return f"{user},https://{host}{path}{utm},{_ts(micros)},{device}"


def _events(rng: random.Random, users: int, per_user: int) -> list[str]:
    lines = []
    for u in range(users):
        t = BASE_US + rng.randrange(0, 90 * MIN_US)
        for _ in range(per_user):
            step = rng.choice(STEPS) if rng.random() < 0.85 else rng.randrange(0, 6 * 60 * MIN_US)
            t += step
            host, device = rng.choice(HOSTS), rng.choice(DEVICES)
            lines.append(_line(f"u{u}", t, rng.choice(PATHS), rng.choice(UTMS), host, device))
    return lines


ROLLUP_VIEWS = ("pageviews_daily", "traffic_sources", "top_pages", "devices")


def computed(lake: Path, view: str = "sessions") -> list[tuple[Any, ...]]:
    with open_lake(lake) as session:
        _, rows = run_query(session, f"SELECT * FROM ({view_sql(view)}) ORDER BY ALL")
    return rows


def materialised(lake: Path, view: str = "sessions") -> list[tuple[Any, ...]]:
    with open_lake(lake) as session:
        assert session.materialised.get(view), f"{view}: not fresh, the query computed it"
        assert session.materialised.get("sessions") == session.sessions_layers
        _, rows = run_query(session, f"SELECT * FROM {view} ORDER BY ALL")
    return rows


def assert_fresh_and_equal(lake: Path) -> None:
    for view in ("sessions", *ROLLUP_VIEWS):
        expected = computed(lake, view)
        assert materialised(lake, view) == expected, view


def _etl(lake: Path, src: Path, full_refresh: bool = False) -> None:
    run_etl(EtlOptions(input=str(src), lake=str(lake), full_refresh=full_refresh))


@pytest.mark.parametrize("seed", range(6))
def test_random_runs_equal_the_full_computation(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lake = tmp_path / "lake"
    pool = _events(rng, users=4, per_user=14)
    rng.shuffle(pool)  # later runs land before, between and after earlier sessions
    files: list[Path] = []
    for i in range(7):
        action = rng.random()
        if files and action < 0.12:  # the same file again: skipped as ingested
            _etl(lake, files[-1])
        elif files and action < 0.24:  # rows already in the lake under another name
            again = rng.sample(pool, k=min(len(pool), 8))
            _etl(lake, write_csv(tmp_path / f"again{i}.csv", again))
        elif files and action < 0.34:  # a full refresh with part of the rows
            kept = rng.sample(pool, k=len(pool) // 2)
            files.append(write_csv(tmp_path / f"refresh{i}.csv", kept))
            _etl(lake, files[-1], full_refresh=True)
        else:
            take = [pool.pop() for _ in range(min(len(pool), rng.randrange(1, 16)))]
            if not take:
                continue
            files.append(write_csv(tmp_path / f"run{i}.csv", take))
            _etl(lake, files[-1])
        if (lake / "clickstream").exists():
            assert_fresh_and_equal(lake)


@pytest.mark.parametrize("listed", [st.MAX_LISTED_RIDS, 0])
def test_edges_of_the_rule_across_runs(tmp_path: Path, monkeypatch, listed: int) -> None:
    """Bridging, merging and tie-breaking delivered in the worst order, one run at a time.

    Also with the affected sessions fetched by a join (as past MAX_LISTED_RIDS) instead of a list.
    """
    monkeypatch.setattr(st, "MAX_LISTED_RIDS", listed)
    lake = tmp_path / "lake"
    t = BASE_US + 50 * MIN_US  # 23:50 on Jan 31: sessions cross into February
    runs = [
        [_line("a", t, "/"), _line("a", t + 61 * MIN_US, "/far")],  # two sessions (gap 61 min)
        [_line("a", t + 30 * MIN_US + 1, "/mid")],  # 30 min + 1 µs after the first: still two
        [_line("a", t + 31 * MIN_US, "/bridge")],  # exactly 30 min before /far: joins them
        [_line("a", t, "/tie", "?utm_source=tie")],  # same time as the first page view: tie
        [_line("a", t - 30 * MIN_US, "/early")],  # exactly 30 minutes earlier: same session
        [_line("a", t - 30 * MIN_US - 1 - 30 * MIN_US, "/earlier")],  # 30 min + 1 µs: new
        [_line("b", t + 61 * MIN_US, "/x"), _line("a", t + 91 * MIN_US, "/end")],
    ]
    for i, lines in enumerate(runs):
        _etl(lake, write_csv(tmp_path / f"r{i}.csv", lines))
        assert_fresh_and_equal(lake)
    rows = materialised(lake)
    # -60m-1µs | -30m, 0, 0 (tie) | +30m+1µs, +31m, +61m, +91m: the 30 min + 1 µs gaps split.
    assert sorted(r[5] for r in rows if r[1] == "a") == [1, 3, 4]


def test_a_run_killed_before_the_switch_is_repaired_by_the_next(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    rng = random.Random(7)
    pool = _events(rng, users=3, per_user=10)
    _etl(lake, write_csv(tmp_path / "one.csv", pool[:12]))
    assert_fresh_and_equal(lake)
    env = {**os.environ, "CLICKSTREAM_FAULT": "sessions_before_switch"}
    second = write_csv(tmp_path / "two.csv", pool[12:24])
    cmd = [sys.executable, "-m", "clickstream", "etl", "--input", str(second), "--lake", str(lake)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == -9, done.stderr  # SIGKILL after the run's commit
    assert len(st.committed_runs(str(lake))) == 2  # the run is in the lake ...
    with open_lake(lake) as session:
        assert session.sessions_layers == []  # ... the table is stale, so it is not read
        _, rows = run_query(session, "SELECT * FROM sessions ORDER BY ALL")
    assert rows == computed(lake)
    assert sum(r[5] for r in rows) == 24  # the computed view has the killed run's rows
    _etl(lake, write_csv(tmp_path / "three.csv", pool[24:]))
    assert_fresh_and_equal(lake)  # the next run rebuilt it


def test_compaction_keeps_the_table_fresh(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    pool = _events(random.Random(3), users=3, per_user=12)
    for i in range(3):
        _etl(lake, write_csv(tmp_path / f"c{i}.csv", pool[i::3]))
    before = materialised(lake)
    assert compact(str(lake)).run_id is not None
    assert materialised(lake) == before == computed(lake)


def _pointer(lake: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((lake / st.FOLDER / "_current.json").read_text())
    return data


@pytest.mark.parametrize(
    "tamper",
    [
        "not json",
        "duplicate key",
        "layer outside",
        "layer symlink",
        "wrong schema",
        "missing layer",
        "other runs",
        "other files",
    ],
)
def test_stale_corrupt_or_hostile_tables_are_never_read(tmp_path: Path, tamper: str) -> None:
    lake = tmp_path / "lake"
    pool = _events(random.Random(11), users=3, per_user=8)
    _etl(lake, write_csv(tmp_path / "one.csv", pool))
    expected = computed(lake)
    folder = lake / st.FOLDER
    pointer_path = folder / "_current.json"
    data = _pointer(lake)
    layer = folder / data["layers"][0]
    if tamper == "not json":
        pointer_path.write_text("{")
    elif tamper == "duplicate key":
        text = json.dumps(data)
        pointer_path.write_text(text[:-1] + ', "layers": ' + json.dumps(data["layers"]) + "}")
    elif tamper == "layer outside":
        data["layers"] = ["../clickstream/x.parquet"]
        pointer_path.write_text(json.dumps(data))
    elif tamper == "layer symlink":
        outside = tmp_path / "outside.parquet"
        layer.rename(outside)
        layer.symlink_to(outside)
    elif tamper == "wrong schema":
        import duckdb

        duckdb.sql(f"COPY (SELECT 1 AS x, FALSE AS removed) TO '{layer}' (FORMAT parquet)")
    elif tamper == "missing layer":
        layer.unlink()
    elif tamper == "other runs":
        data["runs"] = ["20200101T000000Z-abcdef"]
        pointer_path.write_text(json.dumps(data))
    elif tamper == "other files":
        data["table_files_sha256"] = "0" * 64
        pointer_path.write_text(json.dumps(data))
    table_files = sorted(str(p) for p in (lake / "clickstream").rglob("*.parquet"))
    if tamper != "wrong schema":  # that one is refused later, by its columns
        assert fresh_layers(str(lake), table_files) is None
    with open_lake(lake) as session:
        assert session.sessions_layers == []
        _, rows = run_query(session, "SELECT * FROM sessions ORDER BY ALL")
    assert rows == expected
    # The next run replaces whatever it found with a table it built itself.
    _etl(lake, write_csv(tmp_path / "two.csv", [_line("z", BASE_US, "/")]))
    assert_fresh_and_equal(lake)


def test_s3_lakes_and_older_lakes_compute_the_view(tmp_path: Path) -> None:
    assert fresh_layers("s3://bucket/lake", []) is None
    lake = tmp_path / "lake"
    _etl(lake, write_csv(tmp_path / "one.csv", _events(random.Random(5), 2, 5)))
    (lake / st.FOLDER / "_current.json").unlink()  # a lake written before the table existed
    with open_lake(lake) as session:
        assert session.sessions_layers == []


def test_many_small_runs_are_consolidated_and_stay_equal(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    pool = _events(random.Random(21), users=3, per_user=12)
    for i in range(st.MAX_LAYERS + 3):
        _etl(lake, write_csv(tmp_path / f"s{i}.csv", pool[i :: st.MAX_LAYERS + 3]))
        assert len(_pointer(lake)["layers"]) <= st.MAX_LAYERS
    assert_fresh_and_equal(lake)
    names = [p.name for p in (lake / st.FOLDER).iterdir() if p.name != "_current.json"]
    owners = {rollups.is_sibling_name(n) or n for n in names}
    assert len(owners) <= 2 * st.MAX_LAYERS  # replaced layers are removed, with their rollups
    assert len(names) == len(owners) * (1 + len(ROLLUP_VIEWS))  # and no rollup outlives its layer


def test_a_full_build_in_visitor_groups_equals_one(tmp_path: Path, monkeypatch) -> None:
    # A sizing constant lowered so a small lake is built in several groups of visitors.
    monkeypatch.setattr(st, "REBUILD_ROWS", 7)
    lake = tmp_path / "lake"
    pool = _events(random.Random(8), users=5, per_user=9)
    _etl(lake, write_csv(tmp_path / "all.csv", pool[:30]), full_refresh=True)
    assert len(_pointer(lake)["layers"]) == 5  # 30 page views / 7 per group
    assert_fresh_and_equal(lake)
    _etl(lake, write_csv(tmp_path / "more.csv", pool[30:]))
    assert_fresh_and_equal(lake)


def _runs_equal_the_full_computation(tmp_path: Path, seed: int) -> Path:
    """Runs of returning visitors, one slice of their page views at a time, checked after each."""
    lake = tmp_path / "lake"
    pool = _events(random.Random(seed), users=5, per_user=10)
    for i in range(5):
        _etl(lake, write_csv(tmp_path / f"h{i}.csv", pool[i::5]))
        assert_fresh_and_equal(lake)
    return lake


@pytest.mark.parametrize("seed", range(2))
def test_visitors_sharing_a_hash_are_compared_as_text(
    tmp_path: Path, monkeypatch, seed: int
) -> None:
    """A run's stored sessions are found by a 64-bit visitor hash, then exactly: two visitors
    sharing one must not share sessions or pairs. The hash is narrowed to one bit, so every
    run's visitors share hashes with each other and with stored visitors."""
    monkeypatch.setattr(st, "VISITOR_HASH", "CAST(hash({}) % 2 AS UBIGINT)")
    lake = _runs_equal_the_full_computation(tmp_path, seed)
    with open_lake(lake) as session:
        _, rows = run_query(session, "SELECT count(DISTINCT anonymous_user_id) FROM sessions")
    assert rows == [(5,)]


def test_pages_and_campaigns_crafted_to_share_a_hash_are_counted(tmp_path: Path) -> None:
    """DuckDB's hash() is easily inverted (an outside attack found these in under a second):
    hash('/landingeyus1bCCKhVvKb3e') = hash('/pricing') and hash('campaignZydkP7ip6GuA3ACM') =
    hash(NULL). A visitor of the first page who later sees /pricing from that campaign is a new
    visitor of /pricing and of that campaign (pairs are matched by md5, not by that hash)."""
    import duckdb

    crafted = "SELECT hash('/landingeyus1bCCKhVvKb3e') = hash('/pricing'), "
    crafted += "hash('campaignZydkP7ip6GuA3ACM') = hash(NULL::VARCHAR)"
    assert duckdb.sql(crafted).fetchone() == (True, True)  # the attack's premise, still true
    lake = tmp_path / "lake"
    device = "Firefox,Linux,1920x1080"
    one = [f"eve,https://shop.example/landingeyus1bCCKhVvKb3e,1717200000,{device}",
           "bob,https://shop.example/pricing,1717200100,Chrome,Windows,1366x768"]  # fmt: skip
    two = [
        f"eve,https://shop.example/pricing?utm_source=campaignZydkP7ip6GuA3ACM,1717290000,{device}"
    ]
    _etl(lake, write_csv(tmp_path / "one.csv", one))
    _etl(lake, write_csv(tmp_path / "two.csv", two))
    assert_fresh_and_equal(lake)
    with open_lake(lake) as session:
        _, rows = run_query(
            session, "SELECT pageviews, unique_users FROM top_pages WHERE url_path = '/pricing'"
        )
        assert rows == [(2, 2)]
        _, rows = run_query(
            session,
            "SELECT pageviews, unique_users FROM traffic_sources "
            "WHERE utm_source = 'campaignZydkP7ip6GuA3ACM'",
        )
        assert rows == [(1, 1)]


def test_a_full_refresh_rebuilds_the_table_from_its_own_rows(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    pool = _events(random.Random(13), users=3, per_user=10)
    for i in range(3):
        _etl(lake, write_csv(tmp_path / f"f{i}.csv", pool[i * 8 : (i + 1) * 8]))
    assert len(_pointer(lake)["layers"]) == 3  # a base and two deltas
    _etl(lake, write_csv(tmp_path / "refresh.csv", pool[4:20]), full_refresh=True)
    assert len(_pointer(lake)["layers"]) == 1
    assert_fresh_and_equal(lake)
    assert sum(r[5] for r in materialised(lake)) == 16  # only the refresh's page views


@pytest.mark.parametrize(
    "tamper",
    ["missing", "symlink", "wrong schema", "retyped", "layer retyped", "garbage", "older lake"],
)
def test_a_damaged_or_missing_rollup_is_computed_and_rebuilt(tmp_path: Path, tamper: str) -> None:
    """Each rollup is checked on its own: the others (and sessions) still answer from the table."""
    lake = tmp_path / "lake"
    pool = _events(random.Random(17), users=4, per_user=8)
    _etl(lake, write_csv(tmp_path / "one.csv", pool[:16]))
    _etl(lake, write_csv(tmp_path / "two.csv", pool[16:]))
    expected = {v: computed(lake, v) for v in ROLLUP_VIEWS}
    layers = _pointer(lake)["layers"]
    target = Path(rollups.sibling(lake / st.FOLDER / layers[-1], "devices"))
    outside = tmp_path / "outside.parquet"
    damaged = ["devices"]
    if tamper == "missing":
        target.unlink()
    elif tamper == "symlink":
        target.rename(outside)
        target.symlink_to(outside)
    elif tamper == "wrong schema":
        import duckdb

        sql = "SELECT 'x' AS browser, 1 AS pageviews, TRUE AS new"
        duckdb.sql(f"COPY ({sql}) TO '{target}' (FORMAT parquet)")
    elif tamper == "garbage":
        target.write_bytes(b"garbage\n")
    elif tamper in ("retyped", "layer retyped"):  # right names, one type changed, counts x10
        import duckdb

        if tamper == "layer retyped":
            target = lake / st.FOLDER / layers[-1]
            damaged = []
        sql = f"SELECT * REPLACE (CAST(pageviews * 10 AS INTEGER) AS pageviews) FROM '{target}'"
        duckdb.sql(f"COPY ({sql}) TO '{outside}' (FORMAT parquet)")
        os.replace(outside, target)
    else:  # written before the rollups existed: no layer has any
        for path in (lake / st.FOLDER).glob("*.*.parquet"):
            path.unlink()
        damaged = list(ROLLUP_VIEWS)
    with open_lake(lake) as session:
        assert bool(session.sessions_layers) == (tamper != "layer retyped")
        assert sorted(v for v in ROLLUP_VIEWS if v not in session.materialised) == sorted(damaged)
        for view in ROLLUP_VIEWS:
            _, rows = run_query(session, f"SELECT * FROM {view} ORDER BY ALL")
            assert rows == expected[view], view
        assert outside.as_posix() not in " ".join(session.materialised.get("devices", []))
    # The next run finds a layer without its rollups and rebuilds the table whole.
    _etl(lake, write_csv(tmp_path / "three.csv", [_line("u1", BASE_US, "/", "", HOSTS[1])]))
    assert_fresh_and_equal(lake)


def test_a_stray_parquet_file_in_the_table_never_enters_it(tmp_path: Path) -> None:
    """Queries read writer-named files only; so does a full build of the table."""
    lake = tmp_path / "lake"
    pool = _events(random.Random(23), users=3, per_user=8)
    _etl(lake, write_csv(tmp_path / "one.csv", pool[:12]))
    data_file = next((lake / "clickstream").rglob("*.parquet"))
    stray = data_file.with_name(data_file.stem + ".copy.parquet")
    stray.write_bytes(data_file.read_bytes())
    # Named like a writer's file, but not in the writer's form (month=01) or by no committed run.
    month = data_file.parent
    padded = month.with_name(f"month={int(month.name.split('=')[1]):02d}")
    if padded != month:
        padded.mkdir()
        (padded / data_file.name).write_bytes(data_file.read_bytes())
    (month / "20240101T000000Z-abcdef_0.parquet").write_bytes(data_file.read_bytes())
    with open_lake(lake) as session:
        _, rows = run_query(session, "SELECT count(*) FROM clickstream")
    assert rows == [(12,)]
    (lake / st.FOLDER / "_current.json").unlink()  # the next run builds the table whole
    _etl(lake, write_csv(tmp_path / "two.csv", pool[12:]))
    assert_fresh_and_equal(lake)
    with open_lake(lake) as session:
        _, rows = run_query(session, "SELECT sum(pageviews) FROM pageviews_daily")
    assert rows == [(len(pool),)]


@pytest.mark.parametrize("damage", ["killed before the switch", "pointer is a folder"])
def test_a_run_with_nothing_new_repairs_a_stale_table(tmp_path: Path, damage: str) -> None:
    lake = tmp_path / "lake"
    pool = _events(random.Random(29), users=3, per_user=8)
    first = write_csv(tmp_path / "one.csv", pool[:12])
    _etl(lake, first)
    if damage == "killed before the switch":
        env = {**os.environ, "CLICKSTREAM_FAULT": "sessions_before_switch"}
        second = write_csv(tmp_path / "two.csv", pool[12:])
        cmd = [sys.executable, "-m", "clickstream", "etl", "-i", str(second), "-l", str(lake)]
        assert subprocess.run(cmd, env=env, capture_output=True).returncode == -9
    else:
        pointer = lake / st.FOLDER / "_current.json"
        pointer.unlink()
        pointer.mkdir()
    with open_lake(lake) as session:
        assert session.materialised == {}
    _etl(lake, first)  # already ingested: nothing new, yet the table is repaired
    assert_fresh_and_equal(lake)


def test_the_materialised_columns_are_the_computed_views(tmp_path: Path) -> None:
    """Readers compare the table with these constants, not with the views (cheaper): they must be
    what the views' SQL gives over the clickstream table."""
    from clickstream.lake.sessions_sql import VIEW_COLUMNS

    lake = tmp_path / "lake"
    _etl(lake, write_csv(tmp_path / "one.csv", _events(random.Random(31), 3, 6)))
    expected = {"sessions": list(VIEW_COLUMNS)} | {v: rollups.view_columns(v) for v in ROLLUP_VIEWS}
    with open_lake(lake) as session:
        assert sorted(session.materialised) == sorted(expected)
        for view, columns in expected.items():
            _, computed_cols = run_query(session, f"DESCRIBE ({view_sql(view)})")
            _, stored_cols = run_query(session, f"DESCRIBE {view}")
            assert [tuple(c[:2]) for c in computed_cols] == [tuple(c) for c in columns], view
            assert [tuple(c[:2]) for c in stored_cols] == [tuple(c) for c in columns], view
        _, table = run_query(session, "DESCRIBE clickstream")
    types = {c[0]: c[1] for c in table}
    assert all(types[c] == t for c, t in st.EVENT_TYPES)
