"""The room in a scripted conversation: the bot's voice comes back into its own microphone.

A script's `room:` key puts a simulated room (nodes/room.py's EchoPath, the same node a
manifest can use) between the bot's output and its microphone, in simulated time:

    room:
      echo_delay_ms: 100        # loudspeaker to microphone (ms, >= 0)
      echo_gain_db: -6          # the echo's direct path (dB, <= 20)
      rt60_ms: 300              # reverberation time (ms, >= 0; 0: no tail)
      noise: {kind: babble, snr_db: 20}   # none, white, pink, babble; dB below -26 dBFS speech
      seed: 7                   # the room's tail and noise (an integer >= 0)

Every block period the run takes the block the output plays (`Playback`: the bot's blocks on a
timeline by the time they started, at the input's rate) as EchoPath's `far` and the user's
voice (with its noise floor) as `near`; what EchoPath hears is what the graph's `input` gets,
metadata `near_speech` included. A second EchoPath with the same seed and no noise gives the
echo alone (the impulse response depends on the seed only), which is the ground truth the
figures below use.

`RoomMeter` measures, per block, from that ground truth and from what the echo canceller (the
first EchoCancel node of the graph; without one, the microphone itself) handed on:

- `erle_db`: 10*log10(echo power at the microphone / power after the canceller), summed over
  the blocks where the echo is audible (above ECHO_ACTIVE_DBFS) and the user is silent. The
  power after the canceller holds whatever noise it passed as well, so with noise this is a
  lower bound on the echo's own ERLE (nodes/echo.py says how noise bounds it).
- `residual_echo_dbfs`: the level after the canceller over those blocks (dBFS RMS).
- `self_interruptions`: barge-ins (the VAD's speech_start while the bot was busy) at whose
  media time the user was not speaking (their audio, widened by the VAD's padding): the bot
  heard itself.
- `double_talk_s`: how long the user's voice overlapped the bot's playing (a user turn's WER
  is then the double-talk WER).

The `room` summary adds the canceller's own figures from its echo events (convergence time,
ERLE after convergence, when it lost and regained convergence), and
`echo_erle_after_convergence` (remotemedia.echo_measure: the ERLE of the echo alone, the
residual being the part of the output the echo explains, so the noise the canceller passes
and the user's voice are left out).

Errors: ScriptError (exit 2) naming the file and the key for a bad `room:`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .converse import ScriptError
from .engine.data import NumpyData
from .engine.node import AudioFormat, NodeContext
from .engine.numbers import as_float, shown

#: the echo counts as audible in a block above this level (dBFS RMS at the microphone)
ECHO_ACTIVE_DBFS = -50.0
#: slack before a user's audio when deciding who a barge-in belongs to (s): a barge-in is
#: judged by the unpadded edge of the speech that made it (the VAD's edge_pts), which can fall
#: up to one VAD window (32 ms at 16 kHz) and the resampler's delay before the user's first
#: sample. None after the audio ends: speech that starts after the user stopped is not theirs
#: (with 0.5 s each side, the bot's own echo 0.4-0.5 s after the user's last word, a fast
#: reply's, counted as the user's: 1 self-interruption reported of 4)
USER_SLACK_S = 0.1
NOISE_KINDS = ("none", "white", "pink", "babble")
_KEYS = ("echo_delay_ms", "echo_gain_db", "rt60_ms", "noise", "seed")
_LIMITS = {"echo_delay_ms": (0.0, 2000.0), "echo_gain_db": (-120.0, 20.0),
           "rt60_ms": (0.0, 3000.0)}


@dataclass(frozen=True)
class RoomSpec:
    """A script's room: delay (ms), echo gain (dB), RT60 (ms), noise kind and SNR (dB
    below -26 dBFS speech), seed."""

    echo_delay_ms: float = 100.0
    echo_gain_db: float = -6.0
    rt60_ms: float = 300.0
    noise_kind: str = "none"
    snr_db: float = 20.0
    seed: int = 0

    def as_dict(self) -> dict:
        """The room as the script states it (for the report)."""
        return {"echo_delay_ms": self.echo_delay_ms, "echo_gain_db": self.echo_gain_db,
                "rt60_ms": self.rt60_ms, "noise": {"kind": self.noise_kind,
                                                   "snr_db": self.snr_db},
                "seed": self.seed}


def load_room(raw, where: str) -> RoomSpec | None:
    """The script's `room:` (None when absent); ScriptError naming `where` and the key."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: room: is a mapping ({', '.join(_KEYS)}), got {raw!r}")
    extra = sorted(set(raw) - set(_KEYS))
    if extra:
        raise ScriptError(f"{where}: room: unknown key(s) {', '.join(extra)} "
                          f"(known: {', '.join(_KEYS)})")
    values: dict = {}
    for key, (lo, hi) in _LIMITS.items():
        if key in raw:
            values[key] = _number(raw[key], f"{where}: room.{key}", lo, hi)
    if "seed" in raw:
        seed = raw["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
            raise ScriptError(f"{where}: room.seed must be an integer from 0 to 2**63 - 1, "
                              f"got {shown(seed)}")
        values["seed"] = seed
    noise = raw.get("noise")
    if noise is not None:
        if not isinstance(noise, dict) or set(noise) - {"kind", "snr_db"}:
            raise ScriptError(f"{where}: room.noise is {{kind: {'|'.join(NOISE_KINDS)}, "
                              f"snr_db: dB}}, got {noise!r}")
        kind = noise.get("kind", "white")
        if kind not in NOISE_KINDS:
            raise ScriptError(f"{where}: room.noise.kind must be one of "
                              f"{', '.join(NOISE_KINDS)}, got {kind!r}")
        values["noise_kind"] = kind
        if "snr_db" in noise:
            values["snr_db"] = _number(noise["snr_db"], f"{where}: room.noise.snr_db",
                                       -20.0, 120.0)
    return RoomSpec(**values)


def _number(value, where: str, lo: float, hi: float) -> float:
    if as_float(value) is None or not lo <= value <= hi:
        raise ScriptError(f"{where} must be a number from {lo:g} to {hi:g}, "
                          f"got {shown(value)}")
    return float(value)


class Playback:
    """What the output played, on a timeline at the input's rate: `add(start_s, block,
    rate)` for each block as it starts (resampled when the output runs at another rate);
    `read(k, out)` the samples of input block k (zeros where nothing played)."""

    def __init__(self, rate: int, block: int, history_s: float = 8.0):
        self.rate = rate
        self.block = block
        size = 1 << int(math.ceil(math.log2(history_s * rate)))
        self._ring = np.zeros(size, dtype=np.float32)
        self._mask = size - 1
        self._cleared = 0       # samples before this were read and zeroed again

    def add(self, start_s: float, block: np.ndarray, rate: int) -> None:
        """A block of the bot's audio (float, (n,) or (n, channels): channels averaged) that
        started playing at `start_s` (simulated s), at `rate` Hz."""
        x = block if block.ndim == 1 else block.mean(axis=1)
        if rate != self.rate:
            import soxr
            x = soxr.resample(x, rate, self.rate)
        start = int(round(start_s * self.rate))
        idx = (np.arange(start, start + x.shape[0])) & self._mask
        self._ring[idx] += x.astype(np.float32)

    def read(self, k: int, out: np.ndarray) -> None:
        """Input block k's span of what played into `out` ((block,) float32), then forgets it."""
        start = k * self.block
        idx = np.arange(start, start + out.shape[0]) & self._mask
        out[:] = self._ring[idx]
        self._ring[idx] = 0.0


class SimRoom:
    """The room of a RoomSpec at `rate` Hz and `block` samples: hear(k, far, near) -> (the
    microphone's frame, the echo alone). Needs espeak-ng for babble (EchoPath's own check)."""

    def __init__(self, spec: RoomSpec, rate: int, block: int):
        from .nodes.room import EchoPath
        self.spec = spec
        self.rate = rate
        self.block = block
        common = {"delay_ms": spec.echo_delay_ms, "gain_db": spec.echo_gain_db,
                  "rt60_ms": spec.rt60_ms, "seed": spec.seed}
        try:
            self.path = _node(EchoPath, "room", rate, block,
                              {**common, "noise": spec.noise_kind, "snr_db": spec.snr_db})
            self.echo = _node(EchoPath, "room-echo", rate, block, {**common, "noise": "none"})
        except ValueError as exc:
            raise ScriptError(f"room: {exc}") from None

    def hear(self, k: int, far: np.ndarray, near: np.ndarray) -> tuple[NumpyData, np.ndarray]:
        """Block k: `far` what the output played over it, `near` the user at the microphone
        (both float32 (block,)). Returns the microphone frame (pts k*block, seq k,
        metadata near_speech) and the echo alone (float32 (block,))."""
        far_frame = NumpyData(far, sample_rate=self.rate, pts=k * self.block, seq=k)
        mic = self.path.process({"far": far_frame,
                                 "near": NumpyData(near, sample_rate=self.rate)})
        echo = self.echo.process({"far": far_frame}).array
        return mic, echo

    def close(self) -> None:
        """Tears the two EchoPath nodes down."""
        self.path.teardown()
        self.echo.teardown()


def _node(cls, node_id: str, rate: int, block: int, params: dict):
    params = cls.check_params(params)
    cls.check_config(params)
    node = cls(node_id, **params)
    node.bind(NodeContext(node_id, AudioFormat(rate, 1, block)))
    node.setup()
    return node


class RoomMeter:
    """The room's figures (module docstring). `heard(k, echo, mic, user_speaking,
    bot_playing)` for each block as it is heard; `canceller(t, output)` with what the
    canceller handed on (its Numpy blocks, by pts, and its echo events); `turn_figures` and
    `summary` after the run."""

    def __init__(self, rate: int, block: int, has_canceller: bool):
        self.rate = rate
        self.block = block
        self.has_canceller = has_canceller
        self._threshold = block * 10.0 ** (ECHO_ACTIVE_DBFS / 10.0)
        #: per block k: (echo power, user speaking, mic power)
        self._heard: dict[int, tuple[float, bool, float]] = {}
        #: per block k: power after the canceller
        self._after: dict[int, float] = {}
        #: per block k: the echo alone and what the canceller handed on (for echo_erle_db)
        self._echo: dict[int, np.ndarray] = {}
        self._out: dict[int, np.ndarray] = {}
        self.echo_events: list[dict] = []
        self.double_talk_blocks: list[int] = []

    def heard(self, k: int, echo: np.ndarray, mic: np.ndarray, user_speaking: bool,
              bot_playing: bool) -> None:
        """Block k heard: the echo alone, the microphone, whether the user's voice and the
        bot's were in it."""
        p_mic = float(np.dot(mic, mic))
        self._heard[k] = (float(np.dot(echo, echo)), user_speaking, p_mic)
        self._echo[k] = echo.copy()
        if not self.has_canceller:
            self._after[k] = p_mic
            self._out[k] = mic.copy()
        if user_speaking and bot_playing:
            self.double_talk_blocks.append(k)

    def canceller(self, t: float, o) -> None:
        """An output of the canceller node, seen at `t` (simulated s)."""
        if o.kind == "numpy" and o.pts is not None:
            a = o.array
            self._after[o.pts // self.block] = float(np.dot(a, a))
            self._out[o.pts // self.block] = np.array(a, dtype=np.float32)
        elif o.kind == "json" and isinstance(o.value, dict) and o.value.get("type") == "echo":
            self.echo_events.append(dict(o.value))

    def _window(self, k0: int, k1: int) -> tuple[float | None, float | None, int]:
        num = den = 0.0
        n = 0
        for k in range(k0, k1):
            heard = self._heard.get(k)
            after = self._after.get(k)
            if heard is None or after is None:
                continue
            p_echo, user, _ = heard
            if user or p_echo < self._threshold:
                continue
            num += p_echo
            den += after
            n += 1
        if not n:
            return None, None, 0
        # no canceller: nothing enhanced the return loss; 0 dB would read as a canceller
        # that did nothing
        erle = None if not self.has_canceller else \
            round(10.0 * math.log10(max(num, 1e-30) / max(den, 1e-30)), 2)
        level = round(10.0 * math.log10(max(den / (n * self.block), 1e-20)), 2)
        return erle, level, n

    def turn_figures(self, start_s: float | None, next_s: float | None,
                     barge_ins: list[tuple[float, float]], spans) -> dict:
        """The figures of the user turn that began at `start_s`, up to the next one's start
        (None: the end of the run)."""
        if start_s is None:
            return {"erle_db": None, "residual_echo_dbfs": None, "self_interruptions": 0,
                    "double_talk_s": 0.0}
        k0 = int(start_s * self.rate) // self.block
        k1 = (max(self._heard) + 1 if next_s is None else
              int(next_s * self.rate) // self.block) if self._heard else k0
        erle, level, _ = self._window(k0, k1)
        lo, hi = start_s, math.inf if next_s is None else next_s
        mine = [b for b in barge_ins if lo <= b[1] < hi]
        dt = sum(1 for k in self.double_talk_blocks if k0 <= k < k1) * self.block / self.rate
        return {"erle_db": erle, "residual_echo_dbfs": level,
                "self_interruptions": sum(1 for b in mine if not user_at(b[1], spans)),
                "double_talk_s": round(dt, 3)}

    def summary(self, spec: RoomSpec, barge_ins, spans) -> dict:
        """The `room` section of the report."""
        end = max(self._heard) + 1 if self._heard else 0
        erle, level, blocks = self._window(0, end)
        last = self.echo_events[-1] if self.echo_events else {}
        converged_at = last.get("converged_at_s")
        after = None
        if converged_at is not None:
            after = self._window(int(converged_at * self.rate) // self.block, end)[0]
        # after convergence: null when nothing converged (no canceller, or not yet)
        echo_after = None if converged_at is None or not self.has_canceller else \
            self._echo_alone(int(converged_at * self.rate) // self.block, end)
        return {**spec.as_dict(), "canceller": self.has_canceller,
                "erle_db": erle, "erle_after_convergence_db": after,
                "echo_erle_after_convergence": echo_after,
                "residual_echo_dbfs": level, "echo_blocks": blocks,
                "self_interruptions": sum(1 for b in barge_ins if not user_at(b[1], spans)),
                "barge_ins": len(barge_ins),
                "double_talk_s": round(len(self.double_talk_blocks) * self.block / self.rate,
                                       3),
                "convergence_s": last.get("convergence_s"),
                "converged_at_s": converged_at,
                "lost_at_s": last.get("lost_at_s"), "recovered_at_s": last.get("recovered_at_s"),
                "canceller_erle_db": [[e["time_s"], e["erle_db"]] for e in self.echo_events]}


    def _echo_alone(self, k0: int, k1: int) -> dict:
        """echo_measure.echo_erle_db over blocks [k0, k1): the echo alone against what the
        canceller handed on (blocks it did not hand on are silence)."""
        from .echo_measure import N_FFT, echo_erle_db
        n = max(0, k1 - k0)
        if n * self.block < N_FFT:        # shorter than one analysis frame: nothing to measure
            return {"erle_db": None, "residual_echo_dbfs": None, "output_dbfs": None,
                    "frames": 0}
        echo = np.zeros(n * self.block, dtype=np.float32)
        out = np.zeros_like(echo)
        for k in range(k0, k1):
            i = (k - k0) * self.block
            if k in self._echo:
                echo[i:i + self.block] = self._echo[k]
            if k in self._out:
                out[i:i + self.block] = self._out[k]
        return echo_erle_db(echo, out)


def live_echo_summary(stats: dict) -> dict | None:
    """The `room` section of a live run's report (no simulated room, so no ground truth):
    the first echo canceller's own figures from the run's stats (`stats["nodes"]`, each
    node's `echo` section: ERLE median while converged, residual echo, convergence, double
    talk blocks, delay). None when the graph has no canceller."""
    nodes = stats.get("nodes") or {}
    rows = nodes.values() if isinstance(nodes, dict) else nodes
    for row in rows:
        echo = row.get("echo") if isinstance(row, dict) else None
        if echo is None and isinstance(row, dict):
            echo = (row.get("executor") or {}).get("echo") if isinstance(
                row.get("executor"), dict) else None
        if isinstance(echo, dict):
            return {"canceller": True, **echo}
    return None


def user_at(media_s: float, spans, slack_s: float = USER_SLACK_S) -> bool:
    """Whether speech that starts at `media_s` (s, media time) is the user's: the user's audio
    (spans: [start_s, end_s or None], s) covers it, its start widened by `slack_s` (s)."""
    for start, end in spans:
        stop = math.inf if end is None else end
        if start - slack_s <= media_s <= stop:
            return True
    return False


__all__ = ["RoomSpec", "load_room", "SimRoom", "RoomMeter", "Playback", "user_at",
           "live_echo_summary",
           "ECHO_ACTIVE_DBFS"]
