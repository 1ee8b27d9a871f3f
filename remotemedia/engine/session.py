"""Pipelines and sessions: a compiled schedule run by direct calls.

`Pipeline` holds a validated manifest. `Pipeline.session()` instantiates the nodes, runs their
`setup()`, and compiles the graph: each node gets a `receive` closure that calls its `process`,
records its latency and hands the output straight to its consumers' `receive` (depth first, in
manifest order). `Session.push(frame)` calls the input's consumers and returns what reached
`output`. There is no queue, task or thread per node; fan-out hands the same read-only frame to
every consumer, and a fan-in node runs once it holds a frame from each of its inputs.

Reader counting for copy-on-write: delivering a Numpy frame to k consumers (the session's output
counts as one that never lets go) adds k to its buffer's readers; a node that has finished with an
input gives one back unless it declares `retains_input`. `frame.writable()` writes in place only
when the buffer is owned and this node is its only reader.
"""

from __future__ import annotations

import time
from collections import deque
from functools import partial
from typing import Any, AsyncIterable, AsyncIterator, Callable, Iterable

import numpy as np

from .data import (EMPTY_METADATA, BufferOwnership, ControlData, NumpyData, RuntimeData,
                   to_runtime_data)
from .executors import INLINE, executors
from .errors import ManifestError, NodeError, PipelineBroken, PipelineClosed, RemoteMediaError
from .manifest import INPUT, OUTPUT, Manifest, load_manifest
from .metrics import RING_SIZE, Counters, LatencyRing, LatencySummary, NodeStatistics, summarize
from .node import Node, NodeContext
from .serialization import SerializationWatch, start_watching, stop_watching

_now_ns = time.perf_counter_ns
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
                 "consumers", "readers", "errors", "session", "counters", "receive",
                 "latency_values", "latency_state", "latency_reset", "record")

    def __init__(self, node: Node, on_error: str, session: "Session"):
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
        self.pending: dict[str, deque] = {}
        self.consumers: tuple = ()       # callables taking one RuntimeData
        self.readers = 0                 # consumers, counting the session output as one
        self.errors = 0
        self.session = session
        self.counters = session.counters
        self.latency_values = [0.0] * RING_SIZE   # seconds, written by the closure

    @property
    def count(self) -> int:
        """Completed process() calls."""
        return self.latency_state()[0]

    @property
    def calls(self) -> int:
        return self.count + self.errors

    def reset(self) -> None:
        self.errors = 0
        self.latency_reset()

    def summary_us(self) -> LatencySummary | None:
        count, max_s = self.latency_state()
        return summarize(self.latency_values, count, max_s, 1e6)

    def prepare(self, item):
        """Slow path before process(): data the node does not take, or a requirement to meet.
        Returns the frame to process, or None when it was passed on."""
        if type(item) is _Numpy:
            if not self.accepts_numpy:
                self.forward(item)
                return None
            requires = self.requires
            if requires is not None and not requires.satisfied_by(item._source):
                return self.session._adapt(item, requires)
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
                    frames[name] = self.session._adapt(frame, requires)
        clock = self.session._clock
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
                              self.summary_us(), extra() if extra is not None else None)


