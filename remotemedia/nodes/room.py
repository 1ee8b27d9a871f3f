"""EchoPath: what a room does between a loudspeaker and a microphone, for tests and simulations.

Fan-in (inputs keyed by name, `input:` on a manifest connection):

- `far`: what the loudspeaker plays (the bot's output), float32 mono blocks;
- `near` (optional): the user's voice as it reaches the microphone.

Output, one block per pair: what the microphone hears,

    mic = gain * (far delayed by delay_ms, convolved with the room's impulse response)
          + near + noise

The impulse response is a direct path followed by a reverberant tail: seeded Gaussian noise
under an exponential decay that falls 60 dB in `rt60_ms`, `drr_db` below the direct path in
energy; `gain_db` scales the whole echo. The convolution is a uniformly partitioned
overlap-save in the frequency domain (numpy FFT, partitions of one block): about
2 * rt60 / block FFT bins multiplied per block, no per-sample Python.

Noise (`noise`): none, white, pink, babble (several talkers of speech, from `noise_files` or
made with espeak-ng at setup), or a WAV (`noise_files`, looped), at `snr_db` below the nominal
speech level `speech_dbfs` (ITU-T P.56's -26 dBFS by default): a fixed level, so a streaming
room needs no look-ahead. Pink and babble noise are looped from a seeded `loop_s` buffer.

Ground truth for measurements: each output block's metadata carries `near_speech` (bool: the
near input's block is above -60 dBFS), which EchoCancel uses to leave double talk out of ERLE.
A delay jump (`jump_at_s`, `jump_ms`) moves the echo mid-run, as a device that slips would.

Everything is seeded (`seed`): the same inputs give the same microphone, bit for bit. Buffers are
allocated in setup(); per block the node allocates only the output block its consumers own.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess

import numpy as np

from ..engine.node import (DEFAULT_SAMPLE_RATE, AudioFormat, InputRequirement, Node, Param,
                           register_node)

NEAR_SPEECH_DBFS = -60.0
#: espeak-ng voices and sentences babble is made of when no noise_files are given
BABBLE_VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+m4", "en-us+m7", "en-gb+f2")
BABBLE_TEXT = ("The meeting starts at ten and the room on the second floor is already full. "
               "Could you pass me the report from last week, the one with the red cover? "
               "We were talking about the holiday, and nobody could agree on the place.")


def _pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def decay_tail(rate: int, rt60_ms: float, rng: np.random.Generator) -> np.ndarray:
    """A reverberant tail: Gaussian noise under exp(-6.91 t / rt60) (60 dB down at rt60),
    unit energy, float64 (samples,), rt60 long. Empty for rt60_ms 0."""
    n = int(round(rt60_ms * rate / 1000.0))
    if n <= 0:
        return np.zeros(0)
    t = np.arange(n) / rate
    tail = rng.standard_normal(n) * np.exp(-6.91 * t / (rt60_ms / 1000.0))
    return tail / math.sqrt(float(np.dot(tail, tail)))


def impulse_response(rate: int, rt60_ms: float, drr_db: float, gain_db: float,
                     rng: np.random.Generator) -> np.ndarray:
    """The room's response without its delay: a unit direct path at sample 0, then the tail
    (from sample 1) at `drr_db` below it in energy, all times 10**(gain_db/20). float64."""
    tail = decay_tail(rate, rt60_ms, rng)
    h = np.zeros(1 + tail.shape[0])
    h[0] = 1.0
    h[1:] = tail * 10.0 ** (-drr_db / 20.0)
    return h * 10.0 ** (gain_db / 20.0)


class PartitionedConvolver:
    """Streaming convolution of blocks of `n` samples with `h` (uniformly partitioned
    overlap-save, FFT size 2n). Every buffer is allocated here; `process` allocates nothing
    (numpy's FFTs write into `out=`)."""

    def __init__(self, h: np.ndarray, n: int):
        self.n = n
        parts = max(1, math.ceil(h.shape[0] / n))
        padded = np.zeros(parts * n)
        padded[:h.shape[0]] = h
        seg = np.zeros(2 * n)
        H = np.empty((parts, n + 1), dtype=np.complex128)
        for k in range(parts):
            seg[:n] = padded[k * n:(k + 1) * n]
            H[k] = np.fft.rfft(seg)
        # The partitions reversed, twice over: the ones that meet the input spectra (a ring,
        # newest at ptr) in order are the contiguous slice [P-1-ptr, 2P-1-ptr) (numpy copies
        # an operand with negative strides, so a reversed view would allocate every block).
        self.HH = np.concatenate([H[::-1], H[::-1]])
        self.fdl = np.zeros((parts, n + 1), dtype=np.complex128)   # input spectra, newest at ptr
        self.prod = np.empty_like(self.fdl)
        self.acc = np.empty(n + 1, dtype=np.complex128)
        self.x2 = np.zeros(2 * n)            # [previous block, this block]
        self.y2 = np.empty(2 * n)
        self.ptr = 0

    def process(self, x: np.ndarray, out: np.ndarray) -> None:
        """Writes the next n output samples into `out` ((n,), any float dtype)."""
        n, P = self.n, self.fdl.shape[0]
        x2 = self.x2
        x2[:n] = x2[n:]
        x2[n:] = x
        ptr = self.ptr = (self.ptr + 1) % P
        np.fft.rfft(x2, out=self.fdl[ptr])
        # sum over k of fdl[(ptr - k) % P] * H[k]
        np.multiply(self.fdl, self.HH[P - 1 - ptr:2 * P - 1 - ptr], out=self.prod)
        np.add.reduce(self.prod, axis=0, out=self.acc)
        np.fft.irfft(self.acc, n=2 * n, out=self.y2)
        out[:] = self.y2[n:]

    def reset(self) -> None:
        """Forgets the input: the next output starts from silence."""
        self.fdl[:] = 0
        self.x2[:] = 0


def pink_noise(count: int, rng: np.random.Generator) -> np.ndarray:
    """Seeded pink (1/f power) noise, unit RMS, float64 (count,), made in the frequency
    domain."""
    spec = rng.standard_normal(count // 2 + 1) + 1j * rng.standard_normal(count // 2 + 1)
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    spec /= np.sqrt(f)
    spec[0] = 0.0
    x = np.fft.irfft(spec, n=count)
    return x / math.sqrt(float(np.mean(x * x)))


def _read_mono(path: str, rate: int) -> np.ndarray:
    import soundfile as sf
    try:
        x, r = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:   # soundfile raises its own LibsndfileError, RuntimeError, ...
        raise ValueError(f"noise file {path!r}: {exc}") from exc
    x = x.mean(axis=1)
    if r != rate:
        import soxr
        x = soxr.resample(x, r, rate)
    return x.astype(np.float64)


def _espeak(text: str, voice: str, speed: int, rate: int) -> np.ndarray:
    import io
    import soundfile as sf
    import soxr
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         capture_output=True, check=True, timeout=120).stdout
    x, r = sf.read(io.BytesIO(wav), dtype="float64")
    return soxr.resample(x, r, rate) if r != rate else x


def babble(count: int, rate: int, talkers: int, rng: np.random.Generator,
           sources: list[np.ndarray]) -> np.ndarray:
    """`talkers` voices over each other: each a seeded circular shift of one of `sources`
    (speech, cycled), each at unit active level, summed; unit RMS, float64 (count,)."""
    out = np.zeros(count)
    for k in range(talkers):
        src = sources[k % len(sources)]
        src = src / math.sqrt(float(np.mean(src * src)) + 1e-20)
        reps = math.ceil(count / src.shape[0]) + 1
        loop = np.tile(src, reps)
        start = int(rng.integers(0, src.shape[0]))
        out += loop[start:start + count]
    return out / math.sqrt(float(np.mean(out * out)) + 1e-20)


@register_node
class EchoPath(Node):
    """A simulated room: far (loudspeaker) -> delay, gain, reverberant tail -> microphone,
    plus the near talker and noise. Fan-in: inputs named `far` (required) and `near`.

    Input: float32 mono blocks (samples,) or (samples, 1), the same length on both inputs, at
    the stream's rate (Hz). Output: the microphone block, float32 (samples,), pts and seq of
    the far block, metadata plus `near_speech` (bool). Raises ValueError (manifest load) for
    inputs other than far/near, more than one channel, a bad noise setup; at setup for a
    noise file that cannot be read or babble without espeak-ng or files."""

    node_type = "EchoPath"
    description = "Simulated room: delayed, reverberant echo of `far` + `near` + noise (seeded)."
    inputs = "many"
    requires = InputRequirement(dtype="float32")
    params = (
        Param("delay_ms", float, 100.0, "loudspeaker-to-microphone delay (ms)", min=0.0,
              max=2000.0),
        Param("gain_db", float, -6.0, "echo gain, direct path (dB)", min=-120.0, max=20.0),
        Param("rt60_ms", float, 300.0, "reverberation time: the tail falls 60 dB in it (ms; "
              "0: no tail)", min=0.0, max=3000.0),
        Param("drr_db", float, 3.0, "direct-to-reverberant energy ratio (dB)", min=-30.0,
              max=60.0),
        Param("noise", str, "none", "noise kind", choices=("none", "white", "pink", "babble",
                                                             "wav")),
        Param("snr_db", float, 20.0, "noise level below speech_dbfs (dB)", min=-20.0,
              max=120.0),
        Param("speech_dbfs", float, -26.0, "the nominal speech level snr_db is relative to "
              "(dBFS RMS)", min=-100.0, max=0.0),
        Param("noise_files", list, None, "WAV files: the noise for `wav`, the speech babble is "
              "made of for `babble` (default: espeak-ng voices)"),
        Param("talkers", int, 6, "voices in babble", min=1, max=64),
        Param("loop_s", float, 20.0, "length of the looped pink/babble/wav noise (s)",
              min=1.0, max=600.0),
        Param("jump_at_s", float, None, "media time at which the delay jumps (s)", min=0.0,
              max=1e7),
        Param("jump_ms", float, 0.0, "how far the delay jumps then (ms; may be negative)",
              min=-1000.0, max=1000.0),
        Param("seed", int, 0, "seed of the tail and the noise", min=0),
    )

    @classmethod
    def check_config(cls, config):
        """A delay that stays >= 0 after a jump; noise files for `wav`."""
        if config["delay_ms"] + config["jump_ms"] < 0:
            raise ValueError(f"delay_ms + jump_ms is negative ({config['delay_ms']:g} + "
                             f"{config['jump_ms']:g})")
        if config["noise"] == "wav" and not config["noise_files"]:
            raise ValueError("noise: wav needs noise_files (a list of WAV paths)")
        if config["noise"] == "babble" and not config["noise_files"] \
                and shutil.which("espeak-ng") is None:
            raise ValueError("noise: babble needs noise_files (speech WAVs) or espeak-ng "
                             "installed to make its voices")
        for path in config["noise_files"] or ():
            if not isinstance(path, str) or not os.path.isfile(path):
                raise ValueError(f"noise_files: {path!r} is not a file")

    def merge_formats(self, formats: dict[str, AudioFormat]) -> AudioFormat:
        """Inputs named `far` and optionally `near`, mono."""
        names = set(formats)
        if "far" not in names or not names <= {"far", "near"}:
            raise ValueError(f"EchoPath takes inputs named 'far' (required) and 'near' "
                             f"(set `input:` on the connections), got {sorted(names)}")
        fmt = super().merge_formats(formats)
        if fmt.channels not in (None, 1):
            raise ValueError(f"EchoPath is mono; its inputs have {fmt.channels} channels")
        return fmt

    def output_format(self, fmt: AudioFormat) -> AudioFormat:
        """Mono."""
        return fmt.replace(channels=1)

    def setup(self):
        """Builds the impulse response, the convolver, the delay line and the noise (all
        buffers), from the seed. Needs the stream's sample rate and block size."""
        rate = self.format.sample_rate or DEFAULT_SAMPLE_RATE
        self._rate = rate
        self._n = None
        self._rng = np.random.default_rng(self.seed)
        self._h = impulse_response(rate, self.rt60_ms, self.drr_db, self.gain_db,
                                   np.random.default_rng([self.seed, 1]))
        self._delay = int(round(self.delay_ms * rate / 1000.0))
        jump = self.jump_at_s
        self._jump_at = None if jump is None else int(round(jump * rate))
        self._jump = int(round(self.jump_ms * rate / 1000.0))
        self._noise_rms = 10.0 ** ((self.speech_dbfs - self.snr_db) / 20.0)
        self._noise_loop = self._make_noise(rate)
        self._noise_pos = 0
        if self.format.block_size:
            self._allocate(self.format.block_size)

    def _make_noise(self, rate: int):
        kind = self.noise
        rng = np.random.default_rng([self.seed, 2])
        count = int(self.loop_s * rate)
        if kind in ("none", "white"):
            return None
        if kind == "pink":
            x = pink_noise(count, rng)
        elif kind == "wav":
            x = np.concatenate([_read_mono(p, rate) for p in self.noise_files])
            x = np.tile(x, math.ceil(count / max(1, x.shape[0])))[:count]
            x = x / math.sqrt(float(np.mean(x * x)) + 1e-20)
        else:
            if self.noise_files:
                sources = [_read_mono(p, rate) for p in self.noise_files]
            elif shutil.which("espeak-ng"):
                sources = [_espeak(BABBLE_TEXT, v, 140 + 10 * i, rate)
                           for i, v in enumerate(BABBLE_VOICES)]
            else:
                raise ValueError("noise: babble needs noise_files (speech WAVs) or espeak-ng")
            x = babble(count, rate, self.talkers, rng, sources)
        return (x * self._noise_rms).astype(np.float32)

    def _allocate(self, n: int) -> None:
        self._n = n
        self._conv = PartitionedConvolver(self._h, n)
        span = self._delay + max(0, self._jump) + n
        self._line = np.zeros(_pow2(span + n), dtype=np.float32)   # far, by sample index
        self._line_mask = self._line.shape[0] - 1
        self._count = 0          # far samples written so far
        self._x = np.empty(n, dtype=np.float64)
        self._y = np.empty(n, dtype=np.float64)
        self._noise = np.empty(n, dtype=np.float32)

    def process(self, frames):
        """The microphone block for one far block (and one near block); see the class
        docstring. ValueError for blocks of different lengths or more than one channel."""
        far = frames["far"]
        near = frames.get("near")
        a = _mono(far.array, "far")
        n = a.shape[0]
        if near is not None and near.array.shape[0] != n:
            raise ValueError(f"input 'near' has {near.array.shape[0]} samples, 'far' has {n}")
        if n != self._n:
            self._allocate(n)
        # write far into the delay line, read it back `delay` samples later
        line, mask = self._line, self._line_mask
        start = self._count
        _ring_write(line, mask, start, a)
        self._count = start + n
        delay = self._delay
        if self._jump_at is not None and start + n > self._jump_at:
            delay += self._jump
        _ring_read(line, mask, start - delay, self._x)
        if start - delay < 0:        # before the first far sample: silence
            self._x[:min(n, delay - start)] = 0.0
        self._conv.process(self._x, self._y)
        out = np.empty(n, dtype=np.float32)
        out[:] = self._y
        near_speech = False
        if near is not None:
            b = _mono(near.array, "near")
            out += b
            near_speech = float(np.dot(b, b)) / n > 10.0 ** (NEAR_SPEECH_DBFS / 10.0)
        self._add_noise(out)
        meta = dict(far.metadata)
        meta["near_speech"] = near_speech
        return far.with_array(out, metadata=meta)

    def _add_noise(self, out: np.ndarray) -> None:
        if self.noise == "none":
            return
        noise = self._noise
        if self._noise_loop is None:            # white: drawn as it goes
            self._rng.standard_normal(out=noise, dtype=np.float32)
            noise *= self._noise_rms
        else:
            _ring_read_loop(self._noise_loop, self._noise_pos, noise)
            self._noise_pos = (self._noise_pos + noise.shape[0]) % self._noise_loop.shape[0]
        out += noise

    def on_control(self, event):
        """reset and discontinuity empty the room (delay line, tail)."""
        if event.event in ("reset", "discontinuity") and self._n:
            self._line[:] = 0
            self._conv.reset()
        return None


def _mono(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 2:
        if array.shape[1] != 1:
            raise ValueError(f"input '{name}' has {array.shape[1]} channels; EchoPath is mono")
        array = array[:, 0]
    return array


def _ring_write(ring: np.ndarray, mask: int, start: int, x: np.ndarray) -> None:
    i = start & mask
    k = min(x.shape[0], ring.shape[0] - i)
    ring[i:i + k] = x[:k]
    if k < x.shape[0]:
        ring[:x.shape[0] - k] = x[k:]


def _ring_read(ring: np.ndarray, mask: int, start: int, out: np.ndarray) -> None:
    i = start & mask
    k = min(out.shape[0], ring.shape[0] - i)
    out[:k] = ring[i:i + k]
    if k < out.shape[0]:
        out[k:] = ring[:out.shape[0] - k]


def _ring_read_loop(loop: np.ndarray, pos: int, out: np.ndarray) -> None:
    n, size = out.shape[0], loop.shape[0]
    done = 0
    while done < n:
        k = min(n - done, size - pos)
        out[done:done + k] = loop[pos:pos + k]
        done += k
        pos = (pos + k) % size


__all__ = ["EchoPath", "PartitionedConvolver", "impulse_response", "decay_tail", "babble",
           "pink_noise"]
