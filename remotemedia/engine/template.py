"""What a step does, written once: the template the schedule's hot paths are generated from.

A step, whatever its node: take the block (adapting it to the node's declared input
requirement), call the node, record its latency (and, traced, the call's end), keep the
buffer's reader count for copy-on-write, and hand the output straight to its consumers, depth
first. `TEMPLATE` below is that step, once, for every kind of step the schedule compiles: `one`
(a node with one input), `fan_in` (a frame from each named input), `linear` (a group of linear
nodes run as one multiply, fusion.py), `run` (one-input steps, each the only consumer of the one
before, taken through in one function: the `one` step's text repeated per member) and `push`
(the schedule's entry: the input's step). Its slow paths (events, data a node does not
take, an iterable of outputs, a failed call) are in it too, so a reader count is edited only
here: `@RELEASE(x)` (a consumer has finished with x), `@DELIVER(x)` (x goes to this step's
consumers) and `@PASS(x, n)` (x goes on unchanged: this step's reader slot becomes n readers),
each written once in `_MACROS`; the `push` case (the schedule's entry) sets the input's first
readers when it wraps an ndarray. Nowhere else in the engine changes a reader count.

`#if EXPR` / `#elif` / `#else` / `#endif` lines keep or drop what a case does not need, so a
step carries no branch for a case it cannot meet (an untraced step has no trace code at all);
`@NAME(args)` lines expand a macro at their indentation, and a `#for J` block is repeated for
each member of a run (codegen.py is the preprocessor). `generate(flags, names)` returns a
factory `make(e)` that binds the names in the dict `e` and returns what the step built.

Why generated when the schedule compiles rather than a generated file checked in: the cases
multiply (kind x traced x one consumer or several x retains x a requirement checked by dtype x
one gain or several), and the fastest step has none of the others' branches; a checked-in file
would hold every combination or keep the branches. Each case is compiled once per process, and
every step runs on fresh copies of its code objects (codegen.fresh): CPython specialises a code
object's instructions for the callables and types it has seen (PEP 659), so steps sharing one
code object (each calling a different consumer) would keep undoing each other's
specialisation, and a session's speed would depend on what an earlier session carried through
the same code. The source of each case is registered with linecache, so a traceback through a
step shows its lines.
"""

from __future__ import annotations

from typing import Callable

from . import codegen

# The reader-count edits: the only places BufferOwnership.readers changes (besides the count a
# pushed ndarray starts with, in the push case).
_MACROS = {
    # a consumer has finished with x (it does not retain it)
    "RELEASE": ("{0}._ownership.readers -= 1",),
    # x goes to this step's consumers: one reader each (the session's output counts as one)
    "DELIVER": ("ownership = {0}._ownership",
                "ownership.readers += readers",
                "ownership.counters = counters"),
    # x goes on unchanged: the reader slot it had here becomes {1} readers
    "PASS": ("{0}._ownership.readers += {1}",),
    # hand x to the consumers, depth first
    "SEND": ("#if SINGLE",
             "single({0})",
             "#else",
             "for consumer in consumers:",
             "    consumer({0})",
             "#endif"),
    # hand x, known to be a Numpy frame, to the consumers' entries that skip the type test
    "SEND_NUMPY": ("#if SINGLE",
                   "single_numpy({0})",
                   "#else",
                   "for consumer in numpy_consumers:",
                   "    consumer({0})",
                   "#endif"),
    # the call's latency into the ring, from the previous timestamp on this push to t1
    "RECORD": ("#if SHARED_RECORD",
               "record[0](t1)",          # a member of a run: the run keeps its ring's place
               "#else",
               "dt = t1 - clock[0]",
               "clock[0] = t1",
               "values[count & mask] = dt",
               "count += 1",
               "if dt > max_s:",
               "    max_s = dt",
               "#if TRACE and KIND != 'linear'",
               "trace_end(t1)",
               "#endif",
               "#endif"),
    # the common case of a one-input step: a Numpy block (the caller knows) the node takes as
    # it comes, its requirement checked by dtype alone; in a run, the next member's follows
    "STEP_FAST": ("#if CHECK",
                  "if item._source.dtype not in ok:",
                  "    return receive_general(item)",
                  "#endif",
                  "try:",
                  "    out = process(item)",
                  "except Exception as exc:",
                  "    @FAILED_AT()",
                  "    return failed(item, exc)",
                  "t1 = now()",
                  "@RECORD()",
                  "if out is not item:",
                  "#if not RETAINS",
                  "    @RELEASE(item)",
                  "#endif",
                  "    if out is None:",
                  "        return",
                  "    if type(out) is not Numpy:",
                  "        return emit(out)",
                  "    @DELIVER(out)",
                  "#if RETAINS",
                  "else:",
                  "    @PASS(item, readers)",
                  "#elif not READERS_ONE",
                  "else:",
                  "    @PASS(item, readers - 1)",
                  "#endif",
                  "#if KIND == 'run' and not LAST",
                  "item = out",
                  "#else",
                  "@SEND_NUMPY(out)",
                  "#endif"),
    # the step's entry: a Numpy frame takes the fast path, anything else {0}, the general one
    "ENTRY": ("def receive(item):",
              "    if type(item) is Numpy:",
              "        return receive_numpy(item)",
              "    return {0}(item)"),
    # a fan-in step: run the node once for every input holding a frame, while all of them do
    "RUN_WHILE_READY": ("while True:",
                        "    for q in queues:",
                        "        if not q:",
                        "            return",
                        "    run()"),
    # the step's latency count and maximum (its ring's values are bound from `e`), and the
    # functions the stats read and reset them through: one per step, or per member of a run
    "RING": ("count = 0",
             "max_s = 0.0",
             "def state():",
             "    return count, max_s",
             "def reset():",
             "    nonlocal count, max_s",
             "    count = 0",
             "    max_s = 0.0"),
    # a call that raised: its end is the clock's new timestamp (and, traced, a span's end)
    "FAILED_AT": ("t1 = clock[0] = now()",
                  "#if TRACE and KIND != 'linear'",
                  "trace_end(t1)",
                  "#endif"),
}

