"""Pipelines and sessions: the lifecycle around a compiled schedule.

`Pipeline` holds a validated manifest. `Pipeline.session()` opens a `Session`: it starts watching
for serialization, builds the `Schedule` (schedule.py: the nodes set up and compiled into direct
calls, and `push`, the hot path), and closes it all again, safely twice. The stats report is
built by stats_report.py from what the session and its steps counted.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterable, AsyncIterator, Callable, Iterable

from .data import ControlData, RuntimeData
from .errors import RemoteMediaError
from .manifest import Manifest, load_manifest
from .counters import Counters, LatencyRing, NodeStatistics
from .node import Node
from .stats_report import build_report
from .schedule import Schedule
from .serialization import SerializationWatch, start_watching, stop_watching


class Pipeline:
    """A validated manifest, ready to open sessions on."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest

    @classmethod
    def from_manifest(cls, src: Any, *, allow_import: Iterable[str] = (),
                      audio: dict | None = None, registry=None,
                      input_format: dict | None = None) -> "Pipeline":
        """From a path, a dict, or a JSON string. `audio` (sample_rate, channels, block_size)
        overrides the manifest's; `input_format` (sample_rate, channels) is an input file's
        own, which decides what neither `audio` nor the manifest's audio block pins (the
        precedence of engine/precedence.py); `registry` resolves node types instead of the
        default one (remotemedia.testing's isolated registries). Raises ManifestError naming
        the file, node and problem."""
        return cls(load_manifest(src, allow_import=allow_import, audio_overrides=audio,
                                 registry=registry, input_format=input_format))

    @property
    def order(self) -> tuple[str, ...]:
        """Node ids in topological order (stable in manifest order)."""
        return self.manifest.order

    def edges(self) -> list[tuple[str, str]]:
        """Every connection as (source, target); "input" and "output" included."""
        return [(c.source, c.target) for c in self.manifest.connections]

    def session(self, strict_serialization: bool = False, trace=None,
                clock: Callable[[], float] | None = None, fuse: bool = True,
                taps=None) -> "Session":
        """A new Session (see Session for the arguments)."""
        return Session(self.manifest, strict_serialization=strict_serialization, trace=trace,
                       clock=clock, fuse=fuse, taps=taps)


