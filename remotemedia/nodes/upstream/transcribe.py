"""The upstream's speech-to-text nodes under their names, run by Transcribe and the transcript
formatting here.

    RustWhisperNode  -> Transcribe   model_source/model_path, language, n_threads -> threads
                                     (at most this machine's cores); translate and
                                     accumulate_chunks are accepted and, as upstream, change
                                     nothing
    HFWhisperNode    -> Transcribe   model_id, language, chunk_length_s -> max_utterance_s;
                                     device, torch_dtype and the streaming buffer params are
                                     accepted and change nothing (the model runs on the CPU,
                                     int8)
    WhisperNode      -> Transcribe   any of the above
    AutoResampleNode -> Resample     target_rate (16000), quality low|medium|high (soxr
                                     LQ/MQ/HQ); the input rate is the stream's (it never
                                     existed upstream; this is what its comments describe)
    SrtOutput                        transcripts to SubRip text, as the upstream's core node

Models: the upstream names Whisper models it downloads from a hub (`base.en`,
`large-v3-turbo`, `openai/whisper-large-v3-turbo`, ...). Here a name that is an installed model
package or a CTranslate2 directory is used as Transcribe's `model`; any other name runs the
packaged Whisper tiny.en instead, with one warning (on `validate`, and once on stderr when
the run starts) naming what to install for the model asked for. tiny.en itself (`tiny.en`,
`tiny_en`, the quantized tiny.en names) needs no warning. An unknown name is an error, as
upstream (`Unknown model source`).

Where we differ on purpose: the output is Transcribe's (one transcript event per utterance,
times in media time, words included), not the upstream's one `{segments, text}` per 250 ms
input chunk with times restarting at 0; HFWhisperNode's results are utterances, not one event
per word, and SrtOutput cuts them into cues of at most two lines timed by their words.
"""

from __future__ import annotations

import os

from ...engine.data import TextData
from ...engine.node import Node, Param, register_node
from ...engine.numbers import as_float
from ...engine.subtitles import cues, is_final_transcript, srt_cue, wrap
from ..transcribe import MAX_WINDOW_S, Transcribe, say_once
from .common import UpstreamNode, UpstreamPassThrough, device_params
from .speech import FastResampleNode
from ..whisper import NeedsDownload, install_advice, resolve_model

#: RustWhisperNode's model_source strings (rwhisper's table) -> the model each stands for
SOURCES = {
    "quantized_tiny": "tiny", "tiny_q": "tiny",
    "quantized_tiny_en": "tiny.en", "tiny.en_q": "tiny.en", "tiny_en_q": "tiny.en",
    "tiny": "tiny", "tiny.en": "tiny.en", "tiny_en": "tiny.en",
    "base": "base", "base.en": "base.en", "base_en": "base.en",
    "small": "small", "small.en": "small.en", "small_en": "small.en",
    "medium": "medium", "medium.en": "medium.en", "medium_en": "medium.en",
    "large": "large-v2", "large-v2": "large-v2",
    "large-v3-turbo": "large-v3-turbo", "large_v3_turbo": "large-v3-turbo",
}
PACKAGED = "tiny.en"
HOUR_S = 3600.0


def choose_model(name: str | None, key: str) -> tuple[str | None, str | None]:
    """(Transcribe's `model`, a warning or None) for an upstream model name given as `key`.
    ValueError for a name that is neither a known Whisper model nor installed."""
    if not name:
        return None, None
    whisper_name = SOURCES.get(name)
    if whisper_name is None and name.startswith(("openai/whisper-", "distil-whisper/")):
        whisper_name = name.split("/", 1)[1].removeprefix("whisper-")
    if whisper_name == PACKAGED:
        return None, None
    try:
        resolve_model(name)   # ModelNotInstalled (a ValueError) when it is there but broken
        return name, None     # an installed package or a CTranslate2 directory
    except NeedsDownload:
        pass
    if whisper_name is None and key == "model_source":
        raise ValueError(f"Unknown model source: {name}. Valid options: "
                         f"{', '.join(SOURCES)}, or an installed model package or directory")
    return None, (f"{key} '{name}' is not installed here; running the packaged Whisper "
                  f"{PACKAGED} instead. For {name}: {install_advice(name)}")


