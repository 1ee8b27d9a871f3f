"""The upstream's remaining non-ML nodes: channel splitting by speaker, and sentence collecting.

    AudioChannelSplitterNode   per-speaker audio from diarization segments
    TextCollectorNode          text fragments -> sentences

Behaviour as the upstream's nodes of those names. Where we differ on purpose: the text left in the
collector at end of stream is released (when yield_partial_on_end), where the upstream drops it.
"""

from __future__ import annotations

import numpy as np

from ...engine.data import TextData
from ...engine.node import Param, register_node
from .common import UpstreamNode, unit_float


@register_node
class AudioChannelSplitterNode(UpstreamNode):
    """Splits audio by speaker using diarization segments.

    A Json input with a `segments` list (`{"start", "end", "speaker"}` in seconds; speaker "0",
    "1", ...) replaces the stored segments; `num_speakers` and `time_offset` update when given.
    It emits nothing. Audio before any segments passes on unchanged; after, it is downmixed to
    mono and, per speaker k < min(num_speakers, max_speakers), the samples inside that
    speaker's segments (shifted by time_offset, clamped to the block) are kept and the rest
    zeroed. output_mode "streams": one mono block per speaker with any |sample| > 1e-4,
    metadata stream_id "{stream_id_prefix}_{k}"; "channels": one block with a channel per
    speaker."""

    node_type = "AudioChannelSplitterNode"
    description = "Upstream: per-speaker audio from diarization segments."
    accepts = frozenset({"numpy", "json"})
    param_aliases = {"outputMode": "output_mode", "maxSpeakers": "max_speakers",
                     "streamIdPrefix": "stream_id_prefix", "sampleRate": "sample_rate"}
    params = (
        Param("output_mode", str, "streams", "streams (one block per speaker) or channels",
              choices=("streams", "channels")),
        Param("max_speakers", int, 8, "at most this many speakers", min=1),
        Param("stream_id_prefix", str, "speaker", "stream_id prefix in streams mode"),
        Param("sample_rate", int, 16000, "expected rate (a mismatch is only a warning "
              "upstream; no effect here)", min=1),
    )

    def output_format(self, fmt):
        """One channel per block in "streams" mode; a channel count not known before the segments
        in "channels" mode."""
        if self.output_mode == "channels":
            return fmt.replace(channels=None)
        return fmt.replace(channels=1)

    def setup(self):
        """No segments, speaker count or time offset (seconds) yet."""
        self._segments: list[tuple[float, float, int]] = []
        self._num_speakers: int | None = None
        self._offset = 0.0

    def process(self, data):
        """A segments event updates the stored segments (emits nothing); audio comes out split by
        speaker as the class docstring says: float32, (samples,) per speaker or (samples,
        speakers). Audio before any segments passes on unchanged."""
        if data.kind == "json":
            v = data.value
            if isinstance(v, dict) and isinstance(v.get("segments"), list):
                segs = []
                for s in v["segments"]:
                    try:
                        segs.append((float(s["start"]), float(s["end"]), int(s["speaker"])))
                    except (KeyError, TypeError, ValueError):
                        continue        # an invalid entry is skipped, as upstream
                self._segments = segs
                if isinstance(v.get("num_speakers"), int):
                    self._num_speakers = v["num_speakers"]
                if isinstance(v.get("time_offset"), (int, float)):
                    self._offset = float(v["time_offset"])
            return None
        if not self._segments:
            return data
        array = unit_float(data.array)
        mono = array.mean(axis=1) if array.ndim == 2 else array
        n = mono.shape[0]
        rate = data.sample_rate or self.format.sample_rate or self.sample_rate
        speakers = self._num_speakers
        if speakers is None:
            speakers = max(s for _, _, s in self._segments) + 1
        count = min(speakers, self.max_speakers)
        tracks = np.zeros((n, count), dtype=np.float32)
        for start, end, k in self._segments:
            if k >= count:
                continue
            a = max(0, min(n, int(round((start - self._offset) * rate))))
            b = max(0, min(n, int(round((end - self._offset) * rate))))
            if b > a:
                tracks[a:b, k] = mono[a:b]
        if self.output_mode == "channels":
            return data.with_array(tracks)
        prefix = self.stream_id_prefix
        return [data.with_array(np.ascontiguousarray(tracks[:, k]),
                                metadata={"stream_id": f"{prefix}_{k}"})
                for k in range(count) if np.any(np.abs(tracks[:, k]) > 1e-4)] or None


_MARKERS = ("<|text_end|>", "<|audio_end|>")


@register_node
class TextCollectorNode(UpstreamNode):
    """Collects streamed text into sentences.

    Boundaries are `. ! ? ; newline`, or every character of split_pattern except `[ ] + \\ n r
    t` (so "[.!?]+" means . ! ?). A boundary and the boundary characters after it end a
    sentence; a sentence (leading whitespace trimmed) shorter than min_sentence_length bytes is
    dropped; the rest waits for more. `<|text_end|>` / `<|audio_end|>` release the remainder
    (when yield_partial_on_end) and then the marker itself. Text with a channel header
    (\\x00, length, channel) for a channel other than "tts" passes unchanged; other data flows
    past."""

    node_type = "TextCollectorNode"
    description = "Upstream: text fragments -> sentences."
    accepts = frozenset({"text"})
    param_aliases = {"splitPattern": "split_pattern", "minSentenceLength": "min_sentence_length",
                     "yieldPartialOnEnd": "yield_partial_on_end"}
    params = (
        Param("split_pattern", str, None, "boundary characters (regex-like class accepted)"),
        Param("min_sentence_length", int, 3, "shorter sentences (UTF-8 bytes) are dropped",
              min=0),
        Param("yield_partial_on_end", bool, True, "release the remainder at an end marker"),
    )

    def setup(self):
        """The sentence boundary characters, from split_pattern or the default `. ! ? ; newline`;
        an empty buffer."""
        if self.split_pattern is None:
            self._bounds = frozenset(".!?;\n")
        else:
            self._bounds = frozenset(c for c in self.split_pattern if c not in "[]+\\nrt")
        self._buffer = ""

    def process(self, data):
        """The complete sentences in this text (TextData each), the markers after any released
        remainder, or None; the rest waits."""
        text = data.text
        if text.startswith("\x00") and len(text) >= 2:
            length = ord(text[1])
            channel = text[2:2 + length]
            if channel != "tts":
                return data
            text = text[2 + length:]
        markers = [m for m in _MARKERS if m in text]
        for m in _MARKERS:
            text = text.replace(m, "")
        self._buffer += text
        out = self._sentences()
        if markers:
            out += self._release()
            out += [TextData(m) for m in markers]
        return out or None

    def _sentences(self) -> list:
        out, buf, i, start = [], self._buffer, 0, 0
        while i < len(buf):
            if buf[i] in self._bounds:
                j = i + 1
                while j < len(buf) and buf[j] in self._bounds:
                    j += 1
                piece = buf[start:j].lstrip()
                if len(piece.encode()) >= self.min_sentence_length:
                    out.append(TextData(piece))
                start = i = j
            else:
                i += 1
        self._buffer = buf[start:]
        return out

    def _release(self) -> list:
        rest, self._buffer = self._buffer.strip(), ""
        return [TextData(rest)] if rest and self.yield_partial_on_end else []

    def on_control(self, event_):
        """flush and end_of_stream release the remainder as one TextData when
        yield_partial_on_end."""
        if event_.event in ("flush", "end_of_stream"):
            return self._release() or None
        return None
