"""Sample-rate conversion with libsoxr, streaming.

One `soxr.ResampleStream` per stream keeps the filter state across frames, so the concatenated
output equals soxr's one-shot resample of the whole signal (the tests check it sample for sample).
soxr already compensates its own filter delay: output sample k sits at time k / rate from the
start of the stream, so output pts are simply the start pts (converted to the output rate) plus
the samples emitted so far. soxr works in blocks, so output arrives in bursts (at HQ, 48 kHz ->
16 kHz gives 0, 490, 0, 489, ... samples for 960-sample input); an empty result emits nothing.
"""

from __future__ import annotations

import numpy as np
import soxr

from ..engine.data import JsonData
from ..engine.levels import finite_or_zero
from ..engine.node import AUDIO_LIMITS, AudioFormat, InputRequirement, Node, Param, register_node

QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
SOXR_DTYPES = frozenset({np.dtype(np.float32), np.dtype(np.float64),
                         np.dtype(np.int16), np.dtype(np.int32)})


# The engine's limit on any sample rate (768 kHz, what audio interfaces offer at most); soxr's
# own limit is far above.
MAX_RATE = AUDIO_LIMITS["sample_rate"]


@register_node
class Resample(Node):
    """Converts the sample rate with libsoxr (soxr.ResampleStream), one filter per stream kept
    across blocks, so the output equals soxr's one-shot resample of the whole signal. Input
    float32, float64, int16 or int32, (samples,) or (samples, channels); output in the same
    dtype and layout at `rate` Hz, in variable-sized blocks (possibly none for a block). pts
    converted to the output rate and counted on in output samples. NaN/Inf are fed as 0 with
    a non_finite event."""

    node_type = "Resample"
    description = "Convert the sample rate with libsoxr, keeping filter state across frames."
    params = (
        Param("rate", int, None, "output sample rate in Hz", min=1, max=MAX_RATE),
        Param("quality", str, "HQ", "soxr quality: QQ (quick), LQ, MQ, HQ, VHQ",
              choices=QUALITIES),
        Param("input_rate", int, None,
              "input sample rate, for frames that do not carry one (default: the stream's)",
              min=1, max=MAX_RATE),
    )
    # soxr's binding takes (frames, channels) buffers in C order only; handed any other layout,
    # nanobind silently converts it, an uncounted copy. Declaring it makes the engine do that
    # copy instead, once, where it is counted. No dtype is required: soxr works natively in
    # float32, float64, int16 and int32, so none of those needs converting.
    requires = InputRequirement(c_contiguous=True)

    @classmethod
    def check_config(cls, config):
        """ValueError if `rate` is missing (it has no default)."""
        if config["rate"] is None:
            raise ValueError("missing required param 'rate' for Resample")

    def output_format(self, fmt: AudioFormat) -> AudioFormat:
        """The input format at `rate` Hz with no fixed block size (soxr emits variable blocks).
        ValueError if `input_rate` disagrees with the stream arriving."""
        if (self.input_rate is not None and fmt.sample_rate is not None
                and fmt.sample_rate != self.input_rate):
            raise ValueError(f"input_rate is {self.input_rate} Hz but the stream arriving is "
                             f"{fmt.sample_rate} Hz")
        # soxr emits variable-sized blocks, so no block size can be promised downstream.
        return fmt.replace(sample_rate=self.rate, block_size=None)

    def declared_input(self) -> AudioFormat:
        """`input_rate`, where given, is the rate this node needs."""
        return AudioFormat(sample_rate=self.input_rate)

    def setup(self):
        """Builds the soxr stream for the expected input (rate, channels, float32) so the first
        block does not pay for it."""
        self._in_rate = self.input_rate or self.format.sample_rate
        # Built for the likely stream now, so the first frame does not pay for it; rebuilt on
        # the first frame only if that frame's dtype or channel count differ.
        self._stream = None
        self._dtype = np.dtype(np.float32)
        self._channels = self.format.channels or 1
        if self._in_rate is not None:
            self._stream = self._new_stream()
        self._started = False
        self._out_pts = 0
        self._seq = 0
        self._last = None      # the last input frame: a template for frames released by events

    def _new_stream(self):
        return soxr.ResampleStream(self._in_rate, self.rate, self._channels,
                                   dtype=self._dtype, quality=self.quality)

    def _start(self, frame) -> None:
        array = frame.array
        rate = frame.sample_rate or self._in_rate
        if rate is None:
            raise ValueError("the input sample rate is unknown: frames carry none and neither "
                             "the manifest's audio nor the param input_rate gives one")
        if array.dtype not in SOXR_DTYPES:
            raise ValueError(f"soxr resamples float32, float64, int16 or int32, not "
                             f"{array.dtype}; put a FormatConvert node before Resample")
        if array.ndim > 2:
            raise ValueError(f"audio must be (samples,) or (samples, channels), got shape "
                             f"{array.shape}")
        channels = array.shape[1] if array.ndim == 2 else 1
        if (self._stream is None or rate != self._in_rate or array.dtype != self._dtype
                or channels != self._channels):
            self._in_rate, self._dtype, self._channels = rate, array.dtype, channels
            self._stream = self._new_stream()
        pts = frame.pts or 0
        # The same instant at the output rate; exact for rate pairs that divide evenly.
        self._out_pts = (pts * self.rate + self._in_rate // 2) // self._in_rate
        self._started = True

    def process(self, frame):
        """The block resampled (NumpyData at `rate` Hz, or None when soxr holds everything back),
        plus a non_finite event if needed. ValueError for an unknown input rate, an unsupported
        dtype, more than 2 dimensions, or a dtype, channel count or rate that changes mid-stream
        without a discontinuity."""
        if not self._started:
            self._start(frame)
        else:
            array = frame.array
            if array.dtype != self._dtype or (array.shape[1] if array.ndim == 2 else 1) \
                    != self._channels:
                raise ValueError(f"stream changed mid-way from {self._dtype} x "
                                 f"{self._channels} channel(s) to {array.dtype} shape "
                                 f"{array.shape}; send a discontinuity event first")
            if frame.sample_rate is not None and frame.sample_rate != self._in_rate:
                raise ValueError(f"input rate changed mid-stream from {self._in_rate} to "
                                 f"{frame.sample_rate} Hz; send a discontinuity event first")
        self._last = frame
        # A NaN inside soxr's filter smears over every output sample its taps reach, and an
        # Inf turns them all NaN: the filter is fed 0 for such samples (a copy only then), and
        # the count goes out as an event.
        array, bad = finite_or_zero(frame.array)
        out = self._emit(frame, self._stream.resample_chunk(array))
        if not bad:
            return out
        event = JsonData({"type": "non_finite", "node": self.node_id, "pts": frame.pts,
                          "samples": bad}, pts=frame.pts)
        return [event] if out is None else [out, event]

    def _emit(self, template, out: np.ndarray):
        n = out.shape[0]
        if n == 0:
            return None
        pts = self._out_pts
        self._out_pts += n
        self._seq += 1
        return template.with_array(out, pts=pts, sample_rate=self.rate, seq=self._seq - 1)

    def on_control(self, event):
        """flush, end_of_stream and discontinuity release the filter's tail as a last block and
        start a fresh filter (the next block sets the pts base); reset only starts fresh."""
        name = event.event
        if name in ("flush", "end_of_stream", "discontinuity"):
            # Release the filter's tail: what is still inside belongs to the audio before.
            released = None
            if self._started and self._last is not None:
                empty = self._last.array[:0]
                released = self._emit(self._last, self._stream.resample_chunk(empty, last=True))
            self._restart()
            return [released] if released is not None else None
        if name == "reset":
            self._restart()
        return None

    def teardown(self):
        # Release soxr's stream now, not whenever the session object happens to be freed: a
        # session kept alive to the end of the interpreter (the TUI's last run) would otherwise
        # hold a nanobind instance past soxr's module teardown, and nanobind prints
        # "leaked 1 instances" and a list of every soxr function on stderr at exit.
        """Release the soxr stream now: a stream alive at interpreter shutdown makes nanobind
        print "leaked" lines."""
        self._stream = None
        self._started = False
        self._last = None

    def _restart(self) -> None:
        # A fresh filter; the next frame sets the pts base again.
        if self._stream is not None:
            self._stream.clear()
        self._started = False
        self._last = None