class _WhisperAlias(UpstreamNode, Transcribe):
    """Shared by the upstream's Whisper nodes: their params mapped onto Transcribe's."""

    alias_of = "Transcribe"
    accepts = Transcribe.accepts
    #: the upstream param that names the model, in the order looked at
    model_keys: tuple[str, ...] = ()

    @classmethod
    def native(cls, own: dict) -> tuple[dict, str | None]:
        """Transcribe's params for the validated upstream ones, and the substitution warning."""
        native: dict = {}
        note = None
        for key in cls.model_keys:
            if own.get(key):
                native["model"], note = choose_model(own[key], key)
                break
        else:
            default = next((p.default for p in cls.params if p.name in cls.model_keys
                            and p.default), None)
            if default:
                native["model"], note = choose_model(default, cls.model_keys[0])
        if native.get("model") is None:
            native.pop("model", None)
        if own.get("language"):
            native["language"] = own["language"]
        if own.get("n_threads"):
            native["threads"] = min(own["n_threads"], os.cpu_count() or 1)
        if own.get("chunk_length_s"):
            native["max_utterance_s"] = float(min(max(own["chunk_length_s"], 2),
                                                  MAX_WINDOW_S))
        return native, note

    @classmethod
    def normalize_params(cls, params):
        """UpstreamNode's (unknown params as warnings), plus the model substitution warning."""
        params, notes = super().normalize_params(params)
        try:
            own = Node.check_params.__func__(cls, params)
            _, note = cls.native(own)
        except ValueError:
            return params, notes      # check_params names the problem
        return params, notes + ([note] if note else [])

    @classmethod
    def check_params(cls, params):
        """The upstream params validated, plus Transcribe's (defaults filled in) and the
        substitution warning as `substitution`. ValueError names the first problem."""
        params, _ = cls.normalize_params(params)
        own = Node.check_params.__func__(cls, params)
        native, note = cls.native(own)
        return {**own, **Transcribe.check_params(native), "substitution": note}

    @classmethod
    def check_config(cls, config):
        """Transcribe's checks run on the mapped params (check_params)."""

    @classmethod
    def canonical(cls, params: dict) -> tuple[str, dict]:
        """("Transcribe", the mapped params) for `remotemedia convert-manifest`."""
        own = Node.check_params.__func__(cls, cls.normalize_params(params)[0])
        return "Transcribe", cls.native(own)[0]

    def setup(self):
        """Says the substitution once (stderr), then Transcribe.setup."""
        if self.substitution:
            say_once(f"node '{self.node_id}': {self.substitution}")
        super().setup()


@register_node
class RustWhisperNode(_WhisperAlias):
    """The upstream's rwhisper node, run by Transcribe (module docstring)."""

    node_type = "RustWhisperNode"
    description = "Upstream alias of Transcribe: model_source, language, n_threads."
    model_keys = ("model_source", "model_path")
    params = (
        Param("model_source", str, None, "Whisper model name (tiny.en, base.en, "
              "large-v3-turbo, ...), an installed model package or a directory"),
        Param("model_path", str, None, "read as model_source, as upstream"),
        Param("language", str, None, "language code"),
        Param("n_threads", int, None, "CPU threads (at most the machine's cores)", min=1),
        Param("translate", bool, False, "no effect (tiny.en only transcribes English)"),
        Param("accumulate_chunks", bool, None, "no effect (the upstream never read it; "
              "utterances come from speech)"),
    )

    @classmethod
    def check_params(cls, params):
        """As _WhisperAlias; ValueError when neither model_source nor model_path is given."""
        checked = super().check_params(params)
        if not (checked["model_source"] or checked["model_path"]):
            raise ValueError("RustWhisperNode needs 'model_source' (or 'model_path')")
        return checked


