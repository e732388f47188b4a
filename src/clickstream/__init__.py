"""clickstream: raw page-view CSV -> validated, enriched, partitioned Parquet lake."""

from clickstream.errors import ClickstreamError

__version__ = "0.1.0"
__all__ = ["ClickstreamError", "__version__"]
