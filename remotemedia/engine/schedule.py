"""The hot path: a manifest compiled into direct calls, and `push`.

`Schedule` instantiates the nodes, runs their `setup()`, and compiles the graph: each node gets
a `receive` closure (`_compile_receive`) that calls its `process`, records its latency and hands
the output straight to its consumers' `receive`, depth first, in manifest order. `push(frame)`
calls the input's consumers and returns what reached `output`. There is no queue, task or
thread per node; fan-out hands the same read-only frame to every consumer, and a fan-in node
runs once it holds a frame from each of its inputs.

Reader counting for copy-on-write: delivering a Numpy frame to k consumers (the output counts as
one that never lets go) adds k to its buffer's readers; a node that has finished with an input
gives one back unless it declares `retains_input`. `frame.writable()` writes in place only when
the buffer is owned and this node is its only reader.

Read this file top to bottom to follow a block: `Schedule.push` -> a step's `receive` closure
-> `process` -> the consumers. The session (session.py) owns the lifecycle around it and
report.py builds the stats report from what the steps recorded.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any, Callable

import numpy as np

from .data import (EMPTY_METADATA, BufferOwnership, ControlData, NumpyData, RuntimeData,
                   to_runtime_data)
from .errors import ManifestError, NodeError, PipelineBroken, PipelineClosed, RemoteMediaError
from . import kernels
from .executors import INLINE, executors
from .manifest import INPUT, OUTPUT, Manifest
from .metrics import RING_SIZE, Counters, LatencyRing, LatencySummary, NodeStatistics, summarize
from .node import Node, NodeContext

_now = time.perf_counter           # float seconds: cheaper to subtract than big ints
_Numpy = NumpyData
_make_numpy = NumpyData._make.__func__
_ndarray = np.ndarray
_RING_MASK = RING_SIZE - 1


class _Step:
    """One node in the compiled schedule. Its hot path is a closure built by _compile_receive;
    the closure keeps the latency ring's position and maximum, which `latency_state()` reads."""

    __slots__ = ("node", "node_id", "node_type", "process", "on_control", "accepts",
                 "accepts_numpy", "requires", "retains", "skip_errors", "fan_in", "pending",
                 "consumers", "readers", "errors", "schedule", "counters", "receive",
                 "latency_values", "latency_state", "latency_reset", "record", "fused",
                 "share", "inputs", "partial_calls")

    def __init__(self, node: Node, on_error: str, schedule: "Schedule"):
        cls = type(node)
        self.node = node
        self.node_id = node.node_id
        self.node_type = cls.node_type
        self.process = node.process
        self.on_control = node.on_control
        self.accepts = cls.accepts
        self.accepts_numpy = "numpy" in cls.accepts
        self.requires = cls.requires
        self.retains = cls.retains_input
        self.skip_errors = on_error == "skip"
        self.fan_in = cls.inputs == "many"
        self.pending: dict[str, deque] = {}   # fan-in: frames waiting, per input name
        self.inputs: dict[str, Callable] = {}  # fan-in: the compiled receive of each input
        self.consumers: tuple = ()       # callables taking one RuntimeData
        self.readers = 0                 # consumers, counting the session output as one
        self.errors = 0
        self.schedule = schedule
        self.counters = schedule.counters
        self.latency_values = [0.0] * RING_SIZE   # seconds, written by the closure
        # A fused node's latency is its group's, shared equally: its ring is the group's,
        # each of its values counts `share` of it (1.0 for a node that runs alone).
        self.fused: tuple[str, ...] | None = None
        self.share = 1.0
        # calls a fused member made on blocks a later member of its group failed (unfused, it
        # would have run and recorded them)
        self.partial_calls = 0

    @property
    def count(self) -> int:
        """Completed process() calls."""
        return self.latency_state()[0]

    @property
    def calls(self) -> int:
        return self.count + self.errors + self.partial_calls

    def reset(self) -> None:
        self.errors = 0
        self.partial_calls = 0
        self.latency_reset()

    def summary_us(self) -> LatencySummary | None:
        count, max_s = self.latency_state()
        return summarize(self.latency_values, count, max_s, 1e6 * self.share)

    def prepare(self, item):
        """Slow path before process(): data the node does not take, or a requirement to meet.
        Returns the frame to process, or None when it was passed on."""
        if type(item) is _Numpy:
            if not self.accepts_numpy:
                self.forward(item)
                return None
            requires = self.requires
            if requires is not None and not requires.satisfied_by(item._source):
                return self.schedule.adapt(item, requires)
            return item
        if item.kind not in self.accepts:
            self.pass_event(item)
            return None
        return item

    def receive_named(self, name: str, item) -> None:
        """Fan-in: queue the frame under its input name; run once every input has one."""
        if type(item) is not _Numpy and item.kind not in self.accepts:
            if type(item) is ControlData:
                # A control event passes a fan-in node once, when its first copy arrives.
                return self.pass_event(item) if name == next(iter(self.pending)) else None
            return self.forward(item)
        pending = self.pending
        pending[name].append(item)
        while all(pending.values()):
            self.receive_set({n: q.popleft() for n, q in pending.items()})

    def receive_set(self, frames: dict) -> None:
        requires = self.requires
        if requires is not None:
            for name, frame in frames.items():
                if type(frame) is _Numpy and not requires.satisfied_by(frame._source):
                    frames[name] = self.schedule.adapt(frame, requires)
        clock = self.schedule.clock
        try:
            out = self.process(frames)
        except Exception as exc:
            clock[0] = _now()
            return self.failed(frames, exc)
        t1 = _now()
        self.record(t1 - clock[0])
        clock[0] = t1
        if not self.retains:
            for frame in frames.values():
                if type(frame) is _Numpy:
                    frame._ownership.readers -= 1
        if out is not None:
            self.emit(out)

    def emit(self, out) -> None:
        """Outputs other than a single Numpy frame: events, or an iterable of frames."""
        if isinstance(out, RuntimeData):
            if type(out) is _Numpy:
                out._ownership.readers += self.readers
                out._ownership.counters = self.counters
            for consumer in self.consumers:
                consumer(out)
            return
        for one in out:
            if not isinstance(one, RuntimeData):
                raise NodeError(self.node_id, TypeError(
                    f"process() returned {type(one).__name__}, not RuntimeData"))
            self.emit(one)

    def forward(self, item) -> None:
        # Data the node does not take flows past it; its reader slot moves on downstream.
        if type(item) is _Numpy:
            item._ownership.readers += self.readers - 1
        for consumer in self.consumers:
            consumer(item)

    def pass_event(self, item) -> None:
        if type(item) is ControlData:
            try:
                released = self.on_control(item)
            except Exception as exc:
                self.failed(item, exc)
                released = None
            if released:
                self.emit(released)
        self.forward(item)

    def failed(self, item, exc: Exception) -> None:
        self.errors += 1
        counters = self.counters
        counters.errors += 1
        if self.skip_errors:
            frames = item.values() if isinstance(item, dict) else (item,)
            for frame in frames:
                if type(frame) is _Numpy:
                    counters.drops += 1
                    frame._ownership.readers -= 1
            return
        raise NodeError(self.node_id, exc) from exc

    def statistics(self) -> NodeStatistics:
        absorbed = self.node.errors_absorbed
        extra = getattr(self.node, "executor_stats", None)   # an executor node's own figures
        return NodeStatistics(self.node_id, self.node_type, self.calls, self.errors + absorbed,
                              self.summary_us(), extra() if extra is not None else None,
                              self.fused)


