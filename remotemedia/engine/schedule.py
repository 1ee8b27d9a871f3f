"""The hot path: a manifest compiled into direct calls, and `push`.

`Schedule` instantiates the nodes, runs their `setup()`, and compiles the graph: each node gets
a `receive` closure (closures.py) that calls its `process`, records its latency and hands
the output straight to its consumers' `receive`, depth first, in manifest order. `push(frame)`
calls the input's consumers and returns what reached `output`. There is no queue, task or
thread per node; fan-out hands the same read-only frame to every consumer, and a fan-in node
runs once it holds a frame from each of its inputs.

Reader counting for copy-on-write: delivering a Numpy frame to k consumers (the output counts as
one that never lets go) adds k to its buffer's readers; a node that has finished with an input
gives one back unless it declares `retains_input`. `frame.writable()` writes in place only when
the buffer is owned and this node is its only reader.

Follow a block: `Schedule.push` here -> a step's `receive` closure (closures.py; fusion.py for
linear nodes run as one multiply) -> `process` -> the consumers. The session (session.py) owns
the lifecycle around it and stats_report.py builds the stats report from what the steps recorded.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Any, Callable

import numpy as np

from .bargein import BargeIn, roles
from .data import (EMPTY_METADATA, BufferOwnership, ControlData, JsonData, NumpyData,
                   RuntimeData, to_runtime_data)
from .errors import ManifestError, NodeError, PipelineBroken, PipelineClosed, RemoteMediaError
from .closures import compile_fan_in, compile_push, compile_receive, compile_run, runs_of
from .executors import INLINE, executors
from .fusion import _linear_groups, compile_linear
from .manifest import INPUT, OUTPUT, Manifest
from .counters import RING_SIZE, Counters, LatencyRing, LatencySummary, NodeStatistics, summarize
from .node import Node, NodeContext

_now = time.perf_counter           # float seconds: cheaper to subtract than big ints

#: Python frames a step may take on the pushing thread's stack before its consumers' (an event:
#: receive -> general path -> pass_event -> emit -> emit; fan-in: receive_named -> run -> emit
#: -> emit), with room to spare
FRAMES_PER_STEP = 8
_BASE_RECURSION_LIMIT = sys.getrecursionlimit()
_Numpy = NumpyData
_make_numpy = NumpyData._make.__func__
_ndarray = np.ndarray


class _Step:
    """One node in the compiled schedule. Its hot path (`receive`, or `inputs` for a fan-in
    node) and `failed`, `latency_state` and `latency_reset` are closures generated from the
    step template (closures.py, template.py); they keep the latency ring's position and
    maximum, which `latency_state()` reads."""

    __slots__ = ("node", "node_id", "node_type", "process", "on_control", "accepts",
                 "accepts_numpy", "requires", "retains", "skip_errors", "fan_in", "pending",
                 "consumers", "numpy_consumers", "readers", "errors", "schedule", "counters", "receive",
                 "latency_values", "latency_state", "latency_reset", "failed", "fused",
                 "receive_numpy", "built", "record_slot", "linear",
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
        self.numpy_consumers: tuple = () # the same consumers, for a frame known to be Numpy
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
        self.linear = False               # run as a multiply (fusion.py)
        self.record_slot: list | None = None   # a member of a run: [the run's recorder]
        self.built: dict = {}             # what the template built for this step

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

    def statistics(self) -> NodeStatistics:
        absorbed = self.node.errors_absorbed
        extra = getattr(self.node, "executor_stats", None)   # an executor node's own figures
        return NodeStatistics(self.node_id, self.node_type, self.calls, self.errors + absorbed,
                              self.summary_us(), extra() if extra is not None else None,
                              self.fused)


class Schedule:
    """A manifest's nodes set up and compiled into closures; `push()` runs one input through.

    `counters` and `engine_latency` are the session's, filled here; `trace`, `clock_s` and
    `taps` are Session's arguments of the same names. Raises NodeError naming a node that fails
    setup()."""

    def __init__(self, manifest: Manifest, counters: Counters, engine_latency: LatencyRing, *,
                 trace=None, clock_s: Callable[[], float] | None = None, fuse: bool = True,
                 taps=None):
        self.counters = counters
        self.engine_latency = engine_latency
        self.bypass = False
        self.unusable = False            # closed or broken: one check on the hot path
        self.broken: RemoteMediaError | None = None
        self.outputs: list[RuntimeData] = []
        self.clock = [0]                 # the last timestamp taken on the current push
        self.steps: list[_Step] = []
        #: barge-in (bargein.py), when the graph has a detector and reply nodes; the run sets
        #: `output_busy() -> bool` (reply audio still queued at its output) and
        #: `output_drop()` (drop that queue) when its output has a queue of its own
        self.barge_in: BargeIn | None = None
        self.output_busy: Callable[[], bool] = _never
        self.output_drop: Callable[[], tuple] = _nothing_dropped
        #: how many outputs each node on an executor may hand on per push when it is polled
        #: (None: all it has); the run sets it to the room at its output
        self.poll_room: Callable[[], int | None] = _no_limit
        try:
            self._compile(manifest, trace, clock_s, fuse, taps or {})
        except BaseException:
            self.teardown()   # the nodes already set up; the setup error is the one to raise
            raise

    def _compile(self, manifest: Manifest, trace, clock_s, fuse: bool, taps) -> None:
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
            if node_id in taps:
                _tap_step(steps[node_id], taps[node_id])
            self.steps.append(steps[node_id])
        # Consumers first: a step's receive() calls its consumers' receive() directly, so
        # closures are built from the last step back to the first.
        consumer_ids: dict[str, list] = {i: [] for i in ("input", *steps)}
        for c in m.connections:
            consumer_ids[c.source].append(c)

        # A fan-in node's inputs, in the order the manifest connects them: the first is the
        # one a node such as Mix takes its timing and metadata from.
        for c in m.connections:
            if c.target != OUTPUT and steps[c.target].fan_in and not c.feedback:
                steps[c.target].pending.setdefault(c.input, deque())

        def consumer_for(c):
            # (entry for any data, entry for a frame known to be Numpy)
            if c.target == OUTPUT:
                return self.outputs.append, self.outputs.append
            target = steps[c.target]
            if c.feedback:
                entry = _feedback_entry(target.node, c.input)
                return entry, entry
            if target.fan_in:
                return target.inputs[c.input]
            return target.receive, target.receive_numpy

        heads = _linear_groups(m, steps, fuse)
        for group in heads.values():
            for member in group:
                member.linear = True
        # Runs (closures.runs_of): untraced, a block goes through each run in one function.
        run_of: dict[str, list] = {}
        if trace is None:
            targets = {i: [None if c.target == OUTPUT else c.target for c in consumer_ids[i]]
                       for i in steps}
            for run in runs_of(self.steps, targets):
                run_of[run[0].node_id] = run
                for member in run:
                    member.record_slot = [None]
        # the trace callable is asked once per node, as Session documents
        spans = {i: None for i in steps} if trace is None else {i: trace(i) for i in steps}
        vad_ids, reply_ids = roles(m)
        #: the nodes connected to `output`
        self.output_sources = frozenset(c.source for c in m.connections if c.target == OUTPUT)
        self.reply_steps = tuple(steps[i] for i in m.order if i in reply_ids)
        if vad_ids and reply_ids:
            self.barge_in = BargeIn(self._bot_busy, self._interrupt)
        for step in reversed(self.steps):
            entries = [consumer_for(c) for c in consumer_ids[step.node_id]]
            if self.barge_in is not None and step.node_id in vad_ids:
                # the detector's events pass a tap on their way on; its audio does not
                entries = [(self._tap(e[0]), e[1]) for e in entries]
            step.consumers = tuple(e[0] for e in entries)
            step.numpy_consumers = tuple(e[1] for e in entries)
            # each consumer reads the output once; a feedback hook reads it during the call
            # and keeps no slot (_feedback_entry)
            step.readers = sum(1 for c in consumer_ids[step.node_id] if not c.feedback)
            # decided here, once: an untraced schedule has no trace code and checks nothing
            if step.fan_in:
                compile_fan_in(step, spans[step.node_id])
            else:
                compile_receive(step, spans[step.node_id])
            run = run_of.get(step.node_id)
            if run is not None:
                compile_run(run)       # its members, later in the order, are built
            group = heads.get(step.node_id)
            if group is not None:
                # built after its members (they come later in the order): the group's step
                # takes the frames, the members' own closures still carry events
                compile_linear(group, None if trace is None else
                               [spans[member.node_id] for member in group])
        entries = [consumer_for(c) for c in consumer_ids[INPUT]]
        _make_room(_longest_path(m))
        self.input_consumers = tuple(e[0] for e in entries)
        self.input_readers = len(self.input_consumers)
        self.step_by_id = steps
        # the hot path's entry, generated (closures.py): replaces the method below
        self.push = compile_push(self, self.input_consumers, tuple(e[1] for e in entries))
        # Nodes on an executor (thread, process, ray) answer when they are done, not when they
        # are called: a node that is not called every block (Speak, fed a reply now and then)
        # is polled after each push, so its outputs leave as they are made.
        self.pollers = tuple((s.node_id, s.node.poll, s.built["emit"]) for s in self.steps
                             if callable(getattr(s.node, "poll", None)) and "emit" in s.built)
        if self.pollers:
            self.push = self._polling(self.push)
            for step in self.steps:
                if any(step.node_id == p[0] for p in self.pollers):
                    step.node.collect_limit = lambda: self.poll_room()

    def poll(self) -> list:
        """What the nodes on an executor have answered since the last push, through the rest
        of the graph, without pushing an input: the run calls it when an executor says an
        answer is in between two blocks (RemoteNode.on_ready), so a voice loop's transcript,
        reply and speech leave when they are made, not at the next block (20 ms per hop).
        Failures as in push()."""
        return self._poll_push([]) if self.pollers else []

    def _polling(self, compiled):
        poll_push = self._poll_push = self._poller()

        def push(data, *, transfer=False):
            return poll_push(compiled(data, transfer=transfer))
        return push

    def _poller(self):
        pollers, outputs, counters = self.pollers, self.outputs, self.counters
        clock, failed_push, schedule = self.clock, self.failed_push, self

        def poll_push(result):
            room = schedule.poll_room()   # set by the run once its output is open
            if room is not None and room <= 0:
                return result
            for node_id, poll, emit in pollers:
                try:
                    outs = poll(room)
                    if outs:
                        clock[0] = _now()   # its consumers' latency counts from here
                        emit(outs)
                except NodeError as exc:
                    failed_push(exc)
                    raise
                except Exception as exc:   # named by node, as a failed process() call is
                    error = NodeError(node_id, exc)
                    failed_push(error)
                    raise error from exc
                except BaseException as exc:
                    failed_push(exc)
                    raise
            if outputs:
                for out in outputs:
                    if type(out) is NumpyData:
                        counters.frames_out += 1
                    else:
                        counters.events_out += 1
                result.extend(outputs)
                outputs.clear()
            return result
        return poll_push

    # -- barge-in (bargein.py) -------------------------------------------------------------------
    def _tap(self, receive):
        watch = self._watch

        def tapped(item):
            if type(item) is JsonData:
                watch(item)
            return receive(item)
        return tapped

    def _watch(self, item) -> None:
        value = item.value
        if type(value) is dict and value.get("type") == "speech_start":
            self.barge_in.speech_started()

    def _bot_busy(self) -> bool:
        for step in self.reply_steps:
            if getattr(step.node, "in_flight", 0):
                return True
        return self.output_busy()

    def _interrupt(self) -> tuple[int, int]:
        """Every reply node interrupted (a node on an executor drops what it has queued and
        not delivered), then the output's queue: (blocks, samples) dropped."""
        blocks = samples = 0
        for step in self.reply_steps:
            node = step.node
            stop = getattr(node, "interrupt", None)
            if stop is not None:
                b, n = stop()
                blocks += b
                samples += n
            else:
                node.on_control(_INTERRUPT)
        b, n = self.output_drop()
        return blocks + b, samples + n

    def push(self, data: Any, *, transfer: bool = False) -> list[RuntimeData]:
        """Run one input through the graph; return what reached `output` for it, in order.

        `transfer=True` hands the buffer to the engine (the caller will not read or reuse it), so
        a node may write it in place; otherwise a writer gets a counted copy. (Replaced per
        instance by the template's generated `push`; this is its documentation.)"""
        return self.push(data, transfer=transfer)

    def failed_push(self, exc: BaseException) -> None:
        """A push failed midway: drop what is in flight; a NodeError breaks the schedule."""
        self.discard_in_flight()
        if isinstance(exc, NodeError):
            self.broken = exc
            self.unusable = True

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