class Session:
    """One run of a pipeline. A context manager; `close()` is safe to call twice.

    `strict_serialization`: raise SerializationError at the first array serialized anywhere in
    the process while the session is open, instead of counting it. `clock`: the run's clock in
    seconds (the runner's), handed to nodes in their NodeContext; None outside a run. `trace`:
    None (the default: the schedule carries no trace code at all), or a callable
    `trace(node_id) -> list` that the compiler calls once per node; that node's compiled hot
    path then appends the end of each process() call to the list, as time.perf_counter()
    seconds (remotemedia/trace.py makes a trace of them). `fuse`: run a chain of adjacent
    linear elementwise nodes (Node.linear_elementwise, such as Gain) as one multiply by the
    product of their gains (the default; each still reports its calls and its share of the
    time, marked `fused` in the stats); False runs each as its own multiply. `taps`: None (the
    default: nothing extra on any step), or {node_id: tap}: `tap(data)` is called with each
    output of that node (RuntimeData: frames and events, from process(), on_control() and,
    for a node on an executor, the poll() that hands on its later answers) as
    the node makes it, before its consumers see it, on the thread that pushes; it must return
    quickly, not keep a frame's array past the call, and what it raises fails the node. (A
    linear node run as a multiply, such as Gain, makes no frame of its own: only its events
    are tapped.) Raises NodeError naming a node whose setup() fails, after closing what was
    opened."""

    def __init__(self, manifest: Manifest, *, strict_serialization: bool = False, trace=None,
                 clock: Callable[[], float] | None = None, fuse: bool = True, taps=None):
        self.manifest = manifest
        self.counters = Counters()
        self.engine_latency = LatencyRing()
        self.end_to_end_latency = LatencyRing()
        self.serialization = SerializationWatch(strict=strict_serialization)
        self.started_ns = time.perf_counter_ns()
        self._closed = False
        self._schedule: Schedule | None = None
        start_watching(self.serialization)
        try:
            self._schedule = Schedule(manifest, self.counters, self.engine_latency,
                                      trace=trace, clock_s=clock, fuse=fuse, taps=taps)
        except BaseException:
            self.close()
            raise
        # The hot path is the schedule's own bound method: no extra call per push.
        self.push = self._schedule.push

    def push(self, data: Any, *, transfer: bool = False) -> list[RuntimeData]:
        """Run one input through the graph; return what reached `output` for it, in order.

        `data`: a RuntimeData, an ndarray ((samples,) or (samples, channels), any dtype) or
        anything RuntimeData converts. `transfer=True` hands the buffer to the engine (the
        caller will not read or reuse it), so a node may write it in place; otherwise a writer
        gets a counted copy. Raises NodeError when a node fails (the session is then broken),
        PipelineClosed after close(), PipelineBroken after a failure. (Replaced per instance by
        Schedule.push; this is its documentation.)"""
        return self._schedule.push(data, transfer=transfer)

    @property
    def bypass(self) -> bool:
        """True: every input goes straight to the output, past every node (the TUI's b)."""
        return self._schedule.bypass

    @bypass.setter
    def bypass(self, value: bool) -> None:
        """Sets bypass: True sends each input block straight to the output, skipping the graph."""
        self._schedule.bypass = bool(value)

    def poll(self) -> list[RuntimeData]:
        """What nodes on an executor answered since the last push, taken through the rest of
        the graph now (without an input); [] for a graph without such nodes. For a run that
        hears between blocks that an answer is in (RemoteNode.on_ready). Raises NodeError as
        push() does."""
        return self._schedule.poll()

    # -- control and streaming -------------------------------------------------------------------
    def flush(self) -> list[RuntimeData]:
        """Send a `flush` event through the graph so buffering nodes release what they hold."""
        return self.push(ControlData("flush"))

    def end_of_stream(self) -> list[RuntimeData]:
        """Send `end_of_stream`: buffering nodes release what they hold; returns the outputs."""
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
        """True once close() has run; push() then raises PipelineClosed."""
        return self._closed

    @property
    def broken(self) -> RemoteMediaError | None:
        """The NodeError that broke the session, or None."""
        return self._schedule.broken if self._schedule is not None else None

    @property
    def schedule(self) -> Schedule:
        """The compiled schedule (schedule.py): its `steps`, in topological order, carry each
        node's counters and latency ring, for observers such as the recorder."""
        return self._schedule

    def node(self, node_id: str) -> Node:
        """The node instance with this id (KeyError if there is none)."""
        return self._schedule.step_by_id[node_id].node

    def node_statistics(self) -> list[NodeStatistics]:
        """Per-node records in topological order (frozen: safe to hand to another thread)."""
        return [step.statistics() for step in self._schedule.steps]

    def record_end_to_end_ns(self, ns: int) -> None:
        """For device I/O: one frame's ADC-to-DAC latency from PortAudio's clock, in ns."""
        self.end_to_end_latency.add(ns)

    def reset_stats(self) -> None:
        """Zero every counter and latency ring, and restart the report's duration."""
        self.counters.reset()
        self.engine_latency.reset()
        self.end_to_end_latency.reset()
        self.serialization.events = 0
        self.started_ns = time.perf_counter_ns()
        for step in self._schedule.steps:
            step.reset()

    def stats(self) -> dict:
        """The stats report (counters, latencies, node statistics), as a dict ready for JSON
        (engine/stats_report.py)."""
        return build_report(self)

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop watching, tear every node down (last first); raises the first teardown's
        NodeError after all have run. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        stop_watching(self.serialization)
        if self._schedule is None:
            return
        errors = self._schedule.teardown()
        if errors:
            raise errors[0]

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
