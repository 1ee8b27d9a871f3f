"""AudioEvidenceNode (the upstream's audio_evidence.rs): keeps the recent audio and cuts a clip
around each incident the other health nodes report.
"""

from __future__ import annotations

import base64

import numpy as np

from ...engine.data import JsonData
from ...engine.levels import finite_or_zero
from ...engine.node import Param, register_node
from .common import (UpstreamEventNode, event, unit_float, _EventClock, _kind)


_EVIDENCE_TYPES = frozenset({"timing.jitter_spike", "timing.clock_drift", "freeze", "drift",
                             "incident"})


@register_node
class AudioEvidenceNode(UpstreamEventNode):
    """Keeps the last buffer_duration_s of audio and cuts a clip around each alert
    (audio_evidence.rs): pre_alert_s before it and post_alert_s after, emitted as
    `{"event_type": "audio.evidence", "_schema": "audio_evidence_v1", "clip_id",
    "trigger_event", "start_offset_ms", "duration_ms", "sample_rate", "channels",
    "timestamp_us"}` once the post-alert audio has arrived (or at end of stream, shorter),
    with `audio_base64` (float32 little-endian, interleaved) and `audio_format: "f32le"` when
    emit_audio_data. Triggers: timing.jitter_spike, timing.clock_drift, freeze, drift,
    incident, is_clipping, is_sustained_silence, has_dead_channel, state dead_air/unhealthy.
    Sample counts are interleaved, as upstream. Clip ids count up (`clip_00000001`)."""

    node_type = "AudioEvidenceNode"
    description = "Upstream: audio clips around alert events."
    accepts = frozenset({"numpy", "json"})
    params = (
        Param("buffer_duration_s", int, 10, "audio kept for pre-alert clips", min=0),
        Param("pre_alert_s", int, 3, "seconds before the alert in a clip", min=0),
        Param("post_alert_s", int, 2, "seconds after the alert in a clip", min=0),
        Param("max_clips", int, 10, "clips kept at once", min=1),
        Param("emit_audio_data", bool, False, "include the clip's samples (base64 f32le)"),
    )

    def setup(self):
        """Empty ring of float32 interleaved audio (buffer_duration_s) and no pending clips;
        rate and channels from the input format (16000 Hz, 1 if unknown)."""
        self._clock = _EventClock()
        self._rate = self.format.sample_rate or 16000
        self._channels = self.format.channels or 1
        self._buffer: list[tuple[int, np.ndarray]] = []     # (timestamp_us, interleaved)
        self._buffered = 0
        self._pending: list[dict] = []
        self._stored = 0
        self._ids = 0

    def process(self, data):
        """Audio goes into the ring (NaN/Inf as 0.0) and into the pending clips; an alert
        event starts a clip with pre_alert_s of the ring. Returns the clips completed by this
        block (audio.evidence JsonData) or None."""
        now = self._clock.see(data, self.format.sample_rate)
        if data.kind == "numpy":
            # Evidence is audio someone will listen to: NaN/Inf kept as silence, not as NaN
            # that would sit in the buffer for buffer_duration_s and in every clip.
            array, _ = finite_or_zero(unit_float(data.array))
            flat = np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
            self._rate = self._clock.media.rate
            self._channels = data.channels
            self._buffer.append((now, flat))
            self._buffered += flat.size
            limit = self.buffer_duration_s * self._rate
            while self._buffer and self._buffered - self._buffer[0][1].size >= limit:
                self._buffered -= self._buffer.pop(0)[1].size
            for clip in self._pending:
                take = min(clip["remaining"], flat.size)
                if take:
                    clip["audio"].append(flat[:take])
                    clip["remaining"] -= take
        elif isinstance(data.value, dict):
            trigger = self._trigger(data.value)
            if trigger is not None:
                self._start_clip(trigger, now)
        done = [c for c in self._pending if c["remaining"] == 0]
        self._pending = [c for c in self._pending if c["remaining"] > 0]
        return [self._emit(c) for c in done] or None

    def _trigger(self, v: dict) -> str | None:
        kind = _kind(v)
        if kind in _EVIDENCE_TYPES:
            return kind
        for key, name in (("is_clipping", "clipping"), ("is_sustained_silence", "silence"),
                          ("has_dead_channel", "dead_channel")):
            if v.get(key) is True:
                return name
        state = v.get("state")
        return state if state in ("dead_air", "unhealthy") else None

    def _start_clip(self, trigger: str, now: int) -> None:
        if len(self._pending) + self._stored >= self.max_clips and self._stored:
            self._stored -= 1        # the oldest stored clip makes room
        want = self.pre_alert_s * self._rate
        pre, start_us, got = [], now, 0
        for ts, chunk in reversed(self._buffer):
            if got >= want:
                break
            part = chunk[-(want - got):] if chunk.size > want - got else chunk
            pre.append(part)
            got += part.size
            start_us = ts
        pre.reverse()
        self._ids += 1
        self._pending.append({"id": f"clip_{self._ids:08x}", "trigger": trigger,
                              "start_us": start_us, "audio": pre,
                              "remaining": self.post_alert_s * self._rate})

    def _emit(self, clip: dict) -> JsonData:
        audio = np.concatenate(clip["audio"]) if clip["audio"] else np.zeros(0, np.float32)
        value = {"event_type": "audio.evidence", "_schema": "audio_evidence_v1",
                 "clip_id": clip["id"], "trigger_event": clip["trigger"],
                 "start_offset_ms": -self.pre_alert_s * 1000,
                 "duration_ms": audio.size * 1000 // self._rate, "sample_rate": self._rate,
                 "channels": self._channels, "timestamp_us": clip["start_us"]}
        if self.emit_audio_data:
            from ...engine.serialization import record_encode
            record_encode(audio, "json")   # samples into a JSON event: a serialization
            value["audio_base64"] = base64.b64encode(audio.astype("<f4").tobytes()).decode()
            value["audio_format"] = "f32le"
        else:
            self._stored = min(self.max_clips, self._stored + 1)
        return event(value, None)

    def on_control(self, event_):
        """flush and end_of_stream emit the pending clips as they are (shorter than asked)."""
        if event_.event in ("flush", "end_of_stream") and self._pending:
            pending, self._pending = self._pending, []
            return [self._emit(c) for c in pending]
        return None


# -- the upstream stream-health tools' HealthEvent lines ---------------------------------------
