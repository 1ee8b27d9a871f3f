"""The upstream's speech-path nodes: aliases of ours where we do the same job, and the rest.

    FastResampleNode     -> Resample (libsoxr)   sourceRate/source_rate, targetRate/target_rate
                                                 ("auto" or absent: the stream's), quality
                                                 Low|Medium|High (soxr LQ/MQ/HQ), channels
    AudioChunkerNode     -> Reframe              chunk_size/chunkSize (default 512)
    SileroVADNode        -> VAD (Silero ONNX)    threshold, neg_threshold/negThreshold,
                                                 sampling_rate/samplingRate (16000 only),
                                                 min_speech_duration_ms, min_silence_duration_ms,
                                                 speech_pad_ms (and their camelCase)
    SpeculativeVADGate                           passes audio on; camelCase params only
    AudioBufferAccumulatorNode                   gathers the audio of an utterance between VAD
                                                 speech start and end events

Behaviour as the upstream's nodes of those names. Where we differ on purpose: the resampler
never pads zeros into the stream and releases its tail at end of stream; the chunker releases its
remainder at end of stream; the VAD runs the model on its native 512-sample window (so events are
ours: speech_start / speech_end, see nodes/vad.py); the accumulator's 500 ms recency window is
media time, and an utterance still open at end of stream is released.
"""

from __future__ import annotations

import numpy as np

from ...engine.data import NumpyData
from ...engine.node import Node, Param, register_node
from ..audio import Reframe
from ..resample import Resample
from .common import MediaClock, UpstreamNode, unit_float
from ..vad import VAD

_QUALITY = {"Low": "LQ", "Medium": "MQ", "High": "HQ"}


@register_node
class FastResampleNode(UpstreamNode, Resample):
    """The upstream's resampler, run by Resample (soxr). With no target rate (or "auto") the
    stream passes through unchanged, as upstream does when the rates agree."""

    node_type = "FastResampleNode"
    description = "Upstream alias of Resample: sourceRate, targetRate, quality Low|Medium|High."
    alias_of = "Resample"
    #: target_sample_rate: the key voice-assistant.yaml gives (misnamed upstream, where it is
    #: ignored); its comments intend the 48 kHz it names
    param_aliases = {"sourceRate": "source_rate", "targetRate": "target_rate",
                     "target_sample_rate": "target_rate"}
    params = (
        Param("source_rate", int, None, "input rate in Hz (default: the stream's)", min=1),
        Param("target_rate", int, None, "output rate in Hz (default: the stream's, i.e. pass "
              "through)", min=1),
        Param("quality", str, "Medium", "Low, Medium or High (soxr LQ, MQ, HQ)",
              choices=tuple(_QUALITY)),
        Param("channels", int, None, "channel count the stream must have", min=1),
    )

    @classmethod
    def normalize_params(cls, params):
        """The upstream's params under their names here (warning lines for unknown ones, as
        UpstreamNode), with source_rate/target_rate "auto" read as None (not pinned)."""
        params, notes = super().normalize_params(params)
        for key in ("source_rate", "target_rate"):
            if params.get(key) == "auto":
                params[key] = None
        return params, notes

    @classmethod
    def canonical(cls, params: dict) -> tuple[str, dict]:
        """The native node this one stands for, for `remotemedia convert-manifest`:
        ("Resample", {rate, quality, input_rate}) with the upstream's Low/Medium/High mapped to soxr
        LQ/MQ/HQ, or ("PassThrough", {}) when there is no target rate."""
        if params.get("target_rate") is None:
            return "PassThrough", {}
        native = {"rate": params["target_rate"],
                  "quality": _QUALITY.get(params.get("quality", "Medium"), "MQ")}
        if params.get("source_rate") is not None:
            native["input_rate"] = params["source_rate"]
        return "Resample", native

    @classmethod
    def check_params(cls, params):
        """Validated upstream params plus the names Resample reads (`rate`, `input_rate`, in Hz);
        ValueError names the first bad one."""
        params, _ = cls.normalize_params(params)
        own = Node.check_params.__func__(cls, params)
        # `quality` keeps the upstream's word (Low/Medium/High); _new_stream maps it for soxr.
        return {**own, "rate": own["target_rate"], "input_rate": own["source_rate"]}

    @classmethod
    def check_config(cls, config):
        """No cross-param check: a missing target rate means pass through, not an error."""
        pass

    def output_format(self, fmt):
        """The input format at target_rate Hz (unchanged with no target). ValueError if the stream
        arriving disagrees with the declared `channels` or sourceRate."""
        if self.channels is not None and fmt.channels is not None and fmt.channels != self.channels:
            raise ValueError(f"channels is {self.channels} but the stream arriving has "
                             f"{fmt.channels}")
        if self.input_rate is not None and fmt.sample_rate not in (None, self.input_rate):
            raise ValueError(f"sourceRate is {self.input_rate} Hz but the stream arriving is "
                             f"{fmt.sample_rate} Hz")
        if self.rate is None:
            return fmt
        return super().output_format(fmt)

    def declared_input(self):
        """sourceRate and channels, where given, are what this node needs."""
        from ...engine.node import AudioFormat
        return AudioFormat(sample_rate=self.input_rate, channels=self.channels)

    def _new_stream(self):
        import soxr
        return soxr.ResampleStream(self._in_rate, self.rate, self._channels,
                                   dtype=self._dtype, quality=_QUALITY[self.quality])

    def setup(self):
        # Rates that agree (or no target): the audio passes through unchanged, as upstream.
        """Decides pass-through (no target, or equal rates); otherwise sets up Resample's soxr
        stream."""
        self._passthrough = self.rate is None or self.rate == (
            self.input_rate or self.format.sample_rate)
        if not self._passthrough:
            super().setup()

    def process(self, frame):
        """Passing through: the block itself, ValueError if a block at another rate arrives.
        Otherwise Resample.process (soxr; output in the input's dtype)."""
        if self._passthrough:
            if self.rate is not None and frame.sample_rate not in (None, self.rate):
                raise ValueError(f"targetRate is {self.rate} Hz and the stream was too, but a "
                                 f"{frame.sample_rate} Hz block arrived")
            return frame
        return super().process(frame)

    def on_control(self, event):
        """Passing through: nothing. Otherwise Resample's flush/end_of_stream/reset handling."""
        return None if self._passthrough else super().on_control(event)


