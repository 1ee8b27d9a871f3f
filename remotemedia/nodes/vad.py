"""Voice activity detection: Silero's ONNX model (VAD) and a model-free energy gate (EnergyVAD).

Both pass their audio on unchanged and emit Json events when speech starts and ends:

    {"type": "speech_start", "node": "vad", "pts": 12000, "sample_rate": 16000, "time_s": 0.75,
     "edge_pts": 12480}
    {"type": "speech_end",   "node": "vad", "pts": 40480, "sample_rate": 16000, "time_s": 2.53,
     "duration_s": 1.78, "edge_pts": 40000}

With `pause_events: true` they also emit `{"type": "speech_pause", ...}` at the first silent
window of speech, its pts where speech_end will be if the silence lasts (for speculative
transcription; speech that goes on simply gives another pause later).

`pts` is the edge itself (in samples at the node's input rate, padded by pad_ms), not the moment
the decision was made; `edge_pts` is the same edge unpadded (the first speech sample of a
start, one past the last speech sample of an end: what a latency measured from the user's
speech starts or ends at). A start is only confirmed after min_speech_ms of speech and an end after
min_silence_ms of silence, so events arrive that much after the edge they name. Silero's
probability trails the audio by a window or two (about 40 ms measured on espeak-ng speech, at
both edges), so its edges land that much late; pad_ms moves starts back and ends on.
Frames are taken to be contiguous from the first one's pts; send `discontinuity` (or `reset`)
when they are not.

The Silero model (MIT) ships inside remotemedia (nodes/models/silero_vad.onnx, from the
silero-vad 6.2.3 wheel), so the `voice` extra needs only onnxruntime; an installed `silero-vad`
package is the fallback, found with `importlib.util.find_spec` and never imported (it imports
torch). The model runs directly with onnxruntime. The model (checked against the ONNX session's own signature) takes
`input` float32 (batch, 64 + 512): 64 samples of context (the previous window's tail) followed by
a 512-sample window at 16 kHz; `state` float32 (2, batch, 128); `sr` int64 scalar. It returns
`output` (batch, 1), the speech probability, and `stateN`, the state for the next window.
"""

from __future__ import annotations

import importlib.util
import math
import os

import numpy as np

from ..engine.data import JsonData
from ..engine.errors import ModelUnavailable
from ..engine.node import AudioFormat, Node, Param, register_node
from ..engine.levels import LEVEL_RANGE, finite_or_zero, to_unit_float

MODEL_RATE = 16000
WINDOW = 512          # samples per model call at 16 kHz
CONTEXT = 64          # samples of the previous window the model sees first
STATE_SHAPE = (2, 1, 128)
MODEL_FILE = "silero_vad.onnx"
HYSTERESIS = 0.15     # speech ends below threshold - 0.15, as in Silero's own iterator


#: the model shipped inside remotemedia (MIT, Silero Team; models/SILERO_VAD_LICENSE), taken
#: from the silero-vad 6.2.3 wheel's data/silero_vad.onnx, so `pip install remotemedia[voice]`
#: alone gives a working VAD (silero-vad itself declares torch, a multi-GB install)
SHIPPED_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", MODEL_FILE)


def silero_model_path() -> str:
    """The Silero ONNX file: the one shipped with remotemedia, else the one inside an installed
    `silero-vad` package (found without importing it, since it imports torch). Raises
    ModelUnavailable saying what to install when neither is there."""
    if os.path.isfile(SHIPPED_MODEL):
        return SHIPPED_MODEL
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("the Silero model is missing from this remotemedia install and "
                               "the silero-vad package is not installed (reinstall "
                               "remotemedia, or pip install --no-deps silero-vad)")
    for root in spec.submodule_search_locations:
        path = os.path.join(root, "data", MODEL_FILE)
        if os.path.isfile(path):
            return path
    raise ModelUnavailable(f"silero-vad is installed but has no data/{MODEL_FILE}")


