"""Deployment settings: ``clickstream.toml`` [deploy] < ``CLICKSTREAM_*`` environment < flags.

No credentials here, ever: AWS access comes from the standard chain (environment, shared profile,
instance or role credentials).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
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
#: Where the Spark job runs; the first is the default.
RUNTIMES = ("emr-serverless", "emr-ec2")


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
    glue_database: str = "clickstream"
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
    return settings


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
        "job_prefix": "jobs",
    }


def tags(s: DeploySettings) -> dict[str, str]:
    return {"project": s.project, **s.tags}
