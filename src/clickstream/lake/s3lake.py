"""A lake on S3. S3 has no rename, so the commit is different from the local one.

Protocol:

1. The engine stages the run's files in a local folder.
2. ``_runs/<run_id>.commit.json`` lists the keys the run will upload (and, for a full refresh, the
   keys it will delete).
3. The files are uploaded to their final keys (new, unique names: nothing is overwritten).
4. ``_runs/<run_id>.json`` (the run report) is written. **This is the commit point.**
5. Old keys are deleted (full refresh), then the commit log.

Recovery (every writer, under the lock, before it starts): a commit log *with* its report is
rolled forward (finish the deletes); one *without* is rolled back (its uploaded keys are deleted),
so the inputs count as not ingested and the next run reads them again. Guarantee: after recovery
the lake holds a run completely or not at all; a reader listing the prefix *during* steps 3-5
may briefly see a run's files before its report exists (S3 offers no atomic multi-key commit).
One writer at a time: ``_lock`` is created with a conditional put (If-None-Match).

Commit logs and reports are validated by ``lake.metadata`` before anything acts on them: a log
can only ever delete keys under this lake's table prefixes. Readers never recover; they refuse to
read while a commit log is present.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clickstream import s3
from clickstream.errors import LakeBusyError, LakeError
from clickstream.lake import metadata
from clickstream.lake.commit import data_files
from clickstream.lake.faults import fault
from clickstream.lake.layout import INDEX, REJECTED_TABLE, TABLE, LakeLayout
from clickstream.lake.report import RunReport
from clickstream.lake.scratch import local_scratch

#: A lock older than this is taken over (its writer is presumed dead).
STALE_LOCK_SECONDS = 6 * 3600
#: S3's answers to a conditional request that lost (the object exists, or changed).
_CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict", "412")

log = logging.getLogger(__name__)


def _code(err: Any) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


#: Linux's largest pid_max: a larger pid is no process.
_MAX_PID = 2**22


def _lock_holder(body: bytes) -> tuple[str, int, float] | None:
    """(host, pid, since) of a lock as :meth:`S3Lake.lock` writes it, or None for anything else
    (not JSON, too deep, not an object, a field missing or of another type, out of range)."""
    try:
        holder = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(holder, dict):
        return None
    host, pid, since = holder.get("host"), holder.get("pid"), holder.get("since")
    if not isinstance(host, str) or type(pid) is not int:
        return None
    if type(since) is not int and type(since) is not float:  # bool is neither
        return None
    if not 0 < pid < _MAX_PID:
        return None
    try:
        when = float(since)
    except OverflowError:  # an integer of 400 digits
        return None
    return (host, pid, when) if math.isfinite(when) else None


class S3Lake:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.bucket, self.prefix = s3.split(self.root + "/")
        self._scratch: dict[str, contextlib.ExitStack] = {}

    def uri(self, *parts: str) -> str:
        return s3.join(self.root, *parts)

    def key(self, *parts: str) -> str:
        return s3.split(self.uri(*parts))[1]

    @property
    def table_uri(self) -> str:
        return self.uri(TABLE)

    @property
    def rejected_uri(self) -> str:
        return self.uri(REJECTED_TABLE)

    # -- small S3 helpers ----------------------------------------------------------------------
    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, **kwargs)
        # upload_file (s3transfer) wraps an AWS error in S3UploadFailedError, no BotoCoreError.
        except (BotoCoreError, ClientError, S3UploadFailedError) as err:
            raise LakeError(f"{self.root}: {what} failed ({s3.error_message(err)})") from err

    def _keys(self, *parts: str) -> list[str]:
        return [o["Key"] for o in s3.list_objects(self.uri(*parts) + "/")]

    def _get_bytes(self, key: str) -> bytes:
        """An object's bytes, refusing one larger than the metadata bound without reading it."""
        response = self._call("reading " + key, s3.client().get_object, Key=key)
        if int(response.get("ContentLength", 0)) > metadata.MAX_BYTES:
            response["Body"].close()
            raise LakeError(f"s3://{self.bucket}/{key}: larger than the metadata size bound")
        return bytes(response["Body"].read(metadata.MAX_BYTES + 1))

    def _get_json(self, key: str) -> Any:
        try:
            return json.loads(self._get_bytes(key))
        except ValueError as err:
            raise LakeError(f"s3://{self.bucket}/{key}: not JSON") from err

    def _put_json(self, key: str, data: Any) -> None:
        body = json.dumps(data, indent=2, sort_keys=True).encode()
        self._call("writing " + key, s3.client().put_object, Key=key, Body=body)

    def _delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[i : i + 1000]]
            if chunk:
                self._call("deleting", s3.client().delete_objects, Delete={"Objects": chunk})

    def _exists(self, key: str) -> bool:
        return bool([o for o in s3.list_objects(f"s3://{self.bucket}/{key}") if o["Key"] == key])

    # -- the LakeStore operations ----------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key("_lock")
        owner = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        etag = ""
        for _ in range(2):
            try:
                etag = s3.client().put_object(
                    Bucket=self.bucket, Key=key, IfNoneMatch="*", Body=json.dumps(owner).encode()
                )["ETag"]
                break
            except BotoCoreError as err:  # no answer, no connection: nothing was written
                raise LakeError(f"{self.root}: cannot lock ({s3.error_message(err)})") from err
            except ClientError as err:
                if _code(err) not in _CONFLICT:
                    raise LakeError(f"{self.root}: cannot lock ({s3.error_message(err)})") from err
                held = self._stale_lock(key)
                if held is None:
                    busy = f"{self.root}: another run is writing to this lake"
                    raise LakeBusyError(busy) from err
                if held:  # "": released meanwhile, nothing to delete
                    # Only the stale lock just read: a writer that took it over a moment ago
                    # keeps its own (a conditional delete; the loser then finds it live).
                    self._delete_lock(key, held)
        else:
            raise LakeBusyError(f"{self.root}: another run is writing to this lake")
        try:
            yield
        finally:
            if not self._delete_lock(key, etag):
                log.warning("%s: the lake's lock was taken over while this run held it", self.root)

    def _delete_lock(self, key: str, etag: str) -> bool:
        """Delete the lock if it is still the object ``etag`` names; False if it is not."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            s3.client().delete_object(Bucket=self.bucket, Key=key, IfMatch=etag)
        except ClientError as err:
            if _code(err) in (*_CONFLICT, "NoSuchKey", "404"):
                return False
            raise LakeError(f"{self.root}: cannot unlock ({s3.error_message(err)})") from err
        except BotoCoreError as err:  # no answer: a later run finds the lock stale
            raise LakeError(f"{self.root}: cannot unlock ({s3.error_message(err)})") from err
        return True

    def _stale_lock(self, key: str) -> str | None:
        """The ETag of the lock when it is stale (its writer dead, or older than
        STALE_LOCK_SECONDS, or not a lock this code writes), "" when it is gone, else None (it
        is live)."""
        from botocore.exceptions import ClientError

        try:
            response = s3.client().get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _code(err) in ("NoSuchKey", "404"):
                return ""
            raise LakeError(f"{self.root}: cannot read the lock ({s3.error_message(err)})") from err
        etag = str(response["ETag"])
        holder = _lock_holder(response["Body"].read(metadata.MAX_BYTES + 1))
        if holder is None:  # not a lock this code writes
            return etag
        host, pid, since = holder
        if abs(time.time() - since) > STALE_LOCK_SECONDS:  # old, or from the far future
            return etag
        if host == socket.gethostname():
            if pid == os.getpid():  # not us (we hold no lock yet): a dead writer's reused pid
                return etag
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return etag
            except OSError:  # alive, another user's
                return None
        return None

    @property
    def _prefix(self) -> str:
        return self.key("x")[:-1]  # '' or 'some/prefix/'

    def exists(self) -> bool:
        return bool(s3.list_objects(self.uri(TABLE) + "/")) or bool(
            s3.list_objects(self.uri("_runs") + "/")
        )

    def pending_commits(self) -> list[str]:
        return [
            f"s3://{self.bucket}/{k}"
            for k in self._keys("_runs")
            if k.endswith(metadata.COMMIT_SUFFIX)
        ]

    def recover(self) -> None:
        for key in self._keys("_runs"):
            if not key.endswith(metadata.COMMIT_SUFFIX):
                continue
            name = f"s3://{self.bucket}/{key}"
            entry = metadata.s3_commit(name, self._get_bytes(key), self._prefix)
            report_key = self.key("_runs", f"{entry.run_id}{metadata.REPORT_SUFFIX}")
            if self._exists(report_key):
                self._delete(entry.deletes)
            else:
                self._delete([self.key(rel) for rel in entry.uploads])
            self._delete([key])

    def reports(self) -> list[RunReport]:
        reports = []
        for key in self._keys("_runs"):
            if key.endswith(metadata.REPORT_SUFFIX) and not key.endswith(metadata.COMMIT_SUFFIX):
                name = f"s3://{self.bucket}/{key}"
                reports.append(metadata.run_report(name, self._get_bytes(key)))
        reports.sort(key=lambda r: (r.finished_at, r.run_id))
        names = {k.rsplit("/", 1)[-1] for k in self._keys(TABLE) + self._keys(REJECTED_TABLE)}
        metadata.check_reports_have_files(reports, names, self.uri("_runs"))
        return reports

    def new_staging(self, run_id: str) -> Path:
        stack = contextlib.ExitStack()
        folder = stack.enter_context(local_scratch(run_id))
        self._scratch[run_id] = stack
        return folder

    def discard_staging(self, run_id: str, staging: Path) -> None:
        stack = self._scratch.pop(run_id, None)
        if stack is not None:
            stack.close()

    def commit(self, run_id: str, staging: Path, report: RunReport, replace_all: bool) -> None:
        local = LakeLayout(staging)
        files = data_files(local.table) + data_files(local.rejected) + data_files(local.index)
        uploads = [str(p.relative_to(staging)) for p in files]
        deletes = []
        if replace_all:
            deletes = self._keys(TABLE) + self._keys(REJECTED_TABLE) + self._keys(INDEX)
        log_key = self.key("_runs", f"{run_id}.commit.json")
        fault("before_commit")
        self._put_json(log_key, {"run_id": run_id, "uploads": uploads, "deletes": deletes})
        # Indexed, not zip(strict=True): that is 3.10 and the job runs on EMR 7's Python 3.9.
        for i, path in enumerate(files):
            rel = uploads[i]
            self._call("uploading " + rel, _upload, Key=self.key(rel), Filename=str(path))
            if i == 0:
                fault("mid_commit")
        self._put_json(self.key("_runs", f"{run_id}.json"), report.to_dict())
        fault("after_report")  # committed; a full refresh's old keys still there (rolled forward)
        self._delete(deletes)
        self._delete([log_key])
        self.discard_staging(run_id, staging)

    def partition_files(self, year: int, month: int) -> list[str]:
        keys = self._keys(TABLE, LakeLayout.partition(year, month))
        return [f"s3://{self.bucket}/{k}" for k in sorted(keys) if k.endswith(".parquet")]

    def index_files(self, year: int, month: int) -> list[str]:
        folder = self.key(INDEX, LakeLayout.partition(year, month)) + "/"
        keys = self._keys(INDEX, LakeLayout.partition(year, month))
        return [  # the partition's own files only: compaction deletes what it lists
            f"s3://{self.bucket}/{k}"
            for k in sorted(keys)
            if k.endswith(".parquet") and "/" not in k[len(folder) :]
        ]

    def rejected_files(self) -> list[str]:
        return self._data_uris(REJECTED_TABLE)

    def table_files(self) -> list[str]:
        return self._data_uris(TABLE)

    def _data_uris(self, table: str) -> list[str]:
        """Data files under a table prefix; keys that are not plain paths are left out."""
        out = []
        for key in sorted(self._keys(table)):
            rel = key[len(self._prefix) :]
            try:
                metadata.data_path(rel)
            except ValueError:
                continue
            out.append(f"s3://{self.bucket}/{key}")
        return out


def _upload(Bucket: str, Key: str, Filename: str) -> None:  # noqa: N803 (boto3's names)
    s3.client().upload_file(Filename, Bucket, Key)
