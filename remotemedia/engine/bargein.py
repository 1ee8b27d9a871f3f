"""Barge-in: the user speaks over the bot, the bot stops.

One rule, shared by the scripted conversation in simulated time (remotemedia.converse) and a
live `stream` run (the schedule): when a voice activity detector says `speech_start` while the
bot is speaking (its reply being made, or its audio still queued for the output), the bot is
interrupted: every node that makes the reply (the nodes after the transcriber) gets a Control
`interrupt` and drops what it has not delivered, and the audio queued for the output is dropped.
A burst shorter than the detector's `min_speech_ms` never becomes `speech_start`, so an
"mm-hmm" never interrupts.

`roles(manifest)` names the parts: the detectors (`vad_ids`) and the reply nodes
(`reply_ids`). A `BargeIn` decides and counts; what "busy" and "drop" mean is the caller's:

- `busy`: a callable, True while the bot speaks (the simulation looks at its event heap and
  output queue; a live run at its reply nodes' work in flight and the device's output queue);
- `interrupt`: a callable that stops the reply nodes and empties the output, returning the
  audio it dropped as (blocks, samples).

Counted (the stats report's `barge_in` section): `interrupts`, `speech_starts` (all of them,
whether the bot spoke or not) and `dropped_blocks` / `dropped_samples` (reply audio dropped on
interrupt: made but not yet delivered by a reply node, or queued for the output).
"""

from __future__ import annotations

from typing import Callable

#: node classes whose Json `speech_start` / `speech_end` events mark the user's speech
VAD_CLASSES = ("VAD", "EnergyVAD", "SileroVADNode")


def roles(manifest) -> tuple[frozenset, frozenset]:
    """(vad_ids, reply_ids) of a manifest: the voice activity detectors, and every node
    downstream of a node that emits text (a transcriber: `emits_text`), which makes the reply,
    following forward connections only. Either may be empty (then there is no barge-in)."""
    consumers: dict[str, list[str]] = {}
    for c in manifest.connections:
        if not getattr(c, "feedback", False):    # (a feedback path is not downstream)
            consumers.setdefault(c.source, []).append(c.target)
    classes = {s.id: s.node_class for s in manifest.nodes}
    vad_ids = frozenset(i for i, cls in classes.items() if cls.__name__ in VAD_CLASSES)
    roots = {i for i, cls in classes.items() if getattr(cls, "emits_text", False)}
    seen: set[str] = set()
    todo = [c for r in roots for c in consumers.get(r, ())]
    while todo:
        node_id = todo.pop()
        if node_id in classes and node_id not in seen:
            seen.add(node_id)
            todo += consumers.get(node_id, ())
    return vad_ids, frozenset(seen)


class BargeIn:
    """Decides and counts barge-ins (module docstring). `busy() -> bool` and
    `interrupt() -> (blocks, samples)` are the caller's; both run on the thread that calls
    `speech_started` (the thread that pushes). Allocates nothing per call."""

    #: what it counts (the stats report's `barge_in` section)
    COUNTERS = ("interrupts", "speech_starts", "dropped_blocks", "dropped_samples")
    __slots__ = ("busy", "interrupt") + COUNTERS

    def __init__(self, busy: Callable[[], bool], interrupt: Callable[[], tuple]):
        self.busy = busy
        self.interrupt = interrupt
        for name in self.COUNTERS:
            setattr(self, name, 0)

    def speech_started(self) -> bool:
        """A detector said speech_start: interrupt the bot if it is speaking. True if it did."""
        self.speech_starts += 1
        if not self.busy():
            return False
        self.interrupts += 1
        blocks, samples = self.interrupt()
        self.dropped_blocks += blocks
        self.dropped_samples += samples
        return True

    def dropped(self, blocks: int, samples: int) -> None:
        """Reply audio dropped on an interrupt, found later (the output device drops its queue
        at its next callback)."""
        self.dropped_blocks += blocks
        self.dropped_samples += samples

    def report(self) -> dict:
        """{"interrupts", "speech_starts", "dropped_blocks", "dropped_samples"}."""
        return {name: getattr(self, name) for name in self.COUNTERS}


__all__ = ["BargeIn", "VAD_CLASSES", "roles"]
