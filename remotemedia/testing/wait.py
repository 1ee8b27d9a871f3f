"""Waiting for a condition instead of sleeping for it."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], what: str, timeout: float = 30.0,
               poll_s: float = 0.01, context: Callable[[], str] | None = None) -> T:
    """Call `predicate` every `poll_s` seconds until it returns something true, and return
    that. Raises AssertionError naming `what` after `timeout` seconds, followed by what
    `context()` says (a terminal's screen, a log). For conditions another thread or process
    brings about (a runner that has released blocks, a file that appeared); in simulated time,
    use a MockClock instead of waiting at all."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            shown = f"; it shows:\n{context()}" if context is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{shown}")
        time.sleep(poll_s)
