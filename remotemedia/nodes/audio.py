"""Nodes that change samples: gain, mixing, channel layout, re-blocking, delay."""

from __future__ import annotations


import numpy as np

from ..engine.data import NumpyData
from ..engine.kernels import Scaler, fill_from_pending
from ..engine.node import AUDIO_LIMITS, InputRequirement, Node, Param, register_node

# Scaling or summing in place needs a float buffer: an int16 buffer cannot hold 0.5 x a sample or
# the sum of two full-scale ones. Such nodes declare it, and the engine converts once (counted).
FLOAT_INPUT = InputRequirement(dtype="floating")

# 144 dB is the dynamic range of 24-bit PCM: a larger cut leaves nothing, a larger boost lifts
# the quietest 24-bit step past full scale.
MAX_GAIN_DB = 144.0
MAX_GAIN = 10.0 ** (MAX_GAIN_DB / 20.0)
GAIN_RANGE = "144 dB is the dynamic range of 24-bit PCM"

_add = np.add


@register_node
class Gain(Node):
    """Multiplies every sample by a gain: `db` (relative, 20*log10 of the factor) or
    `linear` (a factor; negative inverts polarity); neither means unity. Float input of any
    shape ((samples,) or (samples, channels)); integer PCM is converted once to float32 in
    units of full scale (FLOAT_INPUT). Writes in place where the buffer is not shared (copy on
    write otherwise). No clipping: a boost past 1.0 stays past 1.0."""

    node_type = "Gain"
    description = "Scale samples by a gain in dB or linear; in place when the buffer allows."
    params = (
        Param("db", float, None, "gain in decibels", min=-MAX_GAIN_DB, max=MAX_GAIN_DB,
              range_reason=GAIN_RANGE),
        Param("linear", float, None, "gain as a factor (give db or linear, not both); negative "
              "inverts polarity", min=-MAX_GAIN, max=MAX_GAIN, range_reason=GAIN_RANGE),
    )
    requires = FLOAT_INPUT
    linear_elementwise = True   # the engine may fuse adjacent gains into one multiply

    @classmethod
    def check_config(cls, config):
        """ValueError if both `db` and `linear` are given."""
        if config["db"] is not None and config["linear"] is not None:
            raise ValueError("give 'db' or 'linear', not both")

    def setup(self):
        """Works out the linear factor once: `linear`, else 10**(db/20), else 1.0."""
        if self.linear is not None:
            self.factor = self.linear
        else:
            self.factor = 10.0 ** ((self.db or 0.0) / 20.0)
        self._scaler = Scaler()

    def linear_gain(self) -> float:
        """The linear factor applied to every sample (see setup)."""
        return self.factor

    def process(self, frame):
        """The block scaled by the factor, same shape and dtype; at unity the same frame,
        untouched."""
        factor = self.factor
        if factor == 1.0:
            return frame
        out = frame.writable()
        self._scaler.scale(out, factor)
        return frame.with_array(out)


@register_node
class Mix(Node):
    """Sums blocks from several inputs (fan-in, inputs="many"), each times its weight in
    `weights` (linear, default 1.0). All inputs must have the same shape; float dtype
    (integer PCM converted once, FLOAT_INPUT). Timing and metadata come from the first input."""

    node_type = "Mix"
    description = "Sum frames from several inputs (fan-in), optionally weighted per input."
    inputs = "many"
    requires = FLOAT_INPUT
    params = (Param("weights", dict, None, "input name -> linear weight (default 1.0 each)"),)

    def process(self, frames):
        """The weighted sum of `frames` (input name -> NumpyData), written into the first input's
        buffer where it is not shared. ValueError naming the input whose shape differs."""
        first, *rest = frames.values()
        shape = first.shape
        for frame in rest:
            if frame.shape != shape:
                name, name0 = next(n for n, f in frames.items() if f is frame), next(iter(frames))
                raise ValueError(f"input '{name}' has shape {frame.shape}, "
                                 f"input '{name0}' has {shape}")
        out = first.writable()
        if self.weights:
            return first.with_array(self._weighted(frames, out))
        for frame in rest:
            _add(out, frame.array, out)     # float into float: numpy's same_kind casting
        return first.with_array(out)

    def _weighted(self, frames, out):
        names = list(frames)
        w0 = self.weights.get(names[0], 1.0)
        if w0 != 1.0:
            np.multiply(out, w0, out=out, casting="unsafe")
        for name in names[1:]:
            w = self.weights.get(name, 1.0)
            if w == 1.0:
                _add(out, frames[name].array, out)
            else:
                out += w * frames[name].array
        return out


@register_node
class ChannelSelect(Node):
    """One channel of a (samples, channels) block as a (samples,) view: no copy, the dtype kept.
    A mono (samples,) block passes as is when `channel` is 0."""

    node_type = "ChannelSelect"
    description = "Pick one channel of a (samples, channels) frame as a mono view, no copy."
    params = (Param("channel", int, 0, "zero-based channel index", min=0,
                    max=AUDIO_LIMITS["channels"] - 1),)

    def output_format(self, fmt):
        """One channel; ValueError if `channel` is not below the input's channel count."""
        if fmt.channels is not None and self.channel >= fmt.channels:
            raise ValueError(f"channel {self.channel} does not exist in a "
                             f"{fmt.channels}-channel stream")
        return fmt.replace(channels=1)

    def process(self, frame):
        """A (samples,) view of column `channel`; ValueError for a channel the block lacks."""
        array = frame.array
        if array.ndim == 1:
            if self.channel != 0:
                raise ValueError(f"channel {self.channel} does not exist in a mono frame")
            return frame
        return frame.with_array(frame.array[:, self.channel])


