"""Executors: where a node runs.

`inline` is the engine's own: the node is called directly on the pushing thread. Every other
executor lives outside the engine and registers a factory under its name, the way third-party
nodes register: the entry point group `remotemedia.executors` (remotemedia's own `thread`,
`process` and `ray` are declared in pyproject.toml), or `executors.register()` at run time. A
factory takes the manifest's NodeSpec and returns a Node that stands in for the real one
(forwarding each frame to where it runs); such a node may restart its worker (`on_error:
restart`).

The engine imports no executor module: a name is resolved only when a manifest uses it.
"""

from __future__ import annotations

from typing import Callable

ENTRY_POINT_GROUP = "remotemedia.executors"
INLINE = "inline"


class ExecutorRegistry:
    """Executor names -> factories `factory(spec) -> Node`."""

    def __init__(self):
        self._factories: dict[str, object] = {}
        self._loaded = False

    def register(self, name: str, factory: Callable) -> None:
        """Add (or replace) the executor `name`."""
        if name == INLINE:
            raise ValueError("'inline' is the engine's own executor")
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        """Remove the executor `name` (KeyError if there is none): for a test that registered
        one for a while, as remotemedia.testing.check_executor does."""
        self._load()
        del self._factories[name]

    def names(self) -> tuple[str, ...]:
        """Every executor a manifest may name, `inline` first."""
        self._load()
        return (INLINE, *sorted(self._factories))

    def factory(self, name: str) -> Callable:
        """The factory of executor `name`; KeyError when none is registered. An entry point is
        imported here, on first use, so an executor's dependencies load only when needed."""
        self._load()
        entry = self._factories[name]
        if not callable(entry):                  # an entry point not loaded yet
            entry = self._factories[name] = entry.load()
        return entry

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        from importlib.metadata import entry_points
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            self._factories.setdefault(ep.name, ep)


executors = ExecutorRegistry()
