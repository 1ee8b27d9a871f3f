"""Signal health monitors: clipping, silence and dropouts, DC offset.

Each passes every frame on untouched (the same view) and adds a Json event only when it sees
something; on clean audio they say nothing. Events name the node and carry the pts (in samples at
the stream's rate) of what they found:

    {"type": "clipping", "node": ..., "pts": ..., "samples": 12, "runs": 2, "peak_dbfs": 0.0}
    {"type": "silence_start" | "silence_end", "node": ..., "pts": ..., "duration_s": ...}
    {"type": "dropout", "node": ..., "pts": ..., "samples": 960, "duration_ms": 20.0}
    {"type": "dc_offset" | "dc_offset_cleared", "node": ..., "pts": ..., "offset": 0.05, ...}

The quick test that decides a frame is clean runs first and allocates nothing where it can; the
work of describing a problem is only done when there is one.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine.data import JsonData
from ..engine.node import Node, Param, register_node
from ..engine.levels import LEVEL_RANGE, finite_or_zero, full_scale, measure, pcm_scale, to_dbfs, \
    to_unit_float

HOUR_MS = 3_600_000.0


def _as_unit_float(array: np.ndarray) -> np.ndarray:
    """Samples in units of full scale (integers converted; floats as they are)."""
    if array.dtype.kind == "f":
        return array
    return to_unit_float(array, np.float64)


def _non_finite_event(node: Node, frame, count: int) -> JsonData:
    """What a detector says of a block with NaN or Inf samples, instead of reading them as
    silence or as nothing: {"type": "non_finite", "node", "pts", "samples"}."""
    return JsonData({"type": "non_finite", "node": node.node_id, "pts": frame.pts,
                     "samples": count}, pts=frame.pts)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a 1-D bool array."""
    # Built from the change points alone: np.diff with prepend/append costs three times more.
    change = np.flatnonzero(mask[1:] != mask[:-1]) + 1
    if mask[0]:
        starts, ends = np.concatenate(((0,), change[1::2])), change[0::2]
    else:
        starts, ends = change[0::2], change[1::2]
    if mask[-1]:
        ends = np.concatenate((ends, (mask.shape[0],)))
    return starts, ends


def _rate(node: Node, frame) -> int:
    rate = frame.sample_rate or node.format.sample_rate
    if rate is None:
        raise ValueError(f"{node.node_type} needs a sample rate: frames carry none and the "
                         f"manifest gives none")
    return rate


@register_node
class ClippingDetector(Node):
    """Reports runs of at least `min_run` consecutive samples at or above `threshold_dbfs`
    (absolute, per channel, either polarity) as {"type": "clipping", "samples", "runs",
    "peak_dbfs", "pts"} events; runs are carried across blocks. Any dtype, (samples,) or
    (samples, channels); the block passes on untouched (same view). NaN/Inf give a
    non_finite event. Counts the clipped samples in `total_samples`."""

    node_type = "ClippingDetector"
    description = "Report runs of samples at full scale (clipping); pass the audio on."
    params = (
        Param("threshold_dbfs", float, -0.01, "a sample at or above this level is at the rail",
              **LEVEL_RANGE),
        Param("min_run", int, 3, "consecutive samples at the rail that count as clipping; one "
              "touch of full scale by a clean peak is not clipping", min=1),
    )

    def setup(self):
        """The threshold as a linear level (units of full scale); no run carried yet."""
        self._level = 10.0 ** (self.threshold_dbfs / 20.0)
        self._carry: np.ndarray | None = None   # per channel: run length at the last frame's end
        self.total_samples = 0

    def process(self, frame):
        """The block itself, then a clipping event (JsonData) if runs long enough ended or continue
        in it. A clean block costs two reductions and no allocation."""
        array = frame.array
        if array.size == 0:
            return frame
        if array.dtype.kind == "u":
            array = _as_unit_float(array)
        limit = self._level * full_scale(array.dtype)
        # Clean frames stop here: two reductions, no allocation. max() and min() propagate
        # NaN, which fails every comparison, so a frame with NaN never passes as clean.
        hi, lo = float(array.max()), -float(array.min())
        if hi < limit and lo < limit:
            if self._carry is not None:
                self._carry[:] = 0
            return frame
        if not (math.isfinite(hi) and math.isfinite(lo)):
            return self._with_non_finite(frame, array, limit)
        return self._clipping(frame, array, limit)

    def _with_non_finite(self, frame, array, limit):
        # NaN and Inf are not clipping (they are not samples at the rail): they are reported
        # as such, and the finite samples (NaN and Inf as 0) are checked for clipping.
        clean, bad = finite_or_zero(array)
        out = [_non_finite_event(self, frame, bad)]
        result = self._clipping(frame, clean, limit)
        if isinstance(result, tuple):
            out.append(result[1])
        return [frame, *out]

    def _clipping(self, frame, array, limit):
        grid = array if array.ndim == 2 else array[:, None]
        channels = grid.shape[1]
        carry = self._carry
        if carry is None or carry.shape[0] != channels:
            carry = self._carry = np.zeros(channels, dtype=np.int64)
        n = grid.shape[0]
        samples = runs = 0
        first = n
        for ch in range(channels):
            col = grid[:, ch]
            # Compared against both rails: abs() of int16 -32768 overflows to itself.
            mask = (col >= limit) | (col <= -limit)
            starts, ends = _runs(mask)
            before = carry[ch]
            carry[ch] = 0
            for s, e in zip(starts.tolist(), ends.tolist()):
                prior = before if s == 0 else 0
                total = prior + (e - s)
                if e == n:
                    carry[ch] = total
                if total >= self.min_run:
                    # Count each clipped sample once, including the part of a run that began
                    # in an earlier frame but only now reached min_run.
                    counted = e - s if prior >= self.min_run else total
                    samples += counted
                    if prior < self.min_run:
                        runs += 1
                    # Negative when the run began in the previous frame: pts stays exact.
                    first = min(first, e - counted)
        if samples == 0:
            return frame
        self.total_samples += samples
        peak = max(float(array.max()), -float(array.min())) / full_scale(array.dtype)
        pts = frame.pts
        event = JsonData({
            "type": "clipping", "node": self.node_id,
            "pts": None if pts is None else pts + first,
            "samples": samples, "runs": runs, "peak_dbfs": to_dbfs(peak),
        }, pts=None if pts is None else pts + first)
        return (frame, event)

    def on_control(self, event):
        """reset, discontinuity and end_of_stream drop the run carried over; emits nothing."""
        if event.event in ("reset", "discontinuity", "end_of_stream"):
            self._carry = None
        return None


