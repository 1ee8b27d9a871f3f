"""Pipelines and sessions: a compiled schedule run by direct calls.

`Pipeline` holds a validated manifest. `Pipeline.session()` instantiates the nodes, runs their
`setup()`, and compiles a flat schedule in topological order. `Session.push(frame)` runs the whole
schedule for one input: each node's inbox is drained in order by calling `process` directly. There
is no queue, task or thread per node; fan-out appends the same read-only frame to several inboxes.

Reader counting for copy-on-write: delivering a Numpy frame to k consumers (the session's output
counts as one that never lets go) adds k to its buffer's readers; a node that has finished with an
input gives one back unless it declares `retains_input`. `frame.writable()` writes in place only
when the buffer is owned and this node is its only reader.
"""

from __future__ import annotations

import importlib
import time
from collections import deque
from typing import Any, AsyncIterable, AsyncIterator, Iterable

from .data import ControlData, NumpyData, RuntimeData, set_current_counters, to_runtime_data
from .errors import NodeError, PipelineBroken, PipelineClosed, RemoteMediaError
from .manifest import INPUT, OUTPUT, Manifest, load_manifest
from .metrics import Counters, LatencyRing, NodeStatistics
from .node import Node
from .serialization import SerializationWatch, start_watching, stop_watching

_now_ns = time.perf_counter_ns
_Numpy = NumpyData


class _Step:
    """One node in the compiled schedule, with its inbox and its counters."""

    __slots__ = ("node", "node_id", "node_type", "process", "on_control", "accepts", "requires",
                 "retains", "skip_errors", "fan_in", "inbox", "pending", "sinks", "readers",
                 "calls", "errors", "latency")

    def __init__(self, node: Node, on_error: str):
        cls = type(node)
        self.node = node
        self.node_id = node.node_id
        self.node_type = cls.node_type
        self.process = node.process
        self.on_control = node.on_control
        self.accepts = cls.accepts
        self.requires = cls.requires
        self.retains = cls.retains_input
        self.skip_errors = on_error == "skip"
        self.fan_in = cls.inputs == "many"
        self.inbox: list = []
        self.pending: dict[str, deque] = {}
        self.sinks: list = []            # bound append methods of consumers' inboxes
        self.readers = 0                 # consumers, plus one if it feeds the output
        self.calls = 0
        self.errors = 0
        self.latency = LatencyRing()

    def take_fan_in(self) -> list:
        """Complete sets of inputs (one frame per input name) ready for a fan-in node."""
        pending = self.pending
        ready = []
        while all(pending.values()):
            ready.append({name: q.popleft() for name, q in pending.items()})
        return ready


class Pipeline:
    """A validated manifest, ready to open sessions on."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest

    @classmethod
    def from_manifest(cls, src: Any, *, allow_import: Iterable[str] = (),
                      audio: dict | None = None) -> "Pipeline":
        """From a path, a dict, or a JSON string. `audio` overrides the manifest's defaults."""
        return cls(load_manifest(src, allow_import=allow_import, audio_overrides=audio))

    @property
    def order(self) -> tuple[str, ...]:
        return self.manifest.order

    def edges(self) -> list[tuple[str, str]]:
        return [(c.source, c.target) for c in self.manifest.connections]

    def session(self, strict_serialization: bool = False) -> "Session":
        return Session(self.manifest, strict_serialization=strict_serialization)


