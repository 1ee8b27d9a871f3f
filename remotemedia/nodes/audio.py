"""Nodes that change samples: gain, mixing, channel layout, re-blocking, delay."""

from __future__ import annotations


import numpy as np

from ..engine.data import NumpyData
from ..engine.node import InputRequirement, Node, Param, register_node

# Scaling or summing in place needs a float buffer: an int16 buffer cannot hold 0.5 x a sample or
# the sum of two full-scale ones. Such nodes declare it, and the engine converts once (counted).
FLOAT_INPUT = InputRequirement(dtype="floating")

# 144 dB is the dynamic range of 24-bit PCM: a larger cut leaves nothing, a larger boost lifts
# the quietest 24-bit step past full scale.
MAX_GAIN_DB = 144.0
MAX_GAIN = 10.0 ** (MAX_GAIN_DB / 20.0)
GAIN_RANGE = "144 dB is the dynamic range of 24-bit PCM"


@register_node
class Gain(Node):
    node_type = "Gain"
    description = "Scale samples by a gain in dB or linear; in place when the buffer allows."
    params = (
        Param("db", float, None, "gain in decibels", min=-MAX_GAIN_DB, max=MAX_GAIN_DB,
              range_reason=GAIN_RANGE),
        Param("linear", float, None, "gain as a factor (give db or linear, not both); negative "
              "inverts polarity", min=-MAX_GAIN, max=MAX_GAIN, range_reason=GAIN_RANGE),
    )
    requires = FLOAT_INPUT

    @classmethod
    def check_config(cls, config):
        if config["db"] is not None and config["linear"] is not None:
            raise ValueError("give 'db' or 'linear', not both")

    def setup(self):
        if self.linear is not None:
            self.factor = self.linear
        else:
            self.factor = 10.0 ** ((self.db or 0.0) / 20.0)

    def process(self, frame):
        if self.factor == 1.0:
            return frame
        out = frame.writable()
        np.multiply(out, self.factor, out=out, casting="unsafe")
        return frame.with_array(out)


@register_node
class Mix(Node):
    node_type = "Mix"
    description = "Sum frames from several inputs (fan-in), optionally weighted per input."
    inputs = "many"
    requires = FLOAT_INPUT
    params = (Param("weights", dict, None, "input name -> linear weight (default 1.0 each)"),)

    def process(self, frames):
        weights = self.weights or {}
        names = list(frames)
        first = frames[names[0]]
        shape = first.array.shape
        for name in names[1:]:
            if frames[name].array.shape != shape:
                raise ValueError(f"input '{name}' has shape {frames[name].array.shape}, "
                                 f"input '{names[0]}' has {shape}")
        out = first.writable()
        w0 = weights.get(names[0], 1.0)
        if w0 != 1.0:
            np.multiply(out, w0, out=out, casting="unsafe")
        for name in names[1:]:
            w = weights.get(name, 1.0)
            other = frames[name].array
            if w == 1.0:
                np.add(out, other, out=out, casting="unsafe")
            else:
                out += w * other
        return first.with_array(out)


@register_node
class ChannelSelect(Node):
    node_type = "ChannelSelect"
    description = "Pick one channel of a (samples, channels) frame as a mono view, no copy."
    params = (Param("channel", int, 0, "zero-based channel index", min=0),)

    def output_format(self, fmt):
        if fmt.channels is not None and self.channel >= fmt.channels:
            raise ValueError(f"channel {self.channel} does not exist in a "
                             f"{fmt.channels}-channel stream")
        return fmt.replace(channels=1)

    def process(self, frame):
        array = frame.array
        if array.ndim == 1:
            if self.channel != 0:
                raise ValueError(f"channel {self.channel} does not exist in a mono frame")
            return frame
        return frame.with_array(frame.array[:, self.channel])


@register_node
class Downmix(Node):
    node_type = "Downmix"
    description = "Average all channels to mono."

    def output_format(self, fmt):
        return fmt.replace(channels=1)

    def process(self, frame):
        array = frame.array
        if array.ndim == 1 or array.shape[1] == 1:
            return frame if array.ndim == 1 else frame.with_array(frame.array[:, 0])
        return frame.with_array(array.mean(axis=1, dtype=array.dtype if array.dtype.kind == "f"
                                           else np.float64))


@register_node
class Reframe(Node):
    node_type = "Reframe"
    description = "Re-block the stream into frames of N samples, carrying pts."
    # Partial blocks wait in _pending as views of their input buffers: no one may write those.
    retains_input = True
    params = (
        Param("size", int, None, "samples per output frame", min=1, max=1 << 24),
        Param("pad", bool, False, "pad the last partial frame with zeros at end of stream"),
    )

    @classmethod
    def check_config(cls, config):
        if config["size"] is None:
            raise ValueError("missing required param 'size' for Reframe")

    def output_format(self, fmt):
        return fmt.replace(block_size=self.size)

    def setup(self):
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._next_pts: int | None = None
        self._template: NumpyData | None = None
        self._seq = 0

    def process(self, frame):
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
        filled = 0
        while filled < count and self._pending:
            head = self._pending[0]
            take = min(count - filled, head.shape[0])
            block[filled:filled + take] = head[:take]
            filled += take
            if take == head.shape[0]:
                self._pending.pop(0)
            else:
                self._pending[0] = head[take:]
        self._pending_samples -= filled
        if filled < count:
            block = block[:filled]
        pts = self._next_pts
        self._next_pts += filled
        self._seq += 1
        return self._template.with_array(block, pts=pts, seq=self._seq - 1)

    def on_control(self, event):
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
    node_type = "Delay"
    description = "Delay the signal by N samples (zeros first); end of stream releases the tail."
    params = (Param("samples", int, 0, "delay in samples", min=0, max=1 << 28),)

    def setup(self):
        self._history: np.ndarray | None = None
        self._last: NumpyData | None = None

    def process(self, frame):
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
        if event.event == "end_of_stream" and self._history is not None and self._last:
            tail = self._history
            self._history = None
            pts = None if self._last.pts is None else self._last.pts + self._last.array.shape[0]
            return [self._last.with_array(tail, pts=pts)]
        if event.event in ("reset", "discontinuity"):
            self._history = None
        return None
