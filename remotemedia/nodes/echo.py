"""EchoCancel: acoustic echo cancellation with WebRTC's AEC3 (pywebrtc-audio, Apache-2.0).

Fan-in (inputs keyed by name): the near end (the microphone) under any name, and the far end
(what was sent to the loudspeaker) under the input name `reference`:

    connections:
      - {from: mic, to: aec}
      - {from: bot, to: aec, input: reference}

When the node that feeds the output is downstream of the canceller (a voice loop: input -> aec
-> ... -> tts -> output, and tts -> aec as `reference`), the reference connection closes a
cycle: it is a feedback connection (the engine's Connection.feedback), whose blocks reach the
node through `feedback()` as they are made, into the same ring; the near end then runs alone,
and reference it has not got by then is silence. `remotemedia converse` feeds such a reference
what the output played, stamped with the media time it played at (its DAC time), so the ring
holds the far end by when it sounded.

Alignment: the reference is kept in a ring indexed by media time (pts), and each near block is
cancelled against the reference of the same media time, so a reference block that never
arrives (a glitch) is silence there, not a shift of everything after it. The echo lags that
reference by the room's and the device's delay; AEC3 finds it with its own delay estimator,
and `delay_ms` (the delay the node assumes) is its starting hint and the lag at which the node
looks for far-end activity when it measures ERLE (`delay_source` "param"; unset, "estimated").

A device run knows the delay (`delay_source` "device clocks"): the runner hands the node the
device's PlayClock (engine/playclock.py, `uses_play_clock`), which says at which near-end pts
each output frame (by its seq) began playing. A reference block is then copied into a held
queue when it arrives and, once the output has played it, written into the ring at that pts
less LEAD_MS (a block that plays on from the one before goes right after it: timestamps
jitter, and a seam in the reference costs AEC3), so each near block meets the far end that
sounded at its time, and only the room's delay (plus the lead) is left for AEC3. `delay_ms`
set overrides that: the reference goes in where it arrived. A held frame that never plays
(dropped at the output) is let go and counted (`reference_unplayed`). The event's `delay_ms`
is then the measured delay from a reference block's arrival to its playing (output queue plus
device round trip).

Measurement, as Json events every `report_blocks` blocks (times are media time, s):

    {"type": "echo", "node": "aec", "time_s": 2.0, "erle_db": 41.3, "echo_erle_db": 44.0,
     "residual_echo_dbfs": -68.2, "reference_dbfs": -21.5, "delay_ms": 100.0,
     "delay_source": "param", "converged": true, "converged_at_s": 1.4, "convergence_s": 1.3,
     "far_active_blocks": 25, "reference_missing": 0, "reference_unplayed": 0, "non_finite": 0,
     "double_talk_blocks": 0,
     "lost_at_s": null, "recovered_at_s": null, "recovery_s": null}

- `erle_db`: echo return loss enhancement over the window, 10*log10(power(near) /
  power(out)) summed over the blocks where the far end is active (the reference, `delay_ms`
  earlier, above `far_active_dbfs`) and the near end has no speech of its own (a block whose
  metadata says `near_speech: true`, as EchoPath's do, is left out; without that key every
  far-active block counts, double talk included). null when fewer than a quarter of the
  window's blocks qualified (a few quiet edges of a pause measure the noise, not the echo).
- `echo_erle_db` (with `double_talk: linear`): echo power in over residual echo power out,
  the noise and the user's voice left out: the echo in is the linear canceller's estimate of
  it, the residual the part of the output that estimate explains (EchoEstimateWindow in
  nodes/echo_linear.py; measured at 16 kHz, 2 ms a window). null when too little echo.
- `double_talk_blocks`: blocks in the window where the user was taken to talk over the far
  end and the linear canceller's output went on (nodes/echo_talk.py, DoubleTalk: the
  microphone far above what the echo path explains, or neither canceller explaining it).
- `converged`: the window's ERLE reached `converged_db`; `converged_at_s` is when it first did
  (`convergence_s` the time from the first far-end activity to it). After that a window below
  `converged_db`, or more than `dip_db` below the ERLE it had settled at (a running average),
  sets `lost_at_s` (converged false); the next window back above, or two in a row at a new
  steady level, set `recovered_at_s` and `recovery_s`. A low window the far end's silence
  follows (erle_db null: the reply ended or was cut) is taken back: the state before it
  returns (ConvergenceTracker).
- `residual_echo_dbfs`: the output's level over those same blocks (dBFS RMS): what is left of
  the echo, plus whatever noise the microphone picked up, which ERLE counts too (so noise
  bounds it: babble 20 dB below the echo bounds it near 25-30 dB, whatever the canceller does).
- `reference_dbfs`: the reference's level `delay_ms` before the window (dBFS RMS; -200 for
  digital silence): a reference that went silent while the echo goes on shows here.
- `reference_missing`: reference samples missing in the window (a gap in its pts, or not
  there yet when the near block needed it): silence is used in their place.

Input: float32 mono blocks, a whole number of 10 ms frames, at 16, 32 or 48 kHz. Output: the
cancelled near end, float32 (samples,), the near block's pts, seq and metadata. Cost: about
0.3 ms per 960-sample block on these machines, so it runs inline (a fan-in node runs on the
block path). The node's own buffers are allocated in setup(); per block the binding returns the
output array (pywebrtc-audio has no `out=`), which becomes the output frame.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from ..engine.data import JsonData
from ..engine.node import (DEFAULT_BLOCK_SIZE, DEFAULT_SAMPLE_RATE, AudioFormat, InputRequirement,
                           Node, Param, register_node)
from .echo_convergence import ConvergenceTracker
from .echo_linear import EchoEstimateWindow, LinearEcho, speex_library
from .echo_talk import DoubleTalk

RATES = (16000, 32000, 48000)
REFERENCE = "reference"
#: reference history kept, s (the longest delay a near block may reach back to, plus slack)
HISTORY_S = 4.0
#: reference blocks a device run holds until the device says when they played (the output
#: queue's depth, 32, with room for a burst a synthesizer makes at once)
PENDING_BLOCKS = 256
#: how the reference is placed on the near end's time (the event's `delay_source`)
DEVICE, PARAM, ESTIMATED = "device clocks", "param", "estimated"
#: on a device, the reference goes in this much before the clocks say it sounded (ms): AEC3
#: loses an echo that comes with no lead at all (measured: a digital loop with the reference
#: exactly on time fell from 60 to 5 dB ERLE after 9 s; 2.5 ms or more of lead holds 60 dB),
#: and timestamps jitter
LEAD_MS = 10.0


def load_webrtc():
    """The pywebrtc_audio module; ValueError naming the extra when it is not installed."""
    try:
        import pywebrtc_audio
    except ImportError as exc:
        raise ValueError("EchoCancel needs pywebrtc-audio: pip install 'remotemedia[echo]'") \
            from exc
    return pywebrtc_audio


def _db(num: float, den: float) -> float | None:
    if num <= 0.0:
        return None
    return round(10.0 * math.log10(num / max(den, 1e-30)), 2)


def _dbfs(mean_square: float) -> float:
    """dBFS RMS of a mean square, floored at -200 (strict JSON has no -Infinity)."""
    return round(10.0 * math.log10(max(mean_square, 1e-20)), 2)


#: the canceller's counters: blocks processed, reference samples found missing, reference
#: samples a device run never played (dropped at the output, or waited for longer than the
#: ring holds), non-finite samples zeroed
COUNTERS = ("blocks", "reference_missing", "reference_unplayed", "non_finite",
            "double_talk_blocks")


def _tracked(name: str, doc: str) -> property:
    """A read-only property of the node that reads its ConvergenceTracker's `name`."""
    return property(lambda self: getattr(self.tracker, name), doc=doc)


