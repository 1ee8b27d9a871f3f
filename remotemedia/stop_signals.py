"""SIGINT and SIGTERM as a request to stop, for the commands that drive a run (stream, batch).

`StopSignals(on_stop)` installs handlers that record the first signal in `received` and call
`on_stop(signum)`; a second signal raises KeyboardInterrupt, to stop waiting for a clean
finish. `restore()` puts back the handlers there were.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

#: the signals that ask a run to stop
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """SIGINT/SIGTERM handlers that ask a run to stop (`on_stop(signum)`, if given, and
    `received`), installed until restore()."""

    def __init__(self, on_stop: Callable[[int], None] | None = None):
        self.on_stop = on_stop
        self.received: int | None = None
        self._previous: dict = {}

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from now on; does nothing off the main thread, where
        handlers cannot be set (the caller then stops the run itself)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def restore(self) -> None:
        """Put back the handlers install() replaced."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.received is not None:
            raise KeyboardInterrupt   # a second signal: stop waiting for anything
        self.received = signum
        if self.on_stop is not None:
            self.on_stop(signum)
