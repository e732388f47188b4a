"""Engines that run the contract. Registered by name; each is imported only when chosen."""

from __future__ import annotations

import importlib
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
]
