"""What the remote executors share (`executor: process`, remotemedia/ipc; `executor: ray`,
remotemedia/ray): the stand-in node's class per wrapped node, the checks every remote node
must pass, and the failure policy (`on_error` fail / skip / restart) with its accounting.

A stand-in node mixes in `RemoteFailures` and provides `_inflight` (request id -> request with
`is_frame` and `abandoned`), `_on_error`, `_discard()` (drop the dead worker or actor) and
`_start()` (start a new one), and `runs_in` (a phrase naming it, "worker pid 123").
"""

from __future__ import annotations

import time
from collections import deque

from .engine.errors import RemoteMediaError
from .engine.node import Node

#: more restarts than this within RESTART_WINDOW_S seconds raise instead of restarting again
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0


def proxy_class(base: type[Node], cls: type[Node], prefix: str, cache: dict) -> type[Node]:
    """A `base` subclass that looks like `cls` to the engine (name, params, inputs, accepts,
    requires), made once per wrapped class and kept in `cache`."""
    proxy = cache.get(cls)
    if proxy is None:
        proxy = type(f"{prefix}{cls.__name__}", (base,), {
            "wrapped": cls,
            "node_type": cls.node_type,
            "description": cls.description,
            "params": cls.params,
            "inputs": cls.inputs,
            "accepts": cls.accepts,
            "requires": cls.requires,
            "__module__": base.__module__,
        })
        cache[cls] = proxy
    return proxy


def check_remote_spec(spec, executor: str, where: str, error: type[RemoteMediaError]) -> None:
    """Refuse what no remote executor can run: a fan-in node, or a class defined in __main__
    (which `where`, "a worker process", cannot import). Raises `error` naming the node."""
    if spec.node_class.inputs == "many":
        raise error(f"node '{spec.id}': {spec.node_type} takes several inputs, which executor "
                    f"'{executor}' does not support")
    if spec.node_class.__module__ == "__main__":
        raise error(f"node '{spec.id}': {spec.node_class.__qualname__} is defined in __main__; "
                    f"{where} can only import it from a module")


class RemoteFailures:
    """The failure policy of a stand-in node (see the module docstring for what it needs).

    - A node that raised where it runs: under `fail` the run fails (`raised_error`); otherwise
      the error is absorbed and counted, and its frame counted as a drop.
    - A worker or actor that died: its frames in flight are drops; under `fail` the run fails
      (`crashed_error`); otherwise it is restarted, at most MAX_RESTARTS times within
      RESTART_WINDOW_S seconds."""

    raised_error: type[RemoteMediaError] = RemoteMediaError
    crashed_error: type[RemoteMediaError] = RemoteMediaError

    def _init_failures(self) -> None:
        self._restart_times: deque = deque()
        self.restarts = 0

    def _node_raised(self, request, message: str, counters) -> None:
        if self._on_error == "fail":
            raise self.raised_error(f"{message} (in {self.runs_in})")
        self.errors_absorbed += 1
        if counters is not None:
            counters.errors += 1
            if request.is_frame and not request.abandoned:
                counters.drops += 1

    def _crashed(self, reason: str, counters) -> None:
        lost = sum(1 for r in self._inflight.values() if r.is_frame and not r.abandoned)
        self._inflight.clear()
        if counters is not None:
            counters.drops += lost
        self._discard()
        message = f"{reason}; {lost} frame(s) in flight lost"
        if self._on_error == "fail":
            raise self.crashed_error(message)
        self.errors_absorbed += 1
        if counters is not None:
            counters.errors += 1
        now = time.monotonic()
        times = self._restart_times
        while times and now - times[0] > RESTART_WINDOW_S:
            times.popleft()
        if len(times) >= MAX_RESTARTS:
            raise self.crashed_error(f"{message}; not restarted: {len(times)} restarts in the "
                                     f"last {RESTART_WINDOW_S:g} s")
        times.append(now)
        self.restarts += 1
        self._start()