@register_node
class Downmix(Node):
    """Averages all channels to mono: (samples, channels) -> (samples,). Float input keeps its
    dtype; integer input is averaged in float64 (the mean of integers is not an integer)."""

    node_type = "Downmix"
    description = "Average all channels to mono."

    def output_format(self, fmt):
        """One channel."""
        return fmt.replace(channels=1)

    def process(self, frame):
        """The mean over channels, (samples,); a (samples,) block passes as is, a (samples, 1) block
        becomes a view of its only column."""
        array = frame.array
        if array.ndim == 1 or array.shape[1] == 1:
            return frame if array.ndim == 1 else frame.with_array(frame.array[:, 0])
        return frame.with_array(array.mean(axis=1, dtype=array.dtype if array.dtype.kind == "f"
                                           else np.float64))


@register_node
class Reframe(Node):
    """Re-blocks the stream into blocks of exactly `size` samples, pts counted on from the first
    input in samples (a discontinuity or reset starts over). A block already `size` long
    passes as the same view; otherwise the pieces are concatenated (one copy). Keeps views of
    its input while a block is partial (retains_input). At end of stream the remainder is
    emitted, zero-padded to `size` if `pad`."""

    node_type = "Reframe"
    description = "Re-block the stream into frames of N samples, carrying pts."
    # Partial blocks wait in _pending as views of their input buffers: no one may write those.
    retains_input = True
    params = (
        Param("size", int, None, "samples per output frame", min=1,
              max=AUDIO_LIMITS["block_size"]),
        Param("pad", bool, False, "pad the last partial frame with zeros at end of stream"),
    )

    @classmethod
    def check_config(cls, config):
        """ValueError if `size` is missing (it has no default)."""
        if config["size"] is None:
            raise ValueError("missing required param 'size' for Reframe")

    def output_format(self, fmt):
        """The block size becomes `size`."""
        return fmt.replace(block_size=self.size)

    def setup(self):
        """Empty pending pieces; pts and seq start at the first input."""
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._next_pts: int | None = None
        self._template: NumpyData | None = None
        self._seq = 0

    def process(self, frame):
        """Zero or more blocks of `size` samples (a list, or the input itself with new pts and
        seq when it already fits); the remainder waits."""
        array = frame.array
        n = array.shape[0]
        if self._next_pts is None:
            self._next_pts = frame.pts if frame.pts is not None else 0
        self._template = frame
        if not self._pending and n == self.size:
            # Already the right size: pass the same view on, no copy.
            pts = self._next_pts
            self._next_pts += n
            self._seq += 1
            return frame.replace(pts=pts, seq=self._seq - 1)
        self._pending.append(array)
        self._pending_samples += n
        out = []
        while self._pending_samples >= self.size:
            out.append(self._take(self.size))
        return out

    def _take(self, count: int) -> NumpyData:
        first = self._pending[0]
        block = np.empty((count,) + first.shape[1:], dtype=first.dtype)
        filled = fill_from_pending(block, self._pending)
        self._pending_samples -= filled
        if filled < count:
            block = block[:filled]
        pts = self._next_pts
        self._next_pts += filled
        self._seq += 1
        return self._template.with_array(block, pts=pts, seq=self._seq - 1)

    def on_control(self, event):
        """flush and end_of_stream emit the remainder (padded with zeros to `size` if `pad`);
        reset and discontinuity drop it and restart pts at the next input."""
        if event.event in ("flush", "end_of_stream") and self._pending_samples:
            rest = self._take(self._pending_samples)
            if self.pad and rest.array.shape[0] < self.size:
                padded = np.zeros((self.size,) + rest.array.shape[1:], dtype=rest.array.dtype)
                padded[:rest.array.shape[0]] = rest.array
                rest = rest.with_array(padded)
            return [rest]
        if event.event in ("reset", "discontinuity"):
            self._pending.clear()
            self._pending_samples = 0
            self._next_pts = None
        return None


@register_node
class Delay(Node):
    """Delays the signal by `samples` samples: the first output starts with that many zeros,
    and end of stream releases the last `samples` of input as a final block. Any shape and
    dtype; each output is a fresh buffer (one copy per block). 0 passes blocks through."""

    node_type = "Delay"
    description = "Delay the signal by N samples (zeros first); end of stream releases the tail."
    params = (Param("samples", int, 0, "delay in samples", min=0, max=1 << 28),)

    def setup(self):
        """No history yet: it is allocated at the first block's shape and dtype."""
        self._history: np.ndarray | None = None
        self._last: NumpyData | None = None

    def process(self, frame):
        """The block delayed: the kept history followed by the head of this block, same shape and
        dtype; keeps the last `samples` samples for the next block."""
        if self.samples == 0:
            return frame
        array = frame.array
        if self._history is None or self._history.shape[1:] != array.shape[1:] \
                or self._history.dtype != array.dtype:
            self._history = np.zeros((self.samples,) + array.shape[1:], dtype=array.dtype)
        combined = np.concatenate((self._history, array))
        n = array.shape[0]
        # The output and the new history are disjoint parts of one fresh buffer.
        self._history = combined[n:]
        self._last = frame
        return frame.with_array(combined[:n])

    def on_control(self, event):
        """end_of_stream emits the history as a last block (pts after the last input); reset and
        discontinuity drop it, so the next block starts with zeros again."""
        if event.event == "end_of_stream" and self._history is not None and self._last:
            tail = self._history
            self._history = None
            pts = None if self._last.pts is None else self._last.pts + self._last.array.shape[0]
            return [self._last.with_array(tail, pts=pts)]
        if event.event in ("reset", "discontinuity"):
            self._history = None
        return None
