"""Counting every serialization of an ndarray while a session is open.

Pickling is caught at its source: a reducer for `np.ndarray` in `copyreg.dispatch_table`, which
every pickler consults (the C pickler, `multiprocessing`'s ForkingPickler, cloudpickle). It counts
the event for every open session, then defers to numpy's own `ndarray.__reduce__` (the reducer is
not told the pickle protocol). In strict mode it raises `SerializationError` instead.

The project's own codecs (JSON, bytes, IPC headers) call `record_encode()` whenever they encode an
array, so those count too.
"""

from __future__ import annotations

import copyreg
import threading

import numpy as np

from .errors import SerializationError

_lock = threading.Lock()
_watchers: list["SerializationWatch"] = []
_saved_reducers: dict[type, object] = {}
_WATCHED_TYPES = (np.ndarray,)


class SerializationWatch:
    """One session's view of serialization events. `events` counts; `strict` raises."""

    __slots__ = ("events", "strict", "last_kind")

    def __init__(self, strict: bool = False):
        self.events = 0
        self.strict = strict
        self.last_kind = None

    def __enter__(self):
        start_watching(self)
        return self

    def __exit__(self, *exc):
        stop_watching(self)
        return False


def _record(kind: str, description: str) -> None:
    strict = None
    for watch in tuple(_watchers):
        watch.events += 1
        watch.last_kind = kind
        if watch.strict:
            strict = watch
    if strict is not None:
        raise SerializationError(
            f"strict serialization: {description} while a session was open")


def _reduce_ndarray(array: np.ndarray):
    _record("pickle", f"an ndarray {array.shape} {array.dtype} was pickled")
    return array.__reduce__()


def record_encode(array, codec: str) -> None:
    """Called by the project's own codecs each time they encode an array."""
    if _watchers:
        _record(codec, f"an array was encoded by the {codec} codec")


def start_watching(watch: SerializationWatch) -> None:
    """Counts ndarray pickling for `watch` from now on: installs the counting reducer in
    copyreg.dispatch_table for the first watcher (keeping any reducer there). Thread-safe."""
    with _lock:
        if not _watchers:
            for t in _WATCHED_TYPES:
                if t in copyreg.dispatch_table:
                    _saved_reducers[t] = copyreg.dispatch_table[t]
                copyreg.dispatch_table[t] = _reduce_ndarray
        if watch not in _watchers:
            _watchers.append(watch)


def stop_watching(watch: SerializationWatch) -> None:
    """Stops counting for `watch`; the last watcher out restores the reducers that were there.
    Thread-safe."""
    with _lock:
        if watch in _watchers:
            _watchers.remove(watch)
        if not _watchers:
            for t in _WATCHED_TYPES:
                if copyreg.dispatch_table.get(t) is _reduce_ndarray:
                    if t in _saved_reducers:
                        copyreg.dispatch_table[t] = _saved_reducers.pop(t)
                    else:
                        del copyreg.dispatch_table[t]

