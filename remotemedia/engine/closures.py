"""The per-node hot paths: each step's closures, generated from the one template (template.py).

`compile_receive` builds a one-input node's `receive`, `compile_fan_in` a fan-in node's receive
per input name (`step.inputs`); fusion.py builds the one for a group of linear nodes. This
module only gathers what a step's closures are built over (its node, consumers, reader count,
requirement, latency ring, trace list) and picks the template's case; what a step does is
written once, in template.py. Inline, a call costs ~60 ns a node a frame.
"""

from __future__ import annotations

import time

import numpy as np

from .data import (EMPTY_METADATA, BufferOwnership, ControlData, NumpyData, RuntimeData,
                   to_runtime_data)
from .errors import NodeError
from .counters import RING_SIZE
from .template import generate

_now = time.perf_counter           # float seconds: cheaper to subtract than big ints


def step_names(step, spans) -> dict:
    """What every case of the template is built over, for `step` (schedule._Step) with its
    `consumers` and `readers` set; `spans` a list (tracing on) or None."""
    consumers = step.consumers
    requires = step.requires
    ok = requires.dtypes() if requires is not None else None
    return {
        "step": step, "node_id": step.node_id, "process": step.process,
        "on_control": step.on_control, "accepts": step.accepts,
        "accepts_numpy": step.accepts_numpy, "requires": requires, "ok": ok or (),
        "satisfied_by": requires.satisfied_by if requires is not None else None,
        "consumers": consumers, "single": consumers[0] if len(consumers) == 1 else None,
        # the same consumers' entries for a frame known to be Numpy (no type test)
        "numpy_consumers": step.numpy_consumers,
        "single_numpy": step.numpy_consumers[0] if len(consumers) == 1 else None,
        "readers": step.readers, "counters": step.counters, "skip_errors": step.skip_errors,
        # One clock read per node: a node's time runs from the previous timestamp on this push
        # (the push's start, or the end of the node that ran last) to the end of its own call.
        "clock": step.schedule.clock, "now": _now, "values": step.latency_values,
        "mask": RING_SIZE - 1, "Numpy": NumpyData, "ControlData": ControlData,
        "RuntimeData": RuntimeData, "NodeError": NodeError,
        "trace_end": spans.append if spans is not None else None,
    }


def step_flags(step, spans, kind: str) -> dict:
    """The template's flags every kind shares."""
    return {"KIND": kind, "TRACE": spans is not None, "SINGLE": len(step.consumers) == 1,
            "RETAINS": step.retains, "READERS_ONE": step.readers == 1}


def install(step, names: dict, flags: dict):
    """Generates the case, builds it over `names`, hangs its latency and failure closures on
    `step` and returns its entries."""
    built = generate(flags, names)(names)
    step.latency_state = built["state"]
    step.latency_reset = built["reset"]
    step.failed = built["failed"]
    step.built = built
    return built["entries"]


def compile_receive(step, spans: list | None = None) -> None:
    """Builds `step.receive`: runs the node on one input, records its latency, keeps the
    buffer's reader count and hands the output straight to the consumers (depth first).

    With `spans` (a list, tracing on) the traced case is generated instead: it also appends each
    call's end (perf_counter seconds, the node's own timestamp) to `spans`, failed calls
    included. Without it the step carries no trace code at all."""
    names = step_names(step, spans)
    requires = step.requires
    flags = step_flags(step, spans, "one")
    # the fast case takes Numpy blocks as they come; a requirement is checked as one `in` on
    # the block's dtype (None from dtypes(): layout matters, and every block takes the general
    # path, which checks it in full)
    flags["FAST"] = step.accepts_numpy and (requires is None or requires.dtypes() is not None)
    flags["CHECK"] = requires is not None
    if step.record_slot is not None:
        # a member of a run (compile_run): its own paths record through the run
        flags["SHARED_RECORD"] = True
        names["record"] = step.record_slot
    step.receive, step.receive_numpy = install(step, names, flags)


def compile_fan_in(step, spans: list | None = None) -> None:
    """Builds a fan-in node's hot path: one receive per input name (`step.inputs`), which queues
    the frame and, once every input holds one, runs the node on one frame from each (a
    requirement met as `compile_receive` meets it). The dict of frames handed to process() is
    reused from block to block unless the node declares `retains_input`. Events pass the node
    once, when the first input's copy arrives."""
    names = step_names(step, spans)
    pending = step.pending
    names.update(pending=pending, pairs=tuple(pending.items()), queues=tuple(pending.values()),
                 first=next(iter(pending), None), reused={})
    flags = step_flags(step, spans, "fan_in")
    flags["REQUIRES"] = step.requires is not None
    step.inputs = install(step, names, flags)     # name -> (any data, a Numpy frame)