@register_node
class AudioChunkerNode(UpstreamNode, Reframe):
    """The upstream's chunker, run by Reframe: blocks of chunk_size samples (per channel here;
    the upstream counts interleaved samples, the same for mono). The remainder is released at
    end of stream."""

    node_type = "AudioChunkerNode"
    description = "Upstream alias of Reframe: chunk_size/chunkSize samples per block."
    alias_of = "Reframe"
    param_aliases = {"chunkSize": "chunk_size"}
    params = (Param("chunk_size", int, 512, "samples per output block", min=1),)

    @classmethod
    def canonical(cls, params):
        """("Reframe", {"size": chunk_size}) for `remotemedia convert-manifest` (512 by default)."""
        return "Reframe", {"size": params.get("chunk_size", 512)}

    @classmethod
    def check_params(cls, params):
        """Validated upstream params plus Reframe's (`size` = chunk_size samples, `pad` False)."""
        params, _ = cls.normalize_params(params)
        own = Node.check_params.__func__(cls, params)
        return {**own, "size": own["chunk_size"], "pad": False}

    @classmethod
    def check_config(cls, config):
        """No cross-param check (chunk_size has a default, unlike Reframe's `size`)."""
        pass


@register_node
class SileroVADNode(UpstreamNode, VAD):
    """The upstream's Silero VAD, run by VAD: the model on its native 512-sample windows with
    context, 16 kHz mono; events are VAD's speech_start / speech_end. neg_threshold (default
    threshold - 0.15) is where speech ends."""

    node_type = "SileroVADNode"
    description = "Upstream alias of VAD: threshold, negThreshold, minSilenceDurationMs, ..."
    alias_of = "VAD"
    param_aliases = {"negThreshold": "neg_threshold", "samplingRate": "sampling_rate",
                     "minSpeechDurationMs": "min_speech_duration_ms",
                     "minSilenceDurationMs": "min_silence_duration_ms",
                     "speechPadMs": "speech_pad_ms"}
    params = (
        Param("threshold", float, 0.5, "speech probability that counts as speech",
              min=0.0, max=1.0),
        Param("neg_threshold", float, None, "probability below which speech ends (default "
              "threshold - 0.15)", min=0.0, max=1.0),
        Param("sampling_rate", int, 16000, "the model's rate; only 16000", choices=(16000,)),
        # the same minute as the native VAD's own ms params
        Param("min_speech_duration_ms", int, 250, "speech must last this long", min=0,
              max=60_000),
        Param("min_silence_duration_ms", int, 100, "silence must last this long to end speech",
              min=0, max=60_000),
        Param("speech_pad_ms", int, 30, "pad each edge by this", min=0, max=60_000),
    )

    @classmethod
    def canonical(cls, params):
        """("VAD", {threshold, min_speech_ms, min_silence_ms, pad_ms}) for
        `remotemedia convert-manifest`, durations in ms as floats."""
        native = {"threshold": params.get("threshold", 0.5),
                  "min_speech_ms": float(params.get("min_speech_duration_ms", 250)),
                  "min_silence_ms": float(params.get("min_silence_duration_ms", 100)),
                  "pad_ms": float(params.get("speech_pad_ms", 30))}
        return "VAD", native

    @classmethod
    def check_params(cls, params):
        """Validated upstream params plus VAD's, audio passed on. ValueError if neg_threshold
        exceeds threshold (both speech probabilities in 0..1)."""
        params, _ = cls.normalize_params(params)
        own = Node.check_params.__func__(cls, params)
        if own["neg_threshold"] is not None and own["neg_threshold"] > own["threshold"]:
            raise ValueError("param 'neg_threshold' must not exceed 'threshold'")
        _, native = cls.canonical(own)
        return {**own, **native, "pass_audio": True}

    def setup(self):
        """VAD.setup (loads the Silero model), then neg_threshold as the end-of-speech
        probability."""
        super().setup()
        if self.neg_threshold is not None:
            self._off = self.neg_threshold