class Session:
    """One run of a pipeline. A context manager; `close()` is safe to call twice."""

    def __init__(self, manifest: Manifest, *, strict_serialization: bool = False):
        self.manifest = manifest
        self.counters = Counters()
        self.engine_latency = LatencyRing()
        self.end_to_end_latency = LatencyRing()
        self.serialization = SerializationWatch(strict=strict_serialization)
        self.bypass = False
        self._closed = False
        self._broken: RemoteMediaError | None = None
        self._samples_in = 0
        self._started_ns = _now_ns()
        self._outputs: list[RuntimeData] = []
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
            node = _make_node(spec)
            node.format = _input_format(m, node_id)
            node.setup()
            steps[node_id] = _Step(node, spec.on_error)
            self._steps.append(steps[node_id])
        input_sinks, input_readers = [], 0
        for c in m.connections:
            if c.target == OUTPUT:
                sink = self._outputs.append
            else:
                target = steps[c.target]
                if target.fan_in:
                    sink = target.pending.setdefault(c.input, deque()).append
                else:
                    sink = target.inbox.append
            if c.source == INPUT:
                input_sinks.append(sink)
                input_readers += 1
            else:
                steps[c.source].sinks.append(sink)
                steps[c.source].readers += 1
        self._input_sinks = input_sinks
        self._input_readers = input_readers
        self._step_by_id = steps

    # -- the hot path ----------------------------------------------------------------------------
    def push(self, data: Any, *, transfer: bool = False) -> list[RuntimeData]:
        """Run one input through the graph; return what reached `output` for it, in order.

        `transfer=True` hands the buffer to the engine (the caller will not read or reuse it), so
        a node may write it in place; otherwise a writer gets a counted copy."""
        if self._closed or self._broken is not None:
            self._raise_unusable()
        frame = data if isinstance(data, RuntimeData) else to_runtime_data(data)
        counters = self.counters
        previous = set_current_counters(counters)
        t_start = _now_ns()
        if type(frame) is _Numpy:
            counters.frames_in += 1
            shape = frame.array.shape
            self._samples_in += shape[0] if shape else 1
            ownership = frame._ownership
            if transfer:
                ownership.owned = True
            ownership.readers += self._input_readers
        if self.bypass:
            self._outputs.append(frame)
        else:
            for sink in self._input_sinks:
                sink(frame)
            try:
                self._run_schedule(counters)
            except BaseException:
                self._discard_in_flight()
                set_current_counters(previous)
                raise
        outputs = self._outputs[:]
        self._outputs.clear()
        for out in outputs:
            if type(out) is _Numpy:
                counters.frames_out += 1
            else:
                counters.events_out += 1
        self.engine_latency.add(_now_ns() - t_start)
        set_current_counters(previous)
        return outputs

    def _run_schedule(self, counters: Counters) -> None:
        for step in self._steps:
            if step.fan_in:
                if not all(step.pending.values()):
                    continue
                items = step.take_fan_in()
            else:
                items = step.inbox
                if not items:
                    continue
            for item in items:
                if step.fan_in:
                    self._run_fan_in(step, item, counters)
                    continue
                if type(item) is _Numpy:
                    if "numpy" not in step.accepts:
                        self._forward(step, item)
                        continue
                    requires = step.requires
                    if requires is not None and not requires.satisfied_by(item.array):
                        item = self._adapt(item, requires, counters)
                elif item.kind not in step.accepts:
                    self._pass_event(step, item)
                    continue
                t0 = _now_ns()
                try:
                    out = step.process(item)
                except Exception as exc:
                    self._node_failed(step, item, exc, counters)
                    continue
                finally:
                    step.calls += 1
                step.latency.add(_now_ns() - t0)
                if type(item) is _Numpy and not step.retains:
                    item._ownership.readers -= 1
                if out is not None:
                    self._emit(step, out)
            if not step.fan_in:
                items.clear()

    def _emit(self, step: _Step, out) -> None:
        if isinstance(out, RuntimeData):
            if type(out) is _Numpy:
                out._ownership.readers += step.readers
            for sink in step.sinks:
                sink(out)
            return
        for one in out:
            if not isinstance(one, RuntimeData):
                raise NodeError(step.node_id, TypeError(
                    f"process() returned {type(one).__name__}, not RuntimeData"))
            self._emit(step, one)

    def _forward(self, step: _Step, item: RuntimeData) -> None:
        # Data the node does not accept flows past it: its reader slot moves on.
        if type(item) is _Numpy:
            item._ownership.readers += step.readers - 1
        for sink in step.sinks:
            sink(item)

    def _pass_event(self, step: _Step, item: RuntimeData) -> None:
        if type(item) is ControlData:
            try:
                released = step.on_control(item)
            except Exception as exc:
                self._node_failed(step, item, exc, self.counters)
                released = None
            if released:
                self._emit(step, released)
        self._forward(step, item)

    def _run_fan_in(self, step: _Step, inputs: dict, counters: Counters) -> None:
        frames = {}
        for name, item in inputs.items():
            if type(item) is _Numpy and step.requires is not None \
                    and not step.requires.satisfied_by(item.array):
                item = self._adapt(item, step.requires, counters)
            frames[name] = item
        t0 = _now_ns()
        try:
            out = step.process(frames)
        except Exception as exc:
            self._node_failed(step, next(iter(inputs.values())), exc, counters)
            return
        finally:
            step.calls += 1
        step.latency.add(_now_ns() - t0)
        if not step.retains:
            for item in frames.values():
                if type(item) is _Numpy:
                    item._ownership.readers -= 1
        if out is not None:
            self._emit(step, out)

    def _adapt(self, item: NumpyData, requires, counters: Counters) -> NumpyData:
        counters.engine_copies += 1
        item._ownership.readers -= 1
        adapted = item.with_array(requires.adapt(item.array))
        adapted._ownership.readers += 1
        return adapted

    def _node_failed(self, step: _Step, item, exc: Exception, counters: Counters) -> None:
        step.errors += 1
        counters.errors += 1
        if step.skip_errors:
            if type(item) is _Numpy:
                counters.drops += 1
                item._ownership.readers -= 1
            return
        error = NodeError(step.node_id, exc)
        self._broken = error
        raise error from exc

    def _discard_in_flight(self) -> None:
        for step in self._steps:
            step.inbox.clear()
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
        return [NodeStatistics(s.node_id, s.node_type, s.calls, s.errors, s.latency.summary_us())
                for s in self._steps]

    def record_end_to_end_ns(self, ns: int) -> None:
        """For device I/O: one frame's ADC-to-DAC latency from PortAudio's clock."""
        self.end_to_end_latency.add(ns)

    def reset_stats(self) -> None:
        self.counters.reset()
        self.engine_latency.reset()
        self.end_to_end_latency.reset()
        self.serialization.events = 0
        self._samples_in = 0
        self._started_ns = _now_ns()
        for step in self._steps:
            step.calls = step.errors = 0
            step.latency.reset()

    def stats(self) -> dict:
        """The stats report of DESIGN.md, as a dict ready for JSON."""
        c = self.counters
        duration = max((_now_ns() - self._started_ns) / 1e9, 1e-9)
        rate = self.manifest.audio.sample_rate or 0
        audio_seconds = self._samples_in / rate if rate else 0.0
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


# Executors other than "inline" live outside the engine; each module exposes
# make_executor_node(spec) returning a Node that forwards to where the real node runs.
EXECUTOR_MODULES = {"process": "remotemedia.ipc"}


def _make_node(spec) -> Node:
    if spec.executor == "inline":
        return spec.node_class(spec.id, **spec.params)
    module = importlib.import_module(EXECUTOR_MODULES[spec.executor])
    return module.make_executor_node(spec)


def _input_format(m: Manifest, node_id: str):
    sources = [c.source for c in m.connections if c.target == node_id]
    if not sources:
        return m.audio
    src = sources[0]
    return m.audio if src == INPUT else m.formats[src]
