"""Engines that run the contract. Registered by name; each is imported only when chosen."""

from __future__ import annotations

import importlib
import re
from typing import Any

from clickstream.engines.base import Engine, Progress, StageRequest, StageResult
from clickstream.errors import ConfigError

#: engine name -> "module:Class" (lazy, so choosing DuckDB never imports pyspark)
ENGINES: dict[str, str] = {
    "duckdb": "clickstream.engines.duckdb:DuckDBEngine",
    "spark": "clickstream.engines.spark:SparkEngine",
}

#: engine name -> the options it takes; any other option given is refused, never dropped.
ENGINE_OPTIONS: dict[str, tuple[str, ...]] = {
    "duckdb": ("memory_limit", "threads"),
    "spark": ("master",),
}

#: Why an option does not apply, and what to do instead.
_HINTS = {
    "master": "it is a Spark option",
    "memory_limit": "size Spark with spark-submit --driver-memory/--executor-memory",
    "threads": "size Spark with --master local[N] or the cluster's executors",
}


#: Bounds of the sizing options: beyond them an engine fails deep inside (a C++ stack for
#: threads=99999999999, "out of memory" for a few bytes), so they are refused up front.
MAX_THREADS = 1024
MIN_MEMORY_BYTES = 64 * 1024**2
MAX_MEMORY_BYTES = 1024**5
_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4})
_SIZE_RE = re.compile(r"^\s*([0-9]{1,20}(?:\.[0-9]{1,20})?)\s*([a-z]{1,3})\s*$", re.IGNORECASE)


def memory_bytes(text: str) -> int:
    """Bytes in a size such as ``512MB`` or ``4GiB``; ConfigError unless 64 MiB to 1 PiB.

    >>> memory_bytes("2GB"), memory_bytes(" 1.5 gib ")
    (2000000000, 1610612736)
    """
    match = _SIZE_RE.match(text)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if not match or unit is None:
        raise ConfigError(
            f"invalid memory limit '{text}' (--memory-limit takes a size such as 512MB or 4GB; "
            "units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        )
    size = int(float(match.group(1)) * unit)
    if not MIN_MEMORY_BYTES <= size <= MAX_MEMORY_BYTES:
        raise ConfigError(f"invalid memory limit '{text}' (--memory-limit: 64MiB to 1024TiB)")
    return size


def _check(option: str, value: Any) -> None:
    if option == "threads" and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_THREADS
    ):
        raise ConfigError(f"invalid --threads {value} (1 to {MAX_THREADS}; 0 means all cores)")
    if option == "memory_limit":
        memory_bytes(str(value))


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def get_engine(name: str, **options: Any) -> Engine:
    """The named engine, built with the options it supports (``None`` means not given).

    Raises ConfigError for an unknown engine, or an option the engine does not take.
    """
    try:
        target = ENGINES[name]
    except KeyError:
        valid = ", ".join(sorted(ENGINES))
        raise ConfigError(f"unknown engine '{name}' (choose one of: {valid})") from None
    given = {k: v for k, v in options.items() if v is not None}
    for option in given:
        if option not in ENGINE_OPTIONS[name]:
            raise ConfigError(
                f"the {name} engine does not take {_flag(option)} ({_HINTS.get(option, '')})"
            )
        _check(option, given[option])
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"engine '{name}' needs {err.name}: pip install 'clickstream[{name}]'"
        ) from err
    cls = getattr(module, class_name)
    engine: Engine = cls(**given)
    return engine


__all__ = [
    "ENGINES",
    "ENGINE_OPTIONS",
    "Engine",
    "Progress",
    "StageRequest",
    "StageResult",
    "get_engine",
    "memory_bytes",
]