class Schedule:
    """A manifest's nodes set up and compiled into closures; `push()` runs one input through.

    `counters` and `engine_latency` are the session's, filled here; `trace` and `clock_s` are
    Session's arguments of the same names. Raises NodeError naming a node that fails setup()."""

    def __init__(self, manifest: Manifest, counters: Counters, engine_latency: LatencyRing, *,
                 trace=None, clock_s: Callable[[], float] | None = None, fuse: bool = True):
        self.counters = counters
        self.engine_latency = engine_latency
        self.bypass = False
        self.unusable = False            # closed or broken: one check on the hot path
        self.broken: RemoteMediaError | None = None
        self.outputs: list[RuntimeData] = []
        self.clock = [0]                 # the last timestamp taken on the current push
        self.steps: list[_Step] = []
        try:
            self._compile(manifest, trace, clock_s, fuse)
        except BaseException:
            self.teardown()   # the nodes already set up; the setup error is the one to raise
            raise

    def _compile(self, manifest: Manifest, trace, clock_s, fuse: bool) -> None:
        m = manifest
        specs = {s.id: s for s in m.nodes}
        steps: dict[str, _Step] = {}
        for node_id in m.order:
            spec = specs[node_id]
            try:
                node = _make_node(spec)
                node.bind(NodeContext(node_id, m.input_formats[node_id], self.counters,
                                      clock_s))
                node.setup()
            except (NodeError, ManifestError):
                raise
            except Exception as exc:  # a model that will not load, a worker that will not start
                # Named by node, whatever raised: a ModelError or a WorkerError alone would not
                # say which node of the graph could not start.
                raise NodeError(node_id, exc, during="setup") from exc
            steps[node_id] = _Step(node, spec.on_error, self)
            self.steps.append(steps[node_id])
        # Consumers first: a step's receive() calls its consumers' receive() directly, so
        # closures are built from the last step back to the first.
        consumer_ids: dict[str, list] = {i: [] for i in ("input", *steps)}
        for c in m.connections:
            consumer_ids[c.source].append(c)
            if c.source != INPUT:
                steps[c.source].readers += 1

        # A fan-in node's inputs, in the order the manifest connects them: the first is the
        # one a node such as Mix takes its timing and metadata from.
        for c in m.connections:
            if c.target != OUTPUT and steps[c.target].fan_in:
                steps[c.target].pending.setdefault(c.input, deque())

        def consumer_for(c):
            if c.target == OUTPUT:
                return self.outputs.append
            target = steps[c.target]
            if target.fan_in:
                return target.inputs[c.input]
            return target.receive

        heads = _linear_groups(m, steps, fuse)
        # the trace callable is asked once per node, as Session documents
        spans = {i: None for i in steps} if trace is None else {i: trace(i) for i in steps}
        for step in reversed(self.steps):
            step.consumers = tuple(consumer_for(c) for c in consumer_ids[step.node_id])
            # decided here, once: an untraced schedule has no trace code and checks nothing
            _compile_receive(step, spans[step.node_id])
            if step.fan_in:
                _compile_fan_in(step, spans[step.node_id])
            group = heads.get(step.node_id)
            if group is not None:
                # built after its members (they come later in the order): the group's step
                # takes the frames, the members' own closures still carry events
                _compile_linear(group, None if trace is None else
                                [spans[member.node_id] for member in group])
        self.input_consumers = tuple(consumer_for(c) for c in consumer_ids[INPUT])
        self.input_readers = len(self.input_consumers)
        self.step_by_id = steps

    def push(self, data: Any, *, transfer: bool = False) -> list[RuntimeData]:
        """Run one input through the graph; return what reached `output` for it, in order.

        `transfer=True` hands the buffer to the engine (the caller will not read or reuse it), so
        a node may write it in place; otherwise a writer gets a counted copy."""
        if self.unusable:
            self.raise_unusable()
        t_start = self.clock[0] = _now()
        counters = self.counters
        if type(data) is _ndarray:
            # The common case, without the general conversion's checks.
            frame = _make_numpy(_Numpy, data, None, None, None, None, EMPTY_METADATA,
                                BufferOwnership(transfer, self.input_readers, counters))
            counters.frames_in += 1
        else:
            frame = data if isinstance(data, RuntimeData) else to_runtime_data(data)
            if type(frame) is _Numpy:
                counters.frames_in += 1
                ownership = frame._ownership
                if transfer:
                    ownership.owned = True
                ownership.readers += self.input_readers
                ownership.counters = counters
        outputs = self.outputs
        if self.bypass:
            outputs.append(frame)
        else:
            try:
                for consumer in self.input_consumers:
                    consumer(frame)
            except BaseException as exc:
                self.discard_in_flight()
                if isinstance(exc, NodeError):
                    self.broken = exc
                    self.unusable = True
                raise
        result = outputs[:]
        outputs.clear()
        for out in result:
            if type(out) is _Numpy:
                counters.frames_out += 1
            elif out is not frame or type(out) is not ControlData:
                # Every non-audio output is an event, except the caller's own control event
                # (end_of_stream, flush) coming back out at the end of the graph.
                counters.events_out += 1
        self.engine_latency.add(int((_now() - t_start) * 1e9))
        return result

    def adapt(self, item: NumpyData, requires) -> NumpyData:
        """Meet a node's declared input requirement: one conversion, counted as an engine copy."""
        self.counters.engine_copies += 1
        item._ownership.readers -= 1
        adapted = item.with_array(requires.adapt(item._source))
        adapted._ownership.readers += 1
        adapted._ownership.counters = self.counters
        return adapted

    def discard_in_flight(self) -> None:
        """Drops frames waiting at fan-in inputs and collected outputs, after a push failed
        midway."""
        for step in self.steps:
            for q in step.pending.values():
                q.clear()
        self.outputs.clear()

    def raise_unusable(self):
        """Raises PipelineBroken (from the NodeError that broke the session) or PipelineClosed."""
        if self.broken is not None:
            raise PipelineBroken(f"session is broken: {self.broken}") from self.broken
        raise PipelineClosed("session is closed")

    def teardown(self) -> list[NodeError]:
        """Stop taking input and run every node's teardown(), last first; the errors."""
        self.unusable = True
        errors = []
        for step in reversed(self.steps):
            try:
                step.node.teardown()
            except Exception as exc:  # teardown of the others must still run
                errors.append(NodeError(step.node_id, exc))
        return errors


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


