"""Transcribe: speech to text with Whisper (faster-whisper, CTranslate2), offline.

Input: audio at any rate, any channel count and dtype, (samples,) or (samples, channels);
it is mixed to mono and resampled to 16 kHz inside (libsoxr). Json speech events from a VAD
upstream (`{"type": "speech_start" | "speech_end", "pts", "sample_rate"}`, nodes/vad.py) are
taken too.

Segmentation (`segment`):
- `vad` (default): one utterance from each speech_start to its speech_end. The events come
  from the VAD that feeds this node when there is one (the first event it sends makes them the
  only source); until then, and without one, the node runs its own Silero VAD on the audio.
  An utterance longer than `max_utterance_s` (Whisper hears 30 s at once) is transcribed in
  pieces, cut at a segment boundary Whisper found, so nothing is dropped.
- `window`: fixed windows of `window_s` overlapping by `overlap_s`, for continuous audio; a
  word is kept by the window that holds its middle away from the overlap, so none is written
  twice. Windows with no speech (its own Silero VAD) are not transcribed.

Output, per result, a Json event (times are media time, from the blocks' pts, in seconds):

    {"type": "transcript", "node": "stt", "text": "Hello there.", "start_s": 1.02,
     "end_s": 1.87, "final": true, "words": [{"word": "Hello", "start_s": 1.02,
     "end_s": 1.4, "p": 0.93}, ...], "language": "en", "avg_logprob": -0.21,
     "no_speech_prob": 0.02}

and, for a final one, the text as RuntimeData.Text (metadata `{"type": "transcript"}`).
With `partials: true` a non-final result follows every `partial_interval_s` of speech while
the speaker still speaks; the final one comes at the utterance's end.

Silence, noise and music give nothing: only speech the VAD found is transcribed, and a Whisper
segment whose no_speech_prob exceeds `no_speech_max` while its avg_logprob is below
`logprob_min` (Whisper's own rule, tightened), or that has no words, is dropped.

Threads: the model loads in setup() (about a second, and a warm-up run on silence: its first
run is slower than the next; shared by the nodes of a process) and
runs in process() when an utterance or window completes: 0.3-1 s on two cores whatever its
length (the encoder always sees 30 s). In a live run put it off the block path
(`executor: thread`, the default for speech nodes where the engine has it). Errors:
ModelNotInstalled (a ValueError: the manifest fails to load, exit 2) naming what to install;
ModelError at setup when the model cannot be loaded.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import ClassVar

import numpy as np

from ..engine.data import ControlData, JsonData, NumpyData, TextData
from ..engine.levels import finite_or_zero, to_unit_float
from ..engine.node import AudioFormat, Node, NodeContext, Param, register_node
from . import whisper
from .vad import VAD
from .whisper import RATE, ModelNotInstalled

#: audio kept before the open utterance: a VAD confirms a start after min_speech_ms and pads
#: it, so the start it names lies up to about a second in the past
PREROLL_S = 2.0
MAX_WINDOW_S = 30.0      # Whisper's window
#: audio before an utterance's start given to Whisper with it (s)
CONTEXT_S = 0.3
#: a word ending before this (s after an utterance's start) is taken as the context's
LEAD_END_S = 0.05
_said: set[str] = set()
#: model run times a node keeps (its run_ms)
RUN_MS_KEPT = 256


def say_once(message: str) -> None:
    """One line on stderr, once per process (a substitution a user should know about)."""
    if message not in _said:
        _said.add(message)
        print(f"remotemedia: {message}", file=sys.stderr)


@register_node
class Transcribe(Node):
    """Speech to text with Whisper (faster-whisper, int8 on the CPU), offline.

    Input: audio blocks (samples,) or (samples, channels), any dtype (integers in units of
    full scale), any rate (Hz), pts in samples; and a VAD's speech_start / speech_end Json
    events. Output per result: a transcript Json event (times in seconds of media time) and,
    when final, the text as RuntimeData.Text (the module docstring gives the shapes and the
    segmentation). Raises ModelNotInstalled (a ValueError, at manifest load) for a model that
    is not on this machine, ModelError at setup when it cannot be loaded, ValueError for a
    block with no known sample rate or a rate that changes mid-stream."""

    node_type = "Transcribe"
    description = "Speech to text (Whisper, offline); transcript events and text per utterance."
    accepts = frozenset({"numpy", "json"})
    #: speech nodes run on a worker thread where the engine has the `thread` executor
    default_executor: ClassVar[str] = "thread"
    #: the graph's output carries text, not audio (a WAV output is refused)
    emits_text: ClassVar[bool] = True
    params = (
        Param("model", str, None, "an installed model package (import name) or a CTranslate2 "
              "Whisper directory (default: the packaged Whisper tiny.en)"),
        Param("language", str, None, "language code such as 'en' (default: the model's; "
              "English-only models always use 'en')"),
        Param("segment", str, "vad", "vad: one result per utterance (speech_start to "
              "speech_end); window: fixed overlapping windows", choices=("vad", "window")),
        Param("window_s", float, 10.0, "window length for segment: window (s)", min=1.0,
              max=MAX_WINDOW_S, range_reason="Whisper hears at most 30 s at once"),
        Param("overlap_s", float, 1.0, "overlap between windows (s)", min=0.0, max=10.0),
        Param("partials", bool, False, "also emit non-final results while speech goes on"),
        Param("partial_interval_s", float, 1.0, "speech between two partial results (s)",
              min=0.2, max=MAX_WINDOW_S),
        Param("max_utterance_s", float, MAX_WINDOW_S, "a longer utterance is transcribed in "
              "pieces (s)", min=2.0, max=MAX_WINDOW_S,
              range_reason="Whisper hears at most 30 s at once"),
        Param("no_speech_max", float, 0.6, "drop a result whose no_speech_prob is above this "
              "and whose avg_logprob is below logprob_min", min=0.0, max=1.0),
        Param("logprob_min", float, -0.5, "see no_speech_max (mean log probability of the "
              "tokens, natural log)", min=-20.0, max=0.0),
        Param("vad_threshold", float, 0.5, "speech probability for the node's own Silero VAD",
              min=0.0, max=1.0),
        Param("min_silence_ms", float, 300.0, "silence that ends an utterance, for the node's "
              "own VAD (ms)", min=0.0, max=10_000.0),
        Param("threads", int, 0, "CPU threads for the model (0: the cores, at most 4)", min=0,
              max=64),
        Param("beam_size", int, 5, "beam search width (1: greedy, fastest)", min=1, max=10),
        Param("speculative", bool, False, "with a VAD's speech_pause events (pause_events: "
              "true): transcribe at the pause, while the endpoint is still being decided; the "
              "result is used if speech_end comes at the same edge, else discarded"),
    )

    @classmethod
    def check_config(cls, config):
        """overlap_s below window_s; the model installed (ModelNotInstalled, a ValueError,
        naming what to install)."""
        if config["overlap_s"] >= config["window_s"]:
            raise ValueError(f"overlap_s ({config['overlap_s']:g}) must be shorter than "
                             f"window_s ({config['window_s']:g})")
        whisper.resolve_model(config["model"])

    def output_format(self, fmt: AudioFormat) -> AudioFormat:
        """Events and text only: the audio stops here."""
        return fmt.replace(carries_audio=False)

    # -- lifecycle ------------------------------------------------------------------------------
    def setup(self):
        """Loads the model (shared per process) and the node's own Silero VAD."""
        self._model = whisper.load_model(whisper.resolve_model(self.model), self.threads)
        # Its own Silero VAD, for when no VAD feeds it (and to find speech in windows).
        self._vad = VAD(f"{self.node_id}.vad", threshold=self.vad_threshold,
                        min_silence_ms=self.min_silence_ms, pass_audio=False)
        self._vad.bind(NodeContext(self._vad.node_id, AudioFormat(RATE, 1)))
        self._vad.setup()
        self._buf = np.zeros(int(RATE * (MAX_WINDOW_S + 2 * PREROLL_S)), dtype=np.float32)
        #: Whisper segments dropped for no_speech_prob above no_speech_max, and model runs
        self.gated = 0
        self.runs = 0
        #: wall time of the latest model runs (ms, at most RUN_MS_KEPT): what Whisper costs on
        #: this machine as it runs, live (beside the audio thread) or simulated
        self.run_ms: deque = deque(maxlen=RUN_MS_KEPT)
        #: speech events received from a VAD upstream (they then bound the utterances)
        self.vad_events = 0
        #: speculative transcriptions run, used (speech_end came at their edge), discarded
        self.speculative_runs = 0
        self.speculative_used = 0
        self.speculative_discarded = 0
        self._restart()

    def _restart(self) -> None:
        # The 16 kHz timeline: sample i is media time origin_s + i / 16000; the buffer holds
        # samples [buf_start, n).
        self._origin_s: float | None = None
        self._in_rate: int | None = None
        self._resampler = None
        self._n = 0
        self._buf_start = 0
        self._external = False        # a VAD upstream has sent an event
        self._utt: int | None = None  # start of the open utterance
        self._continued = -1          # where a long utterance's next piece starts
        self._last_partial = 0
        self._spans: list[list] = []  # window mode: [start, end or None] of speech
        self._win = 0                 # window mode: start of the next window
        self._first_window = True
        self._last_pts_end: int | None = None
        self._guess = None            # (start, end, segments, language) run at a pause
        if self._vad is not None:
            self._vad.reset_model()

    def teardown(self):
        """Drops the buffers (the model stays cached for the process)."""
        self._buf = np.zeros(0, dtype=np.float32)

    # -- input ----------------------------------------------------------------------------------
    def process(self, data):
        """Audio: appended to the 16 kHz buffer (and to the node's own VAD); Json: a VAD's
        speech events. Returns the transcript events and texts that completed (list), or
        None. ValueError if the sample rate is unknown or changes mid-stream."""
        if data.kind == "json":
            value = data.value
            if isinstance(value, dict) and value.get("type") in ("speech_start", "speech_end"):
                # The VAD upstream rules from here on (an utterance its own VAD began too).
                self._external = True
                self.vad_events += 1
                return self._speech_event(value["type"], self._event_index(value))
            if isinstance(value, dict) and value.get("type") == "speech_pause":
                self._external = True
                self.vad_events += 1
                if self.speculative and self.segment == "vad" and self._utt is not None:
                    self._speculate(self._utt, self._event_index(value))
            return None
        return self._audio(data)

    def _event_index(self, value: dict) -> int:
        pts, rate = value.get("pts"), value.get("sample_rate")
        if self._origin_s is None:
            return 0
        if isinstance(pts, int) and isinstance(rate, int) and rate > 0:
            t = pts / rate
        else:
            t = float(value.get("time_s", 0.0))
        return max(0, min(self._n, int(round((t - self._origin_s) * RATE))))

    def _audio(self, frame: NumpyData):
        rate = frame.sample_rate or self._in_rate or self.format.sample_rate
        if rate is None:
            raise ValueError("Transcribe needs the sample rate: frames carry none and the "
                             "manifest gives none")
        out = []
        if self._in_rate is None:
            self._begin(frame, rate)
        elif rate != self._in_rate:
            raise ValueError(f"sample rate changed mid-stream from {self._in_rate} to "
                             f"{rate} Hz")
        elif frame.pts is not None and self._last_pts_end is not None \
                and frame.pts != self._last_pts_end:
            # A gap or a jump in media time: what was open ends here; a new timeline starts.
            out += self._close()
            self._restart()
            self._begin(frame, rate)
        self._last_pts_end = (frame.pts if frame.pts is not None
                              else self._last_pts_end or 0) + frame.array.shape[0]
        mono = self._mono(frame.array)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono)
        if mono.shape[0]:
            out += self._append(mono)
        return out or None

    def _begin(self, frame, rate: int) -> None:
        self._in_rate = rate
        self._origin_s = (frame.pts or 0) / rate
        if rate != RATE:
            import soxr
            self._resampler = soxr.ResampleStream(rate, RATE, 1, dtype="float32",
                                                  quality="HQ")

    @staticmethod
    def _mono(array: np.ndarray) -> np.ndarray:
        if array.dtype.kind != "f":
            array = to_unit_float(array, np.float32)
        elif array.dtype != np.float32:
            array = array.astype(np.float32)
        if array.ndim == 2:
            array = array[:, 0] if array.shape[1] == 1 else array.mean(axis=1,
                                                                        dtype=np.float32)
        array, _ = finite_or_zero(array)
        return array

    def _append(self, mono: np.ndarray) -> list:
        out = []
        self._store(mono)
        start = self._n
        self._n += mono.shape[0]
        if self._vad is not None and not self._external:
            events = self._vad.process(NumpyData(mono, sample_rate=RATE, pts=start))
            for e in _events(events):
                out += self._own_event(e.value["type"], e.value["pts"])
        if self.segment == "window":
            out += self._windows(final=False)
        elif self._utt is not None:
            out += self._while_speaking()
        else:
            self._trim(self._n - int(PREROLL_S * RATE))
        return out

    def _store(self, mono: np.ndarray) -> None:
        used = self._n - self._buf_start
        need = used + mono.shape[0]
        if need > self._buf.shape[0]:
            grown = np.zeros(max(need, 2 * self._buf.shape[0]), dtype=np.float32)
            grown[:used] = self._buf[:used]
            self._buf = grown
        self._buf[used:need] = mono

    def _trim(self, keep_from: int) -> None:
        """Forget samples before index `keep_from` (moves the rest to the buffer's start)."""
        drop = keep_from - self._buf_start
        if drop <= 0:
            return
        used = self._n - self._buf_start
        if drop >= used:
            self._buf_start = self._n
            return
        self._buf[:used - drop] = self._buf[drop:used]
        self._buf_start = keep_from

    def _own_event(self, kind: str, index: int) -> list:
        if self.segment == "window":
            if kind == "speech_start":
                self._spans.append([index, None])
            elif self._spans and self._spans[-1][1] is None:
                self._spans[-1][1] = index
            return []
        return self._speech_event(kind, index)

    def _speech_event(self, kind: str, index: int) -> list:
        if self.segment == "window":
            return self._own_event(kind, index)
        if kind == "speech_start":
            if self._utt is None:
                self._utt = max(index, self._buf_start)
                self._last_partial = self._utt
            return []
        if self._utt is None:
            return []
        start, self._utt = self._utt, None
        end = max(index, start)
        guess, self._guess = self._guess, None
        if guess is not None:
            if guess[:2] == (start, end):
                # Transcribed at the pause, and the pause was the end: nothing left to run.
                self.speculative_used += 1
                out = self._emit(start, end, guess[2], guess[3], final=True)
                self._trim(end - int(PREROLL_S * RATE))
                return out
            self.speculative_discarded += 1
        return self._result(start, end, final=True)

    def _speculate(self, start: int, end: int) -> None:
        """Transcribe [start, end) now, kept for a speech_end at the same edge."""
        if self._guess is not None:
            self.speculative_discarded += 1     # the user went on speaking
        self.speculative_runs += 1
        segments, language = self._run(start, max(end, start))
        self._guess = (start, max(end, start), segments, language)

    def _while_speaking(self) -> list:
        n, start = self._n, self._utt
        if n - start >= int(self.max_utterance_s * RATE):
            return self._split_long(start, n)
        if self.partials and n - self._last_partial >= int(self.partial_interval_s * RATE):
            self._last_partial = n
            return self._result(start, n, final=False)
        return []

    def _split_long(self, start: int, end: int) -> list:
        """An utterance that reached max_utterance_s: all but its last Whisper segment are
        final now; the last one's audio stays for the rest of the utterance."""
        segments, language = self._run(start, end)
        if len(segments) > 1:
            cut = start + int(segments[-1].start * RATE)
            keep = segments[:-1]
        else:
            cut, keep = end, segments
        self._utt = self._last_partial = self._continued = max(cut, start + 1)
        self._trim(self._utt - int(PREROLL_S * RATE))
        return self._emit(start, cut, keep, language, final=True)

    # -- window mode ----------------------------------------------------------------------------
    def _windows(self, final: bool) -> list:
        out = []
        size = int(self.window_s * RATE)
        step = size - int(self.overlap_s * RATE)
        half = int(self.overlap_s * RATE) // 2
        while self._n - self._win >= size or (final and self._n > self._win):
            a = self._win
            b = min(a + size, self._n)
            last = final and b >= self._n
            lo = a if self._first_window else a + half
            hi = b if last else b - half
            if self._has_speech(a, b):
                segments, language = self._run(a, b)
                segments = [_only_words(s, (lo - a) / RATE, (hi - a) / RATE) for s in segments]
                out += self._emit(a, b, [s for s in segments if s.words], language, final=True,
                                  spans=[(s, self._n if e is None else e)
                                         for s, e in self._spans])
            self._first_window = False
            if last:
                self._win = self._n
                break
            self._win = a + step
            self._spans = [s for s in self._spans if s[1] is None or s[1] > self._win]
            self._trim(self._win)
        return out

    def _has_speech(self, a: int, b: int) -> bool:
        return any(s < b and (e is None or e > a) for s, e in self._spans)

    # -- end ------------------------------------------------------------------------------------
    def _close(self) -> list:
        """Everything still open, transcribed: the resampler's tail, the own VAD's last
        window, an utterance without its end, the last window."""
        if self._origin_s is None:
            return []
        out = []
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            self._resampler = None
            if tail.shape[0]:
                out += self._append(tail)
        if self._vad is not None and not self._external:
            for e in _events(self._vad.on_control(ControlData("flush"))):
                out += self._own_event(e.value["type"], e.value["pts"])
        if self.segment == "window":
            for s in self._spans:
                if s[1] is None:
                    s[1] = self._n
            out += self._windows(final=True)
        elif self._utt is not None:
            start, self._utt = self._utt, None
            out += self._result(start, self._n, final=True)
        return out

    def on_control(self, event):
        """end_of_stream, flush and discontinuity transcribe what is open (an utterance
        without its end, the last window) and start a new timeline; reset forgets it."""
        name = event.event
        if name in ("end_of_stream", "flush", "discontinuity"):
            out = self._close()
            self._restart()
            return out or None
        if name == "reset":
            self._restart()
        return None

    # -- running the model ----------------------------------------------------------------------
    def _run(self, start: int, end: int):
        # Whisper hears a word's onset better with a little audio before it: the VAD's edge
        # can cut into it. The times of what it finds stay relative to `start`.
        # (Not for the rest of a long utterance: it starts where Whisper ended a segment.)
        pad = 0 if start == self._continued else min(int(CONTEXT_S * RATE),
                                                     start - self._buf_start)
        a = max(start - max(pad, 0), self._buf_start) - self._buf_start
        b = max(end, self._buf_start) - self._buf_start
        lead = (start - self._buf_start) - a
        audio = self._buf[a:b]
        if audio.shape[0] < RATE // 10:
            return [], None
        if audio.shape[0] < RATE:
            # Whisper is unsure of very short clips: give it a second, the rest silence.
            audio = np.concatenate([audio, np.zeros(RATE - audio.shape[0], np.float32)])
        self.runs += 1
        t0 = time.perf_counter()
        segments, language = whisper.transcribe(self._model, audio, language=self.language,
                                                beam_size=self.beam_size)
        self.run_ms.append(round((time.perf_counter() - t0) * 1e3, 3))
        if lead:
            segments = [whisper.shifted(s, -lead / RATE) for s in segments]
        return segments, language

    def _result(self, start: int, end: int, final: bool) -> list:
        segments, language = self._run(start, end)
        out = self._emit(start, end, segments, language, final)
        if final:
            self._trim(end - int(PREROLL_S * RATE))
        return out

    def _emit(self, start: int, end: int, segments, language, final: bool,
              spans=None) -> list:
        # Whisper's answer to silence or noise ("You", "Thank you."): likely no speech and not
        # sure of its words. Counted, not said. (Long confident speech can score a high
        # no_speech_prob too: the probability alone drops real words.)
        gated = [s for s in segments if s.no_speech_prob > self.no_speech_max
                 and s.avg_logprob < self.logprob_min]
        self.gated += len(gated)
        # A word that ends in the context before `start` (or just after it: Whisper's word
        # times are rough) belongs to what came before.
        kept = [_after(s, LEAD_END_S) for s in segments if not any(s is g for g in gated)]
        kept = [s for s in kept if _text(s.text)]
        words = []
        t0 = self._origin_s + start / RATE
        t_end = self._origin_s + end / RATE
        for s in kept:
            for w in s.words:
                if not w.word.strip():
                    continue
                lo, hi = t0, t_end
                if spans:
                    # Window mode: inside the speech its own VAD found around the word
                    # (Whisper's word times drift into the silence before a phrase).
                    mid = start + int((w.start + w.end) / 2 * RATE)
                    near = min(spans, key=lambda sp: max(sp[0] - mid, mid - sp[1], 0))
                    lo = max(lo, self._origin_s + near[0] / RATE)
                    hi = min(hi, self._origin_s + near[1] / RATE)
                ws = min(max(t0 + w.start, lo), hi)
                we = min(max(t0 + w.end, ws), hi)
                words.append({"word": w.word.strip(), "start_s": round(ws, 3),
                              "end_s": round(we, 3), "p": round(w.p, 3)})
        text = " ".join(_text(s.text) for s in kept) if kept else ""
        if not words or not _text(text):
            return []
        value = {"type": "transcript", "node": self.node_id, "text": text,
                 "start_s": words[0]["start_s"], "end_s": words[-1]["end_s"], "final": final,
                 "words": words, "language": language,
                 "avg_logprob": round(sum(s.avg_logprob for s in kept) / len(kept), 4),
                 "no_speech_prob": round(max(s.no_speech_prob for s in kept), 4)}
        pts = int(round(words[0]["start_s"] * (self._in_rate or RATE)))
        out = [JsonData(value, pts=pts)]
        if final:
            out.append(TextData(text, pts=pts, metadata={"type": "transcript",
                                                         "node": self.node_id}))
        return out