_INTERRUPT = ControlData("interrupt")


def _never() -> bool:
    return False


def _nothing_dropped() -> tuple[int, int]:
    return 0, 0


def _no_limit() -> None:
    return None


def _feedback_entry(node, name: str):
    """A feedback connection's consumer: the frame goes to `node.feedback(name, frame)`, which
    copies what it keeps before it returns (the frame has no reader slot for it: Schedule
    counts only forward consumers), events to nothing."""
    hook = node.feedback

    def feedback(data):
        if data.kind == "numpy":
            hook(name, data)
    return feedback


def _longest_path(m: Manifest) -> int:
    """The most nodes on one path from the input to the output."""
    depth = {INPUT: 0}
    into: dict[str, list[str]] = {}
    for c in m.connections:
        into.setdefault(c.target, []).append(c.source)
    for node_id in m.order:
        depth[node_id] = 1 + max((depth.get(s, 0) for s in into.get(node_id, ())), default=0)
    return max(depth.values())


def _make_room(nodes: int) -> None:
    """A block goes depth first, by direct calls: a path of `nodes` nodes takes up to
    FRAMES_PER_STEP Python frames a node. Raises the interpreter's recursion limit (never lowers
    it) so that a graph of any depth runs, with the frames its caller had before on top.
    (CPython >= 3.11 makes a Python-to-Python call without growing the C stack, so the limit
    is the only bound.)"""
    need = _BASE_RECURSION_LIMIT + FRAMES_PER_STEP * nodes
    if sys.getrecursionlimit() < need:
        sys.setrecursionlimit(need)


