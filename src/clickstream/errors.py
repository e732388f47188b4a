"""One exception tree for everything the user can cause or meet.

    ClickstreamError                 root; the CLI prints ``str(err)`` on one line, exit code 1
    ├── ConfigError                  a bad option, setting or config file
    ├── InputError                   input cannot be read as a clickstream
    │   ├── NoInputFilesError        the path matched no *.csv / *.csv.gz file
    │   └── MissingColumnError       a file's header lacks a required column
    ├── LakeError                    the lake is unusable or inconsistent
    │   ├── InvariantError           a run's counts do not reconcile (a bug: nothing is committed)
    │   └── CorruptMetadataError     a commit log or run report failed validation (never applied)
    ├── EngineError                  the engine failed while running the contract
    │   └── EndpointError            S3 did not answer, or refused the connection (retryable)
    ├── DeployError                  an AWS call failed during deploy, status or teardown
    ├── QueryError                   a user's SQL failed or was refused
    └── StreamError                  the stream cannot be published or consumed
        └── BrokerUnavailableError   the broker did not answer after bounded retries (retryable)

``retryable`` marks transient failures that retry code may try again; all current errors are
terminal except where a subclass says otherwise.
"""

from __future__ import annotations


class ClickstreamError(Exception):
    """Root of every error this package raises on purpose."""

    retryable: bool = False
    exit_code: int = 1


class ConfigError(ClickstreamError):
    """A setting, option or config file is invalid."""

    exit_code = 2


class InputError(ClickstreamError):
    """The input cannot be read as a clickstream."""


class NoInputFilesError(InputError):
    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(f"no *.csv or *.csv.gz files found at {location}")


class MissingColumnError(InputError):
    def __init__(self, file: str, column: str, found: list[str]) -> None:
        self.file = file
        self.column = column
        self.found = found
        shown = ", ".join(found) if found else "(empty header)"
        super().__init__(
            f"{file}: required column '{column}' is missing from the header (found: {shown}); "
            "nothing was written"
        )


class LakeError(ClickstreamError):
    """The lake is missing, unreadable or inconsistent."""


class LakeBusyError(LakeError):
    """Another writer holds the lake's lock."""


class InvariantError(LakeError):
    """A run's counts do not reconcile; the run is aborted before commit."""


class CorruptMetadataError(LakeError):
    """A commit log or run report in ``_runs/`` is invalid; nothing in it was acted on."""

    def __init__(self, file: str, message: str) -> None:
        self.file = file
        super().__init__(message)


class EngineError(ClickstreamError):
    """The engine failed while running the contract."""


class EndpointError(EngineError):
    """An S3 endpoint did not answer within the bounded time, or refused the connection."""

    retryable = True

    def __init__(self, endpoint: str, message: str) -> None:
        self.endpoint = endpoint
        super().__init__(message)


class DeployError(ClickstreamError):
    """An AWS call failed during deploy, status or teardown."""


class QueryError(ClickstreamError):
    """A query failed, or was refused because it would modify or escape the lake."""


class StreamError(ClickstreamError):
    """The stream cannot be published or consumed (bad URL, bad state in the lake)."""


class BrokerUnavailableError(StreamError):
    """The broker did not answer after bounded retries; nothing was lost, try again later."""

    retryable = True


def is_interrupt(err: BaseException | None) -> bool:
    """Ctrl-C as DuckDB reports it from inside a query: its InterruptException, or (DuckDB 1.5
    from some calls) a RuntimeError 'Query interrupted'. Never a KeyboardInterrupt."""
    if err is None:
        return False
    if type(err).__name__ == "InterruptException":
        return True
    return isinstance(err, RuntimeError) and str(err).startswith("Query interrupted")
