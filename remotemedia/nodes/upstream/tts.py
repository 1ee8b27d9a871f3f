"""The upstream's text-to-speech and CLI end nodes, under their names (MicInput, the other
CLI end, lives with the speech-to-text nodes in transcribe.py).

    KokoroTTSNode  -> Speak with the installed voice (Piper's, else espeak-ng's): no package
                      ships Kokoro's weights, which one warning says. speed, sample_rate (the
                      output rate, 24000 by default as Kokoro's) and skip_tokens take effect;
                      voice, lang_code, split_pattern and stream_chunks name Kokoro things and
                      have none (the pieces are Speak's sentences).
    TextInput      -> passes everything on (encoding is informational, as upstream)
    AudioOutput    -> passes everything on (sample_rate, channels, format only describe it)
    SpeakerOutput  -> passes everything on to the session's output, played by `--output
                      default` (or device:...), which converts nothing: the graph's rate is
                      the device's

Where we differ on purpose: the upstream's Kokoro node drops every param and returns only the
first chunk under `remotemedia run`; here the params above apply and the whole text is spoken.
A wrongly typed param is an error naming it (upstream, it silently resets the whole config of the
CLI nodes to defaults); an unknown one is a warning.
"""

from __future__ import annotations

from ...engine.data import TextData
from ...engine.node import Node, Param, register_node
from .. import tts_engines as engines
from ..speak import Speak, choose_engine
from .common import UpstreamNode, UpstreamPassThrough, device_params

KOKORO_SKIP_TOKENS = ("<|text_end|>", "<|audio_end|>", "<|im_end|>", "<|im_start|>")
_EVERYTHING = frozenset({"numpy", "text", "json", "binary"})


def _kokoro_note(voice: str | None) -> str:
    try:
        engine, chosen, _ = choose_engine(None, None)
        described = (f"Piper voice {engines.piper_model(chosen)[0].stem}"
                     if engine == engines.PIPER else
                     f"espeak-ng voice {engines.DEFAULT_ESPEAK_VOICE} (piper-tts is not "
                     f"installed: {engines.INSTALL_TTS})")
    except engines.EngineUnavailable as exc:
        described = f"no voice ({exc})"
    asked = f" '{voice}'" if voice else ""
    return (f"KokoroTTSNode: Kokoro's weights ship in no package; its voice{asked} is spoken "
            f"by the installed {described}")


@register_node
class KokoroTTSNode(UpstreamNode, Speak):
    """The upstream's Kokoro TTS, run by Speak with the installed voice (module docstring).
    Text or Json {"text"} in; float32 blocks at `sample_rate` Hz (24000 by default) out."""

    node_type = "KokoroTTSNode"
    description = "Upstream alias of Speak (the installed voice: Kokoro's weights ship nowhere)."
    alias_of = "Speak"
    params = (
        Param("lang_code", str, "a", "Kokoro's language code (no effect: the installed voice "
              "speaks)"),
        Param("voice", str, "af_heart", "a Kokoro voice (no effect: the installed voice "
              "speaks)"),
        Param("speed", float, 1.0, "speaking rate, 1.0 normal", min=0.25, max=4.0),
        Param("split_pattern", str, r"[.!?,;:\n]+", "Kokoro's splitting (no effect: Speak "
              "splits into sentences)"),
        Param("sample_rate", int, 24000, "output sample rate in Hz", min=8000, max=192000),
        Param("stream_chunks", bool, True, "(no effect: Speak always streams)"),
        Param("skip_tokens", list, list(KOKORO_SKIP_TOKENS), "strings removed before speaking"),
    )

    @classmethod
    def normalize_params(cls, params):
        """UpstreamNode's (unknown params as warnings) plus the one Kokoro warning."""
        params, notes = UpstreamNode.normalize_params.__func__(cls, params)
        voice = params.get("voice")
        return params, notes + [_kokoro_note(voice if isinstance(voice, str) else None)]

    @classmethod
    def check_params(cls, params):
        """Validated upstream params plus Speak's (default engine and voice, `rate` =
        sample_rate); ValueError names the first bad one or a missing engine."""
        params, _ = UpstreamNode.normalize_params.__func__(cls, params)
        own = Node.check_params.__func__(cls, params)
        if not all(isinstance(t, str) for t in own["skip_tokens"]):
            raise ValueError("param 'skip_tokens' must be a list of strings")
        Speak.check_config({"engine": None, "voice": None})
        return {**own, "rate": own["sample_rate"]}

    @classmethod
    def check_config(cls, config):
        """Nothing beyond check_params."""

    @classmethod
    def canonical(cls, params):
        """("Speak", {speed, rate}) for `remotemedia convert-manifest`."""
        return "Speak", {"speed": params.get("speed", 1.0),
                         "rate": params.get("sample_rate", 24000)}

    def engine_choice(self):
        """(None, None): the default engine and voice (the params name Kokoro's)."""
        return None, None

    def setup(self):
        """Speak's setup, saying the Kokoro warning once (it includes any fall-back)."""
        self.say(_kokoro_note(self.voice))
        super().setup()

    def fallback_note(self, note):
        """Folded into the Kokoro warning: nothing more to say."""

    def process(self, data):
        """Text cleaned as Kokoro does (skip tokens removed, backticks to apostrophes, tabs to
        spaces), then Speak.process."""
        if type(data) is TextData:
            text = data.text
            for token in self.skip_tokens:
                text = text.replace(token, "")
            data = TextData(text.replace("`", "'").replace("\t", " "), pts=data.pts,
                            metadata=data.metadata)
        return super().process(data)


class _UpstreamPassThrough(UpstreamPassThrough):
    """Passes every input on unchanged."""

    accepts = _EVERYTHING


@register_node
class TextInput(_UpstreamPassThrough):
    """The upstream CLI's text input: passes everything on (the text comes from `--input
    text:...`)."""

    node_type = "TextInput"
    description = "Upstream: passes text (and anything else) on; input with text:STRING."
    params = (Param("encoding", str, "utf-8", "informational, as upstream"),)


@register_node
class AudioOutput(_UpstreamPassThrough):
    """The upstream CLI's audio output: passes everything on; its params only describe it."""

    node_type = "AudioOutput"
    description = "Upstream: passes audio on to the session's output."
    params = (
        Param("sample_rate", int, 24000, "informational, as upstream", min=1),
        Param("channels", int, 1, "informational, as upstream", min=1),
        Param("format", str, None, "informational, as upstream"),
    )


@register_node
class SpeakerOutput(_UpstreamPassThrough):
    """The upstream CLI's speaker: passes everything on to the session's output
    (`--output default`)."""

    node_type = "SpeakerOutput"
    description = "Upstream: the session's output (the speaker is --output default)."
    params = device_params(16000, "output")
