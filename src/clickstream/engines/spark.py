"""The scale-out engine: the same contract on Apache Spark, native SQL only (no Python UDFs).

The contract's SQL is transpiled from DuckDB's dialect by sqlglot; this module only sets up the
session, reads the CSV, routes rows and writes files.

Reading keeps every record's physical line number without giving up parallelism: files are read
as text lines, which Spark splits into blocks across tasks. One cheap pass counts the lines of
each block (so a line's number is the lines of the earlier blocks plus its place in its block)
and flags any line with an odd number of quotes: only there can a quoted field span lines. A
flagged file is read whole (``multiLine``, one task) so its records parse as on DuckDB; every
other line is parsed by ``from_csv`` with the same options.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot

from clickstream import s3
from clickstream.contract.dialects import SPARK
from clickstream.contract.rules import (
    LAKE_COLUMNS,
    PARTITION_NAMES,
    RAW_FIELDS,
    RAW_LINE_MAX_CHARS,
    contract_select,
    truncated_raw,
)
from clickstream.engines.base import SPARK_JIT_FLAG, Progress, StageRequest, StageResult
from clickstream.errors import EngineError
from clickstream.integrity import escaped_raw, raw_records
from clickstream.lake.layout import LakeLayout
from clickstream.sources import SourceFile

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: Settings that make results engine-independent (and Spark 3.5 / 4 alike).
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionOverwriteMode": "static",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    # The contract's query_params map keeps a repeated key's first value (contract/dialects.py).
    "spark.sql.mapKeyDedupPolicy": "LAST_WIN",
    "spark.ui.showConsoleProgress": "false",
}

#: The JVM of a session we start ourselves (local mode, where driver and executor are one):
#: the JIT flag (see SPARK_JIT_FLAG), and a heap: local mode's default 1 GB makes the cached
#: run spill (1M rows: 61 s vs 55 s).
LOCAL_JVM_CONF = {
    "spark.driver.extraJavaOptions": SPARK_JIT_FLAG,
    "spark.driver.memory": "3g",
}

#: The contract in Spark SQL, rendered once per process.
_CONTRACT_CACHE: dict[str, str] = {}


def spark_contract_sql(view: str) -> str:
    if view not in _CONTRACT_CACHE:
        duck = contract_select(
            f"SELECT * FROM {view}", SPARK, passthrough=("file_index", "ordinal")
        )
        _CONTRACT_CACHE[view] = sqlglot.transpile(duck, read="duckdb", write="spark")[0]
    return _CONTRACT_CACHE[view]


def get_session(master: str | None = None) -> SparkSession:
    """The active session (spark-submit, a cluster) or a new local one."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in SESSION_CONF.items():
            if not key.startswith("spark.ui"):
                active.conf.set(key, value)
        return active
    builder = SparkSession.builder.appName("clickstream-etl")
    if master or not os.environ.get("SPARK_HOME"):
        master = master or "local[*]"
        builder = builder.master(master)
    if master and master.startswith("local"):
        # 200 shuffle partitions (the cluster default) is pure task overhead on one machine.
        builder = builder.config(
            "spark.sql.shuffle.partitions", str(max(4, 2 * (os.cpu_count() or 2)))
        )
        # A local driver listens on loopback only.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
        for key, value in LOCAL_JVM_CONF.items():
            builder = builder.config(key, value)
    builder = builder.config("spark.ui.enabled", "false")
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkEngine:
    name = "spark"

    def __init__(self, master: str | None = None) -> None:
        self.master = master

    def stage(self, request: StageRequest, progress: Progress) -> StageResult:
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        try:
            spark = get_session(self.master)
        except Exception as err:  # Java missing, port in use, ...: a setup problem, not a bug
            raise EngineError(f"could not start Spark: {err}") from err
        try:
            return _SparkStager(spark, request, progress).run()
        except (PySparkException, Py4JError) as err:
            raise EngineError(f"Spark failed: {str(err).splitlines()[0]}") from err