@register_node
class HFWhisperNode(_WhisperAlias):
    """The upstream's Hugging Face Whisper node, run by Transcribe (module docstring)."""

    node_type = "HFWhisperNode"
    description = "Upstream alias of Transcribe: model_id, language, chunk_length_s."
    model_keys = ("model_id",)
    params = (
        Param("model_id", str, "openai/whisper-large-v3-turbo", "Hugging Face model id, an "
              "installed model package or a directory"),
        Param("language", str, None, "language code"),
        Param("device", str, None, "no effect (CPU)"),
        Param("torch_dtype", str, None, "no effect (int8)"),
        Param("chunk_length_s", float, 30.0, "longest piece transcribed at once (s; at most "
              "30 is used)", min=0.0, max=HOUR_S, range_reason="up to an hour"),
        Param("initial_buffer_duration_s", float, 3.0, "no effect (s)", min=0.0, max=HOUR_S,
              range_reason="up to an hour"),
        Param("max_buffer_duration_s", float, 15.0, "no effect (s)", min=0.0, max=HOUR_S,
              range_reason="up to an hour"),
        Param("buffer_growth_factor", float, 1.5, "no effect", min=0.0, max=100.0),
        Param("overlap_duration_s", float, 1.0, "no effect (s)", min=0.0, max=HOUR_S,
              range_reason="up to an hour"),
    )


@register_node
class WhisperNode(_WhisperAlias):
    """A name the upstream lists but never registered, run by Transcribe."""

    node_type = "WhisperNode"
    description = "Upstream alias of Transcribe: model_source, model_id or model."
    model_keys = ("model", "model_source", "model_id")
    params = (
        Param("model", str, None, "Whisper model name, an installed package or a directory"),
        Param("model_source", str, None, "as RustWhisperNode's"),
        Param("model_id", str, None, "as HFWhisperNode's"),
        Param("language", str, None, "language code"),
        Param("n_threads", int, None, "CPU threads (at most the machine's cores)", min=1),
    )


@register_node
class AutoResampleNode(FastResampleNode):
    """The resampler transcribe-srt.yaml names (never implemented upstream): any input rate to
    target_rate, run by Resample (soxr), quality low|medium|high."""

    node_type = "AutoResampleNode"
    description = "Upstream (never built there): resample to target_rate; Resample (soxr)."
    alias_of = "Resample"
    param_aliases = {"targetRate": "target_rate"}
    params = (
        Param("target_rate", int, 16000, "output rate in Hz", min=1),
        Param("quality", str, "medium", "low, medium or high (soxr LQ, MQ, HQ)",
              choices=("low", "medium", "high")),
    )

    @classmethod
    def normalize_params(cls, params):
        """UpstreamNode's, with the quality's case ignored."""
        params, notes = UpstreamNode.normalize_params.__func__(cls, params)
        if isinstance(params.get("quality"), str):
            params["quality"] = params["quality"].lower()
        return params, notes

    @classmethod
    def check_params(cls, params):
        """Validated params plus FastResampleNode's names (quality Low/Medium/High)."""
        params, _ = cls.normalize_params(params)
        own = Node.check_params.__func__(cls, params)
        return {"target_rate": own["target_rate"], "source_rate": None, "channels": None,
                "quality": own["quality"].capitalize(), "rate": own["target_rate"],
                "input_rate": None}

    @classmethod
    def canonical(cls, params):
        """("Resample", {rate, quality}) for `remotemedia convert-manifest`."""
        quality = str(params.get("quality", "medium")).lower()
        return "Resample", {"rate": params.get("target_rate", 16000),
                            "quality": {"low": "LQ", "medium": "MQ", "high": "HQ"}[quality]}


