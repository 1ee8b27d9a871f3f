"""Media time of a recording's blocks and events, in seconds: the one conversion that the
report's figures and tables and replay's comparison use.

A recording's x axis is media time: the input's pts (samples at the input rate) in seconds,
counted from the start of the run, so a recording started mid-run (the TUI's R, the monitor's
`record`) starts where it joined, and its input, output and events share that time base.

An event carries its own time in one of several forms; `event_time` reads the first present,
in this order:

    time_s, start_s, timestamp_s   media time in seconds (VAD, silence detector, transcripts)
    timestamp_us                   media time in microseconds (the upstream's nodes)
    pts with sample_rate           samples at that rate (after a Resample, the node's own rate)
    seq (the record's block)       the start of the block whose push emitted it
    seq None (end of stream)       the end of the last block: sent at end of stream

A `pts` without a `sample_rate` is at the rate of whichever node emitted it, which need not be
the input's, so it is not read: the block it came out of gives its time instead. The time of
the emitting block is when the event was *sent*; an event's own time (a speech start found
after min_speech_ms) is usually earlier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .engine.node import DEFAULT_BLOCK_SIZE, DEFAULT_SAMPLE_RATE
from .engine.numbers import as_float

#: event fields holding media time in seconds, first found wins
SECONDS_FIELDS = ("time_s", "start_s", "timestamp_s")


@dataclass(frozen=True)
class TimeBase:
    """The input's time base: `rate` (Hz), and per timeline row `seq`, `pts` (samples) and
    `samples` (int64 arrays, one entry per recorded block, in order); `block_size` (samples)
    places a block the timeline lacks (dropped by the recorder). `output_start_s`: media time
    of output.wav's first frame (None: the first block's start)."""

    rate: int
    seq: np.ndarray
    pts: np.ndarray
    samples: np.ndarray
    block_size: int
    output_start_s: float | None = None

    @classmethod
    def of(cls, rec) -> "TimeBase":
        """The time base of a `recording.Recording`: its manifest's input rate and block size,
        its timeline, and where its output starts (report.json's `recording.output_start_pts`
        at the output rate; a recording without it starts its output with its first block)."""
        audio = rec.manifest.get("audio") or {}
        rate = int(audio.get("sample_rate") or DEFAULT_SAMPLE_RATE)
        t = rec.timeline
        recording = (rec.report or {}).get("recording") or {}
        out_pts = recording.get("output_start_pts")
        out_rate = _output_rate(rec) if isinstance(out_pts, int) else None
        return cls(rate=rate, seq=t["seq"], pts=t["pts"], samples=t["samples"],
                   block_size=int(audio.get("block_size") or DEFAULT_BLOCK_SIZE),
                   output_start_s=out_pts / out_rate if out_rate else None)

    @property
    def block_start_s(self) -> np.ndarray:
        """Media time (s) of each timeline row's first sample: float64 (blocks,)."""
        return self.pts / self.rate

    @property
    def start_s(self) -> float:
        """Media time (s) of the first recorded sample (0.0 for an empty timeline)."""
        return float(self.pts[0]) / self.rate if self.pts.size else 0.0

    @property
    def end_s(self) -> float:
        """Media time (s) just after the last recorded sample: the end of stream."""
        if not self.pts.size:
            return 0.0
        return float(self.pts[-1] + self.samples[-1]) / self.rate

    @property
    def output_s(self) -> float:
        """Media time (s) at which output.wav starts."""
        return self.start_s if self.output_start_s is None else self.output_start_s

    def seq_start_s(self, seq: int) -> float:
        """Media time (s) of block `seq`'s first sample: its row's pts, found by seq (a
        recording started mid-run begins at seq > 0; a dropped block has no row, and is placed
        by block_size from the row before it, or after it for one before the first)."""
        seqs = self.seq
        if not seqs.size:
            return seq * self.block_size / self.rate
        i = int(np.searchsorted(seqs, seq, side="right")) - 1
        if i >= 0 and seqs[i] == seq:
            return float(self.pts[i]) / self.rate
        i = max(i, 0)
        return float(self.pts[i] + (seq - seqs[i]) * self.block_size) / self.rate


def _output_rate(rec) -> int | None:
    """output.wav's rate (Hz), which the output format may make other than the input's."""
    try:
        import soundfile as sf
        return sf.info(str(rec.path / "output.wav")).samplerate
    except (RuntimeError, OSError):
        return None


def _number(value) -> float | None:
    value = as_float(value)
    return value if value is not None and value >= 0 else None


def event_time(event, seq, base: TimeBase) -> tuple[float, str]:
    """(media time in seconds, the field it came from) of one event: `event` the record's
    `event` mapping (anything else is timed by its block), `seq` the record's block (None for
    an event sent at end of stream). See the module doc for the order."""
    if isinstance(event, dict):
        for name in SECONDS_FIELDS:
            t = _number(event.get(name))
            if t is not None:
                return t, name
        t = _number(event.get("timestamp_us"))
        if t is not None:
            return t / 1e6, "timestamp_us"
        pts, rate = _number(event.get("pts")), _number(event.get("sample_rate"))
        if pts is not None and rate:
            return pts / rate, "pts"
    if isinstance(seq, int) and not isinstance(seq, bool):
        return base.seq_start_s(seq), "seq"
    return base.end_s, "end_of_stream"


def event_kind(event) -> str:
    """An event's kind for a row of the timeline: its `type` (or a control's `event`)."""
    if isinstance(event, dict):
        return str(event.get("type") or event.get("event") or "event")
    return "event"