@register_node
class EchoCancel(Node):
    """Echo cancellation (WebRTC AEC3): near end in, echo of `reference` removed.

    Input: the near end under any input name and the far end under `reference`, float32 mono
    (samples,) or (samples, 1), a whole number of 10 ms frames, at 16, 32 or 48 kHz. Output:
    the cancelled near end, float32 (samples,), and "echo" Json events (module docstring).
    Raises ValueError at manifest load for wrong inputs, rates, channels or block sizes, or
    when pywebrtc-audio is not installed ("pip install 'remotemedia[echo]'"); ValueError per
    block for a block that is not whole 10 ms frames."""

    node_type = "EchoCancel"
    description = "Acoustic echo cancellation (WebRTC AEC3) against a `reference` input; ERLE."
    inputs = "many"
    feedback_inputs = (REFERENCE,)
    uses_play_clock = True
    requires = InputRequirement(dtype="float32")
    params = (
        Param("delay_ms", float, None, "delay between the reference and its echo in the near "
              "end (ms): AEC3's hint and the lag ERLE looks at; overrides the device clocks. "
              "Unset: measured from the device clocks on a device run, else AEC3's own "
              "estimate from 0", min=0.0, max=1000.0),
        Param("align", str, "auto", "how the reference meets the near end: auto (by when it "
              "played, from the device clocks, on a device run that has them; else by its "
              "pts) or pts (by its pts only)", choices=("auto", "pts")),
        Param("report_blocks", int, 25, "blocks per echo event (0: no events)", min=0,
              max=100_000),
        Param("converged_db", float, 20.0, "ERLE at which the canceller counts as converged "
              "(dB)", min=0.0, max=100.0),
        Param("dip_db", float, 10.0, "after convergence, a window this far below the ERLE it "
              "had settled at counts as lost (dB)", min=0.0, max=100.0),
        Param("far_active_dbfs", float, -50.0, "reference level above which the far end is "
              "active (dBFS RMS over a block)", min=-120.0, max=0.0),
        Param("double_talk", str, "linear", "while the user talks over the far end: linear "
              "(a linear canceller's output, the near end whole; nodes/echo_linear.py) or "
              "off (AEC3's, whose suppressor can swallow the user's words)",
              choices=("linear", "off")),
    )

    @classmethod
    def check_config(cls, config):
        """pywebrtc-audio installed; libspeexdsp too for double_talk: linear."""
        load_webrtc()
        if config.get("double_talk", "linear") == "linear":
            speex_library()

    def merge_formats(self, formats: dict[str, AudioFormat]) -> AudioFormat:
        """Two inputs, one named `reference`; mono; 16, 32 or 48 kHz; whole 10 ms frames."""
        if REFERENCE not in formats or len(formats) != 2:
            raise ValueError(f"EchoCancel takes two inputs, the near end and one named "
                             f"'{REFERENCE}' (`input: reference` on its connection); got "
                             f"{sorted(formats)}")
        fmt = super().merge_formats(formats)
        if fmt.channels not in (None, 1):
            raise ValueError(f"EchoCancel is mono; its inputs have {fmt.channels} channels")
        if fmt.sample_rate is not None and fmt.sample_rate not in RATES:
            raise ValueError(f"EchoCancel runs at 16, 32 or 48 kHz, not {fmt.sample_rate} Hz "
                             f"(put a Resample before it)")
        if fmt.sample_rate and fmt.block_size and fmt.block_size % (fmt.sample_rate // 100):
            raise ValueError(f"block size {fmt.block_size} is not a whole number of 10 ms "
                             f"frames at {fmt.sample_rate} Hz")
        return fmt

    def output_format(self, fmt: AudioFormat) -> AudioFormat:
        """Mono."""
        return fmt.replace(channels=1)

    def setup(self):
        """Creates the canceller and the reference ring (HISTORY_S of samples) and the block
        buffer, at the stream's rate (48 kHz when unknown)."""
        self._rate = rate = self.format.sample_rate or DEFAULT_SAMPLE_RATE
        self._webrtc = load_webrtc()
        hint = self.delay_ms or 0.0
        self._delay = int(round(hint * rate / 1000.0))
        size = 1 << int(math.ceil(math.log2(HISTORY_S * rate + self._delay)))
        self._ring = np.zeros(size, dtype=np.float32)
        self._mask = size - 1
        block = max(self.format.block_size or DEFAULT_BLOCK_SIZE, 1)
        self._far = np.zeros(block, dtype=np.float32)
        self._near_buf = np.zeros_like(self._far)
        self._far_threshold = 10.0 ** (self.far_active_dbfs / 10.0)
        self._near_name: str | None = None
        # A device run: reference blocks wait here (copied: the frame is not ours to keep)
        # until the device says when they played; a longer frame takes several slots.
        self._pend = np.zeros((PENDING_BLOCKS, block), dtype=np.float32)
        self._p_seq = np.zeros(PENDING_BLOCKS, dtype=np.int64)    # the frame's seq
        self._p_off = np.zeros(PENDING_BLOCKS, dtype=np.int64)    # offset in the frame
        self._p_len = np.zeros(PENDING_BLOCKS, dtype=np.int64)
        self._p_at = np.zeros(PENDING_BLOCKS, dtype=np.int64)     # near pts it arrived at
        self._mode: str | None = None         # DEVICE, PARAM or ESTIMATED, from the 1st block
        self._on_device = False
        self._lead = 0
        self._snap = 0
        for name in COUNTERS:
            setattr(self, name, 0)
        self._linear = None
        self._meter = None
        if self.double_talk == "linear":
            self._lin_out = np.zeros(block, dtype=np.float32)
            self._talk = DoubleTalk(block)
            if self.report_blocks:
                self._meter = EchoEstimateWindow(rate, block * self.report_blocks)
        self._restart()

    def teardown(self):
        """Frees the linear canceller's state."""
        if self._linear is not None:
            self._linear.close()
            self._linear = None

    def _resolve(self) -> str:
        # The play clock is set once the run's ends are open, after setup(): resolved lazily.
        clock = self.play_clock if self.align == "auto" else None
        if self.delay_ms is not None:
            mode = PARAM
        elif clock is not None:
            mode = DEVICE
            # placed LEAD_MS before it played: the lead and the room's delay are left
            self._delay = self._lead = int(round(LEAD_MS * self._rate / 1000.0))
            self._snap = self._pend.shape[1] // 2
        else:
            mode = ESTIMATED
        self._mode = mode
        # on a device the reference goes by the near end's time; by its own pts elsewhere
        self._on_device = clock is not None
        return mode

    def _restart(self) -> None:
        self._aec = self._webrtc.EchoCanceller(self._rate, 1, int(round(self.delay_ms or 0.0)))
        if self.double_talk == "linear":
            if self._linear is not None:
                self._linear.close()
            self._linear = LinearEcho(self._rate, self._far.shape[0])
            self._talk.reset()
            if self._meter is not None:
                self._meter.clear()
        self._ring[:] = 0
        self._ref_end: int | None = None      # pts just after the newest reference sample
        self._ref_next = 0                    # pts of a reference block that carries none
        self._near_next = 0
        self._p_head = 0
        self._p_count = 0
        self._device_delay: int | None = None  # samples, arrival -> played, newest block
        self._first_far_s: float | None = None
        self.tracker = ConvergenceTracker(self.converged_db, self.dip_db)
        self._erles: list[float] = []         # each converged window's ERLE (dB)
        self._echo_erles: list[float] = []    # and its echo_erle_db
        self._residual: float | None = None   # the newest residual_echo_dbfs
        self._window()

    def _window(self) -> None:
        self._w_in = 0.0
        self._w_out = 0.0
        self._w_blocks = 0
        self._w_far = 0
        self._w_samples = 0
        self._w_ref = 0.0
        self._w_ref_samples = 0
        self._w_missing = 0
        self._w_non_finite = 0
        self._w_talk = 0

    # -- the block path ---------------------------------------------------------------------------
    def process(self, frames):
        """One near block and one reference block -> the cancelled near block (and, every
        report_blocks blocks, an echo event). ValueError for a block that is not whole 10 ms
        frames or has more than one channel."""
        name = self._near_name
        if name is None:
            name = self._near_name = next(k for k in frames if k != REFERENCE)
        near_frame = frames[name]
        near = _mono(near_frame.array, name)
        n = near.shape[0]
        if n % (self._rate // 100):
            raise ValueError(f"a block of {n} samples is not a whole number of 10 ms frames at "
                             f"{self._rate} Hz")
        if self._far.shape[0] < n:      # a longer block than the format said: grown once
            self._far = np.zeros(n, dtype=np.float32)
            self._near_buf = np.zeros(n, dtype=np.float32)
            if self._linear is not None:     # the linear stage's buffers are per block
                self._linear.close()
                self._linear = LinearEcho(self._rate, n)
                self._lin_out = np.zeros(n, dtype=np.float32)
                self._talk = DoubleTalk(n)
                if self._meter is not None:
                    self._meter = EchoEstimateWindow(self._rate, n * self.report_blocks)
        ref = frames.get(REFERENCE)      # absent when the reference is a feedback connection
        if ref is not None:
            self.feedback(REFERENCE, ref)
        elif self._mode is None:
            self._resolve()
        pts = near_frame.pts
        if pts is None:
            pts = self._near_next
        self._near_next = pts + n
        if self._p_count:
            self._place_played()
        far = self._far[:n]
        missing = self._reference_at(pts, far)
        if self._on_device:
            missing = 0       # on a device, nothing played is silence, not a missing reference
        self.reference_missing += missing
        if not near.flags.c_contiguous:      # AEC3 reads contiguous frames: a strided view
            np.copyto(self._near_buf[:n], near)
            near = self._near_buf[:n]
        p_near = float(np.dot(near, near))
        if not math.isfinite(p_near):
            near = self._contain(near)
            p_near = float(np.dot(near, near))
        out = self._aec.process(near, far)
        if self._linear is not None:
            self._double_talk(near, far, out, p_near)
        self.blocks += 1
        # ERLE bookkeeping: the far end `delay` earlier, the near end's own speech from the room
        self._w_missing += missing
        self._w_blocks += 1
        p_far = self._power_at(pts - self._delay, n)
        self._w_ref += p_far
        self._w_ref_samples += n
        if p_far > self._far_threshold * n and not near_frame.metadata.get("near_speech",
                                                                            False):
            self._w_far += 1
            self._w_samples += n
            self._w_in += p_near
            self._w_out += float(np.dot(out, out))
            if self._first_far_s is None:
                self._first_far_s = pts / self._rate
        result = near_frame.with_array(out)
        if self.report_blocks and self._w_blocks >= self.report_blocks:
            return [result, self._report((pts + n) / self._rate)]
        return result

    def _double_talk(self, near, far, out, p_near: float) -> None:
        # the linear canceller beside AEC3; its output in AEC3's while the user talks over
        lin = self._lin_out[:near.shape[0]]
        self._linear.process(near, far, lin)
        talk = self._talk.decide(near.shape[0], p_near, float(np.dot(lin, lin)),
                                 float(np.dot(out, out)), float(np.dot(far, far)))
        self._talk.mix(talk, lin, out)
        if self._meter is not None:
            self._meter.add(near, lin, out)
        if talk:
            self.double_talk_blocks += 1
            self._w_talk += 1

    def feedback(self, name, frame) -> None:
        """A reference block (float32 mono, any length) into the ring: at its pts (the next
        sample after the last when it has none); on a device run, at the near end's pts where
        it played (device clocks: held until the device has played it) or, with `delay_ms`
        set, where it arrived. ValueError for more than one channel."""
        far = _mono(frame.array, name)
        if self._mode is None:
            self._resolve()
        if not self._on_device:
            pts = frame.pts
            self._store_reference(far, self._ref_next if pts is None else pts)
        elif self._mode == DEVICE and frame.seq is not None:
            self._hold(far, frame.seq)
        else:
            # delay_ms set on a device: the reference as it arrived (after what came before
            # it), and delay_ms from there to its echo
            end = self._ref_end
            self._store_reference(far, self._near_next if end is None else
                                  max(end, self._near_next), count_gaps=False)

    def _hold(self, far: np.ndarray, seq: int) -> None:
        pend, n, width = self._pend, far.shape[0], self._pend.shape[1]
        off = 0
        while off < n:
            if self._p_count == PENDING_BLOCKS:     # never played in time: the oldest goes
                self.reference_unplayed += int(self._p_len[self._p_head])
                self._p_head = (self._p_head + 1) % PENDING_BLOCKS
                self._p_count -= 1
            i = (self._p_head + self._p_count) % PENDING_BLOCKS
            k = min(width, n - off)
            pend[i, :k] = far[off:off + k]
            self._p_seq[i] = seq
            self._p_off[i] = off
            self._p_len[i] = k
            self._p_at[i] = self._near_next
            self._p_count += 1
            off += k

    def _place_played(self) -> None:
        """Held reference blocks the device has played go into the ring at the near pts they
        played at (PlayClock.played_at); the newest sets the measured delay. A block that did
        not play while a later one did was dropped at the output: it is let go, counted."""
        clock = self.play_clock
        while self._p_count:
            i = self._p_head
            seq = int(self._p_seq[i])
            at = clock.played_at(seq)
            k = int(self._p_len[i])
            if at is None:
                if not self._later_played(seq):
                    break                              # still queued: wait
                self.reference_unplayed += k
            else:
                off = int(self._p_off[i])
                start = int(round(at)) + off - self._lead
                end = self._ref_end
                # Playing on from the block before: contiguous. Device timestamps jitter (on
                # JACK's dummy driver by up to 4 ms); each jump would be a seam in the
                # reference that costs AEC3 its filter. A gap in the playing (an underflow, a
                # pause) or a skipped input block is a whole block or more: taken as measured.
                if end is not None and abs(start - end) <= self._snap:
                    start = end
                self._store_reference(self._pend[i, :k], start, count_gaps=False)
                self._device_delay = start - off + self._lead - int(self._p_at[i])
            self._p_head = (i + 1) % PENDING_BLOCKS
            self._p_count -= 1

    def _later_played(self, seq: int) -> bool:
        # Frames play in order: when the next held frame, or the newest, has played, `seq`
        # never will (dropped at the output). Two clock reads, not a scan of what is held.
        clock, count, head = self.play_clock, self._p_count, self._p_head
        nxt = None
        for j in range(1, count):
            s = int(self._p_seq[(head + j) % PENDING_BLOCKS])
            if s != seq:
                nxt = s
                break
        if nxt is None:
            return False
        if clock.played_at(nxt) is not None:
            return True
        last = int(self._p_seq[(head + count - 1) % PENDING_BLOCKS])
        return last != nxt and clock.played_at(last) is not None

    def _contain(self, near: np.ndarray) -> np.ndarray:
        # NaN or Inf would poison AEC3's filter for the rest of the stream: zeroed, counted.
        bad = int(near.size - np.count_nonzero(np.isfinite(near)))
        self.non_finite += bad
        self._w_non_finite += bad
        return np.nan_to_num(near, copy=True, nan=0.0, posinf=0.0, neginf=0.0)

    def _store_reference(self, far: np.ndarray, pts: int, count_gaps: bool = True) -> None:
        n = far.shape[0]
        if not math.isfinite(float(np.dot(far, far))):
            far = self._contain(far)
        ring, mask, size = self._ring, self._mask, self._ring.shape[0]
        end = self._ref_end
        if end is not None and end < pts:     # a gap: the missing reference is silence
            gap = min(pts - end, size)
            _write(ring, mask, pts - gap, None, gap)
            if count_gaps:    # on a device a gap is a pause in what played: not missing
                self.reference_missing += pts - end
                self._w_missing += pts - end
        _write(ring, mask, pts, far, n)
        self._ref_end = pts + n if end is None else max(end, pts + n)
        self._ref_next = pts + n

    def _reference_at(self, pts: int, out: np.ndarray) -> int:
        """The reference for [pts, pts + n) into `out`; samples it does not have (not yet
        arrived, or older than the ring) are zeros. Returns how many were missing."""
        n = out.shape[0]
        end = self._ref_end
        oldest = end - self._ring.shape[0] if end is not None else 0
        if end is None or pts >= end or pts + n <= oldest:
            out[:] = 0.0
            return n
        lo, hi = max(pts, oldest), min(pts + n, end)
        _read(self._ring, self._mask, lo, out[lo - pts:hi - pts])
        if lo > pts:
            out[:lo - pts] = 0.0
        if hi < pts + n:
            out[hi - pts:] = 0.0
        return n - (hi - lo)

    def _power_at(self, start: int, n: int) -> float:
        """Sum of squares of the reference over [start, start + n) (0 outside what it has)."""
        end = self._ref_end
        if end is None:
            return 0.0
        lo, hi = max(start, end - self._ring.shape[0], 0), min(start + n, end)
        if hi <= lo:
            return 0.0
        ring, mask = self._ring, self._mask
        i = lo & mask
        k = min(hi - lo, ring.shape[0] - i)
        a = ring[i:i + k]
        total = float(np.dot(a, a))
        if k < hi - lo:
            b = ring[:hi - lo - k]
            total += float(np.dot(b, b))
        return total

    # -- reporting --------------------------------------------------------------------------------
    def _report(self, time_s: float) -> JsonData:
        # A few far-active blocks (a pause's quiet edges) are too little to measure: their echo
        # can sit under the noise, and ERLE would read the noise.
        enough = self._w_far and 4 * self._w_far >= self._w_blocks
        erle = _db(self._w_in, self._w_out) if enough else None
        t = self.tracker
        t.update(erle, time_s)
        echo_erle = None if self._meter is None else self._meter.measure()
        if t.converged and erle is not None and len(self._erles) < 100_000:
            self._erles.append(erle)      # a float per window, not per block
            if echo_erle is not None:
                self._echo_erles.append(echo_erle)
        if self._w_far:
            self._residual = _dbfs(self._w_out / self._w_samples)
        first = self._first_far_s
        value = {
            "type": "echo", "node": self.node_id, "time_s": round(time_s, 3),
            "erle_db": erle, "echo_erle_db": echo_erle, "residual_echo_dbfs": (
                None if not self._w_far else _dbfs(self._w_out / self._w_samples)),
            "reference_dbfs": (None if not self._w_ref_samples
                               else _dbfs(self._w_ref / self._w_ref_samples)),
            "delay_ms": self.delay_used_ms, "delay_source": self._mode,
            "converged": t.converged, "converged_at_s": t.converged_at_s,
            "convergence_s": (None if t.converged_at_s is None or first is None
                              else round(t.converged_at_s - first, 3)),
            "far_active_blocks": self._w_far, "reference_missing": self._w_missing,
            "reference_unplayed": self.reference_unplayed,
            "non_finite": self._w_non_finite, "double_talk_blocks": self._w_talk,
            "lost_at_s": t.lost_at_s, "recovered_at_s": t.recovered_at_s,
            "recovery_s": (None if t.recovered_at_s is None
                           else round(t.recovered_at_s - t.lost_at_s, 3)),
        }
        self._window()
        return JsonData(value, pts=int(round(time_s * self._rate)))

    def executor_stats(self) -> dict:
        """{"echo": {...}} for the stats report: the delay it used and its source, blocks,
        reference samples missing and unplayed, non-finite samples zeroed, blocks taken for
        double talk, when it converged, was lost and recovered (media time, s), and ERLE: the
        median of the windows while converged (`erle_after_convergence_db`, dB, None before)
        and the newest residual_echo_dbfs."""
        t = self.tracker
        erles, echo_erles = self._erles, self._echo_erles
        return {"echo": {"delay_ms": self.delay_used_ms, "delay_source": self._mode,
                         "erle_after_convergence_db": (statistics.median(erles) if erles
                                                       else None),
                         "echo_erle_after_convergence_db": (
                             statistics.median(echo_erles) if echo_erles else None),
                         "residual_echo_dbfs": self._residual,
                         **{name: getattr(self, name) for name in COUNTERS},
                         "converged": t.converged,
                         "converged_at_s": t.converged_at_s, "lost_at_s": t.lost_at_s,
                         "recovered_at_s": t.recovered_at_s, "losses_withdrawn": t.withdrawn}}

    # the tracker's state, read through the node (ConvergenceTracker's attributes)
    converged = _tracked("converged", "The canceller has the echo (bool).")
    converged_at_s = _tracked("converged_at_s", "When it first converged (media time, s), "
                              "or None.")
    lost_at_s = _tracked("lost_at_s", "When it last lost the echo (media time, s), or None.")
    recovered_at_s = _tracked("recovered_at_s", "When it had the echo back after that loss "
                              "(media time, s), or None.")

    @property
    def delay_used_ms(self) -> float | None:
        """The delay it works with, ms: measured from the device clocks (from a reference
        block's arrival to when it played, the newest; None until one has played), or
        `delay_ms`; None when AEC3 estimates it alone."""
        if self._mode == DEVICE:
            d = self._device_delay
            return None if d is None else round(d * 1000.0 / self._rate, 1)
        return self.delay_ms

    def on_control(self, event):
        """reset and discontinuity start the canceller over (new filter, empty reference,
        convergence measured anew); end_of_stream and flush report a partial window."""
        name = event.event
        if name in ("reset", "discontinuity"):
            self._restart()
        elif name in ("end_of_stream", "flush") and self.report_blocks and self._w_blocks:
            return [self._report(self._near_next / self._rate)]
        return None


def _mono(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 2:
        if array.shape[1] != 1:
            raise ValueError(f"input '{name}' has {array.shape[1]} channels; EchoCancel is "
                             f"mono")
        array = array[:, 0]
    return array


def _write(ring: np.ndarray, mask: int, start: int, x, n: int) -> None:
    i = start & mask
    k = min(n, ring.shape[0] - i)
    if x is None:
        ring[i:i + k] = 0.0
        if k < n:
            ring[:n - k] = 0.0
        return
    ring[i:i + k] = x[:k]
    if k < n:
        ring[:n - k] = x[k:]


def _read(ring: np.ndarray, mask: int, start: int, out: np.ndarray) -> None:
    n = out.shape[0]
    i = start & mask
    k = min(n, ring.shape[0] - i)
    out[:k] = ring[i:i + k]
    if k < n:
        out[k:] = ring[:n - k]


__all__ = ["ConvergenceTracker", "EchoCancel", "load_webrtc"]
