"""Deploy and teardown touch only what they created (issue #13's outside review), against the moto
server through the real CLI: a user's Glue database and its tables, another project's tables, a
user's objects under ``jobs/`` in a supplied code bucket; plus the input checks made before any
AWS call (project name, schedule) and what the report says about the Athena views."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.aws.test_deploy import athena_made_the_views, cli, no_secrets, state

pytestmark = pytest.mark.aws

#: A table of someone else's, as Glue holds it (Parameters without clickstream's owner mark).
FOREIGN_TABLE = {
    "Name": "orders",
    "TableType": "EXTERNAL_TABLE",
    "Parameters": {"EXTERNAL": "TRUE", "owner": "finance"},
    "StorageDescriptor": {
        "Columns": [{"Name": "order_id", "Type": "bigint"}],
        "Location": "s3://finance-data/orders/",
    },
}


@pytest.fixture(autouse=True)
def wide_report(monkeypatch) -> None:
    """The report table unwrapped, so a detail is one substring (rich wraps at 80 off a tty)."""
    monkeypatch.setenv("COLUMNS", "300")


def _raw(aws, name: str) -> str:
    raw = f"{name}-raw"
    aws.create_bucket(Bucket=raw)
    aws.put_object(Bucket=raw, Key="clicks/a.csv", Body=b"anonymous_user_id,url\n")
    return raw


def _write_config(cwd: Path, name: str, raw: str, extra: str = "") -> Path:
    cwd.mkdir(parents=True, exist_ok=True)
    (cwd / "clickstream.toml").write_text(
        f'[deploy]\nproject = "{name}"\ninput = "s3://{raw}/clicks/"\n'
        f'release_label = "emr-7.10.0"\n{extra}'
    )
    return cwd


def _glue():
    import boto3

    return boto3.client("glue")


def _snapshot(database: str) -> str:
    """The database and every table in it as Glue returns them, for byte-for-byte comparison."""
    glue = _glue()
    db = glue.get_database(Name=database)["Database"]
    tables = [
        t
        for page in glue.get_paginator("get_tables").paginate(DatabaseName=database)
        for t in page["TableList"]
    ]
    return json.dumps({"db": db, "tables": tables}, sort_keys=True, default=str)


def _tables(database: str) -> list[str]:
    pages = _glue().get_paginator("get_tables").paginate(DatabaseName=database)
    return sorted(t["Name"] for page in pages for t in page["TableList"])


def _one_line(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return line


def test_teardown_keeps_a_users_database_and_their_tables(aws, tmp_path: Path) -> None:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    analytics = f"analytics_{name}"
    _glue().create_database(DatabaseInput={"Name": analytics, "Description": "the BI team's"})
    _glue().create_table(DatabaseName=analytics, TableInput=FOREIGN_TABLE)
    cwd = _write_config(tmp_path, name, raw, f'glue_database = "{analytics}"\n')
    before = _snapshot(analytics)
    foreign_before = json.dumps(
        _glue().get_table(DatabaseName=analytics, Name="orders")["Table"], default=str
    )

    up = cli("deploy", cwd=cwd)
    assert up.returncode == 0, up.stderr
    assert "not created by deploy: only this project's tables added" in up.stdout
    assert _tables(analytics) == ["clickstream", "clickstream_rejected", "orders"]
    foreign_after = _glue().get_table(DatabaseName=analytics, Name="orders")["Table"]
    assert json.dumps(foreign_after, default=str) == foreign_before
    athena_made_the_views(analytics)  # as Athena would on AWS

    for args in (("teardown",), ("teardown", "--delete-data", "--yes")):
        down = cli(*args, cwd=cwd)
        assert down.returncode == 0, down.stderr
        assert analytics in state(aws, name)["databases"]
        assert _snapshot(analytics) == before  # only what deploy added is gone
    assert "glue database" in down.stdout and "not created by deploy" in down.stdout
    no_secrets(up, down)


def test_deploy_refuses_a_users_table_of_the_same_name_before_creating_anything(
    aws, tmp_path: Path
) -> None:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    analytics = f"analytics_{name}"
    _glue().create_database(DatabaseInput={"Name": analytics})
    _glue().create_table(
        DatabaseName=analytics, TableInput={**FOREIGN_TABLE, "Name": "clickstream"}
    )
    cwd = _write_config(tmp_path, name, raw, f'glue_database = "{analytics}"\n')
    before = _snapshot(analytics)
    refused = cli("deploy", cwd=cwd)
    assert refused.returncode == 1
    line = _one_line(refused)
    assert f"glue table {analytics}.clickstream already exists" in line
    assert "was not created by clickstream deploy" in line
    assert _snapshot(analytics) == before
    assert state(aws, name)["buckets"] == [raw] and state(aws, name)["roles"] == []
    # Teardown of a project that never deployed leaves the user's database alone too.
    assert cli("teardown", cwd=cwd).returncode == 0
    assert _snapshot(analytics) == before


def test_a_users_view_of_the_same_name_is_not_replaced(aws, tmp_path: Path) -> None:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    analytics = f"analytics_{name}"
    _glue().create_database(DatabaseInput={"Name": analytics})
    athena_made_the_views(analytics)  # the user's own views named like ours
    cwd = _write_config(tmp_path, name, raw, f'glue_database = "{analytics}"\n')
    before = _snapshot(analytics)
    refused = cli("deploy", cwd=cwd)
    assert refused.returncode == 1
    assert "glue view" in _one_line(refused) and "refusing to replace it" in refused.stderr
    assert _snapshot(analytics) == before
    assert state(aws, name)["buckets"] == [raw]


def test_projects_get_their_own_database_and_never_clobber_each_other(aws, tmp_path: Path) -> None:
    import boto3

    first, second = f"cs-{uuid.uuid4().hex[:8]}", f"cs-{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, first)
    cwd_a = _write_config(tmp_path / "a", first, raw)
    cwd_b = _write_config(tmp_path / "b", second, raw)
    db_a, db_b = first.replace("-", "_"), second.replace("-", "_")

    assert cli("deploy", cwd=cwd_a).returncode == 0
    assert cli("deploy", cwd=cwd_b).returncode == 0
    account = boto3.client("sts").get_caller_identity()["Account"]
    for project, db in ((first, db_a), (second, db_b)):
        table = _glue().get_table(DatabaseName=db, Name="clickstream")["Table"]
        assert (
            table["StorageDescriptor"]["Location"]
            == f"s3://{project}-lake-{account}/lake/clickstream/"
        )
        assert _glue().get_database(Name=db)["Database"]["Parameters"] == {
            "clickstream-project": project
        }
    before_a = _snapshot(db_a)

    # The second project pointed at the first's database: refused, naming table and owner.
    crossed = _write_config(tmp_path / "crossed", second, raw, f'glue_database = "{db_a}"\n')
    refused = cli("deploy", cwd=crossed)
    assert refused.returncode == 1
    line = _one_line(refused)
    assert f"glue table {db_a}.clickstream" in line and f"belongs to project '{first}'" in line
    assert _snapshot(db_a) == before_a
    down = cli("teardown", cwd=crossed)
    assert down.returncode == 0, down.stderr
    assert _snapshot(db_a) == before_a and f"project {first}'s" in down.stdout

    # Each teardown removes its own database only.
    assert cli("teardown", cwd=cwd_b).returncode == 0
    databases = state(aws, "")["databases"]
    assert db_b not in databases and db_a in databases
    assert _snapshot(db_a) == before_a
    assert cli("teardown", cwd=cwd_a).returncode == 0
    assert db_a not in state(aws, "")["databases"]


def test_deploys_own_database_with_a_foreign_table_added_later_is_kept(aws, tmp_path: Path) -> None:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    cwd = _write_config(tmp_path, name, raw)
    assert cli("deploy", cwd=cwd).returncode == 0
    _glue().create_table(DatabaseName=name, TableInput=FOREIGN_TABLE)
    foreign = json.dumps(_glue().get_table(DatabaseName=name, Name="orders")["Table"], default=str)
    down = cli("teardown", cwd=cwd)
    assert down.returncode == 0, down.stderr
    assert _tables(name) == ["orders"]
    assert (
        json.dumps(_glue().get_table(DatabaseName=name, Name="orders")["Table"], default=str)
        == foreign
    )
    assert "1 table(s) not created by deploy: orders" in down.stdout


def _objects(aws, bucket: str) -> dict[str, tuple[str, bytes]]:
    keys = [
        o["Key"]
        for page in aws.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    out = {}
    for key in keys:
        got = aws.get_object(Bucket=bucket, Key=key)
        out[key] = (got["ETag"], got["Body"].read())
    return out


def test_teardown_deletes_only_the_keys_deploy_recorded_in_a_users_code_bucket(
    aws, tmp_path: Path
) -> None:
    name, other = f"cs{uuid.uuid4().hex[:8]}", f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    code = f"{name}-sharedcode"
    aws.create_bucket(Bucket=code)
    foreign = {
        "jobs/their-job.zip": b"PK not ours",
        "jobs/2024/nightly.py": b"print('theirs')",
        f"jobs/{name}/notes.txt": b"a user's note under our prefix",
        "emr-logs/their-cluster/stderr.gz": b"log",
        "athena-results/q1.csv": b"a,b\n",
    }
    for key, body in foreign.items():
        aws.put_object(Bucket=code, Key=key, Body=body)
    before = _objects(aws, code)
    extra = f'code_bucket = "{code}"\n'
    cwd = _write_config(tmp_path / "mine", name, raw, extra)
    cwd_other = _write_config(tmp_path / "other", other, raw, extra)

    assert cli("deploy", cwd=cwd).returncode == 0
    assert cli("deploy", cwd=cwd_other).returncode == 0
    manifest = json.loads(
        aws.get_object(Bucket=code, Key=f"jobs/{name}/manifest.json")["Body"].read()
    )
    assert manifest["project"] == name and len(manifest["keys"]) == 3
    assert all(k.startswith(f"jobs/{name}/") for k in manifest["keys"])
    assert manifest["prefixes"] == [f"athena-results/{name}/", f"emr-logs/{name}/"]
    # What EMR and Athena write lands under the recorded prefixes (moto writes nothing there).
    aws.put_object(Bucket=code, Key=f"emr-logs/{name}/serverless/run-1/stdout.gz", Body=b"x")
    other_keys = {k: v for k, v in _objects(aws, code).items() if f"/{other}/" in k}
    assert len(other_keys) == 4  # 3 artifacts + manifest

    down = cli("teardown", cwd=cwd)
    assert down.returncode == 0, down.stderr
    assert "only the 5 object version(s) its deploy manifest lists removed" in down.stdout
    left = _objects(aws, code)
    assert {k: v for k, v in left.items() if k in before} == before  # byte-identical
    assert {k: v for k, v in left.items() if f"/{other}/" in k} == other_keys
    assert set(left) == set(before) | set(other_keys)

    assert cli("teardown", cwd=cwd_other).returncode == 0
    assert _objects(aws, code) == before
    no_secrets(down)


def test_a_damaged_manifest_stops_teardown_before_anything_is_removed(aws, tmp_path: Path) -> None:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    code = f"{name}-mycode"
    aws.create_bucket(Bucket=code)
    aws.put_object(Bucket=code, Key="precious/data.csv", Body=b"keep")
    cwd = _write_config(tmp_path, name, raw, f'code_bucket = "{code}"\n')
    assert cli("deploy", cwd=cwd).returncode == 0
    key = f"jobs/{name}/manifest.json"
    body = json.loads(aws.get_object(Bucket=code, Key=key)["Body"].read())
    body["keys"].append("precious/data.csv")
    aws.put_object(Bucket=code, Key=key, Body=json.dumps(body).encode())
    before = state(aws, name)
    down = cli("teardown", cwd=cwd)
    assert down.returncode == 1
    line = _one_line(down)
    assert f"s3://{code}/{key} is not valid" in line and "precious/data.csv" in line
    assert state(aws, name) == before
    assert aws.get_object(Bucket=code, Key="precious/data.csv")["Body"].read() == b"keep"


@pytest.mark.parametrize(
    "schedule",
    [
        "rate(banana)",
        "rate(1 days)",
        "rate(5 minute)",
        "rate(0 hours)",
        "rate(1 week)",
        "cron(garbage)",
        "cron(0 12 * * ?)",
        "cron(0 25 * * ? *)",
        "cron(0 12 * * * *)",
        "at(2026-02-30T10:00:00)",
        "daily",
    ],
)
def test_a_bad_schedule_is_one_line_exit_2_before_any_call(
    aws, tmp_path: Path, schedule: str
) -> None:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    cwd = _write_config(tmp_path, name, raw)
    proc = cli("deploy", "--schedule", schedule, cwd=cwd)
    assert proc.returncode == 2
    line = _one_line(proc)
    assert f"invalid schedule {schedule!r}" in line
    assert state(aws, name)["buckets"] == [raw] and state(aws, name)["roles"] == []


@pytest.mark.parametrize(
    "schedule",
    [
        "rate(1 minute)",
        "rate(15 minutes)",
        "rate(1 hour)",
        "rate(2 days)",
        "none",
        "cron(0/15 8-17 ? * MON-FRI *)",
        "cron(0 18 ? * 6L 2027)",
        "cron(0 10 ? * 2#1 *)",
        "cron(0 0 L * ? *)",
        "at(2027-01-31T23:59:59)",
    ],
)
def test_good_schedules_pass(schedule: str) -> None:
    from clickstream.deploy.config import check_schedule

    check_schedule(schedule)


@pytest.mark.parametrize(
    "project",
    [
        "My_Project",
        "UPPER",
        "-lead",
        "trail-",
        "double--hyphen",
        "9starts-with-digit",
        "has.dot",
        "x" * 41,
        "",
    ],
)
def test_a_bad_project_name_is_one_line_naming_the_rule(aws, tmp_path: Path, project: str) -> None:
    proc = cli(
        "deploy", "--project", project, "--input", "s3://raw/clicks/", "--dry-run", cwd=tmp_path
    )
    assert proc.returncode == 2
    line = _one_line(proc)
    assert f"invalid project {project!r}" in line and "lowercase letters, digits" in line
    assert "Parameter validation" not in proc.stderr and "head_bucket" not in proc.stderr


def test_the_report_says_created_replaced_updated_or_exists_as_it_is(aws, tmp_path: Path) -> None:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    cwd = _write_config(tmp_path, name, raw)

    def rows(proc, what: str) -> list[str]:
        found = [ln for ln in proc.stdout.splitlines() if what in ln]
        assert len(found) == (5 if what == "athena view" else 2), proc.stdout
        return found

    dry = cli("deploy", "--dry-run", cwd=cwd)
    assert dry.returncode == 0, dry.stderr
    assert all("would create" in row for row in rows(dry, "athena view"))
    up = cli("deploy", cwd=cwd)
    assert up.returncode == 0, up.stderr
    assert all("created" in row and "exists" not in row for row in rows(up, "athena view"))
    athena_made_the_views(name)  # on AWS, Athena's CREATE VIEW did this
    dry_again = cli("deploy", "--dry-run", cwd=cwd)
    assert all("would replace" in row for row in rows(dry_again, "athena view"))
    # The tables are as deploy left them: found, not rewritten.
    assert all("exists" in row for row in rows(dry_again, "glue table"))
    assert "glue.update_table" not in dry_again.stderr
    assert "glue.create_table" not in dry_again.stderr

    # A table of ours changed behind deploy's back is put back, and said so.
    glue = _glue()
    table = glue.get_table(DatabaseName=name, Name="clickstream_rejected")["Table"]
    moved = {k: table[k] for k in ("Name", "TableType", "Parameters", "StorageDescriptor")}
    moved["StorageDescriptor"] = {**moved["StorageDescriptor"], "Location": "s3://elsewhere/x/"}
    glue.update_table(DatabaseName=name, TableInput=moved)
    again = cli("deploy", cwd=cwd)
    assert again.returncode == 0, again.stderr
    assert all("replaced" in row for row in rows(again, "athena view"))
    [drifted] = [row for row in rows(again, "glue table") if "clickstream_rejected" in row]
    assert "updated" in drifted
    location = glue.get_table(DatabaseName=name, Name="clickstream_rejected")["Table"][
        "StorageDescriptor"
    ]["Location"]
    assert location.endswith("/lake/clickstream_rejected/")

    down = cli("teardown", cwd=cwd)
    assert down.returncode == 0, down.stderr
    assert name not in state(aws, name)["databases"]
    assert down.stdout.count("athena view") == 5


def test_a_code_bucket_that_is_also_the_lake_goes_only_with_delete_data(
    aws, tmp_path: Path
) -> None:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    one = f"{name}-one"
    cwd = _write_config(tmp_path, name, raw, f'code_bucket = "{one}"\nlake_bucket = "{one}"\n')
    assert cli("deploy", cwd=cwd).returncode == 0
    aws.put_object(Bucket=one, Key="lake/clickstream/year=2024/month=1/part-0.parquet", Body=b"x")
    down = cli("teardown", cwd=cwd)
    assert down.returncode == 0, down.stderr
    assert "holds the lake (use --delete-data)" in down.stdout
    assert sorted(_objects(aws, one)) == ["lake/clickstream/year=2024/month=1/part-0.parquet"]
    gone = cli("teardown", "--delete-data", "--yes", cwd=cwd)
    assert gone.returncode == 0, gone.stderr
    assert state(aws, name)["buckets"] == [raw]


def _settings(project: str):
    from clickstream.deploy.config import DeploySettings, with_defaults

    return with_defaults(DeploySettings(project=project), "123456789012", "us-east-1")


GOOD = {
    "format": "clickstream-deploy-manifest",
    "version": 1,
    "project": "shop",
    "keys": ["jobs/shop/0123456789abcdef/clickstream.zip"],
    "prefixes": ["emr-logs/shop/", "athena-results/shop/"],
    "views": ["analytics.sessions"],
}


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"format": "other"}, "not a clickstream deploy manifest"),
        ({"version": 2}, "not a clickstream deploy manifest"),
        ({"project": "shop-eu"}, "belongs to project 'shop-eu'"),
        ({"keys": ["precious/data.csv"]}, "keys entry 'precious/data.csv'"),
        ({"keys": ["jobs/shop-eu/0123456789abcdef/x.zip"]}, "keys entry"),
        ({"keys": ["jobs/shop/0123456789abcdef/../../x"]}, "keys entry"),
        ({"keys": ["jobs/shop/manifest.json"]}, "keys entry"),
        ({"keys": [7]}, "keys entry '7'"),
        ({"keys": "jobs/shop/0123456789abcdef/x.zip"}, "'keys' is not a list"),
        ({"prefixes": ["jobs/"]}, "prefixes entry 'jobs/'"),
        ({"prefixes": [""]}, "prefixes entry ''"),
        ({"views": ["analytics.orders"]}, "views entry 'analytics.orders'"),
        ({"views": ["Analytics;drop.sessions"]}, "views entry"),
        ({"databases": ["Analytics;drop"]}, "databases entry"),
        ({"databases": "analytics"}, "'databases' is not a list"),
    ],
)
def test_a_manifest_is_checked_as_untrusted_input(change: dict, why: str) -> None:
    from clickstream.deploy.manifest import _parse
    from clickstream.errors import DeployError

    s = _settings("shop")
    assert _parse(s, "m", json.dumps(GOOD).encode()).keys == GOOD["keys"]
    with pytest.raises(DeployError) as caught:
        _parse(s, "s3://b/m", json.dumps({**GOOD, **change}).encode())
    assert why in str(caught.value) and "nothing deleted on it" in str(caught.value)
    for raw in (b"\xff\xfe", b"{not json", b"[]"):
        with pytest.raises(DeployError, match="is not valid"):
            _parse(s, "s3://b/m", raw)


def test_the_default_database_is_the_projects() -> None:
    from clickstream.deploy.config import load_settings

    assert _settings("web-shop-eu").glue_database == "web_shop_eu"
    assert load_settings(None, project="clickstream").glue_database == "clickstream"
    assert load_settings(None, project="a-b", glue_database="shared").glue_database == "shared"


def test_teardown_finds_the_tables_of_every_database_a_deploy_used(aws, tmp_path: Path) -> None:
    name = f"cs{uuid.uuid4().hex[:8]}"
    raw = _raw(aws, name)
    analytics = f"analytics_{name}"
    _glue().create_database(DatabaseInput={"Name": analytics})
    _glue().create_table(DatabaseName=analytics, TableInput=FOREIGN_TABLE)
    before = _snapshot(analytics)
    cwd = _write_config(tmp_path, name, raw)
    assert cli("deploy", cwd=cwd).returncode == 0  # its own database first
    moved = _write_config(tmp_path / "moved", name, raw, f'glue_database = "{analytics}"\n')
    assert cli("deploy", cwd=moved).returncode == 0  # then the user's
    assert name in state(aws, name)["databases"]
    down = cli("teardown", cwd=moved)
    assert down.returncode == 0, down.stderr
    assert name not in state(aws, name)["databases"]
    assert _snapshot(analytics) == before


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ('glue_database = "has-hyphen"\n', "glue_database"),
        ('glue_database = "Upper"\n', "glue_database"),
        (f'glue_database = "{"d" * 256}"\n', "glue_database"),
        ('code_bucket = "Upper_Case"\n', "code_bucket"),
        ('code_bucket = "ab"\n', "code_bucket"),
        ('lake_bucket = "a..b"\n', "lake_bucket"),
        ('lake_bucket = "-lead"\n', "lake_bucket"),
    ],
)
def test_a_bad_database_or_bucket_name_is_one_line_before_any_aws_call(
    aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, setting: str
) -> None:
    """Refused before any AWS call: the endpoint is a closed port, so a call would fail
    differently (after its connect timeout and retries), not with the rule."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    cwd = _write_config(tmp_path, f"cs{uuid.uuid4().hex[:8]}", "raw-bucket", extra)
    for command in (("deploy", "--dry-run"), ("deploy",)):
        proc = cli(*command, cwd=cwd)
        assert proc.returncode == 2, proc.stderr
        line = _one_line(proc)
        assert line.startswith(f"error: invalid {setting} "), line
        assert "127.0.0.1:9" not in proc.stderr and "Could not connect" not in proc.stderr