def load_silero_session(path: str | None = None):
    """An onnxruntime session on the Silero model, one thread, CPU."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ModelUnavailable("onnxruntime is not installed (pip install "
                               "'remotemedia[voice]')") from exc
    opts = onnxruntime.SessionOptions()
    # One window is a few hundred FLOP-heavy microseconds: more threads only add wake-ups, and
    # an audio thread must not fan out over the other core the device callback needs.
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path or silero_model_path(), sess_options=opts,
                                        providers=["CPUExecutionProvider"])


class SpeechGate:
    """The decision logic both detectors share, counted in samples.

    Each analysis window is `active` (speech), `inactive` (silence), or neither (between the two
    thresholds: it changes nothing). Speech begins at its first active window and is confirmed
    once it spans `min_speech` samples; silence inside it shorter than `min_silence` does not
    break it (a short word followed by a pause still counts), as in Silero's own segmenting.
    Speech ends after `min_silence` samples of silence, and the edge is placed after the last
    active window, not where the silence was confirmed. Edges are padded by `pad` each way,
    never before the stream's start or the previous speech's end.
    """

    __slots__ = ("min_speech", "min_silence", "pad", "speaking", "candidate", "last_active_end",
                 "gap", "floor", "pauses")

    def __init__(self, min_speech: int, min_silence: int, pad: int, pauses: bool = False):
        self.min_speech = min_speech
        self.min_silence = min_silence
        self.pad = pad
        #: also decide 'speech_pause' at the first silent window of speech (its pts: where
        #: speech_end will be if the silence lasts), for speculative transcription
        self.pauses = pauses
        self.reset(0)

    def reset(self, origin: int) -> None:
        """Starts over at sample `origin` (a pts, in samples): not speaking, no candidate start
        or gap; padded starts go no earlier than `origin`."""
        self.floor = origin            # a padded start goes no earlier than this
        self.speaking = False
        self.candidate = None          # start of speech not yet confirmed
        self.last_active_end = origin
        self.gap = None                # start of the silence in progress, if any

    def step(self, active: bool, inactive: bool, start: int, length: int):
        """Feed one window starting at pts `start`; return ('speech_start'|'speech_end'|
        'speech_pause', pts, edge) when a decision is made, else None: `pts` the padded edge,
        `edge` the unpadded one (samples)."""
        end = start + length
        if active:
            if not self.speaking and self.candidate is None:
                self.candidate = start
            self.last_active_end = end
            self.gap = None
        elif inactive and self.gap is None and (self.speaking or self.candidate is not None):
            self.gap = start
            if self.speaking and self.pauses and end - start < self.min_silence:
                return "speech_pause", self.last_active_end + self.pad, self.last_active_end
        if self.speaking:
            if self.gap is not None and end - self.gap >= self.min_silence:
                return self._end(self.last_active_end + self.pad, self.last_active_end)
        elif self.candidate is not None:
            if self.gap is not None:
                if end - self.gap >= self.min_silence:   # too short: it was not speech
                    self.candidate = self.gap = None
            elif self.last_active_end - self.candidate >= self.min_speech:
                self.speaking = True
                edge = max(self.floor, self.candidate - self.pad)
                first, self.candidate = self.candidate, None
                return "speech_start", edge, first
        return None

    def close(self, end: int):
        """At the end of the stream: speech still open ends at `end`, or at its padded last
        active window if silence had begun (the 3-tuple of `step`)."""
        if not self.speaking:
            return None
        if self.gap is None:
            return self._end(end, end)
        return self._end(min(end, self.last_active_end + self.pad),
                         min(end, self.last_active_end))

    def _end(self, pts: int, edge: int):
        self.speaking = False
        self.gap = None
        self.floor = pts
        return "speech_end", pts, edge


class _VadBase(Node):
    """Event plumbing shared by VAD and EnergyVAD."""

    def output_format(self, fmt: AudioFormat) -> AudioFormat:
        # With pass_audio false only events leave: nothing here plays at the output's rate.
        return fmt if self.pass_audio else fmt.replace(carries_audio=False)

    def _make_gate(self, rate: int) -> SpeechGate:
        ms = rate / 1000.0
        return SpeechGate(int(round(self.min_speech_ms * ms)),
                          int(round(self.min_silence_ms * ms)), int(round(self.pad_ms * ms)),
                          pauses=getattr(self, "pause_events", False))

    def _event(self, kind: str, pts: int, edge: int, rate: int) -> JsonData:
        value = {"type": kind, "node": self.node_id, "pts": pts, "sample_rate": rate,
                 "time_s": round(pts / rate, 4), "edge_pts": edge}
        if kind == "speech_end":
            value["duration_s"] = round((pts - self._speech_pts) / rate, 4)
        elif kind == "speech_start":
            self._speech_pts = pts
        return JsonData(value, pts=pts)

    def _contain(self, frame, array):
        """The block in float units of full scale with NaN/Inf as 0 (one NaN fed to a model
        or an average would poison it for the rest of the stream), and the events list,
        holding a `non_finite` event when there were such samples."""
        if array.dtype.kind != "f":
            return to_unit_float(array), None
        array, bad = finite_or_zero(array)
        if not bad:
            return array, None
        return array, [JsonData({"type": "non_finite", "node": self.node_id, "pts": frame.pts,
                                 "samples": bad}, pts=frame.pts)]

    def on_control(self, event):
        """flush, end_of_stream and discontinuity judge the last partial window (`_last_window`)
        and close an open utterance with speech_end; they and reset then forget the stream
        (`_restart`: pts restarts at the next block). Returns the events, or None."""
        name = event.event
        events = None
        if name in ("flush", "end_of_stream", "discontinuity") and self._next_pts is not None:
            end = self._next_pts + self._partial()
            # in this order: the last window's verdict may open or end speech before the close
            hits = (self._last_window() if self._partial() else None, self._gate.close(end))
            events = [self._event(*hit, rate=self._rate) for hit in hits
                      if hit is not None] or None
            for e in events or ():
                if e.value["type"] == "speech_end":
                    # the stream ended the utterance, not min_silence_ms of silence: no endpoint
                    # was decided (a turn meter measures no voice-to-voice from it)
                    e.value["closed_by"] = name
        if name in ("flush", "end_of_stream", "discontinuity", "reset"):
            self._restart()
        return events

    def _out(self, frame, events):
        if not self.pass_audio:
            return events or None
        if not events:
            return frame
        return [frame, *events]


MINUTE_MS = 60_000.0

_COMMON_PARAMS = (
    Param("min_speech_ms", float, 250.0, "speech must last this long to start an utterance",
          min=0, max=MINUTE_MS, range_reason="up to a minute"),
    Param("min_silence_ms", float, 100.0, "silence must last this long to end one", min=0,
          max=MINUTE_MS, range_reason="up to a minute"),
    Param("pad_ms", float, 30.0, "move each start earlier and each end later by this", min=0,
          max=MINUTE_MS, range_reason="up to a minute"),
    Param("pass_audio", bool, True,
          "pass the audio on; false emits only the events (to send them to an output "
          "that plays another rate)"),
    Param("pause_events", bool, False,
          "also emit speech_pause at the first silent window of speech (pts: where "
          "speech_end will be if the silence lasts min_silence_ms), for a Transcribe with "
          "speculative: true"),
)


@register_node
class VAD(_VadBase):
    """Silero VAD (MIT; the model of the silero-vad 6.2.3 wheel, run with onnxruntime on one
    CPU thread): speech probability per 512-sample window (32 ms) of 16 kHz mono audio,
    speech from `threshold`
    (0..1) and silence below max(threshold - 0.15, threshold / 2), as Silero's own iterator.
    Input (samples,) or (samples, 1), any dtype (integers in units of full scale). Emits
    speech_start / speech_end events (module docstring) and passes the audio on when
    pass_audio. ModelUnavailable (a ModelError) at setup when onnxruntime or the model is
    missing; ValueError for a block not 16 kHz mono. Runs on the thread that pushes, one
    ONNX call per 512-sample window (Node: threads)."""

    node_type = "VAD"
    description = "Silero voice activity detection (ONNX, 16 kHz mono); emits speech events."
    params = (Param("threshold", float, 0.5, "speech probability that counts as speech",
                    min=0.0, max=1.0),) + _COMMON_PARAMS

    def output_format(self, fmt: AudioFormat) -> AudioFormat:
        """The input format (no audio when pass_audio is off); ValueError, naming the node to put
        before it, unless the input is 16000 Hz and mono."""
        if fmt.sample_rate is not None and fmt.sample_rate != MODEL_RATE:
            raise ValueError(f"VAD needs {MODEL_RATE} Hz input, got {fmt.sample_rate} Hz "
                             f"(put a Resample node with rate: {MODEL_RATE} before it)")
        if fmt.channels is not None and fmt.channels != 1:
            raise ValueError(f"VAD needs mono input, got {fmt.channels} channels "
                             f"(put a Downmix or ChannelSelect node before it)")
        return super().output_format(fmt)

    def declared_input(self) -> AudioFormat:
        """16000 Hz mono: the model's own."""
        return AudioFormat(sample_rate=MODEL_RATE, channels=1)

    def setup(self):
        """Loads the ONNX session (ModelUnavailable if it cannot) and preallocates the model's
        inputs: [64-sample context | 512-sample window] float32, state (2, 1, 128) float32."""
        self._session = load_silero_session()
        # Preallocated model inputs: [context | window] is filled in place, so a window costs
        # one ONNX call and two small copies.
        self._x = np.zeros((1, CONTEXT + WINDOW), dtype=np.float32)
        self._window = self._x[0, CONTEXT:]
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._sr = np.array(MODEL_RATE, dtype=np.int64)
        self._feed = {"input": self._x, "state": self._state, "sr": self._sr}
        self._fill = 0
        # Below a low threshold the fixed hysteresis would reach zero and silence never count.
        self._off = max(self.threshold - HYSTERESIS, self.threshold / 2)
        self._rate = MODEL_RATE
        self._gate = self._make_gate(MODEL_RATE)
        self._next_pts = None      # pts of the first sample of the window being filled
        self._speech_pts = 0
        self.last_probability = 0.0

    def reset_model(self) -> None:
        """Zeroes the context, the model state and the partly filled window; pts restarts at the
        next block."""
        self._x.fill(0.0)
        self._state = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._feed["state"] = self._state
        self._fill = 0
        self._next_pts = None

    def probability(self) -> float:
        """Run the model on the full window; keep its state and the window's tail as context."""
        prob, state = self._session.run(None, self._feed)
        self._state = state
        self._feed["state"] = state
        self._x[0, :CONTEXT] = self._x[0, WINDOW:]
        p = float(prob[0, 0])
        self.last_probability = p
        return p

    def process(self, frame):
        """Fills 512-sample windows from the block (float32, NaN/Inf as 0 with a non_finite
        event), runs the model on each full one and steps the gate. Returns the block (if
        pass_audio) and the speech events it confirmed. ValueError for a rate other than 16000 Hz
        or more than one channel."""
        array = frame.array
        if frame.sample_rate is not None and frame.sample_rate != MODEL_RATE:
            raise ValueError(f"VAD needs {MODEL_RATE} Hz input, got a {frame.sample_rate} Hz "
                             f"frame")
        if array.ndim == 2:
            if array.shape[1] != 1:
                raise ValueError(f"VAD needs mono input, got {array.shape[1]} channels")
            array = array[:, 0]
        if self._next_pts is None:
            self._next_pts = frame.pts or 0
            self._gate.reset(self._next_pts)
        array, events = self._contain(frame, array)
        n, i = array.shape[0], 0
        window, gate = self._window, self._gate
        while i < n:
            take = min(WINDOW - self._fill, n - i)
            dst = window[self._fill:self._fill + take]
            np.copyto(dst, array[i:i + take], casting="unsafe")
            self._fill += take
            i += take
            if self._fill == WINDOW:
                p = self.probability()
                start = self._next_pts
                self._next_pts += WINDOW
                self._fill = 0
                hit = gate.step(p >= self.threshold, p < self._off, start, WINDOW)
                if hit is not None:
                    events = events or []
                    events.append(self._event(*hit, rate=MODEL_RATE))
        return self._out(frame, events)

    def _partial(self) -> int:
        return self._fill

    def _last_window(self):
        # the last partial window, zero-padded, so its speech is not lost
        self._window[self._fill:] = 0.0
        p = self.probability()
        return self._gate.step(p >= self.threshold, p < self._off, self._next_pts, self._fill)

    def _restart(self) -> None:
        self.reset_model()


