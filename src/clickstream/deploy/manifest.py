"""What deploy wrote where no tag can say so: a JSON manifest in the code bucket.

It lists the S3 keys deploy uploaded, the key prefixes it handed to services (EMR logs, Athena
results), the Athena views it created and the Glue databases it put tables in. In a bucket the
user supplied, teardown deletes exactly these keys and nothing else under ``jobs/``. Each entry
is written *before* the thing it names, so an interrupted deploy leaves an entry for something
absent (teardown skips it), never an unrecorded object. Read back as untrusted input: every
entry must lie inside this project's own prefixes, or the manifest is refused in one line and
nothing is deleted on its word.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from clickstream.deploy.actions import Executor
from clickstream.deploy.config import GLUE_RULE, DeploySettings, names
from clickstream.errors import DeployError
from clickstream.query.views import VIEW_NAMES

FORMAT = "clickstream-deploy-manifest"
#: A manifest is a few hundred bytes; anything far larger was not written by deploy.
MAX_BYTES = 1 << 20
ABSENT = ("NoSuchKey", "NoSuchBucket", "404", "NotFound")


def manifest_key(s: DeploySettings) -> str:
    return f"{names(s)['job_prefix']}/manifest.json"


@dataclass
class Manifest:
    keys: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    """``database.view`` names."""
    databases: list[str] = field(default_factory=list)
    """Glue databases deploy put tables in (``glue_database`` may change between deploys)."""

    def to_json(self, project: str) -> bytes:
        body = {
            "format": FORMAT,
            "version": 1,
            "project": project,
            "keys": sorted(self.keys),
            "prefixes": sorted(self.prefixes),
            "views": sorted(self.views),
            "databases": sorted(self.databases),
        }
        return json.dumps(body, indent=1).encode()


def _parse(s: DeploySettings, where: str, raw: bytes) -> Manifest:
    def bad(why: str) -> DeployError:
        return DeployError(f"deploy manifest {where} is not valid ({why}); nothing deleted on it")

    try:
        body: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise bad("not JSON") from err
    if not isinstance(body, dict) or body.get("format") != FORMAT or body.get("version") != 1:
        raise bad("not a clickstream deploy manifest")
    if body.get("project") != s.project:
        raise bad(f"it belongs to project {body.get('project')!r}")
    n = names(s)
    key_rule = re.compile(re.escape(n["job_prefix"]) + r"/[0-9a-f]{16}/[A-Za-z0-9_.-]{1,100}")
    allowed_prefixes = {n["log_prefix"], n["athena_prefix"]}
    found = Manifest()
    for entry, target, ok in (
        ("keys", found.keys, key_rule.fullmatch),
        ("prefixes", found.prefixes, allowed_prefixes.__contains__),
        ("views", found.views, _is_view),
        ("databases", found.databases, GLUE_RULE.fullmatch),
    ):
        items = body.get(entry, [])
        if not isinstance(items, list):
            raise bad(f"'{entry}' is not a list")
        for item in items:
            if not isinstance(item, str) or not ok(item):
                raise bad(f"{entry} entry {str(item)[:80]!r} is outside this project's own")
            target.append(item)
    return found


def _is_view(name: str) -> bool:
    database, dot, view = name.partition(".")
    return bool(dot) and bool(GLUE_RULE.fullmatch(database)) and view in VIEW_NAMES


def load(ex: Executor, s: DeploySettings) -> Manifest:
    """The project's manifest, empty when there is none (or no code bucket yet)."""
    key = manifest_key(s)
    found = ex.exists("s3", "get_object", ABSENT, Bucket=s.code_bucket, Key=key)
    if found is None:
        return Manifest()
    where = f"s3://{s.code_bucket}/{key}"
    if int(found.get("ContentLength", 0)) > MAX_BYTES:
        raise DeployError(f"deploy manifest {where} is larger than {MAX_BYTES} bytes; refused")
    return _parse(s, where, found["Body"].read(MAX_BYTES + 1))


def remember(
    ex: Executor,
    s: DeploySettings,
    keys: tuple[str, ...] = (),
    prefixes: tuple[str, ...] = (),
    views: tuple[str, ...] = (),
    databases: tuple[str, ...] = (),
) -> None:
    """Add entries (before creating what they name); writes only when something is new."""
    current = load(ex, s)
    merged = Manifest(
        keys=sorted({*current.keys, *keys}),
        prefixes=sorted({*current.prefixes, *prefixes}),
        views=sorted({*current.views, *views}),
        databases=sorted({*current.databases, *databases}),
    )
    if merged.to_json(s.project) != current.to_json(s.project):
        ex.change(
            "s3",
            "put_object",
            Bucket=s.code_bucket,
            Key=manifest_key(s),
            Body=merged.to_json(s.project),
            ContentType="application/json",
        )