@register_node
class SrtOutput(UpstreamNode):
    """Transcripts as SubRip text, as the upstream's core SrtOutput (its rules for cues).

    Per input, one Text holding every cue it makes (metadata `format: srt`, so a `file:X.srt`
    output writes it as it is), numbered from 1 across the run when include_numbers, lines
    wrapped at max_line_length UTF-8 bytes (0: never):
    - a final transcript event (Transcribe): its cues (at most two lines each when wrapping,
      timed by their words; one cue per transcript otherwise); the event itself passes on
      after the Text, so events and other transcript outputs still see it. A partial one only
      passes on;
    - Json with a `word` (the upstream's word events): one cue from `start`/`end`;
    - Json with a `segments` list: one cue per segment whose `text` is not blank;
    - Text: one cue 0-10 s (nothing if blank); Transcribe's own Text (metadata
      `type: transcript`) is skipped, its event makes the cue.
    Where there is nothing to write, nothing is emitted (the upstream emits an empty Text);
    other Json passes on unchanged."""

    node_type = "SrtOutput"
    description = "Upstream: transcripts to SubRip (SRT) text, numbered and wrapped."
    accepts = frozenset({"json", "text"})
    emits_text = True
    params = (
        Param("include_numbers", bool, True, "number the cues"),
        Param("max_line_length", int, 0, "wrap lines at this many UTF-8 bytes (0: never)",
              min=0),
    )

    def output_format(self, fmt):
        """Text only: no audio leaves."""
        return fmt.replace(carries_audio=False)

    def setup(self):
        """The cue counter starts at 1."""
        self._n = 0

    def process(self, data):
        """The SRT text for `data` (see the class docstring) and, for events, the event."""
        if data.kind == "text":
            if data.metadata.get("type") == "transcript" or not data.text.strip():
                return None
            return self._text([(0.0, 10.0, wrap(data.text.strip(), self.max_line_length))],
                              data.pts)
        value = data.value
        if not isinstance(value, dict):
            return data
        if value.get("type") == "transcript":
            if not is_final_transcript(data):
                return data
            made = cues(value, self.max_line_length)
            return [self._text(made, data.pts), data] if made else data
        if "word" in value:
            word = str(value.get("word", "")).strip()
            return self._text([(_f(value.get("start")), _f(value.get("end")), word)],
                              data.pts) if word else None
        if isinstance(value.get("segments"), list):
            made = [(_f(s.get("start")), _f(s.get("end")), str(s.get("text", "")).strip())
                    for s in value["segments"] if isinstance(s, dict)]
            made = [(a, b, wrap(t, self.max_line_length)) for a, b, t in made if t]
            return self._text(made, data.pts) if made else None
        return data

    def _text(self, made, pts):
        parts = []
        for start, end, text in made:
            self._n += 1
            parts.append(srt_cue(self._n if self.include_numbers else None, start, end, text))
        return TextData("".join(parts), pts=pts, metadata={"format": "srt",
                                                           "node": self.node_id})


def _f(value) -> float:
    number = as_float(value)            # a huge int is no float (OverflowError before)
    return 0.0 if number is None else number




@register_node
class MicInput(UpstreamPassThrough):
    """The upstream CLI's microphone node. Here the microphone is the run's input (`--input
    default` or `device:NAME`), so this node passes the input's audio on unchanged (the same
    view); its params are accepted and change nothing (the input SPEC picks the device, the
    manifest's audio block its rate). In transcribe-srt-mic-input.yaml it has no edges, so,
    as upstream, its audio goes to the output while Whisper gets the input directly."""

    node_type = "MicInput"
    description = "Upstream: the microphone; here the run's input passed on unchanged."
    alias_of = "PassThrough"
    params = device_params(16000, "input") + (
        Param("chunk_size", int, 4000, "no effect (the manifest's block size)", min=0),
        Param("buffer_ms", int, 20, "no effect", min=0),
    )