@register_node
class EnergyVAD(_VadBase):
    """Model-free voice activity: RMS of `window_ms` windows (all channels pooled, units of
    full scale) against `threshold_dbfs`, speech ending below threshold_dbfs - hysteresis_db,
    through the same SpeechGate as VAD. Any rate, any dtype, (samples,) or (samples,
    channels). ValueError if no sample rate is known or it changes mid-stream."""

    node_type = "EnergyVAD"
    description = "Model-free voice activity by RMS level in short windows; any rate, any dtype."
    params = (
        Param("threshold_dbfs", float, -40.0, "window RMS (dBFS) at or above which is speech",
              **LEVEL_RANGE, aliases=("threshold_db",)),
        Param("hysteresis_db", float, 6.0, "speech ends below threshold_dbfs minus this (dB)",
              min=0.0,
              max=120.0),
        Param("window_ms", float, 10.0, "analysis window", min=1.0, max=100.0),
    ) + _COMMON_PARAMS

    def setup(self):
        """On and off levels as linear RMS (units of full scale); the window is sized at the first
        block."""
        self._rate = self.format.sample_rate
        self._gate = None
        self._next_pts = None
        self._speech_pts = 0
        self._on = 10.0 ** (self.threshold_dbfs / 20.0)
        self._off = 10.0 ** ((self.threshold_dbfs - self.hysteresis_db) / 20.0)

    def _begin(self, frame) -> None:
        rate = frame.sample_rate or self._rate
        if rate is None:
            raise ValueError("EnergyVAD needs a sample rate: frames carry none and the "
                             "manifest gives none")
        self._rate = rate
        self._window = max(1, int(round(self.window_ms * rate / 1000.0)))
        self._gate = self._make_gate(rate)
        self._next_pts = frame.pts or 0
        self._gate.reset(self._next_pts)
        # Mean square over full scale^2, accumulated across frame boundaries.
        self._sum = 0.0
        self._count = 0

    def process(self, frame):
        """Adds the block's squares to the windows and steps the gate at each full one. Returns the
        block (if pass_audio) and the speech events it confirmed (non_finite too, NaN/Inf as 0)."""
        if self._next_pts is None:
            self._begin(frame)
        elif frame.sample_rate is not None and frame.sample_rate != self._rate:
            raise ValueError(f"sample rate changed mid-stream from {self._rate} to "
                             f"{frame.sample_rate} Hz")
        # Integer squares overflow their own dtype: work in float, in units of full scale.
        array, events = self._contain(frame, frame.array)
        channels = array.shape[1] if array.ndim == 2 else 1
        n, i = array.shape[0], 0
        while i < n:
            take = min(self._window - self._count, n - i)
            chunk = array[i:i + take]
            flat = chunk if chunk.ndim == 1 else chunk.reshape(-1)
            self._sum += float(np.dot(flat, flat)) / channels
            self._count += take
            i += take
            if self._count == self._window:
                hit = self._decide()
                if hit is not None:
                    events = events or []
                    events.append(self._event(*hit, rate=self._rate))
        return self._out(frame, events)

    def _decide(self):
        rms = math.sqrt(self._sum / self._count)
        start, length = self._next_pts, self._count
        self._next_pts += length
        self._sum, self._count = 0.0, 0
        return self._gate.step(rms >= self._on, rms < self._off, start, length)

    def _partial(self) -> int:
        return self._count

    _last_window = _decide

    def _restart(self) -> None:
        self._next_pts = None
