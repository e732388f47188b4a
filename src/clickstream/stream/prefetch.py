"""Overlap producing the next item with using the current one: an iterator run in a thread.

The publisher encodes the next chunk in DuckDB (which releases the GIL) while the broker stores
the current one. Items keep their order; an error in the producer is raised to the consumer at
the item where it happened; close() stops the thread and waits for it, so whatever the producer
reads from (a DuckDB connection) can be closed safely afterwards.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()


class ReadAhead(Generic[T]):
    def __init__(self, source: Iterator[T], depth: int = 2) -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clickstream-read-ahead")
        self._thread.daemon = True
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put(item):
                    return
        except BaseException as err:  # handed to the consumer, raised there
            self._put(_Failure(err))
            return
        self._put(_DONE)

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error
