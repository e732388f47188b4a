"""``kinesis://NAME``: Amazon Kinesis Data Streams behind the Transport interface.

Endpoint and credentials come from the standard AWS chain (``AWS_ENDPOINT_URL`` for a local
server); every call has bounded timeouts and retries (clickstream.awsclient).

- Publish: ``put_records`` in chunks of at most 500 records / 5 MiB, partition key =
  anonymous_user_id (one visitor's events stay in order in one shard); only the records that
  failed are sent again, a bounded number of times. Kinesis assigns sequence numbers itself, so
  after a publisher crash the unfinished chunk is looked up on the stream (``already``): events
  found there are not sent again.
- Consume: one lease per shard and consumer group, kept in the lake
  (``stream/_leases/<group>/<shard>.json``, owner + expiry, renewed on every read, taken over
  once expired); a shard is read from the last sequence number committed in the lake's batch
  files, so the lake is the only checkpoint: a restart re-reads exactly what was not committed.
  Offsets are ``<shard id>:<sequence number>``; there is nothing to acknowledge.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from clickstream.errors import BrokerUnavailableError, ConfigError, StreamError
from clickstream.stream.transports import Records

MAX_RECORDS = 500
MAX_BYTES = 5 * 2**20
PUT_ATTEMPTS = 5
#: Hard bound on one boto call, its retries included (3 attempts x 10 s read timeout + room).
CALL_DEADLINE_S = 35.0
T = TypeVar("T")
LEASE_SECONDS = 30.0


def _seq_key(seq: str) -> tuple[int, str]:
    return len(seq), seq


class KinesisTransport:
    def __init__(self, name: str, lake: str) -> None:
        import boto3

        from clickstream.awsclient import client_config

        self.name = name
        self.endpoint = f"kinesis://{name}"
        self.lake = str(Path(lake).absolute())
        self.client = boto3.session.Session().client("kinesis", config=client_config())
        self._iterators: dict[str, str | None] = {}
        self._group = ""
        self._consumer = ""

    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        from clickstream.awsclient import describe

        try:
            yield
        except ClientError as err:
            raise StreamError(f"{self.endpoint}: {what} failed ({describe(err)})") from err
        except BotoCoreError as err:
            raise BrokerUnavailableError(
                f"{self.endpoint} unreachable while {what} ({describe(err)})"
            ) from err

    def _do(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` (one boto call, botocore's retries included) within CALL_DEADLINE_S: a
        read timeout bounds each read, so an endpoint dripping bytes would hold it forever."""
        from clickstream.stream import deadline

        with self._call(what):
            try:
                return deadline.call_by(time.monotonic() + CALL_DEADLINE_S, fn)
            except deadline.CallTimedOut as err:
                why = (
                    f"stopped: no answer within {deadline.GRACE_S:.0f}s of the stop signal; "
                    "nothing was lost"
                    if err.interrupted
                    else f"no complete answer within {CALL_DEADLINE_S:.0f}s"
                )
                raise BrokerUnavailableError(
                    f"{self.endpoint} unreachable while {what} ({why})"
                ) from None

    # -- publishing ----------------------------------------------------------------------------

    def identity(self) -> str:
        """The stream's creation time: a stream deleted and created again under the same name
        is another stream, whatever a checkpoint says went out to the old one."""
        reply = self._do(
            "describing the stream",
            partial(self.client.describe_stream_summary, StreamName=self.name),
        )
        return str(reply["StreamDescriptionSummary"]["StreamCreationTimestamp"].isoformat())

    def published(self, run_seq: int) -> int | None:
        return None  # Kinesis cannot say; the publisher asks already() for the unfinished chunk

    def publish(
        self, run_seq: int, first: int, payloads: Sequence[bytes], keys: Sequence[str]
    ) -> None:
        records = [{"Data": p, "PartitionKey": k} for p, k in zip(payloads, keys, strict=True)]
        start = 0
        while start < len(records):
            end, size = start, 0
            while end < len(records) and end - start < MAX_RECORDS:
                size += len(records[end]["Data"]) + len(records[end]["PartitionKey"])
                if size > MAX_BYTES and end > start:
                    break
                end += 1
            self._put(records[start:end])
            start = end

    def _put(self, records: list[dict[str, Any]]) -> None:
        for attempt in range(PUT_ATTEMPTS):
            reply = self._do(
                "putting records",
                partial(self.client.put_records, StreamName=self.name, Records=records),
            )
            if not reply.get("FailedRecordCount"):
                return
            results = reply["Records"]
            records = [r for r, res in zip(records, results, strict=True) if "ErrorCode" in res]
            time.sleep(min(2.0, 0.1 * 2**attempt))
        raise BrokerUnavailableError(
            f"{self.endpoint}: {len(records)} records still failing after {PUT_ATTEMPTS} tries "
            "(throughput exceeded?); they were not marked published"
        )

    def already(self, since: datetime, event_ids: set[str]) -> set[str]:
        """Which of ``event_ids`` are on the stream in records written since ``since``."""
        found: set[str] = set()
        for shard in self._shards():
            opened = self._do(
                "reading the stream's tail",
                partial(self.client.get_shard_iterator,
                    StreamName=self.name, ShardId=shard, ShardIteratorType="AT_TIMESTAMP",
                    Timestamp=since,
                ),
            )  # fmt: skip
            it = opened["ShardIterator"]
            while it:
                reply = self._do(
                    "reading the stream's tail",
                    partial(self.client.get_records, ShardIterator=it, Limit=10_000),
                )
                for record in reply["Records"]:
                    with contextlib.suppress(ValueError, TypeError, AttributeError):
                        event_id = json.loads(record["Data"]).get("event_id")
                        if event_id in event_ids:
                            found.add(event_id)
                if not reply["Records"] or reply.get("MillisBehindLatest", 0) == 0:
                    break
                it = reply.get("NextShardIterator")
        return found

    # -- consuming -----------------------------------------------------------------------------

    def _shards(self) -> list[str]:
        reply = self._do("listing shards", lambda: self.client.list_shards(StreamName=self.name))
        shards = [s["ShardId"] for s in reply["Shards"]]
        while reply.get("NextToken"):
            reply = self._do(
                "listing shards", partial(self.client.list_shards, NextToken=reply["NextToken"])
            )
            shards += [s["ShardId"] for s in reply["Shards"]]
        return sorted(shards)

    def _lease_path(self, shard: str) -> Path:
        return Path(self.lake, "stream", "_leases", self._group, f"{shard}.json")

    def _lease_owner(self, shard: str) -> tuple[str, float] | None:
        path = self._lease_path(shard)
        try:
            data = json.loads(path.read_text())
            return str(data["owner"]), float(data["expires"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as err:
            raise StreamError(f"{path}: invalid shard lease ({err})") from err

    def _write_lease(self, shard: str) -> None:
        path = self._lease_path(shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(
            json.dumps({"owner": self._consumer, "expires": time.time() + LEASE_SECONDS})
        )
        os.replace(tmp, path)

    def ensure_group(self, group: str) -> None:
        self._group = group

    def _take_leases(self, consumer: str) -> None:
        """Free or expired shards become ours (under the group's lock), read from the lake's
        last committed sequence number."""
        from clickstream.stream.commit import committed_positions, group_lock
        from clickstream.stream.tables import StreamLayout

        self._consumer = consumer
        layout = StreamLayout(self.lake)
        with group_lock(layout, self._group):
            positions: dict[str, str] | None = None
            taken = 0
            for shard in self._shards():
                lease = self._lease_owner(shard)
                mine = lease is not None and lease[0] == consumer
                if shard in self._iterators and not mine:
                    del self._iterators[shard]  # taken over by another member
                if mine and shard in self._iterators:
                    self._write_lease(shard)  # renew
                    continue
                if lease is not None and not mine and lease[1] > time.time():
                    continue
                if taken and not mine:
                    continue  # one new shard per look: members starting together split them
                taken += 1
                if positions is None:
                    positions = committed_positions(layout, self._group)
                self._write_lease(shard)
                self._iterators[shard] = self._iterator(shard, positions.get(shard))

    def _iterator(self, shard: str, after: str | None) -> str:
        args: dict[str, Any] = {"ShardIteratorType": "TRIM_HORIZON"}
        if after is not None:
            args = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
        reply = self._do(
            "opening a shard iterator",
            lambda: self.client.get_shard_iterator(StreamName=self.name, ShardId=shard, **args),
        )
        return str(reply["ShardIterator"])

    def read(self, group: str, consumer: str, count: int, block_ms: int) -> Records:
        self._take_leases(consumer)
        deadline = time.monotonic() + block_ms / 1000
        while True:
            ids: list[str] = []
            payloads: list[bytes | None] = []
            for shard, it in list(self._iterators.items()):
                if it is None or len(ids) >= count:
                    continue
                limit = count - len(ids)
                reply = self._do(
                    "reading records",
                    partial(self.client.get_records, ShardIterator=it, Limit=limit),
                )
                self._iterators[shard] = reply.get("NextShardIterator")
                for record in reply["Records"]:
                    ids.append(f"{shard}:{record['SequenceNumber']}")
                    payloads.append(record["Data"])
            if ids or time.monotonic() >= deadline:
                return Records(ids, payloads)
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def pending(self, group: str, consumer: str, count: int) -> Records:
        return Records([], [])  # a restart re-reads from the lake's checkpoint instead

    def claim(self, group: str, consumer: str, min_idle_ms: int, count: int) -> Records:
        self._take_leases(consumer)  # expired leases of dead members become ours
        return Records([], [])

    def others_pending(self, group: str, consumer: str) -> int:
        return 0  # nothing is pending on Kinesis: an expired lease's shard is re-read instead

    def owned(self, group: str, consumer: str, ids: Sequence[str]) -> set[str]:
        shards = {i.partition(":")[0] for i in ids}
        mine = set()
        for shard in shards:
            lease = self._lease_owner(shard)
            if lease is not None and lease[0] == consumer:
                mine.add(shard)
        return {i for i in ids if i.partition(":")[0] in mine}

    def ack(self, group: str, ids: Sequence[str]) -> None:
        return None  # the committed batch file is the checkpoint

    def backlog(self, group: str) -> int | None:
        return None  # not cheaply known on Kinesis (GetRecords' MillisBehindLatest is a time)

    def close(self) -> None:
        self.client.close()


def open_kinesis(url: str, lake: str) -> KinesisTransport:
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise ConfigError(f"invalid stream URL ({err}); expected kinesis://STREAM_NAME") from None
    name = parts.netloc
    if not name or parts.path.strip("/"):
        raise ConfigError(f"{url}: expected kinesis://STREAM_NAME")
    return KinesisTransport(name, lake)


def now() -> datetime:
    return datetime.now(UTC)