def _tap_step(step: "_Step", tap: Callable[[RuntimeData], None]) -> None:
    """Wrap the step's process() and on_control() (and its node's poll(), where a node on an
    executor hands on answers that came in later) so that `tap` sees each output as the node
    makes it, before any consumer does (Session's `taps`). Only a tapped step carries this."""
    process, on_control = step.process, step.on_control
    step.process = lambda data: _tapped(process(data), tap)
    step.on_control = lambda event: _tapped(on_control(event), tap)
    poll = getattr(step.node, "poll", None)
    if callable(poll):
        step.node.poll = lambda *args, **kwargs: _tapped(poll(*args, **kwargs), tap)


def _tapped(result, tap):
    """`result` (None, one RuntimeData, a list or tuple, or an iterator of them) with `tap`
    called on each output: at once for what is already made, as it is drawn for an
    iterator (a node's lazy outputs leave one by one)."""
    if result is None:
        return None
    if isinstance(result, RuntimeData):
        tap(result)
    elif isinstance(result, (list, tuple)):
        for item in result:
            if isinstance(item, RuntimeData):
                tap(item)
    else:
        return _tapped_items(result, tap)
    return result


def _tapped_items(items, tap):
    for item in items:
        if isinstance(item, RuntimeData):
            tap(item)
        yield item


def _make_node(spec) -> Node:
    if spec.executor == INLINE:
        return spec.node_class(spec.id, **spec.params)
    # Executors other than inline live outside the engine (engine/executors.py).
    return executors.factory(spec.executor)(spec)
