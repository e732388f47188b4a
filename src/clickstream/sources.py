"""Finding input files and checking their headers before anything is read in bulk."""

from __future__ import annotations

import csv
import glob
import gzip
import io
import os
import stat
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from clickstream.contract.schema import REQUIRED_INPUT_COLUMNS
from clickstream.errors import InputError, MissingColumnError, NoInputFilesError
from clickstream.integrity import MAX_RECORD_BYTES, Census

SUFFIXES = (".csv", ".csv.gz")
#: An uncompressed local file whose last line has no newline yet, changed less than this long
#: ago (or dated in the future), is taken as still being written and waits for a later run.
SETTLE_SECONDS = 60
#: The header is read in steps of this size until its line ends (a wide file has a long header).
_HEADER_STEP_BYTES = 64 * 1024
#: Files that are often misnamed .csv: named in the error instead of a confusing header message.
_NOT_CSV = (
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x1f\x8b", "gzip data without a .gz suffix (rename it to .csv.gz)"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"PAR1", "a Parquet file"),
    (b"\xff\xfe", "UTF-16 text (save it as UTF-8)"),
    (b"\xfe\xff", "UTF-16 text (save it as UTF-8)"),
)


@dataclass(frozen=True)
class SourceFile:
    """One input file, identified for idempotency by path, size and modification time."""

    path: str
    size: int
    mtime_ns: int
    field_count: int
    """How many fields the header has."""
    positions: tuple[int, ...]
    """0-based header position of each REQUIRED_INPUT_COLUMNS entry, in contract order."""
    census: Census | None = field(default=None, compare=False, repr=False)
    """The independent count of its records (``integrity``), once taken; readers use its
    shape (blank lines, an unclosed quote) to number and group records."""

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.path, self.size, self.mtime_ns)

    @property
    def layout(self) -> tuple[int, tuple[int, ...]]:
        """Files with the same layout can be read by one CSV scan."""
        return (self.field_count, self.positions)


def _is_input(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def _kind(path: Path) -> str:
    mode = path.stat().st_mode
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a file"


def _not_read(path: Path) -> str:
    """Why a *.csv found in a folder or glob is no input (a FIFO would block the reader)."""
    if path.is_symlink() and not path.exists():
        return "a symlink to nothing"
    try:
        return _kind(path)
    except OSError as err:
        return f"cannot stat it: {err.strerror or err}"


def discover(location: str) -> list[Path]:
    """Every *.csv / *.csv.gz at ``location`` (a file, a folder searched recursively, or a glob)."""
    return discover_inputs(location)[0]


def discover_inputs(location: str) -> tuple[list[Path], list[tuple[str, str]]]:
    """The regular *.csv / *.csv.gz files at ``location``, and (path, why) for each other thing
    so named in a folder or glob (a FIFO, socket or device, a dangling symlink): never read."""
    path = Path(location).expanduser()
    if path.is_file():
        candidates = [path]
    elif path.is_dir():
        candidates = [p for p in path.rglob("*") if _is_input(p.name)]
    elif glob.has_magic(location):
        candidates = [Path(p) for p in glob.glob(os.path.expanduser(location), recursive=True)]
        candidates = [p for p in candidates if _is_input(p.name)]
    elif path.exists():
        raise InputError(f"{location}: not a regular file or folder ({_kind(path)})")
    else:
        raise InputError(f"input not found: {location}")
    found = [p for p in candidates if p.is_file()]
    skipped = sorted(
        (str(p.absolute()), _not_read(p)) for p in candidates if not p.is_file() and not p.is_dir()
    )
    if not found and skipped:
        raise InputError(
            f"no regular *.csv or *.csv.gz file at {location}: "
            f"{skipped[0][0]} (not read: {skipped[0][1]})"
            + (f" and {len(skipped) - 1} more" if len(skipped) > 1 else "")
        )
    if not found:
        raise NoInputFilesError(location)
    return sorted({p.resolve() for p in found}), skipped


def read_header(path: Path) -> list[str]:
    """The header row's field names, as written (BOM removed)."""
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as fh:
            head = b""
            while b"\n" not in head and len(head) <= MAX_RECORD_BYTES:
                step = fh.read(_HEADER_STEP_BYTES)
                if not step:
                    break
                head += step
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"{path}: cannot read ({err})") from err
    return parse_header(str(path), head)