@register_node
class SpeculativeVADGate(UpstreamNode):
    """Passes each audio block on unchanged: the upstream's gate never gets a VAD
    result in streaming mode, so it only forwards. Its params are camelCase only, as upstream
    (a snake_case key is named in a warning instead of being silently ignored); only
    lookbackMs sized a buffer nobody read, so none has an effect here. Events flow past (the
    upstream errors on them)."""

    node_type = "SpeculativeVADGate"
    description = "Upstream: forwards audio (its speculation never fires when streaming)."
    params = (
        Param("lookbackMs", int, 150, "lookback buffer (no effect)", min=0),
        Param("lookaheadMs", int, 50, "lookahead (no effect)", min=0),
        Param("sampleRate", int, 16000, "sample rate (no effect)", min=1),
        Param("vadThreshold", float, 0.5, "VAD threshold (no effect)", min=0.0, max=1.0),
        Param("minSpeechMs", int, 250, "(no effect)", min=0),
        Param("minSilenceMs", int, 100, "(no effect)", min=0),
        Param("padMs", int, 30, "(no effect)", min=0),
    )

    @classmethod
    def canonical(cls, params):
        """("PassThrough", {}): in streaming mode the gate only forwards."""
        return "PassThrough", {}

    def process(self, frame):
        """The block itself, unchanged (see the class docstring)."""
        return frame


@register_node
class AudioBufferAccumulatorNode(UpstreamNode):
    """Gathers an utterance's audio between a VAD's speech start and end.

    Speech start: the upstream's `is_speech_start: true` or our `{"type": "speech_start"}`;
    end likewise. Before a start, blocks from the last 500 ms of media time (at most 20) are
    kept and put in front of the utterance. On the end (or once max_utterance_duration_ms is
    reached, or at end of stream) the utterance is emitted as one block, unless it is shorter
    than min_utterance_duration_ms or its peak is below 0.02 (full scale 1). Durations count
    interleaved samples, as upstream."""

    node_type = "AudioBufferAccumulatorNode"
    description = "Upstream: collects utterance audio between VAD start and end events."
    accepts = frozenset({"numpy", "json"})
    retains_input = True
    param_aliases = {"minUtteranceDurationMs": "min_utterance_duration_ms",
                     "maxUtteranceDurationMs": "max_utterance_duration_ms"}
    params = (
        Param("min_utterance_duration_ms", int, 250, "shorter utterances are dropped", min=0),
        Param("max_utterance_duration_ms", int, 30000, "longer ones are cut and emitted",
              min=1),
    )

    def setup(self):
        """Empty pre-start blocks and utterance; not speaking."""
        self._clock = MediaClock()
        self._pending: list = []       # (pts, frame) before a start
        self._acc: list = []
        self._speaking = False

    def process(self, data):
        """Speech start/end events open and close the utterance; audio is kept (pre-start: the last
        500 ms, at most 20 blocks). Returns the utterance as one NumpyData (blocks concatenated
        along samples, the first block's pts and metadata) on an end or at the max duration,
        else None."""
        if data.kind == "json":
            value = data.value if isinstance(data.value, dict) else {}
            start = value.get("is_speech_start") is True or value.get("type") == "speech_start"
            end = value.get("is_speech_end") is True or value.get("type") == "speech_end"
            if start:
                self._speaking = True
                self._acc = [f for _, f in self._pending]
                self._pending = []
            elif end:
                self._pending = []
                if self._speaking:
                    return self._flush()
            return None
        pts = self._clock.pts(data, self.format.sample_rate)
        if not self._speaking:
            self._pending.append((pts, data))
            # Kept while its start is at most 500 ms (media time) before the newest audio.
            horizon = pts + data.samples - self._clock.rate // 2
            self._pending = [p for p in self._pending if p[0] >= horizon][-20:]
            return None
        self._acc.append(data)
        if self._duration_ms() >= self.max_utterance_duration_ms:
            out = self._flush()
            self._speaking = True
            return out
        return None

    def _duration_ms(self) -> int:
        n = sum(f.array.size for f in self._acc)
        return n * 1000 // (self._clock.rate or 1)

    def _flush(self):
        frames, self._acc = self._acc, []
        self._speaking = False
        if not frames or self._duration_ms_of(frames) < self.min_utterance_duration_ms:
            return None
        audio = np.concatenate([f.array for f in frames])
        if float(np.max(np.abs(unit_float(audio)))) < 0.02:
            return None
        first = frames[0]
        return NumpyData(audio, sample_rate=first.sample_rate or self._clock.rate,
                         pts=first.pts, seq=first.seq, metadata=first.metadata, owned=True)

    def _duration_ms_of(self, frames) -> int:
        return sum(f.array.size for f in frames) * 1000 // (self._clock.rate or 1)

    def on_control(self, event_):
        """flush and end_of_stream emit the open utterance (if long and loud enough); reset drops
        it."""
        if event_.event in ("flush", "end_of_stream") and self._speaking:
            out = self._flush()
            return [out] if out is not None else None
        if event_.event == "reset":
            self.setup()
        return None
