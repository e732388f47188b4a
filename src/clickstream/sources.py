"""Finding input files and checking their headers before anything is read in bulk."""

from __future__ import annotations

import csv
import glob
import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path

from clickstream.contract.schema import REQUIRED_INPUT_COLUMNS
from clickstream.errors import InputError, MissingColumnError, NoInputFilesError

SUFFIXES = (".csv", ".csv.gz")
_HEADER_PROBE_BYTES = 64 * 1024


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

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.path, self.size, self.mtime_ns)

    @property
    def layout(self) -> tuple[int, tuple[int, ...]]:
        """Files with the same layout can be read by one CSV scan."""
        return (self.field_count, self.positions)


def _is_input(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def discover(location: str) -> list[Path]:
    """Every *.csv / *.csv.gz at ``location`` (a file, a folder searched recursively, or a glob)."""
    path = Path(location).expanduser()
    if path.is_file():
        found = [path]
    elif path.is_dir():
        found = [p for p in path.rglob("*") if p.is_file() and _is_input(p.name)]
    elif glob.has_magic(location):
        found = [Path(p) for p in glob.glob(os.path.expanduser(location), recursive=True)]
        found = [p for p in found if p.is_file() and _is_input(p.name)]
    else:
        raise InputError(f"input not found: {location}")
    if not found:
        raise NoInputFilesError(location)
    return sorted({p.resolve() for p in found})


def read_header(path: Path) -> list[str]:
    """The header row's field names, as written (BOM removed)."""
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as fh:
            head = fh.read(_HEADER_PROBE_BYTES)
    except (OSError, EOFError) as err:
        raise InputError(f"{path}: cannot read ({err})") from err
    return parse_header(head)


def parse_header(head: bytes) -> list[str]:
    text = head.decode("utf-8-sig", errors="replace")
    first = text.splitlines()[0] if text else ""
    return next(csv.reader(io.StringIO(first)), [])


def header_positions(file: str, header: list[str]) -> tuple[int, ...]:
    """Map each required column to its header position; raise if one is missing.

    >>> header_positions("f.csv", [" URL", "time", "Anonymous_User_Id", "os", "browser",
    ...                             "x", "screen_resolution"])
    (2, 0, 1, 4, 3, 6)
    """
    normalised: dict[str, int] = {}
    for i, name in enumerate(header):
        normalised.setdefault(name.strip().lower(), i)
    positions = []
    for column in REQUIRED_INPUT_COLUMNS:
        if column not in normalised:
            raise MissingColumnError(file, column, [h.strip() for h in header if h.strip()])
        positions.append(normalised[column])
    return tuple(positions)


def find_sources(location: str) -> list[SourceFile]:
    """Discover and header-check the inputs at a local path, glob or s3:// URI."""
    from clickstream import s3

    if s3.is_s3(location):
        return _inspect_s3(location)
    return inspect(discover(location))


def _inspect_s3(location: str) -> list[SourceFile]:
    import fnmatch
    import zlib

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
        body = (
            s3.client()
            .get_object(Bucket=bucket, Key=obj["Key"], Range=f"bytes=0-{_HEADER_PROBE_BYTES - 1}")[
                "Body"
            ]
            .read()
        )
        if uri.lower().endswith(".gz"):
            body = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body)
        header = parse_header(body)
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