class _SparkStager:
    def __init__(self, spark: SparkSession, request: StageRequest, progress: Progress) -> None:
        self.spark = spark
        self.request = request
        self.progress = progress
        self.files = {s.path: i for i, s in enumerate(request.sources)}
        self._whole: set[str] = set()
        """Files read whole (a record spans lines): numbered by record, not by line."""

    def _lookup(self, df: DataFrame, uri_column: str) -> DataFrame:
        """``df`` with ``source_file`` and ``file_index`` from Spark's URI of each row's file."""
        from pyspark.sql import functions as F

        def normal(column: str) -> Any:
            # Spark may spell a URI differently (file:/ vs file:///, escapes).
            decoded = F.url_decode(F.regexp_replace(column, r"\+", "%2B"))
            return F.regexp_replace(decoded, "^file:/+", "/")

        lookup = self.spark.createDataFrame(
            [(_uri(path), path, i) for path, i in self.files.items()],
            "_uri_key string, source_file string, file_index int",
        )
        lookup = lookup.withColumn("_uri_norm", normal("_uri_key")).drop("_uri_key")
        df = df.withColumn("_uri_norm", normal(uri_column))
        return df.join(F.broadcast(lookup), "_uri_norm", "left").drop("_uri_norm", uri_column)

    def _read_whole(self, files: list[SourceFile]) -> DataFrame:
        """Files that may hold a quoted newline: each read as one (``multiLine``) partition."""
        from pyspark.sql import functions as F

        field_count, positions = files[0].layout
        df = (
            self.spark.read.schema(_schema(field_count))
            .options(multiLine=True, enforceSchema=True, **_CSV_OPTIONS)
            .csv([_uri(f.path) for f in files])
        )
        # One file is one partition, read in order: the id's offset from the file's first id is
        # the record's position in the file.
        df = df.select(
            *_raw_columns(positions),
            "_corrupt",
            F.input_file_name().alias("_uri"),
            F.monotonically_increasing_id().alias("_rid"),
        )
        df = self._lookup(df, "_uri")
        first = F.min("_rid").over(_window("source_file"))
        return df.select("*", (F.col("_rid") - first + 1).alias("ordinal")).drop("_rid")

    def _read_lines(self, text: DataFrame, files: list[SourceFile]) -> DataFrame:
        """Files without a multi-line record: their lines (split across tasks) parsed one by one."""
        from pyspark.sql import functions as F

        field_count, positions = files[0].layout
        ours = text.filter(F.col("source_file").isin([f.path for f in files]))
        parsed = ours.select(
            F.from_csv("value", _ddl(field_count), _LINE_OPTIONS).alias("_r"),
            "source_file",
            "file_index",
            (F.col("_line") - 1).alias("ordinal"),
        )
        fields = _raw_columns(positions, "_r.")
        corrupt = F.col("_r._corrupt").alias("_corrupt")
        return parsed.select(*fields, corrupt, "source_file", "file_index", "ordinal")

    def _numbered_lines(self) -> tuple[DataFrame, set[str]]:
        """Every input line with its physical line number; and the files to read whole."""
        from pyspark.sql import functions as F

        text = self.spark.read.text([_uri(s.path) for s in self.request.sources]).select(
            "value",
            F.col("_metadata.file_path").alias("_uri"),
            F.col("_metadata.file_block_start").alias("_block"),
            F.monotonically_increasing_id().alias("_rid"),
        )
        # Only lines holding a quote need counting (translate is a plain character map).
        odd = F.when(
            F.col("value").contains('"'),
            ((F.length("value") - F.length(F.translate("value", '"', ""))) % 2).cast("int"),
        ).otherwise(F.lit(0))
        blocks = (
            text.groupBy("_uri", "_block")
            .agg(F.count(F.lit(1)).alias("n"), F.min("_rid").alias("r0"), F.max(odd).alias("odd"))
            .collect()
        )
        uris = sorted({b["_uri"] for b in blocks})
        files: dict[str, tuple[str, int]] = {}
        if uris:
            probe = self.spark.createDataFrame([(u, u) for u in uris], "_u string, _key string")
            for r in self._lookup(probe, "_u").collect():
                if r["source_file"] is not None:
                    files[r["_key"]] = (r["source_file"], r["file_index"])
        if any(u not in files for u in uris):
            raise EngineError("Spark reported an input file this run did not list")
        # Blocks of a file in byte order: a line's number is the lines before its block plus its
        # place in the block (ids within one task are consecutive and in file order). The few
        # blocks carry the file's name too, so no row is matched by its URI.
        bases = []
        seen: dict[str, int] = defaultdict(int)
        for b in sorted(blocks, key=lambda b: (b["_uri"], b["_block"])):
            bases.append((b["_uri"], b["_block"], seen[b["_uri"]] - b["r0"], *files[b["_uri"]]))
            seen[b["_uri"]] += b["n"]
        base = self.spark.createDataFrame(
            bases, "_uri string, _block bigint, _base bigint, source_file string, file_index int"
        )
        numbered = text.join(F.broadcast(base), ["_uri", "_block"]).select(
            "value",
            "source_file",
            "file_index",
            (F.col("_base") + F.col("_rid") + 1).alias("_line"),
        )
        whole = {files[b["_uri"]][0] for b in blocks if b["odd"]}
        # Line 1 is the header; blank lines are no records (as on every reader).
        lines = numbered.filter((F.col("_line") > 1) & (F.col("value") != ""))
        return lines, whole

    def _read(self) -> DataFrame:
        """Every record of the run: raw fields, source_file, file_index, ordinal, _fffd."""
        from pyspark.sql import functions as F

        lines, whole = self._numbered_lines()
        self._whole = whole
        groups: dict[tuple[int, tuple[int, ...]], list[SourceFile]] = defaultdict(list)
        for source in self.request.sources:
            groups[source.layout].append(source)
        frames = []
        for files in groups.values():
            split = [f for f in files if f.path not in whole]
            if split:
                frames.append(self._read_lines(lines, split))
            rest = [f for f in files if f.path in whole]
            if rest:
                frames.append(self._read_whole(rest))
        raw = frames[0]
        for frame in frames[1:]:
            raw = raw.unionByName(frame)
        # Invalid UTF-8 decodes to U+FFFD on Spark (DuckDB's reader rejects such records), as
        # does a real U+FFFD: the file's bytes tell them apart (_from_bytes).
        fffd = F.coalesce(F.col("_corrupt").contains("\ufffd"), F.lit(False))
        for name in RAW_FIELDS.values():
            fffd = fffd | F.coalesce(F.col(name).contains("\ufffd"), F.lit(False))
        return raw.withColumn("_fffd", fffd)

    def run(self) -> StageResult:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        raw = self._read().persist(StorageLevel.MEMORY_AND_DISK)
        self.progress("reading files", None)
        if raw.filter(F.col("source_file").isNull()).limit(1).count():
            raise EngineError("Spark reported an input file this run did not list")
        raw = self._from_bytes(raw)
        raw.filter(~F.col("_malformed")).createOrReplaceTempView("clickstream_raw")
        staged = self.spark.sql(spark_contract_sql("clickstream_raw"))
        staged = staged.withColumn("event_time", F.col("event_time").cast("timestamp_ntz"))
        staged = staged.persist(StorageLevel.MEMORY_AND_DISK)
        malformed = raw.filter(F.col("_malformed")).select(
            "source_file",
            "file_index",
            "ordinal",
            # As integrity.escaped_raw writes it: backslashes doubled; U+FFFD ones from bytes.
            F.coalesce(
                "_text",
                F.regexp_replace(
                    F.regexp_replace(F.coalesce("_corrupt", _csv_line()), "[\\r\\n]+$", ""),
                    r"\\",
                    r"\\\\",
                ),
            ).alias("raw_line"),
        )
        result = StageResult()
        counts = raw.groupBy("source_file").count().collect()
        result.rows_read_by_file = {s.path: 0 for s in self.request.sources}
        result.rows_read_by_file.update({r["source_file"]: r["count"] for r in counts})
        self.progress("writing quarantine", None)
        result.rejected_by_reason, already_quarantined = self._write_rejected(staged, malformed)
        self.progress("writing lake", None)
        result.partitions = self._write_lake(staged)
        result.rows_written = sum(result.partitions.values())
        valid = staged.filter(F.col("reject_reason").isNull()).count()
        result.rows_duplicate = valid - result.rows_written + already_quarantined
        staged.unpersist()
        raw.unpersist()
        return result

    def _from_bytes(self, raw: DataFrame) -> DataFrame:
        """``_malformed`` for every record, and ``_text`` for those Spark decoded with U+FFFD.

        Only those few records are read back by the driver, one pass per file: the ones whose
        bytes are not UTF-8 are malformed (as on DuckDB), with their raw text as
        ``integrity.escaped_raw`` writes it (invalid bytes as ``\\xNN``); a real U+FFFD in
        valid text is data, as on DuckDB.
        """
        from pyspark.sql import functions as F

        hits = raw.filter(F.col("_fffd")).select("source_file", "ordinal").collect()
        if not hits:
            return raw.withColumn("_malformed", F.col("_corrupt").isNotNull()).withColumn(
                "_text", F.lit(None).cast("string")
            )
        ordinals: dict[str, list[int]] = defaultdict(list)
        for hit in hits:
            ordinals[hit["source_file"]].append(int(hit["ordinal"]))
        census = {s.path: s.census for s in self.request.sources}
        limit = 4 * RAW_LINE_MAX_CHARS + 8
        rows = []
        for path, found in ordinals.items():
            known = census.get(path)
            blanks = known.blank_at if known is not None else ()
            # line_number (ordinal + 1) is the physical line, or the record's number in a file
            # read whole; raw_records counts blank lines but not quoted newlines.
            logical = {
                o: _with_blanks(o + 1, blanks) if path in self._whole else o + 1 for o in found
            }
            data = raw_records(path, list(logical.values()), limit)
            for o, n in logical.items():
                record = data.get(n, b"")
                rows.append((path, o, escaped_raw(record), not _utf8(record, len(record) < limit)))
        fixed = self.spark.createDataFrame(
            rows, "source_file string, ordinal bigint, _text string, _invalid boolean"
        )
        return raw.join(F.broadcast(fixed), ["source_file", "ordinal"], "left").withColumn(
            "_malformed", F.col("_corrupt").isNotNull() | F.coalesce("_invalid", F.lit(False))
        )

    def _write_rejected(
        self, staged: DataFrame, malformed: DataFrame
    ) -> tuple[dict[str, int], int]:
        """Quarantine, skipping records an earlier run already quarantined (as DuckDB does)."""
        from pyspark.sql import functions as F

        rule = staged.filter(F.col("reject_reason").isNotNull()).select(
            "source_file",
            "file_index",
            (F.col("ordinal") + 1).alias("line_number"),
            "raw_line",
            "reject_reason",
        )
        bad = malformed.select(
            "source_file",
            "file_index",
            (F.col("ordinal") + 1).alias("line_number"),
            F.expr(_redact_sql("raw_line")).alias("raw_line"),
            F.lit("malformed_csv").alias("reject_reason"),
        )
        rejects = rule.unionByName(bad).withColumn("run_id", F.lit(self.request.run_id))
        rejects = rejects.withColumn("line_number", F.col("line_number").cast("bigint"))
        total = rejects.count()
        earlier = self.request.lake.rejected_files() if self.request.dedupe_against_lake else []
        if earlier and total:
            ours = [s.path for s in self.request.sources]
            seen = (
                self.spark.read.parquet(*earlier)
                .filter(F.col("source_file").isin(ours))
                .select("source_file", "line_number", "raw_line")
                .distinct()
            )
            rejects = rejects.join(seen, ["source_file", "line_number", "raw_line"], "left_anti")
        counts = {
            r["reject_reason"]: r["count"]
            for r in rejects.groupBy("reject_reason").count().collect()
        }
        if counts:
            uri = self._output_uri("rejected")
            (
                rejects.orderBy("file_index", "line_number")
                .select("source_file", "line_number", "raw_line", "reject_reason", "run_id")
                .coalesce(1)
                .write.mode("overwrite")
                .parquet(uri)
            )
            out = self._fetch(uri, "rejected")
            target = (
                self.request.staging / "clickstream_rejected" / f"{self.request.run_id}.parquet"
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            [part] = list(out.glob("part-*.parquet"))
            os.replace(part, target)
            shutil.rmtree(out)
        return counts, total - sum(counts.values())

    def _output_uri(self, name: str) -> str:
        """Where Spark writes: the local staging folder in local mode, else the cluster's
        default filesystem (HDFS on EMR), which every executor can reach."""
        if (self.spark.sparkContext.master or "local").startswith("local"):
            return str(self.request.staging / f"_spark_{name}")
        return f"/tmp/clickstream/{self.request.run_id}/{name}"

    def _fetch(self, uri: str, name: str) -> Path:
        """The written files as a local folder on the driver (copied from HDFS on a cluster)."""
        local = self.request.staging / f"_spark_{name}"
        if uri != str(local):
            jvm: Any = self.spark.sparkContext._jvm
            conf = self.spark.sparkContext._jsc.hadoopConfiguration()
            path = jvm.org.apache.hadoop.fs.Path(uri)
            fs = path.getFileSystem(conf)
            fs.copyToLocalFile(True, path, jvm.org.apache.hadoop.fs.Path(str(local)), True)
        return local

    def _existing_ids(self, touched: list[tuple[int, int]]) -> DataFrame | None:
        if not self.request.dedupe_against_lake:
            return None
        from clickstream.lake.files import lake_runs, writer_files

        lake = self.request.lake
        runs = lake_runs(lake.root)
        files = [
            f for y, m in touched for f in writer_files(lake.root, lake.partition_files(y, m), runs)
        ]
        if not files:
            return None
        return self.spark.read.parquet(*files).select("event_id").distinct()

    def _write_lake(self, staged: DataFrame) -> dict[tuple[int, int], int]:
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        valid = staged.filter(F.col("reject_reason").isNull())
        touched = [
            (r["year"], r["month"]) for r in valid.select("year", "month").distinct().collect()
        ]
        seen = self._existing_ids(touched)
        if seen is not None:
            # Every copy of an id already in the lake goes, so this may come before the
            # first-occurrence rule.
            valid = valid.join(seen, "event_id", "left_anti")
        # One shuffle serves the dedupe and the write: an event id falls in one month (its
        # time is part of it), so the window runs within the month's partition, and its sort
        # (year, month first) is the order the partitioned writer needs.
        by_month = valid.repartition(*PARTITION_NAMES)
        # The first occurrence wins: files in path order, then position in the file (as DuckDB).
        first = Window.partitionBy(*PARTITION_NAMES, "event_id").orderBy("file_index", "ordinal")
        kept = by_month.withColumn("_n", F.row_number().over(first)).filter("_n = 1")
        uri = self._output_uri("lake")
        kept.select(*LAKE_COLUMNS, *PARTITION_NAMES).write.partitionBy(*PARTITION_NAMES).mode(
            "overwrite"
        ).parquet(uri)
        # The rows written, from the files just written (footers and partition folders only:
        # no second pass over the data, and no cache of it).
        # (A schema given: an empty run wrote no file to infer one from.)
        reader = self.spark.read.schema(", ".join(f"{n} int" for n in PARTITION_NAMES))
        written = reader.parquet(uri).groupBy(*PARTITION_NAMES).count().collect()
        counts = {(r["year"], r["month"]): r["count"] for r in written}
        out = self._fetch(uri, "lake")
        target = self.request.staging / "clickstream"
        for year, month in counts:
            folder = LakeLayout.partition(year, month)
            parts = sorted((out / folder).glob("part-*.parquet"))
            (target / folder).mkdir(parents=True, exist_ok=True)
            for i, part in enumerate(parts):
                os.replace(part, target / folder / f"{self.request.run_id}_{i}.parquet")
        shutil.rmtree(out)
        return {k: v for k, v in counts.items() if v}


def _uri(path: str) -> str:
    """What Spark reads: s3:// URIs as they are (EMRFS), local paths as file:// URIs."""
    return path if s3.is_s3(path) else Path(path).as_uri()


#: The CSV dialect both readers use: RFC 4180 quoting, every field text, broken records kept.
_CSV_OPTIONS = {
    "header": "true",
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": "_corrupt",
    "quote": '"',
    "escape": '"',
    "encoding": "UTF-8",
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}


#: from_csv parses one line: no header, no file encoding (the text reader decoded it).
_LINE_OPTIONS = {k: v for k, v in _CSV_OPTIONS.items() if k not in ("header", "encoding")}


def _ddl(field_count: int) -> str:
    return ", ".join([*(f"c{i} STRING" for i in range(field_count)), "_corrupt STRING"])


def _schema(field_count: int) -> Any:
    from pyspark.sql.types import StringType, StructField, StructType

    fields = [StructField(f"c{i}", StringType()) for i in range(field_count)]
    return StructType([*fields, StructField("_corrupt", StringType())])


def _raw_columns(positions: tuple[int, ...], prefix: str = "") -> list[Any]:
    from pyspark.sql import functions as F

    # What zip(strict=True) checked; that is 3.10 and EMR 7's Python is 3.9.
    if len(positions) != len(RAW_FIELDS):
        raise EngineError(
            f"{len(positions)} column positions for {len(RAW_FIELDS)} contract columns"
        )
    return [
        F.col(f"{prefix}c{p}").alias(name)
        for p, name in zip(positions, RAW_FIELDS.values())  # noqa: B905 (length checked)
    ]


def _window(column: str) -> Any:
    from pyspark.sql import Window

    return Window.partitionBy(column)


def _csv_line() -> Any:
    """A malformed record's raw fields joined back into a line (when Spark kept no text)."""
    from pyspark.sql import functions as F

    return F.concat_ws(",", *(F.coalesce(F.col(c), F.lit("")) for c in RAW_FIELDS.values()))


def _redact_sql(column: str) -> str:
    """Redacted and cut as the contract's raw_line (rules.truncated_raw)."""
    duck = truncated_raw(SPARK.redact_userinfo(column))
    return sqlglot.transpile(duck, read="duckdb", write="spark")[0]


def _with_blanks(record: int, blank_at: tuple[int, ...]) -> int:
    """The logical line (blank lines counted, header = 1) of a file's ``record``-th record
    (header = 1), given its blank lines' logical numbers."""
    line = record
    for blank in sorted(blank_at):
        if blank > line:
            break
        line += 1
    return line


def _utf8(data: bytes, whole: bool) -> bool:
    """Whether ``data`` is UTF-8 (a sequence cut at its end is fine unless it is ``whole``)."""
    import codecs

    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=whole)
    except UnicodeDecodeError:
        return False
    return True
