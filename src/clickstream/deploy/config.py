"""Deployment settings: ``clickstream.toml`` [deploy] < ``CLICKSTREAM_*`` environment < flags.

No credentials here, ever: AWS access comes from the standard chain (environment, shared profile,
instance or role credentials).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from clickstream.errors import ConfigError

CONFIG_FILE = "clickstream.toml"
#: Used when the EMR API cannot list release labels (the newest emr-7.x when written).
FALLBACK_RELEASE = "emr-7.10.0"
#: The documented last resort when no flag, environment, profile or config file names a region.
DEFAULT_REGION = "us-east-1"
#: Tag EMR's v2 managed policies require on the cluster, its subnet and security groups.
EMR_MANAGED_TAG = ("for-use-with-amazon-emr-managed-policies", "true")
#: Tag deploy puts on the buckets it creates; teardown deletes only buckets carrying it.
CREATED_BY_TAG = "clickstream-created-by"
#: Glue parameter naming the project that created a database or table (teardown's evidence).
OWNER_PARAMETER = "clickstream-project"
#: Where the Spark job runs; the first is the default.
RUNTIMES = ("emr-serverless", "emr-ec2")
#: The project names buckets (<project>-code-<account>: 63 at most), roles and the database.
PROJECT_RULE = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,39}")
PROJECT_RULE_TEXT = (
    "1-40 lowercase letters, digits and single hyphens, starting with a letter and ending with "
    "a letter or digit (it names buckets, roles and the Glue database)"
)
GLUE_RULE = re.compile(r"[a-z0-9_]{1,255}")
BUCKET_RULE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class DeploySettings:
    project: str = "clickstream"
    """Prefix of every resource name; also the value of the `project` tag."""
    region: str = ""
    """AWS region: --region > CLICKSTREAM_REGION/AWS_REGION/AWS_DEFAULT_REGION > profile >
    this file > us-east-1 (``resolve_region``)."""
    input: str = ""
    """s3:// URI of the raw CSV the ETL ingests."""
    runtime: str = RUNTIMES[0]
    """emr-serverless (default: no cluster, billed per run) or emr-ec2 (a cluster per run)."""
    schedule: str = "rate(1 day)"
    """EventBridge Scheduler expression for incremental runs (rate/cron/at); "none" runs once."""
    serverless_max_cpu: str = "16 vCPU"
    """EMR Serverless application ceiling (cost bound)."""
    serverless_max_memory: str = "64 GB"
    """EMR Serverless application ceiling (cost bound)."""
    code_bucket: str = ""
    """Bucket for the Spark job, EMR logs and Athena results; default <project>-code-<account>."""
    lake_bucket: str = ""
    """Bucket holding the lake; default <project>-lake-<account>."""
    lake_prefix: str = "lake"
    """Key prefix of the lake inside the lake bucket."""
    release_label: str = ""
    """EMR release; default: the newest emr-7.x the API lists."""
    master_instance_type: str = "m5.xlarge"
    core_instance_type: str = "m5.xlarge"
    core_instance_count: int = 2
    idle_timeout_seconds: int = 3600
    """Backstop: EMR terminates an idle cluster after this long, whatever happens to the step."""
    glue_database: str = ""
    """Glue database of the tables and views; default: the project name with '_' for '-'.
    Deploy adds only its own tables to a database it did not create and never drops it."""
    subnet_id: str = ""
    """EMR on EC2 subnet (tagged for-use-with-amazon-emr-managed-policies=true); default: EMR's
    choice in the default VPC."""
    master_security_group: str = ""
    """EMR-managed security group of the primary node (tagged like the subnet); optional."""
    core_security_group: str = ""
    """EMR-managed security group of the core nodes (tagged like the subnet); optional."""
    configure_existing_buckets: bool = False
    """Also apply tags (merged) and default encryption (only if none) to buckets deploy did not
    create; by default a user's bucket is left exactly as it is."""
    tags: dict[str, str] = field(default_factory=dict)

    def lake_uri(self) -> str:
        return f"s3://{self.lake_bucket}/{self.lake_prefix.strip('/')}"


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(DeploySettings)}[name]
    try:
        if kind == "int":
            return int(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("true or false")
        if kind == "dict[str, str]":
            if not isinstance(value, dict):
                raise ValueError("a table of strings")
            return {str(k): str(v) for k, v in value.items()}
        return str(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"deploy setting '{name}': invalid value {value!r} ({err})") from err


def load_settings(config: Path | None = None, **flags: Any) -> DeploySettings:
    """Merge the config file, CLICKSTREAM_<NAME> variables and explicit flags (None = unset)."""
    names = {f.name for f in fields(DeploySettings)}
    values: dict[str, Any] = {}
    path = config or Path(CONFIG_FILE)
    if path.exists():
        try:
            table = tomllib.loads(path.read_text()).get("deploy", {})
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: {err}") from err
        unknown = set(table) - names
        if unknown:
            raise ConfigError(f"{path}: unknown [deploy] settings: {', '.join(sorted(unknown))}")
        values.update(table)
    elif config is not None:
        raise ConfigError(f"config file not found: {config}")
    for name in names - {"tags"}:
        env = os.environ.get(f"CLICKSTREAM_{name.upper()}")
        if env:
            values[name] = env
    values.update({k: v for k, v in flags.items() if v is not None})
    settings = DeploySettings(**{k: _coerce(k, v) for k, v in values.items()})
    if settings.runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {settings.runtime!r}; valid: {', '.join(RUNTIMES)}")
    if settings.input and not settings.input.startswith("s3://"):
        raise ConfigError(f"input must be an s3:// URI, got {settings.input}")
    validate(settings)
    return replace(settings, glue_database=settings.glue_database or database_for(settings.project))


def database_for(project: str) -> str:
    """The project's own Glue database (a shared default would let projects clobber each other).

    >>> database_for("Web-Shop.EU")
    'web_shop_eu'
    """
    return re.sub(r"[^a-z0-9_]", "_", project.lower())[:255]


def validate(s: DeploySettings) -> None:
    """Names and expressions AWS would reject later, refused before any call, one line each."""
    if not PROJECT_RULE.fullmatch(s.project):
        raise ConfigError(f"invalid project {s.project!r}: use {PROJECT_RULE_TEXT}")
    if s.glue_database and not GLUE_RULE.fullmatch(s.glue_database):
        raise ConfigError(
            f"invalid glue_database {s.glue_database!r}: Glue database names are 1-255 "
            "lowercase letters, digits and underscores"
        )
    for setting in ("code_bucket", "lake_bucket"):
        bucket = getattr(s, setting)
        if bucket and (not BUCKET_RULE.fullmatch(bucket) or ".." in bucket):
            raise ConfigError(
                f"invalid {setting} {bucket!r}: S3 bucket names are 3-63 lowercase letters, "
                "digits, dots and hyphens, starting and ending with a letter or digit"
            )
    check_schedule(s.schedule)


_RATE = re.compile(r"rate\(([1-9][0-9]{0,8}) (minutes?|hours?|days?)\)")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()
#: EventBridge cron fields: name, lowest, highest, names, extra single tokens allowed.
_CRON_FIELDS: tuple[tuple[str, int, int, list[str], str], ...] = (
    ("minutes", 0, 59, [], ""),
    ("hours", 0, 23, [], ""),
    ("day-of-month", 1, 31, [], "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, "?L#"),
    ("year", 1970, 2199, [], ""),
)
SCHEDULE_RULE = (
    "use rate(N minute|minutes|hour|hours|day|days) (singular for 1), "
    "cron(minutes hours day-of-month month day-of-week year), at(yyyy-mm-ddThh:mm:ss) or none"
)


def _cron_value(token: str, low: int, high: int, named: list[str]) -> bool:
    if token.upper() in named:
        return True
    return token.isdigit() and low <= int(token) <= high


def _cron_item(item: str, low: int, high: int, named: list[str], extra: str) -> bool:
    if item == "*" or (item == "?" and "?" in extra):
        return True
    if "L" in extra and (item == "L" or (item.endswith("L") and "#" in extra)):
        return item == "L" or _cron_value(item[:-1], low, high, named)  # L, or 5L (last Friday)
    if "W" in extra and item.endswith("W"):
        return _cron_value(item[:-1], low, high, named)
    if "#" in extra and "#" in item:
        day, _, nth = item.partition("#")
        return _cron_value(day, low, high, named) and nth in {"1", "2", "3", "4", "5"}
    base, slash, step = item.partition("/")
    if slash and not (step.isdigit() and 0 < int(step) <= high):
        return False
    if base == "*" and slash:
        return True
    start, dash, end = base.partition("-")
    if dash:
        return _cron_value(start, low, high, named) and _cron_value(end, low, high, named)
    return _cron_value(start, low, high, named)


def check_schedule(expression: str) -> None:
    """EventBridge Scheduler's syntax, checked here: AWS would refuse it only after deploy has
    created buckets and roles."""
    if expression.lower() == "none":
        return
    rate = _RATE.fullmatch(expression)
    if rate:
        if (rate.group(1) == "1") != (not rate.group(2).endswith("s")):
            raise ConfigError(
                f"invalid schedule {expression!r}: rate() takes the singular unit for 1 and "
                "the plural otherwise (rate(1 day), rate(2 days))"
            )
        return
    at = _AT.fullmatch(expression)
    if at:
        try:
            datetime.strptime(at.group(1), "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            raise ConfigError(
                f"invalid schedule {expression!r}: at() needs a real date and time"
            ) from None
        return
    if expression.startswith("cron(") and expression.endswith(")"):
        parts = expression[5:-1].split(" ")
        if len(parts) != len(_CRON_FIELDS):
            raise ConfigError(
                f"invalid schedule {expression!r}: cron() takes 6 fields separated by single "
                f"spaces, got {len(parts)}"
            )
        for part, (field_name, low, high, named, extra) in zip(parts, _CRON_FIELDS, strict=True):
            if not part or not all(
                _cron_item(item, low, high, named, extra) for item in part.split(",")
            ):
                raise ConfigError(
                    f"invalid schedule {expression!r}: cron() {field_name} field {part!r}"
                )
        if (parts[2] == "?") == (parts[4] == "?"):
            raise ConfigError(
                f"invalid schedule {expression!r}: cron() needs '?' in exactly one of "
                "day-of-month and day-of-week"
            )
        return
    raise ConfigError(f"invalid schedule {expression!r}: {SCHEDULE_RULE}")


def resolve_region(flag: str | None, file_region: str, chain_region: str | None) -> str:
    """The one region every client uses: flag > environment > profile > config file > default.

    ``chain_region`` is botocore's own answer (AWS_REGION / AWS_DEFAULT_REGION, then the
    profile); without this step STS, S3 and IAM work and Glue, EMR and Athena raise NoRegionError.
    """
    env = os.environ.get("CLICKSTREAM_REGION")
    return flag or env or chain_region or file_region or DEFAULT_REGION


def with_defaults(settings: DeploySettings, account: str, region: str) -> DeploySettings:
    """Fill names that depend on the account (bucket names are global)."""
    return replace(
        settings,
        region=settings.region or region,
        code_bucket=settings.code_bucket or f"{settings.project}-code-{account}",
        lake_bucket=settings.lake_bucket or f"{settings.project}-lake-{account}",
        glue_database=settings.glue_database or database_for(settings.project),
    )


def names(s: DeploySettings) -> dict[str, str]:
    return {
        "service_role": f"{s.project}-emr-service",
        # The role the Spark job runs as: EC2 nodes' or the serverless execution role.
        "instance_role": f"{s.project}-emr-ec2"
        if s.runtime == "emr-ec2"
        else f"{s.project}-emr-serverless",
        "instance_profile": f"{s.project}-emr-ec2",
        "cluster": f"{s.project}-etl",
        # Project-scoped: two projects sharing a code bucket never delete each other's objects.
        "job_prefix": f"jobs/{s.project}",
        "log_prefix": f"emr-logs/{s.project}/",
        "athena_prefix": f"athena-results/{s.project}/",
    }


def tags(s: DeploySettings) -> dict[str, str]:
    return {"project": s.project, **s.tags}
