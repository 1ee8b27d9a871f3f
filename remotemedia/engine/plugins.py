"""Entry points whose object is a function `register(registry)`: how the source, sink and
observer registries load what packages add (io/registry.py, observers.py)."""

from __future__ import annotations

import threading
from typing import Callable

from .errors import RemoteMediaError, one_line


class EntryPoints:
    """A group's `register(registry)` entry points, called once per process on the first
    load() (thread-safe; a registry looked up from inside a register() call sees what is
    registered so far). `first`: a value prefix called before the others (remotemedia's own)."""

    def __init__(self, group: str, first: str = ""):
        self.group = group
        self.first = first
        self.loaded = False
        self._lock = threading.Lock()

    def load(self, registry, before: Callable[[], None] | None = None) -> None:
        """Call `before()` (when given) and then the group's entry points with `registry`,
        the first time only. RemoteMediaError as call_entry_points()."""
        if self.loaded:
            return
        with self._lock:
            if self.loaded:
                return
            self.loaded = True
            if before is not None:
                before()
            call_entry_points(self.group, registry, self.first)


def call_entry_points(group: str, registry, first: str = "") -> list[str]:
    """Call each entry point of `group` with `registry`, those whose value starts with `first`
    (a module path prefix, remotemedia's own) before the others. Returns the values called.
    RemoteMediaError (exit 1, one line naming the entry point) when one cannot be imported or
    fails."""
    from importlib.metadata import entry_points
    found = sorted(entry_points(group=group),
                   key=lambda ep: not (first and ep.value.startswith(first)))
    for ep in found:
        try:
            ep.load()(registry)
        except Exception as exc:
            raise RemoteMediaError(f"the {group} entry point '{ep.name}' ({ep.value}) failed: "
                                   f"{type(exc).__name__}: {one_line(exc)}") from exc
    return [ep.value for ep in found]