#: members of one run at most: a longer chain is several runs (the generated function grows
#: with its members, and compiling it with them)
MAX_RUN = 32


def runs_of(steps: list, targets: dict) -> list[list]:
    """Runs of steps one function can take a block through: each member is `eligible` and,
    after the first, has exactly one input, the member before it, whose only consumer it is.
    `steps` in topological order; `targets[node_id]` the ids each step's connections go to
    (the output as None). Runs of two to MAX_RUN members, in order."""
    by_id = {step.node_id: step for step in steps}
    fed: dict[str, int] = {}
    for outs in targets.values():
        for t in outs:
            if t is not None:
                fed[t] = fed.get(t, 0) + 1
    found, taken = [], set()
    for step in steps:
        if step.node_id in taken or not eligible(step):
            continue
        run = [step]
        while len(run) < MAX_RUN:
            outs = targets.get(run[-1].node_id, [])
            if len(outs) != 1 or outs[0] is None or fed.get(outs[0]) != 1:
                break
            after = by_id[outs[0]]
            if not eligible(after) or after.node_id in taken:
                break
            run.append(after)
        if len(run) > 1:
            found.append(run)
        taken.update(s.node_id for s in run)
    return found


def eligible(step) -> bool:
    """A step a run may hold: it takes Numpy blocks as they come (a requirement checked by
    dtype alone), keeps nothing, has one input and is not run as a multiply (`step.linear`,
    set by the schedule from fusion.py's chains)."""
    requires = step.requires
    return (not step.fan_in and not step.retains and not step.linear and step.accepts_numpy
            and (requires is None or requires.dtypes() is not None))


def compile_run(members: list) -> None:
    """Builds a run's entries (the template's `run` case) over its members, each compiled
    already (compile_receive, with a `record_slot`): the head's entries take a block through
    every member without a call between them; each member's latency closures become the
    run's, and its own paths (events, the general path) record through its slot."""
    head = members[0]
    names = {"clock": head.schedule.clock, "now": _now, "Numpy": NumpyData,
             "mask": RING_SIZE - 1, "counters": head.counters}
    own = []
    for j, step in enumerate(members):
        requires = step.requires
        consumers = step.numpy_consumers
        names.update({
            f"process_{j}": step.process, f"failed_{j}": step.failed,
            f"emit_{j}": step.built["emit"], f"receive_general_{j}": step.built["general"],
            f"ok_{j}": (requires.dtypes() or ()) if requires is not None else (),
            f"readers_{j}": step.readers, f"values_{j}": step.latency_values,
            f"numpy_consumers_{j}": consumers,
            f"single_numpy_{j}": consumers[0] if len(consumers) == 1 else None})
        own.append((("CHECK", requires is not None), ("READERS_ONE", step.readers == 1),
                    ("SINGLE", len(consumers) == 1)))
    flags = {"KIND": "run", "TRACE": False, "RETAINS": False, "MEMBERS": tuple(own)}
    built = generate(flags, names)(names)
    head.receive, head.receive_numpy = built["entries"]
    for step, (state, reset, record) in zip(members, built["members"]):
        step.latency_state = state
        step.latency_reset = reset
        step.record_slot[0] = record


def compile_push(schedule, consumers: tuple, numpy_consumers: tuple):
    """The schedule's `push`, generated from the template's `push` case over the input's
    consumers (their entries for any data and for a Numpy frame)."""
    names = {"schedule": schedule, "clock": schedule.clock, "now": _now,
             "counters": schedule.counters, "engine_latency": schedule.engine_latency,
             "outputs": schedule.outputs, "consumers": consumers,
             "numpy_consumers": numpy_consumers, "readers": len(consumers),
             "single": consumers[0] if len(consumers) == 1 else None,
             "single_numpy": numpy_consumers[0] if len(consumers) == 1 else None,
             "mask": RING_SIZE - 1, "Numpy": NumpyData, "ControlData": ControlData,
             "RuntimeData": RuntimeData, "ndarray": np.ndarray, "new": object.__new__,
             "BufferOwnership": BufferOwnership, "EMPTY_METADATA": EMPTY_METADATA,
             "to_runtime_data": to_runtime_data}
    flags = {"KIND": "push", "TRACE": False, "SINGLE": len(consumers) == 1}
    return generate(flags, names)(names)