@register_node
class SilenceDetector(Node):
    """Reports sustained silence (block RMS below `silence_dbfs` for `silence_ms`, as
    silence_start / silence_end with duration_s) and dropouts (a run of samples below
    `dropout_dbfs` at least `dropout_ms` long with signal on both sides, as dropout with
    samples and duration_ms). pts in samples at the stream's rate. Any dtype, (samples,) or
    (samples, channels); the block passes on untouched. Counts dropouts in `dropouts`.
    ValueError at the first block if no sample rate is known."""

    node_type = "SilenceDetector"
    description = "Report sustained silence and short dropouts (dead samples inside signal)."
    params = (
        Param("silence_dbfs", float, -60.0, "frame RMS (dBFS) below which a frame is silent",
              **LEVEL_RANGE, aliases=("silence_db",)),
        Param("silence_ms", float, 2000.0, "silence must last this long to be reported",
              min=1.0, max=HOUR_MS, range_reason="a duration from 0 to one hour"),
        Param("dropout_dbfs", float, -96.0,
              "a sample below this level (dBFS) is dead; the default is half an int16 step, so "
              "only digital zeros count, never a quiet real signal", min=-144.0, max=0.0,
              range_reason="down to -144 dBFS, a 24-bit step", aliases=("dropout_db",)),
        Param("dropout_ms", float, 2.0,
              "a run of dead samples this long, with signal before and after, is a dropout",
              min=0.01, max=HOUR_MS, range_reason="a duration from 0 to one hour"),
    )

    def setup(self):
        """Thresholds as linear levels; no silence or dead run in progress; dropouts = 0."""
        self._silence_level = 10.0 ** (self.silence_dbfs / 20.0)
        self._dead_level = 10.0 ** (self.dropout_dbfs / 20.0)
        self._rate = None
        self._work: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._reset_state()
        self.dropouts = 0

    def _reset_state(self):
        self._next_pts = None
        self._silent_since = None       # pts where the current run of silent frames began
        self._in_silence = False
        self._live_seen = False         # any live sample since the stream (re)started
        self._dead_start = None         # pts of the dead run still open at the last frame end
        self._dead_len = 0
        self._dead_after_live = False

    def _begin(self, frame):
        self._rate = _rate(self, frame)
        self._silence_samples = int(round(self.silence_ms * self._rate / 1000.0))
        self._dropout_samples = max(1, int(round(self.dropout_ms * self._rate / 1000.0)))
        self._next_pts = frame.pts or 0

    def _dead_mask(self, array: np.ndarray) -> np.ndarray:
        n = array.shape[0]
        if self._mask is None or self._mask.shape[0] != n:
            self._mask = np.empty(n, dtype=bool)
            self._work = np.empty(n, dtype=np.float64)
        work = self._work
        if array.ndim == 1 and array.dtype.kind == "f":
            np.abs(array, out=work)
        elif array.ndim == 1 and array.dtype.kind == "i":
            # Through float: abs() of int16 -32768 overflows to itself.
            np.multiply(array, 1.0 / full_scale(array.dtype), out=work)
            np.abs(work, out=work)
        else:
            # A sample instant is dead only where every channel is.
            unit = np.abs(_as_unit_float(array))
            if unit.ndim == 2:
                np.max(unit, axis=1, out=work)
            else:
                work[:] = unit
        return np.less(work, self._dead_level, out=self._mask)

    def process(self, frame):
        """The block itself, followed by the silence, dropout and non_finite events (JsonData)
        it completed. NaN/Inf count as 0 for dropouts and are left out of the level."""
        if self._next_pts is None:
            self._begin(frame)
        array = frame.array
        n = array.shape[0] if array.ndim else 0
        if n == 0:
            return frame
        pts = frame.pts if frame.pts is not None else self._next_pts
        self._next_pts = pts + n
        events = []
        rms, _, bad = measure(array)
        if bad:
            # Reported, and contained: NaN/Inf read as 0 for dropouts (a lone one is far
            # shorter than a dropout), and the level is that of the finite samples.
            events.append(_non_finite_event(self, frame, bad))
            array, _ = finite_or_zero(array)
        self._check_dropouts(array, pts, n, events)
        if rms < self._silence_level:
            if self._silent_since is None:
                self._silent_since = pts
            if not self._in_silence and pts + n - self._silent_since >= self._silence_samples:
                self._in_silence = True
                events.append(self._event("silence_start", self._silent_since))
        else:
            if self._in_silence:
                events.append(self._event("silence_end", pts, duration_s=round(
                    (pts - self._silent_since) / self._rate, 4)))
            self._in_silence = False
            self._silent_since = None
        if not events:
            return frame
        return [frame, *events]

    def _check_dropouts(self, array, pts: int, n: int, events: list) -> None:
        mask = self._dead_mask(array)
        if not mask.any():
            self._end_dead_run(events)
            self._live_seen = True
            return
        if self._dead_start is not None and not mask[0]:
            self._end_dead_run(events)          # live signal right after last frame's dead end
        starts, ends = _runs(mask)
        # Single zero samples are common in real audio (zero crossings of integer PCM): runs
        # too short to be a dropout, inside the frame, only say the signal is live.
        keep = (ends - starts >= self._dropout_samples) | (starts == 0) | (ends == n)
        for s, e in zip(starts[keep].tolist(), ends[keep].tolist()):
            if s == 0 and self._dead_start is not None:
                self._dead_len += e           # the run from the last frame goes on
            else:
                self._dead_start = pts + s
                self._dead_len = e - s
                self._dead_after_live = s > 0 or self._live_seen
            if e < n:
                self._end_dead_run(events)
        if not mask.all():
            self._live_seen = True

    def _end_dead_run(self, events: list) -> None:
        # Called when live signal follows a dead run: a short one there is a dropout; a long
        # one was silence, which the silence side reports.
        if self._dead_start is None:
            return
        length = self._dead_len
        if self._dead_after_live and self._dropout_samples <= length < self._silence_samples:
            self.dropouts += 1
            events.append(self._event("dropout", self._dead_start, samples=length,
                                      duration_ms=round(1000.0 * length / self._rate, 3)))
        self._dead_start = None
        self._dead_len = 0

    def _event(self, kind: str, pts: int, **extra) -> JsonData:
        value = {"type": kind, "node": self.node_id, "pts": pts,
                 "time_s": round(pts / self._rate, 4), **extra}
        return JsonData(value, pts=pts)

    def on_control(self, event):
        """end_of_stream and flush close an open silence with silence_end (so every start has
        its end); end_of_stream, reset and discontinuity drop a dead run cut off by the end."""
        name = event.event
        if name in ("end_of_stream", "flush") and self._in_silence:
            # The stream ends silent: close the report so every start has its end.
            end = self._next_pts
            released = [self._event("silence_end", end, duration_s=round(
                (end - self._silent_since) / self._rate, 4))]
            self._in_silence = False
            self._silent_since = None
            if name == "end_of_stream":
                self._reset_state()
            return released
        if name in ("end_of_stream", "reset", "discontinuity"):
            # A dead run cut off by the end is not known to be a dropout: drop it.
            self._reset_state()
        return None