TEMPLATE = '''
def make(e):
    @BIND()

#if KIND not in ('push', 'run')
    @RING()

    # -- the slow paths, shared by every kind of step ----------------------------------------
    def adapt(item):
        # the node's declared requirement, met by one conversion: an engine copy
        counters.engine_copies += 1
        @RELEASE(item)
        item = item.with_array(requires.adapt(item._source))
        @PASS(item, 1)
        item._ownership.counters = counters
        return item

    def failed(item, exc):
        step.errors += 1
        counters.errors += 1
        if skip_errors:
            for frame in (item.values() if type(item) is dict else (item,)):
                if type(frame) is Numpy:
                    counters.drops += 1
                    @RELEASE(frame)
            return
        raise NodeError(node_id, exc) from exc

    def emit(out):
        # outputs other than one Numpy frame: events, or an iterable of frames
        if isinstance(out, RuntimeData):
            if type(out) is Numpy:
                @DELIVER(out)
            @SEND(out)
            return
        for one in out:
            if not isinstance(one, RuntimeData):
                raise NodeError(node_id, TypeError(
                    f"process() returned {type(one).__name__}, not RuntimeData"))
            emit(one)

    def forward(item):
        # data the node does not take flows past it: its reader slot moves on downstream
        if type(item) is Numpy:
            @PASS(item, readers - 1)
        @SEND(item)

    def pass_event(item):
        if type(item) is ControlData:
            try:
                released = on_control(item)
            except Exception as exc:
                failed(item, exc)
                released = None
            if released:
                emit(released)
        forward(item)
#endif

#if KIND == 'one'
    def receive_general(item):
        # any data: events, data the node does not take, a requirement to meet
        nonlocal count, max_s
        numpy_in = type(item) is Numpy
        if numpy_in:
            if not accepts_numpy:
                return forward(item)
            if requires is not None and not requires.satisfied_by(item._source):
                item = adapt(item)
        elif item.kind not in accepts:
            return pass_event(item)
        try:
            out = process(item)
        except Exception as exc:
            @FAILED_AT()
            return failed(item, exc)
        t1 = now()
        @RECORD()
        if out is item:
            if numpy_in:
#if RETAINS
                @PASS(item, readers)
#else
                @PASS(item, readers - 1)
#endif
        else:
#if not RETAINS
            if numpy_in:
                @RELEASE(item)
#endif
            if out is None:
                return
            if type(out) is not Numpy:
                return emit(out)
            @DELIVER(out)
            @SEND_NUMPY(out)
            return
        @SEND(out)

#if FAST
    def receive_numpy(item):
        nonlocal count, max_s
        @STEP_FAST()

    @ENTRY(receive_general)
#else
    receive = receive_numpy = receive_general
#endif
    return {"entries": (receive, receive_numpy), "state": state, "reset": reset,
            "failed": failed, "general": receive_general, "emit": emit}

#elif KIND == 'run'
    # a run of one-input steps, each the only consumer of the one before: one function takes a
    # block through all of them (no call between members); each member keeps its own latency
    # ring, and its own step (general path, events) records into it through `record`
#for J
    @RING()

    def record(t1):
        nonlocal count, max_s
        @RECORD()
#endfor

    def receive_numpy(item):
#for J
        nonlocal count, max_s
        @STEP_FAST()
#endfor

    @ENTRY(receive_general_0)

    members = []
#for J
    members.append((state, reset, record))
#endfor
    return {"entries": (receive, receive_numpy), "members": members}

#elif KIND == 'fan_in'
    def run():
        # one frame from each input, in the order the manifest connects them
        nonlocal count, max_s
#if RETAINS
        frames = {}
#else
        frames = reused
#endif
        for name, q in pairs:
            frame = q.popleft()
#if REQUIRES
            if type(frame) is Numpy and frame._source.dtype not in ok and not \\
                    satisfied_by(frame._source):
                frame = adapt(frame)
#endif
            frames[name] = frame
        try:
            out = process(frames)
        except Exception as exc:
            @FAILED_AT()
            return failed(dict(frames), exc)
        t1 = now()
        @RECORD()
#if not RETAINS
        for frame in frames.values():
            if type(frame) is Numpy:
                @RELEASE(frame)
#endif
        if type(out) is Numpy:
            @DELIVER(out)
            @SEND_NUMPY(out)
        elif out is not None:
            emit(out)

    def receive_named(name, item):
        # the general path: events pass a fan-in node once, when the first input's copy comes
        if type(item) is not Numpy and item.kind not in accepts:
            if type(item) is ControlData:
                return pass_event(item) if name == first else None
            return forward(item)
        pending[name].append(item)
        @RUN_WHILE_READY()

    def receiver(name, queue):
        def receive_numpy(item):
            queue.append(item)
            @RUN_WHILE_READY()

        def receive_input(item):
            if type(item) is not Numpy:
                return receive_named(name, item)
            queue.append(item)
            @RUN_WHILE_READY()
        return receive_input, receive_numpy

    return {"entries": {name: receiver(name, q) for name, q in pairs}, "state": state,
            "reset": reset, "failed": failed}

#elif KIND == 'linear'
    last_factor = object()     # no gain is this: the first block's is checked
    last_dtype = None
    k0 = None

    def fail(k, item, exc):
        # member k's linear_gain() raised or returned no finite real number
#if TRACE
        trace_ends[k](clock[0])
#endif
        for member in group[:k]:
            member.partial_calls += 1       # they ran on this block before it failed
        return group[k].failed(item, exc)

    def receive(item):
        if type(item) is not Numpy:
            return fallback(item)      # the head's own step: events pass node by node
        return receive_numpy(item)

    def receive_numpy(item):
        nonlocal count, max_s, last_factor, last_dtype, k0
        src = item._source
        if src.dtype not in ok and not satisfied_by(src):
            item = adapt(item)     # integer PCM: converted once, counted
            src = item._source
        k = 0
        try:
#if ONE_GAIN
            factor = one()
            # checked once per value: the float checked last time is the same object again
            if factor is not last_factor and (type(factor) is not float
                                              or factor - factor != 0.0):
                factor = as_gain(factor)
#else
            factor = 1.0
            for gain in gains:
                f = gain()
                if type(f) is not float or f - f != 0.0:
                    f = as_gain(f)
                factors[k] = f
                factor *= f
                k += 1
#endif
        except Exception as exc:
            clock[0] = now()
            return fail(k, item, exc)
        out = item
        if factor != 1.0:
            dtype = src.dtype
            if factor != last_factor or dtype is not last_dtype:
                k0 = make_factor(factor, dtype=dtype) if fits(factor, dtype, members) else None
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
                    one_by_one(factors, buf, src, dtype)
            else:
                # Copy on write and multiply in one pass: numpy writes the product into a new
                # buffer (layout kept, as writable()'s copy keeps it), counted as the cow copy
                # writable() would have made.
                buf = multiply(src, k0) if k0 is not None else one_by_one(factors, None, src,
                                                                         dtype)
                if ownership.counters is not None:
                    ownership.counters.cow += 1
                out = make_numpy(Numpy, buf, None, item._sample_rate, item._pts, item._seq,
                                 item._metadata, BufferOwnership(True, 0, counters))
        t1 = now()
#if TRACE
        t0 = clock[0]
#endif
        @RECORD()
#if TRACE
        share = dt / members
        for i, end in enumerate(trace_ends[:-1], 1):
            end(t0 + share * i)
        trace_ends[-1](t1)
#endif
        if out is item:
#if not READERS_ONE
            @PASS(item, readers - 1)
#endif
            pass
        else:
            @RELEASE(item)
            @DELIVER(out)
        @SEND_NUMPY(out)

    return {"entries": (receive, receive_numpy), "state": state, "reset": reset,
            "failed": failed}

#elif KIND == 'push'
    new_ownership = BufferOwnership.__new__
    ring_values = engine_latency.values
    unusable = schedule.raise_unusable
    failed_push = schedule.failed_push

    def push(data, *, transfer=False):
        # the input's step: a frame for the input's consumers, and what reached the output
        if schedule.unusable:
            unusable()
        t_start = clock[0] = now()
        if type(data) is ndarray:
            # the common case, without the general conversion's checks; the buffer's first
            # readers are the input's consumers
            frame = new(Numpy)
            frame._source = data
            frame._array = None
            frame._sample_rate = None
            frame._pts = None
            frame._seq = None
            frame._metadata = EMPTY_METADATA
            frame._ownership = ownership = new_ownership(BufferOwnership)
            ownership.owned = transfer
            ownership.readers = readers
            ownership.counters = counters
            counters.frames_in += 1
            numpy_in = True
        else:
            frame = data if isinstance(data, RuntimeData) else to_runtime_data(data)
            numpy_in = type(frame) is Numpy
            if numpy_in:
                counters.frames_in += 1
                if transfer:
                    frame._ownership.owned = True
                @DELIVER(frame)
        if schedule.bypass:
            outputs.append(frame)
        else:
            try:
                if numpy_in:
                    @SEND_NUMPY(frame)
                else:
                    @SEND(frame)
            except BaseException as exc:
                failed_push(exc)
                raise
        result = outputs[:]
        outputs.clear()
        for out in result:
            if type(out) is Numpy:
                counters.frames_out += 1
            elif out is not frame or type(out) is not ControlData:
                # Every non-audio output is an event, except the caller's own control event
                # (end_of_stream, flush) coming back out at the end of the graph.
                counters.events_out += 1
        # the engine's latency, in ns (LatencyRing.add, inlined)
        ns = int((now() - t_start) * 1e9)
        c = engine_latency.count
        ring_values[c & mask] = ns
        engine_latency.count = c + 1
        if ns > engine_latency.max_ns:
            engine_latency.max_ns = ns
        return result

    return push
#endif
'''

_DEFAULTS = {"SHARED_RECORD": False}     # flags a case need not give

#: in a `#for J` block (a run's members), the names each member has of its own, numbered
MEMBER_NAMES = ("count", "max_s", "record", "state", "reset", "process", "failed", "emit",
                "receive_general", "ok", "readers", "values", "single_numpy",
                "numpy_consumers")


def expand(text: str, flags: dict, names=()) -> str:
    """The template's text (or any text using its macros) for `flags` (codegen.expand)."""
    return codegen.expand(text, _MACROS, {**_DEFAULTS, **flags}, names, MEMBER_NAMES)


def generate(flags: dict, names) -> Callable:
    """The factory `make(e)` for one case of the step template: `flags` choose the case (KIND:
    'one', 'fan_in', 'linear', 'run' or 'push'; TRACE, SINGLE, RETAINS, READERS_ONE, FAST,
    CHECK, REQUIRES, ONE_GAIN, SHARED_RECORD: booleans; MEMBERS for a run), `names` are the
    names `make` binds from its dict. Compiled once per process; every call returns a factory
    over fresh code objects (codegen.generate)."""
    return codegen.generate(TEMPLATE, _MACROS, {**_DEFAULTS, **flags}, names, MEMBER_NAMES)
