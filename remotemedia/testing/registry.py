"""Node registries a test can change without touching the process-wide one."""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

from ..engine.node import NodeRegistry, registry as default_registry

#: the registry the harness uses when a call names none: the `rm_registry` fixture sets it for
#: its test, so `rm_registry.register(MyNode)` then `run_blocks(...)` finds MyNode
_active: contextvars.ContextVar[NodeRegistry | None] = contextvars.ContextVar(
    "remotemedia_test_registry", default=None)


def active_registry() -> NodeRegistry | None:
    """The registry a test made the harness's default (the `rm_registry` fixture, or
    `use_registry`), else None: callers then use the process-wide one."""
    return _active.get()


@contextlib.contextmanager
def use_registry(reg: NodeRegistry) -> Iterator[NodeRegistry]:
    """Make `reg` the registry run_blocks, check_node and the other harness calls use when
    given none, for the duration of a `with` block."""
    token = _active.set(reg)
    try:
        yield reg
    finally:
        _active.reset(token)


def isolated_registry(*, builtins: bool = True) -> NodeRegistry:
    """A new NodeRegistry holding (a copy of the table of) every type the default registry
    knows now, built-ins and entry points, or none with `builtins=False`. Registering into it
    leaves the default registry as it was; pass it as `registry=` to Pipeline.from_manifest or
    run_blocks."""
    iso = NodeRegistry()
    iso._entry_points_loaded = True        # what it should know is copied in below
    if builtins:
        for name, cls in default_registry.types().items():
            iso.register(cls, name)
    return iso


@contextlib.contextmanager
def registered(*classes, registry: NodeRegistry | None = None) -> Iterator[NodeRegistry]:
    """Register Node classes for the duration of a `with` block, in `registry` (default: a
    fresh isolated one), and yield the registry."""
    reg = registry if registry is not None else isolated_registry()
    before = dict(reg._types)
    try:
        for cls in classes:
            reg.register(cls)
        yield reg
    finally:
        reg._types.clear()
        reg._types.update(before)