def _text(text: str) -> str:
    """A segment's text without surrounding space; "" when it holds no letter or digit."""
    text = text.strip()
    return text if any(c.isalnum() for c in text) else ""


def _only_words(segment, lo: float, hi: float):
    """The segment with only the words whose middle lies in [lo, hi) (seconds in the window),
    its text rebuilt from them."""
    words = tuple(w for w in segment.words if lo <= (w.start + w.end) / 2 < hi)
    if len(words) == len(segment.words):
        return segment
    return whisper.Segment("".join(w.word for w in words), segment.start, segment.end, words,
                           segment.avg_logprob, segment.no_speech_prob)


def _after(segment, t: float):
    """The segment with only the words that end after `t` seconds, its text rebuilt."""
    words = tuple(w for w in segment.words if w.end > t)
    if len(words) == len(segment.words):
        return segment
    return whisper.Segment("".join(w.word for w in words), segment.start, segment.end, words,
                           segment.avg_logprob, segment.no_speech_prob)


def _events(result) -> list:
    if result is None:
        return []
    items = [result] if isinstance(result, JsonData) else list(result)
    return [e for e in items if e.kind == "json" and e.value.get("type") in
            ("speech_start", "speech_end")]


__all__ = ["Transcribe", "ModelNotInstalled", "say_once"]
