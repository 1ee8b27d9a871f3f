"""The per-node hot paths: the closures Schedule (schedule.py) compiles for each step.

`_compile_receive` builds a one-input node's `receive`, `_compile_fan_in` a fan-in node's
receive per input; fusion.py builds the one for a group of linear nodes. Each closure runs the
node, records its latency in the step's ring (inline: a call costs ~60 ns a node a frame),
keeps the buffer's reader count and hands the output straight to the consumers, depth first.
The traced variants exist only when a trace is asked for, so an untraced schedule carries no
trace code at all.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Callable

from .data import NumpyData
from .metrics import RING_SIZE

if TYPE_CHECKING:
    from .schedule import _Step

_now = time.perf_counter           # float seconds: cheaper to subtract than big ints
_Numpy = NumpyData
_RING_MASK = RING_SIZE - 1


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
