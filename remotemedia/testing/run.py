"""Push blocks through a manifest in simulated time and collect what comes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from ..engine.node import AudioFormat, NodeRegistry
from ..engine.session import Pipeline
from ..runner import StreamRunner
from .clock import MockClock
from .ends import CollectingSink, ListSource


@dataclass
class RunResult:
    """What a run produced: `audio` (every output sample joined, shape (samples,) or
    (samples, channels)), `frames` (the RuntimeData.Numpy frames in order), `events` (every
    non-audio output, RuntimeData), `stats` (the stats report dict) and `sink` (the
    CollectingSink, for its repair report)."""

    audio: np.ndarray
    frames: list
    events: list
    stats: dict
    sink: CollectingSink = field(repr=False)

    def event_values(self, type_: str | None = None) -> list:
        """The values of Json events, optionally only those whose "type" is `type_`."""
        return [e.value for e in self.events if e.kind == "json"
                and (type_ is None or (isinstance(e.value, dict)
                                       and e.value.get("type") == type_))]


def blocks_of(signal: np.ndarray, block_size: int) -> list[np.ndarray]:
    """`signal` cut into views of `block_size` samples along axis 0; the last one short."""
    return [signal[i:i + block_size] for i in range(0, signal.shape[0], block_size)]


def run_blocks(manifest: Any, blocks: Iterable[np.ndarray] | np.ndarray, *,
               registry: NodeRegistry | None = None, allow_import: Iterable[str] = (),
               clock: MockClock | None = None, strict: bool = False,
               duration: float | None = None) -> RunResult:
    """Run `manifest` (a path, dict or JSON/YAML text) over `blocks` in simulated time.

    `blocks` is a list of ndarrays, or one signal array that is cut into blocks of the
    manifest's block size. Runs through the same StreamRunner as `remotemedia stream`, so end
    of stream flushes buffering nodes and the stats report is the real one. `registry`
    defaults to the test's `rm_registry` (when the fixture is in use), else the process-wide
    one. Raises whatever the run raises (ManifestError, NodeError, ...)."""
    if registry is None:
        from .registry import active_registry
        registry = active_registry()       # the test's rm_registry, when it has one
    pipeline = Pipeline.from_manifest(manifest, registry=registry, allow_import=allow_import)
    audio = pipeline.manifest.audio
    if isinstance(blocks, np.ndarray):
        blocks = blocks_of(blocks, audio.block_size)
    blocks = list(blocks)
    channels = audio.channels or (blocks[0].shape[1] if blocks and blocks[0].ndim == 2 else 1)
    fmt = AudioFormat(audio.sample_rate, channels, audio.block_size)
    source = ListSource(blocks, fmt)
    sink = CollectingSink(pipeline.manifest.output_format)
    events: list = []
    # Paced by the mock clock, which jumps instead of sleeping: blocks arrive at their due
    # times on the run's clock (what timing nodes read), and no time passes for real.
    runner = StreamRunner(pipeline, source, sink, realtime=True, strict=strict,
                          clock=clock or MockClock(audio.block_size / audio.sample_rate),
                          duration=duration, on_event=events.append)
    stats = runner.run()
    return RunResult(sink.audio(), sink.frames, events, stats, sink)
