"""Converting a file input to the run's format at the source boundary: rate and channels.

A file at another rate or channel count than the run decided (engine/precedence.py: espeak-ng
writes 22,050 Hz, phones record 44.1 kHz stereo) is converted on its way in, never inside the
graph: channels by a declared mix, then the rate with libsoxr (HQ), one stream per input so
the result equals soxr's one-shot resample of the whole file. The channel mixes declared:

    N -> N          none
    2 -> 1          the mean of the two channels
    1 -> N          the one channel copied to each of the N

Any other pair has no mix that means one thing (5.1 -> stereo has several) and is refused.
Every array the conversion allocates is counted as one `io` copy by the caller.
"""

from __future__ import annotations

import numpy as np

from ..engine.errors import UnsupportedMix  # noqa: F401 (raised here)
from ..engine.kernels import fill_from_pending

#: soxr's quality for file inputs (as nodes/resample.py's default)
QUALITY = "HQ"


def channel_mix(src: int, dst: int) -> str | None:
    """The name of the mix from `src` to `dst` channels ('mean' for 2 -> 1, 'copy' for
    1 -> N), None when the counts match. UnsupportedMix for any other pair."""
    if src == dst:
        return None
    if src == 2 and dst == 1:
        return "mean"
    if src == 1 and dst >= 1:
        return "copy"
    raise UnsupportedMix(f"no channel mix from {src} to {dst} channels (declared: 2 -> 1 as "
                         f"the mean, 1 -> N as copies)")


class Converter:
    """Blocks at `src_rate` Hz with `src_channels` channels in, blocks of exactly
    `block_size` samples at `dst_rate` Hz with `dst_channels` channels out (float32,
    (samples,) for one channel, (samples, channels) otherwise), the last one short.

    push(block) takes one input block (float32, (samples,) or (samples, channels)) and
    returns the whole output blocks now ready; finish() returns what is left (at most one
    block after the resampler's tail). `copies` counts the arrays allocated so far.
    UnsupportedMix from the constructor for a pair of channel counts with no declared mix."""

    def __init__(self, src_rate: int, src_channels: int, dst_rate: int, dst_channels: int,
                 block_size: int):
        self.mix = channel_mix(src_channels, dst_channels)
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self.src_channels, self.dst_channels = src_channels, dst_channels
        self.block_size = block_size
        self.copies = 0
        # resample the fewer channels: after a downmix, before an upmix
        self._rs_channels = min(src_channels, dst_channels)
        self._stream = None
        if src_rate != dst_rate:
            import soxr
            self._stream = soxr.ResampleStream(src_rate, dst_rate, self._rs_channels,
                                               dtype="float32", quality=QUALITY)
        self._pending: list[np.ndarray] = []   # converted pieces not yet handed out
        self._held = 0

    def describe(self) -> str:
        """What is converted, for the one note: '22050 Hz -> 48000 Hz (soxr HQ), 2 ch -> 1
        (mean)'."""
        parts = []
        if self._stream is not None:
            parts.append(f"{self.src_rate} Hz -> {self.dst_rate} Hz (soxr {QUALITY})")
        if self.mix is not None:
            how = "mean" if self.mix == "mean" else "copies"
            parts.append(f"{self.src_channels} ch -> {self.dst_channels} ({how})")
        return ", ".join(parts)

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        """Convert one input block; the output blocks now complete (owned by the caller)."""
        x, fresh = block, False
        if self.mix == "mean":
            x, fresh = x.mean(axis=1, dtype=np.float32), True   # one array
            self.copies += 1
        elif x.ndim == 2 and self._rs_channels == 1:
            x = x[:, 0]                             # (n, 1) as (n,): a view
        if self._stream is not None:
            x, fresh = self._stream.resample_chunk(x), True      # one array
            self.copies += 1
        if fresh and not self._pending and x.shape[0] == self.block_size \
                and (x.ndim == 1) == (self.dst_channels == 1):
            return [x]    # already a whole block of our own: no second copy
        return self._take(x, final=False)

    def finish(self) -> list[np.ndarray]:
        """The resampler's tail and the last, short block."""
        tail = np.zeros(0, np.float32) if self._rs_channels == 1 \
            else np.zeros((0, self._rs_channels), np.float32)
        if self._stream is not None:
            tail = self._stream.resample_chunk(tail, last=True)
            self.copies += 1
        return self._take(tail, final=True)

    def _take(self, x: np.ndarray, final: bool) -> list[np.ndarray]:
        if x.shape[0]:
            self._pending.append(x)
            self._held += x.shape[0]
        out = []
        n = self.block_size
        while self._held >= n or (final and self._held):
            out.append(self._assemble(min(n, self._held)))
        return out

    def _assemble(self, n: int) -> np.ndarray:
        # One new block per output (the engine may write it in place): pieces copied in, and
        # a 1 -> N mix done by the same copy (broadcast).
        c = self.dst_channels
        block = np.empty((n,) if c == 1 else (n, c), np.float32)
        self.copies += 1
        fill_from_pending(block, self._pending)
        self._held -= n
        return block