def _make_node(spec) -> Node:
    if spec.executor == INLINE:
        return spec.node_class(spec.id, **spec.params)
    # Executors other than inline live outside the engine (engine/executors.py).
    return executors.factory(spec.executor)(spec)


def _compile_receive(step: _Step, spans: list | None = None) -> None:
    """Build the hot path for one node: a closure over everything that does not change.

    It runs the node on one input, records the node's latency, keeps the buffer's reader count,
    and hands the output straight to the consumers (depth first). The latency ring's position
    and maximum live in the closure (`nonlocal`): cheaper than attribute writes per frame.

    With `spans` (a list, tracing on) the traced variants are compiled instead: they also
    append each call's end (perf_counter seconds, the node's own timestamp) to `spans`, failed
    calls included. Without it nothing of tracing is in the closures."""
    process = step.process
    consumers = step.consumers
    single = consumers[0] if len(consumers) == 1 else None
    readers = step.readers
    counters = step.counters
    requires = step.requires
    # dtypes that meet the node's requirement: the compiled fast path checks the block's dtype
    # against them (one `in`) instead of calling prepare()
    ok = requires.dtypes() if requires is not None else None
    takes_any_numpy = step.accepts_numpy and requires is None
    plain = step.accepts_numpy and (requires is None or ok is not None)
    retains = step.retains
    prepare = step.prepare
    failed = step.failed
    emit = step.emit
    values = step.latency_values
    mask = _RING_MASK
    now = _now
    Numpy = _Numpy
    # One clock read per node: a node's time runs from the previous timestamp on this push (the
    # push's start, or the end of the node that ran last) to the end of its own process().
    clock = step.schedule.clock
    count = 0
    max_s = 0.0

    def receive(item) -> None:
        # The general path: events, adaptation, fan-out, retaining nodes.
        numpy_in = type(item) is Numpy
        if not (takes_any_numpy and numpy_in):
            item = prepare(item)
            if item is None:
                return
        try:
            out = process(item)
        except Exception as exc:
            clock[0] = now()
            return failed(item, exc)
        t1 = now()
        record(t1 - clock[0])
        clock[0] = t1
        if out is item and numpy_in:
            # Passed on unchanged: this node's reader slot becomes its consumers'.
            if readers != 1 or retains:
                item._ownership.readers += readers - (not retains)
        else:
            if numpy_in and not retains:
                item._ownership.readers -= 1
            if out is None:
                return
            if type(out) is not Numpy:
                return emit(out)
            ownership = out._ownership
            ownership.readers += readers
            ownership.counters = counters
        if single is not None:
            single(out)
        else:
            for consumer in consumers:
                consumer(out)

    def receive_plain(item) -> None:
        # The common case, specialised: takes Numpy as it comes, one consumer, keeps nothing.
        # It records inline (a call costs ~60 ns a node a frame); receive() calls record().
        nonlocal count, max_s
        if type(item) is not Numpy:
            return receive(item)
        try:
            out = process(item)
        except Exception as exc:
            clock[0] = now()
            return failed(item, exc)
        t1 = now()
        dt = t1 - clock[0]
        clock[0] = t1
        values[count & mask] = dt
        count += 1
        if dt > max_s:
            max_s = dt
        if out is not item:
            item._ownership.readers -= 1
            if out is None:
                return
            if type(out) is not Numpy:
                return emit(out)
            ownership = out._ownership
            ownership.readers += 1
            ownership.counters = counters
        single(out)

    def record(dt: float) -> None:
        nonlocal count, max_s
        values[count & mask] = dt
        count += 1
        if dt > max_s:
            max_s = dt

    if spans is not None:
        append = spans.append

        def receive_plain_traced(item) -> None:
            # receive_plain, plus the end of the call (it started at the previous timestamp)
            nonlocal count, max_s
            if type(item) is not Numpy:
                return receive(item)
            try:
                out = process(item)
            except Exception as exc:
                t1 = clock[0] = now()
                append(t1)
                return fail(item, exc)
            t1 = now()
            append(t1)
            dt = t1 - clock[0]
            clock[0] = t1
            values[count & mask] = dt
            count += 1
            if dt > max_s:
                max_s = dt
            if out is not item:
                item._ownership.readers -= 1
                if out is None:
                    return
                if type(out) is not Numpy:
                    return emit(out)
                ownership = out._ownership
                ownership.readers += 1
                ownership.counters = counters
            single(out)

        def record_traced(dt: float) -> None:
            # called with clock[0] still the call's start
            nonlocal count, max_s
            append(clock[0] + dt)
            values[count & mask] = dt
            count += 1
            if dt > max_s:
                max_s = dt

        fail = step.failed

        def failed_traced(item, exc):
            append(clock[0])   # receive() has set it to the failed call's end
            return fail(item, exc)

        failed = failed_traced
        record = record_traced
        receive_plain = receive_plain_traced

    def state() -> tuple[int, float]:
        return count, max_s

    def reset() -> None:
        nonlocal count, max_s
        count = 0
        max_s = 0.0

    if plain and single is not None and not retains:
        if ok is None:
            step.receive = receive_plain
        else:
            # A requirement met by the block's dtype alone: one `in` test before the plain
            # path (a wrapper, so nodes without a requirement do not pay for the test).
            def receive_checked(item) -> None:
                if type(item) is Numpy and item._source.dtype in ok:
                    return receive_plain(item)
                return receive(item)
            step.receive = receive_checked
    else:
        step.receive = receive
    step.record = record
    step.latency_state = state
    step.latency_reset = reset




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