def parse_header(file: str, head: bytes) -> list[str]:
    r"""The fields of the first line of ``head``, which must hold that whole line.

    >>> parse_header("f.csv", b'\xef\xbb\xbfurl,"time",os\r\nx,y,z')
    ['url', 'time', 'os']
    """
    for magic, kind in _NOT_CSV:
        if head.startswith(magic):
            raise InputError(f"{file}: this is {kind}, not CSV text; nothing was written")
    end = head.find(b"\n")
    first = head if end < 0 else head[:end]
    if b"\r" in first.rstrip(b"\r"):
        raise InputError(
            f"{file}: line 1: a carriage return (\\r) that does not end the line (CR-only line "
            "endings?); use LF or CRLF line endings; nothing was written"
        )
    if end < 0 and len(head) > MAX_RECORD_BYTES:
        raise InputError(
            f"{file}: the header line is longer than {MAX_RECORD_BYTES:,} bytes; "
            "nothing was written"
        )
    if b"\x00" in first:
        raise InputError(
            f"{file}: the header holds NUL bytes (a binary file?); nothing was written"
        )
    text = first.decode("utf-8-sig", errors="replace").rstrip("\r")
    try:
        return next(csv.reader(io.StringIO(text), strict=True), [])
    except csv.Error as err:
        raise InputError(
            f"{file}: the header is not valid CSV ({err}); nothing was written"
        ) from err


def header_positions(file: str, header: list[str]) -> tuple[int, ...]:
    """Map each required column to its header position; raise if one is missing.

    >>> header_positions("f.csv", [" URL", "time", "Anonymous_User_Id", "os", "browser",
    ...                             "x", "screen_resolution"])
    (2, 0, 1, 4, 3, 6)
    """
    normalised: dict[str, int] = {}
    for i, name in enumerate(header):
        key = name.strip().lower()
        if key in normalised and key in REQUIRED_INPUT_COLUMNS:
            raise InputError(
                f"{file}: the header names column '{key}' twice (fields {normalised[key] + 1} and "
                f"{i + 1}); nothing was written"
            )
        normalised.setdefault(key, i)
    positions = []
    for column in REQUIRED_INPUT_COLUMNS:
        if column not in normalised:
            raise MissingColumnError(file, column, [h.strip() for h in header if h.strip()])
        positions.append(normalised[column])
    return tuple(positions)


def find_sources(location: str) -> list[SourceFile]:
    """Discover and header-check the inputs at a local path, glob or s3:// URI."""
    return find_inputs(location)[0]


def find_inputs(location: str) -> tuple[list[SourceFile], list[tuple[str, str]]]:
    """``find_sources``, and the things named like inputs that are not read (and why)."""
    from clickstream import s3

    if s3.is_s3(location):
        return _inspect_s3(location), []
    paths, skipped = discover_inputs(location)
    return inspect(paths), skipped


def _s3_head(uri: str, size: int) -> bytes:
    """The object's first line (decompressed), fetched in growing ranges."""
    from clickstream import s3

    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if uri.lower().endswith(".gz") else None
    head = b""
    offset = 0
    while b"\n" not in head and len(head) <= MAX_RECORD_BYTES and offset < size:
        body = s3.get_object(uri, f"bytes={offset}-{offset + _HEADER_STEP_BYTES - 1}")
        try:
            raw = body.read()
        except Exception as err:  # botocore streaming errors are not OSError
            raise InputError(f"cannot read {uri}: {s3.error_message(err)}") from err
        if not raw:
            break
        offset += len(raw)
        try:
            head += inflater.decompress(raw) if inflater else raw
        except zlib.error as err:
            raise InputError(f"{uri}: corrupt gzip data ({err})") from err
    return head


