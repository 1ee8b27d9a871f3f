"""Linear nodes: which chains of them the engine runs as one multiply, and that multiply.

A node that declares `linear_elementwise` (node.py) and qualifies (`_is_linear`) is run as an
in-place multiply by its `linear_gain()`; a chain of them, each the only reader of the one
before, becomes one multiply by the product (`linear_chains`, `compile_linear`, whose step is template.py's `linear` case). Each member
keeps its own statistics: every call, and an equal share of the group's time.
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels
from .closures import step_names
from .data import BufferOwnership, NumpyData
from .executors import INLINE
from .manifest import Manifest
from .node import Node
from .template import generate

_make_numpy = NumpyData._make.__func__


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


def compile_linear(group: list, spans: list | None = None) -> None:
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
    names = step_names(head, spans)
    consumers = last.consumers
    numpy_consumers = last.numpy_consumers
    gains = tuple(step.node.linear_gain for step in group)
    names.update(
        consumers=consumers, single=consumers[0] if len(consumers) == 1 else None,
        numpy_consumers=numpy_consumers,
        single_numpy=numpy_consumers[0] if len(consumers) == 1 else None,
        readers=last.readers, group=group, members=len(group), gains=gains, one=gains[0],
        factors=[1.0] * len(group),    # this block's gains, for a group that goes one by one
        fallback=head.receive,         # the head's own closure: events pass node by node
        trace_ends=None if spans is None else tuple(lst.append for lst in spans),
        fits=fits, one_by_one=one_by_one, as_gain=kernels.as_gain, multiply=np.multiply,
        make_factor=np.array, make_numpy=_make_numpy, BufferOwnership=BufferOwnership)
    flags = {"KIND": "linear", "TRACE": spans is not None, "SINGLE": len(consumers) == 1,
             "RETAINS": False, "READERS_ONE": last.readers == 1, "ONE_GAIN": len(group) == 1}
    built = generate(flags, names)(names)
    head.receive, head.receive_numpy = built["entries"]
    state, reset = built["state"], built["reset"]
    for step in group:
        step.latency_state = state
        step.latency_reset = reset
        step.latency_values = head.latency_values


def fits(factor: float, dtype, members: int) -> bool:
    """True if one multiply by `factor` in `dtype` does what `members` multiplies one by one
    do: the product is a finite normal number of that dtype (always, for one member)."""
    with np.errstate(over="ignore", under="ignore"):    # finding out is the point
        k = np.array(factor, dtype=dtype)
    return members == 1 or (math.isfinite(k) and abs(k) >= np.finfo(dtype).tiny)


def one_by_one(factors: list, buf, src, dtype):
    """The product does not fit the dtype: each gain as its own multiply, as unfused, into
    `buf` (None: a new buffer from `src`); returns the buffer."""
    kernels = [np.array(f, dtype=dtype) for f in factors]
    if buf is None:
        buf = np.multiply(src, kernels[0])
        kernels = kernels[1:]
    for kernel in kernels:
        np.multiply(buf, kernel, buf)
    return buf
