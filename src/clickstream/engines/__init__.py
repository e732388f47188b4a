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


def get_engine(name: str, **options: Any) -> Engine:
    try:
        target = ENGINES[name]
    except KeyError:
        valid = ", ".join(sorted(ENGINES))
        raise ConfigError(f"unknown engine '{name}' (choose one of: {valid})") from None
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"engine '{name}' needs {err.name}: pip install 'clickstream[{name}]'"
        ) from err
    cls = getattr(module, class_name)
    engine: Engine = cls(**options)
    return engine


__all__ = ["ENGINES", "Engine", "Progress", "StageRequest", "StageResult", "get_engine"]