@register_node
class DCOffset(Node):
    """Reports a DC offset: the signal's mean through two one-pole averages of time constant
    `window_ms` each, per channel in units of full scale; dc_offset when its magnitude
    reaches `threshold_dbfs`, dc_offset_cleared when it falls 6 dB below (hysteresis). Any
    dtype, (samples,) or (samples, channels); the block passes on untouched. `offset` holds
    the latest signed mean of the largest channel. ValueError if no sample rate is known."""

    node_type = "DCOffset"
    description = "Report a DC offset (the signal's running mean) beyond a threshold."
    params = (
        Param("threshold_dbfs", float, -40.0, "an offset at or above this level (dBFS) is reported "
              "(-40 dBFS = 1% of full scale)", **LEVEL_RANGE,
              aliases=("threshold_db",)),
        Param("window_ms", float, 500.0, "time constant of each of the two averaging stages",
              min=1.0, max=HOUR_MS, range_reason="a duration from 0 to one hour"),
    )

    def setup(self):
        """On and off levels (off 6 dB below on); no average yet; offset = 0.0."""
        self._on = 10.0 ** (self.threshold_dbfs / 20.0)
        self._off = self._on / 2          # 6 dB of hysteresis so a borderline offset cannot chatter
        self._stage1 = self._dc = None    # floats for mono, arrays per channel otherwise
        self._flagged = False
        self._alpha = None
        self._frame_len = -1
        self.offset = 0.0                 # the latest running mean (largest channel), signed

    def process(self, frame):
        """The block itself, then a dc_offset / dc_offset_cleared event (JsonData) when the
        state changes. NaN/Inf average as 0 and are reported in the event."""
        array = frame.array
        n = array.shape[0] if array.ndim else 0
        if n == 0:
            return frame
        if n != self._frame_len:
            rate = _rate(self, frame)
            # Per-frame weight of a one-pole average with time constant window_ms.
            self._alpha = 1.0 - math.exp(-n / (self.window_ms * rate / 1000.0))
            self._frame_len = n
        scale, offset = pcm_scale(array.dtype)
        kind = array.dtype.kind
        # One NaN would stay in the running mean for ever: the block is averaged with NaN and
        # Inf as 0, and the event says there were some.
        array, bad = finite_or_zero(array)
        # Channel means in units of full scale (float32 sums pairwise: ample for 1e-2 offsets).
        mean = array.mean(axis=0, dtype=None if kind == "f" else np.float64)
        if kind != "f":
            mean = (mean - offset) / scale
        # Two one-pole stages on the frame means. With one, a 0.8 full-scale 30 Hz tone read as
        # a -38 dBFS offset (a false alarm at -40); with two, a 0.9 full-scale 20 Hz tone reads
        # at most -45 dBFS (its first half cycle), 30 Hz -49 dBFS.
        alpha = self._alpha
        if array.ndim == 1:               # mono: plain floats, no small-array overhead
            if self._dc is None:
                self._stage1 = self._dc = 0.0
            self._stage1 += alpha * (float(mean) - self._stage1)
            self._dc += alpha * (self._stage1 - self._dc)
            value, idx = self._dc, 0
        else:
            s1, dc = self._stage1, self._dc
            if not isinstance(dc, np.ndarray) or dc.shape != mean.shape:
                s1 = self._stage1 = np.zeros(mean.shape)
                dc = self._dc = np.zeros(mean.shape)
            s1 += alpha * (mean - s1)
            dc += alpha * (s1 - dc)
            idx = int(np.argmax(np.abs(dc)))
            value = float(dc[idx])
        self.offset = value
        level = abs(value)
        events = [_non_finite_event(self, frame, bad)] if bad else []
        if not self._flagged and level >= self._on:
            self._flagged = True
            events.append(self._event("dc_offset", frame.pts, value, idx))
        elif self._flagged and level < self._off:
            self._flagged = False
            events.append(self._event("dc_offset_cleared", frame.pts, value, idx))
        return [frame, *events] if events else frame

    def _event(self, kind, pts, value, channel) -> JsonData:
        return JsonData({"type": kind, "node": self.node_id, "pts": pts,
                         "offset": round(value, 6), "offset_dbfs": to_dbfs(abs(value)),
                         "channel": channel}, pts=pts)

    def on_control(self, event):
        """reset and discontinuity restart the averages and clear the flag; emits nothing."""
        if event.event in ("reset", "discontinuity"):
            self._stage1 = self._dc = None
            self._flagged = False
        return None