def _inspect_s3(location: str) -> list[SourceFile]:
    import fnmatch

    from clickstream import s3

    magic = glob.has_magic(location)
    prefix = (
        location[: min(location.index(c) for c in "*?[" if c in location)] if magic else location
    )
    objects = [o for o in s3.list_objects(prefix) if _is_input(o["Key"])]
    bucket, _ = s3.split(location)
    found = []
    for obj in objects:
        uri = f"s3://{bucket}/{obj['Key']}"
        if magic and not fnmatch.fnmatchcase(uri, location):
            continue
        found.append((uri, obj))
    if not found:
        raise NoInputFilesError(location)
    sources = []
    for uri, obj in sorted(found, key=lambda item: item[0]):
        header = parse_header(uri, _s3_head(uri, int(obj["Size"])))
        positions = header_positions(uri, header)
        mtime_ns = int(obj["LastModified"].timestamp() * 1_000_000_000)
        sources.append(SourceFile(uri, int(obj["Size"]), mtime_ns, len(header), positions))
    return sources


def inspect(paths: list[Path]) -> list[SourceFile]:
    """Stat and header-check every file; the first bad file stops the run before any write."""
    sources = []
    for path in paths:
        header = read_header(path)
        positions = header_positions(str(path), header)
        st = path.stat()
        sources.append(SourceFile(str(path), st.st_size, st.st_mtime_ns, len(header), positions))
    return sources


def still_being_written(source: SourceFile, now_ns: int) -> str:
    """Why ``source`` looks half-written ('' when it does not).

    A writer that is mid-line leaves a last line without its newline; ingesting it, then the
    finished line once the file grows, would put one record in the lake twice (a partial and a
    whole row). So such a file is left for a later run, whole, until it has not changed for
    ``SETTLE_SECONDS``. A .gz is complete or fails as truncated, and an S3 object is only ever
    seen whole, so neither waits.
    """
    from clickstream import s3

    if s3.is_s3(source.path) or source.path.lower().endswith(".gz") or source.size == 0:
        return ""
    age = (now_ns - source.mtime_ns) / 1e9
    if age >= SETTLE_SECONDS:
        return ""
    try:
        with open(source.path, "rb") as fh:
            fh.seek(source.size - 1)
            last = fh.read(1)
    except OSError as err:
        raise InputError(f"{source.path}: cannot read ({err.strerror or err})") from err
    if last == b"\n":
        return ""
    return (
        f"still being written: its last line has no newline and it changed {max(age, 0):.0f} s "
        f"ago; it is read once unchanged for {SETTLE_SECONDS} s"
    )


def continues_cut_line(source: SourceFile, run_id: str, size_then: int) -> str:
    """Why ``source`` is not read ('' when it may be): run ``run_id`` ingested it at
    ``size_then`` bytes with a last line that had no newline, and it has grown since without a
    newline at that point, so the writer resumed that line. Read again, the finished line would
    be a second row beside the cut one already in the lake. A .gz is left alone (its size is
    not a text offset)."""
    from clickstream import s3

    if source.size <= size_then or source.path.lower().endswith(".gz"):
        return ""
    try:
        if s3.is_s3(source.path):
            body = s3.get_object(source.path, f"bytes={size_then}-{size_then}")
            try:
                following = bytes(body.read(1))
            finally:
                body.close()
        else:
            with open(source.path, "rb") as fh:
                fh.seek(size_then)
                following = fh.read(1)
    except OSError as err:
        raise InputError(f"{source.path}: cannot read ({err.strerror or err})") from err
    if following in (b"\n", b"\r"):
        return ""  # the line was whole; the new ones follow it
    return (
        f"it grew after run {run_id} ingested its last line without a newline: that line was "
        "cut short in the lake and continues now; not read, so no record lands twice: rerun "
        "with --full-refresh (all inputs) to rebuild it whole"
    )