class Pipeline:
    """A validated manifest, ready to open sessions on."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest

    @classmethod
    def from_manifest(cls, src: Any, *, allow_import: Iterable[str] = (),
                      audio: dict | None = None, registry=None) -> "Pipeline":
        """From a path, a dict, or a JSON string. `audio` overrides the manifest's defaults;
        `registry` resolves node types instead of the default one (remotemedia.testing's
        isolated registries). Raises ManifestError naming the file, node and problem."""
        return cls(load_manifest(src, allow_import=allow_import, audio_overrides=audio,
                                 registry=registry))

    @property
    def order(self) -> tuple[str, ...]:
        return self.manifest.order

    def edges(self) -> list[tuple[str, str]]:
        return [(c.source, c.target) for c in self.manifest.connections]

    def session(self, strict_serialization: bool = False, trace=None,
                clock: Callable[[], float] | None = None) -> "Session":
        """A new Session (see Session for the arguments)."""
        return Session(self.manifest, strict_serialization=strict_serialization, trace=trace,
                       clock=clock)


class Session:
    """One run of a pipeline. A context manager; `close()` is safe to call twice."""

    def __init__(self, manifest: Manifest, *, strict_serialization: bool = False, trace=None,
                 clock: Callable[[], float] | None = None):
        """`clock`: the run's clock in seconds (the runner's), handed to nodes in their
        NodeContext; None outside a run. `trace`: None (the default: the schedule carries no trace code at all), or a callable
        `trace(node_id) -> list` that the compiler calls once per node; that node's compiled
        hot path then appends the end of each process() call to the list, as
        time.perf_counter() seconds (the timestamp the engine takes anyway; a call starts at
        the previous timestamp of the same push). remotemedia/trace.py makes a trace of them."""
        self.manifest = manifest
        self._trace = trace
        self._clock_s = clock
        self.counters = Counters()
        self.engine_latency = LatencyRing()
        self.end_to_end_latency = LatencyRing()
        self.serialization = SerializationWatch(strict=strict_serialization)
        self.bypass = False
        self._closed = False
        self._unusable = False           # closed or broken: one check on the hot path
        self._broken: RemoteMediaError | None = None
        self._started_ns = _now_ns()
        self._outputs: list[RuntimeData] = []
        self._clock = [0]                # the last timestamp taken on the current push
        self._steps: list[_Step] = []
        start_watching(self.serialization)
        try:
            self._compile()
        except BaseException:
            self.close()
            raise

    # -- compile ---------------------------------------------------------------------------------
    def _compile(self) -> None:
        m = self.manifest
        specs = {s.id: s for s in m.nodes}
        steps: dict[str, _Step] = {}
        for node_id in m.order:
            spec = specs[node_id]
            try:
                node = _make_node(spec)
                node.bind(NodeContext(node_id, m.input_formats[node_id], self.counters,
                                      self._clock_s))
                node.setup()
            except (NodeError, ManifestError):
                raise
            except Exception as exc:  # a model that will not load, a worker that will not start
                # Named by node, whatever raised: a ModelError or a WorkerError alone would not
                # say which node of the graph could not start.
                raise NodeError(node_id, exc, during="setup") from exc
            steps[node_id] = _Step(node, spec.on_error, self)
            self._steps.append(steps[node_id])
        # Consumers first: a step's receive() calls its consumers' receive() directly, so
        # closures are built from the last step back to the first.
        consumer_ids: dict[str, list] = {i: [] for i in ("input", *steps)}
        for c in m.connections:
            consumer_ids[c.source].append(c)
            if c.source != INPUT:
                steps[c.source].readers += 1

        def consumer_for(c):
            if c.target == OUTPUT:
                return self._outputs.append
            target = steps[c.target]
            if target.fan_in:
                target.pending[c.input] = deque()
                return partial(target.receive_named, c.input)
            return target.receive

        trace = self._trace
        for step in reversed(self._steps):
            step.consumers = tuple(consumer_for(c) for c in consumer_ids[step.node_id])
            # decided here, once: an untraced schedule has no trace code and checks nothing
            _compile_receive(step, None if trace is None else trace(step.node_id))
        self._input_consumers = tuple(consumer_for(c) for c in consumer_ids[INPUT])
        self._input_readers = len(self._input_consumers)
        self._step_by_id = steps

    # -- the hot path ----------------------------------------------------------------------------
    def push(self, data: Any, *, transfer: bool = False) -> list[RuntimeData]:
        """Run one input through the graph; return what reached `output` for it, in order.

        `transfer=True` hands the buffer to the engine (the caller will not read or reuse it), so
        a node may write it in place; otherwise a writer gets a counted copy."""
        if self._unusable:
            self._raise_unusable()
        t_start = self._clock[0] = _now()
        counters = self.counters
        if type(data) is _ndarray:
            # The common case, without the general conversion's checks.
            frame = _make_numpy(_Numpy, data, None, None, None, None, EMPTY_METADATA,
                                BufferOwnership(transfer, self._input_readers, counters))
            counters.frames_in += 1
        else:
            frame = data if isinstance(data, RuntimeData) else to_runtime_data(data)
            if type(frame) is _Numpy:
                counters.frames_in += 1
                ownership = frame._ownership
                if transfer:
                    ownership.owned = True
                ownership.readers += self._input_readers
                ownership.counters = counters
        outputs = self._outputs
        if self.bypass:
            outputs.append(frame)
        else:
            try:
                for consumer in self._input_consumers:
                    consumer(frame)
            except BaseException as exc:
                self._discard_in_flight()
                if isinstance(exc, NodeError):
                    self._broken = exc
                    self._unusable = True
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

    def _adapt(self, item: NumpyData, requires) -> NumpyData:
        """Meet a node's declared input requirement: one conversion, counted as an engine copy."""
        self.counters.engine_copies += 1
        item._ownership.readers -= 1
        adapted = item.with_array(requires.adapt(item._source))
        adapted._ownership.readers += 1
        adapted._ownership.counters = self.counters
        return adapted

    def _discard_in_flight(self) -> None:
        for step in self._steps:
            for q in step.pending.values():
                q.clear()
        self._outputs.clear()

    def _raise_unusable(self):
        if self._broken is not None:
            raise PipelineBroken(f"session is broken: {self._broken}") from self._broken
        raise PipelineClosed("session is closed")

    # -- control and streaming -------------------------------------------------------------------
    def flush(self) -> list[RuntimeData]:
        """Send a `flush` event through the graph so buffering nodes release what they hold."""
        return self.push(ControlData("flush"))

    def end_of_stream(self) -> list[RuntimeData]:
        return self.push(ControlData("end_of_stream"))

    async def stream(self, source: AsyncIterable | Iterable) -> AsyncIterator[RuntimeData]:
        """Push every item of an (async) iterable; yield what reaches `output`."""
        if hasattr(source, "__aiter__"):
            async for item in source:
                for out in self.push(item):
                    yield out
        else:
            for item in source:
                for out in self.push(item):
                    yield out

    # -- observing -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def broken(self) -> RemoteMediaError | None:
        return self._broken

    def node(self, node_id: str) -> Node:
        return self._step_by_id[node_id].node

    def node_statistics(self) -> list[NodeStatistics]:
        """Per-node records in topological order (frozen: safe to hand to another thread)."""
        return [step.statistics() for step in self._steps]

    def record_end_to_end_ns(self, ns: int) -> None:
        """For device I/O: one frame's ADC-to-DAC latency from PortAudio's clock."""
        self.end_to_end_latency.add(ns)

    def reset_stats(self) -> None:
        self.counters.reset()
        self.engine_latency.reset()
        self.end_to_end_latency.reset()
        self.serialization.events = 0
        self._started_ns = _now_ns()
        for step in self._steps:
            step.reset()

    def stats(self) -> dict:
        """The stats report of DESIGN.md, as a dict ready for JSON."""
        c = self.counters
        duration = max((_now_ns() - self._started_ns) / 1e9, 1e-9)
        # Audio time pushed, counted in blocks of the manifest's size (a short last block of a
        # file counts as a whole one): realtime_factor = audio seconds per wall-clock second.
        audio = self.manifest.audio
        audio_seconds = c.frames_in * audio.block_size / audio.sample_rate
        engine = self.engine_latency.summary_us()
        e2e = self.end_to_end_latency.summary_us()
        zero = {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
        return {
            "frames_in": c.frames_in,
            "frames_out": c.frames_out,
            "events_out": c.events_out,
            "duration_s": round(duration, 6),
            "realtime_factor": round(audio_seconds / duration, 3),
            "serialization_events": self.serialization.events,
            "copies": {"engine": c.engine_copies, "cow": c.cow, "io": c.io},
            "drops": c.drops,
            "errors": c.errors,
            "xruns": {"input_overflow": c.input_overflow,
                      "output_underflow": c.output_underflow},
            "latency_us": {
                "engine": engine.as_dict() if engine else zero,
                "end_to_end": e2e.as_dict() if e2e else None,
            },
            "nodes": {s.node_id: s.as_dict() for s in self.node_statistics()},
        }

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._unusable = True
        stop_watching(self.serialization)
        errors = []
        for step in reversed(self._steps):
            try:
                step.node.teardown()
            except Exception as exc:  # teardown of the others must still run
                errors.append(NodeError(step.node_id, exc))
        if errors:
            raise errors[0]

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
    plain = step.accepts_numpy and step.requires is None
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
    clock = step.session._clock
    count = 0
    max_s = 0.0

    def receive(item) -> None:
        # The general path: events, adaptation, fan-out, retaining nodes.
        numpy_in = type(item) is Numpy
        if not (plain and numpy_in):
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

    step.receive = receive_plain if plain and single is not None and not retains else receive
    step.record = record
    step.latency_state = state
    step.latency_reset = reset