def _compile_fan_in(step: _Step, spans: list | None = None) -> None:
    """Build a fan-in node's hot path: one receive per input name (`step.inputs`), which queues
    the frame and, once every input holds one, runs the node on one frame from each.

    Audio takes the compiled path (a requirement checked as one dtype test, the latency recorded
    inline, the output handed straight on); anything else goes through `receive_named`, the
    general path, which shares the same queues and, through `step.record`, the same latency
    ring. The dict of frames handed to process() is reused from block to block unless the node
    declares `retains_input` (a node that keeps nothing keeps no reference to it either). With
    `spans` (tracing on) each call's end is appended, as `_compile_receive` does."""
    pending = step.pending
    pairs = tuple(pending.items())
    queues = tuple(pending.values())
    process = step.process
    requires = step.requires
    ok = requires.dtypes() if requires is not None else None
    satisfied_by = requires.satisfied_by if requires is not None else None
    adapt = step.schedule.adapt
    retains = step.retains
    consumers = step.consumers
    single = consumers[0] if len(consumers) == 1 else None
    readers = step.readers
    counters = step.counters
    failed = step.failed
    emit = step.emit
    clock = step.schedule.clock
    slow = step.receive_named
    now = _now
    Numpy = _Numpy
    takes_numpy = step.accepts_numpy
    values = step.latency_values
    mask = _RING_MASK
    append = None if spans is None else spans.append
    count = 0
    max_s = 0.0
    reused: dict = {}

    def run() -> None:
        nonlocal count, max_s
        while True:
            frames = {} if retains else reused
            for name, q in pairs:
                frame = q.popleft()
                if requires is not None and type(frame) is Numpy and not (
                        ok is not None and frame._source.dtype in ok
                        or satisfied_by(frame._source)):
                    frame = adapt(frame, requires)
                frames[name] = frame
            try:
                out = process(frames)
            except Exception as exc:
                t1 = clock[0] = now()
                if append is not None:
                    append(t1)
                failed(dict(frames), exc)
            else:
                t1 = now()
                dt = t1 - clock[0]
                clock[0] = t1
                values[count & mask] = dt
                count += 1
                if dt > max_s:
                    max_s = dt
                if append is not None:
                    append(t1)
                if not retains:
                    for frame in frames.values():
                        if type(frame) is Numpy:
                            frame._ownership.readers -= 1
                if type(out) is Numpy:
                    ownership = out._ownership
                    ownership.readers += readers
                    ownership.counters = counters
                    if single is not None:
                        single(out)
                    else:
                        for consumer in consumers:
                            consumer(out)
                elif out is not None:
                    emit(out)
            for q in queues:
                if not q:
                    return

    def receiver(name: str, queue: deque) -> Callable:
        def receive_input(item) -> None:
            if type(item) is not Numpy or not takes_numpy:
                return slow(name, item)
            queue.append(item)
            for q in queues:
                if not q:
                    return
            run()
        return receive_input

    def record(dt: float) -> None:
        # receive_set (the general path) records here, into the same ring and counts
        nonlocal count, max_s
        if append is not None:
            append(clock[0] + dt)
        values[count & mask] = dt
        count += 1
        if dt > max_s:
            max_s = dt

    def state() -> tuple[int, float]:
        return count, max_s

    def reset() -> None:
        nonlocal count, max_s
        count = 0
        max_s = 0.0

    step.inputs = {name: receiver(name, q) for name, q in pairs}
    step.record = record
    step.latency_state = state
    step.latency_reset = reset
