"""Linear nodes: which chains of them the engine runs as one multiply, and that multiply.

A node that declares `linear_elementwise` (node.py) and qualifies (`_is_linear`) is run as an
in-place multiply by its `linear_gain()`; a chain of them, each the only reader of the one
before, becomes one multiply by the product (`linear_chains`, `_compile_linear`). Each member
keeps its own statistics: every call, and an equal share of the group's time.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np

from . import kernels
from .data import BufferOwnership, NumpyData
from .executors import INLINE
from .manifest import Manifest
from .node import Node
from .metrics import RING_SIZE

if TYPE_CHECKING:
    from .schedule import _Step

_now = time.perf_counter           # float seconds: cheaper to subtract than big ints
_Numpy = NumpyData
_make_numpy = NumpyData._make.__func__
_RING_MASK = RING_SIZE - 1


def _is_linear(cls: type[Node]) -> bool:
    """True if the engine may run a node of class `cls` as a multiply by its linear_gain():
    it declares linear_elementwise, takes one input, keeps nothing and requires float dtypes
    only (an integer block cannot hold a scaled sample). An executor's proxy node (process,
    ray) is its own class, which declares nothing: the engine calls its process()."""
    if not getattr(cls, "linear_elementwise", False) or cls.inputs != "one":
        return False
    if cls.retains_input or "numpy" not in cls.accepts or cls.requires is None:
        return False
    dtypes = cls.requires.dtypes()
    return dtypes is not None and all(d.kind == "f" for d in dtypes)


def linear_chains(manifest: Manifest, fuse: bool = True) -> list[tuple[str, ...]]:
    """The node ids the engine runs as one multiply each, in topological order: every linear
    node (`_is_linear`, run inline) is in exactly one chain; with `fuse` a chain continues from
    a linear node to the next while its only connection goes to a linear node whose only input
    it is (no one else sees the block between them) and that requires the same dtypes (the
    group runs in its first member's), and without it every chain is one node.
    `remotemedia validate` prints the chains of two or more, which Schedule fuses."""
    specs = {s.id: s for s in manifest.nodes}
    linear = {i for i, s in specs.items() if s.executor == INLINE and _is_linear(s.node_class)}
    outs: dict[str, list[str]] = {}
    fed_by: dict[str, int] = {}
    for c in manifest.connections:
        outs.setdefault(c.source, []).append(c.target)
        fed_by[c.target] = fed_by.get(c.target, 0) + 1
    chains: list[tuple[str, ...]] = []
    taken: set[str] = set()
    for node_id in manifest.order:
        if node_id not in linear or node_id in taken:
            continue
        chain = [node_id]
        while fuse:
            after = outs.get(chain[-1], [])
            if len(after) != 1 or after[0] not in linear or fed_by.get(after[0]) != 1:
                break
            if specs[after[0]].node_class.requires != specs[chain[0]].node_class.requires:
                break      # the group runs in the dtype its first member asks for
            chain.append(after[0])
        taken.update(chain)
        chains.append(tuple(chain))
    return chains


def _linear_groups(m: Manifest, steps: dict, fuse: bool) -> dict:
    """linear_chains() as steps: head id -> [steps]; members of a chain of two or more are
    marked `fused`, with an equal `share` of the group's time."""
    groups: dict[str, list] = {}
    for chain in linear_chains(m, fuse):
        groups[chain[0]] = [steps[i] for i in chain]
        if len(chain) > 1:
            for i in chain:
                steps[i].fused = chain
                steps[i].share = 1.0 / len(chain)
    return groups


def _compile_linear(group: list[_Step], spans: list | None = None) -> None:
    """Build the hot path of a group of linear steps (`_linear_groups`): one multiply by the
    product of the members' linear_gain(), in place where the buffer allows (a shared buffer is
    copied once, counted as cow, in the same numpy call), then straight to the last member's
    consumers. A product of exactly 1.0 passes the frame on untouched.

    Each gain is checked as it comes (`kernels.as_gain`: a finite real number); a linear_gain() that
    raises or returns anything else fails its own node, with that node's on_error, and the
    members before it count the call they made, as they would unfused.

    Numerics: the product is taken in float64 and rounded once to the block's dtype, so a fused
    chain differs from the same nodes run one by one by at most about one rounding per member
    (the fused result is the more exact one). Where the product does not fit the block's dtype
    as a normal number (it overflows, or underflows where the gains one by one do not), the
    group multiplies gain by gain, exactly as unfused. One node alone is bit-identical to its
    process() on float blocks.

    Statistics stay per node: every member reports the group's calls, and its latency is the
    group's time shared equally (`_Step.share`, `fused` names the group in the stats). Events
    and other non-audio data go through the members' own closures, node by node.

    With `spans` (one list per member, tracing on) each call appends one end per member,
    splitting the group's span into equal shares; a failed call ends at the member that
    failed."""
    head, last = group[0], group[-1]
    fallback = head.receive            # the head's own closure: events pass node by node
    gains = tuple(step.node.linear_gain for step in group)
    one = gains[0] if len(gains) == 1 else None
    consumers = last.consumers
    single = consumers[0] if len(consumers) == 1 else None
    readers = last.readers
    counters = head.counters
    requires = head.requires
    ok = requires.dtypes()
    satisfied_by = requires.satisfied_by
    adapt = head.schedule.adapt
    values = head.latency_values
    mask = _RING_MASK
    now = _now
    Numpy = _Numpy
    multiply = np.multiply
    make_factor = np.array
    make_numpy = _make_numpy
    as_gain = kernels.as_gain
    clock = head.schedule.clock
    members = len(group)
    factors = [1.0] * members          # this block's gains, for a group that must go one by one
    count = 0
    max_s = 0.0
    # the 0-d factor array in the block's dtype (kernels.py: half the ufunc call's cost of a
    # Python float), rebuilt when the factor or the dtype changes; None when the product does
    # not fit that dtype and the gains are applied one by one
    last_factor = None
    last_dtype = None
    k0 = None
    appends = None if spans is None else tuple(lst.append for lst in spans)

    def fits(factor: float, dtype) -> bool:
        with np.errstate(over="ignore", under="ignore"):    # finding out is the point
            k = make_factor(factor, dtype=dtype)
        return members == 1 or (math.isfinite(k) and abs(k) >= np.finfo(dtype).tiny)

    def fail(k: int, item, exc) -> None:
        # member k's linear_gain() raised or returned no finite real number
        if appends is not None:
            appends[k](clock[0])
        for step in group[:k]:
            step.partial_calls += 1       # they ran on this block before it failed
        return group[k].failed(item, exc)

    def one_by_one(buf, src, dtype):
        # the product does not fit the dtype: each gain as its own multiply, as unfused
        kernels = [make_factor(f, dtype=dtype) for f in factors]
        if buf is None:
            buf = multiply(src, kernels[0])
            kernels = kernels[1:]
        for kernel in kernels:
            multiply(buf, kernel, buf)
        return buf

    def receive_linear(item) -> None:
        nonlocal count, max_s, last_factor, last_dtype, k0
        if type(item) is not Numpy:
            return fallback(item)
        src = item._source
        if src.dtype not in ok and not satisfied_by(src):
            item = adapt(item, requires)     # integer PCM: converted once, counted
            src = item._source
        k = 0
        try:
            if one is not None:
                factor = one()
                if type(factor) is not float or factor - factor != 0.0:
                    factor = as_gain(factor)
            else:
                factor = 1.0
                for gain in gains:
                    f = gain()
                    if type(f) is not float or f - f != 0.0:
                        f = as_gain(f)
                    factors[k] = f
                    factor *= f
                    k += 1
        except Exception as exc:
            clock[0] = now()
            return fail(k, item, exc)
        out = item
        if factor != 1.0:
            dtype = src.dtype
            if factor != last_factor or dtype is not last_dtype:
                k0 = make_factor(factor, dtype=dtype) if fits(factor, dtype) else None
                last_factor = factor
                last_dtype = dtype
            ownership = item._ownership
            if ownership.owned and ownership.readers <= 1:
                # writable(), inlined: the buffer itself when no one else can see it
                buf = src if src.flags.writeable else item.writable()
                if buf is not src:
                    out = item.with_array(buf)
                if k0 is not None:
                    multiply(buf, k0, buf)     # out positional: cheaper than out=buf
                else:
                    one_by_one(buf, src, dtype)
            else:
                # Copy on write and multiply in one pass: numpy writes the product into a new
                # buffer (layout kept, as writable()'s copy keeps it), counted as the cow copy
                # writable() would have made.
                buf = multiply(src, k0) if k0 is not None else one_by_one(None, src, dtype)
                if ownership.counters is not None:
                    ownership.counters.cow += 1
                out = make_numpy(Numpy, buf, None, item._sample_rate, item._pts, item._seq,
                                 item._metadata, BufferOwnership(True, 0, counters))
        t1 = now()
        t0 = clock[0]
        dt = t1 - t0
        clock[0] = t1
        values[count & mask] = dt
        count += 1
        if dt > max_s:
            max_s = dt
        if appends is not None:
            share = dt / members
            for i, append in enumerate(appends[:-1], 1):
                append(t0 + share * i)
            appends[-1](t1)
        if out is item:
            if readers != 1:
                item._ownership.readers += readers - 1
        else:
            item._ownership.readers -= 1
            ownership = out._ownership
            ownership.readers += readers
            ownership.counters = counters
        if single is not None:
            single(out)
        else:
            for consumer in consumers:
                consumer(out)

    def state() -> tuple[int, float]:
        return count, max_s

    def reset() -> None:
        nonlocal count, max_s
        count = 0
        max_s = 0.0

    head.receive = receive_linear
    for step in group:
        step.latency_state = state
        step.latency_reset = reset
        step.latency_values = values


