"""The upstream's stream-health node family, under its names (UPSTREAM.md Part B §2.1-2.11).

    AudioLevelNode, SilenceDetectorNode, ClippingDetectorNode, ChannelBalanceNode   analyzers:
        one event per audio block, judged whole (the upstream's chunks are 4000 samples);
        levels through the shared measuring code of nodes/analysis.py (rms_and_peak, to_dbfs),
        the same as LevelMeter, ClippingDetector and SilenceDetector use
    SpeechPresenceNode, ConversationFlowNode, SessionHealthNode                   speech/session
    TimingDriftNode, HealthEmitterNode                                             timing
    EventCorrelatorNode, AudioEvidenceNode                                         incidents

Event shapes, params and firing conditions are the upstream's; the deliberate differences
(media time and the run's arrival clock instead of the wall clock, no null outputs, flush at
end of stream, unknown params as warnings, each event a separate output instead of a JSON
array) are listed in nodes/upstream_common.py. `health_events()` converts what these nodes
emit into the upstream stream-health tools' canonical `HealthEvent` lines (§5).
"""

from __future__ import annotations

import base64
import math
from collections import deque
from datetime import datetime, timezone

import numpy as np

from ..engine.data import JsonData
from ..engine.levels import finite_or_zero
from ..engine.node import AudioFormat, Param, register_node
from .analysis import rms_and_peak, to_dbfs
from .upstream_common import (DriftMetrics, MediaClock, UpstreamNode, arrival_us, event,
                              event_time_us, pop_std, stream_id, unit_float)

class _Analyzer(UpstreamNode):
    """An analyzer: audio in, one event out per block; other data flows past untouched (the
    upstream returns it unchanged). The audio itself is not passed on."""

    def output_format(self, fmt: AudioFormat) -> AudioFormat:
        return fmt.replace(carries_audio=False)

    def setup(self):
        self._clock = MediaClock()

    def _common(self, frame, pts: int) -> dict:
        return {"stream_id": stream_id(frame), "timestamp_us": self._clock.us(pts), "pts": pts}

    def on_control(self, event_):
        if event_.event in ("reset", "discontinuity"):
            self.setup()
        return None


def _health(value: float, low: float, high: float) -> float:
    if value <= low:
        return 0.0
    if value >= high:
        return 1.0
    return min(1.0, max(0.0, (value - low) / (high - low)))


# -- analyzers -------------------------------------------------------------------------------------

@register_node
class AudioLevelNode(_Analyzer):
    """RMS and peak of each block, all channels pooled (§2.1, audio_level.rs).

    Emits `{"_schema": "audio_level_event", "rms_db", "peak_db", "is_silence",
    "is_low_volume", "health", "stream_id", "timestamp_us", "pts"}` per audio block:
    is_silence = rms_db <= silence_threshold_db; is_low_volume = not silent and
    rms_db <= low_volume_threshold_db; health ramps 0..1 between the two thresholds."""

    node_type = "AudioLevelNode"
    description = "Upstream: RMS/peak level per block; flags silence and low volume."
    params = (
        Param("low_volume_threshold_db", float, -20.0, "RMS (dBFS) at or below which a block "
              "is low volume", min=-120.0, max=0.0),
        Param("silence_threshold_db", float, -60.0, "RMS (dBFS) at or below which it is "
              "silence", min=-120.0, max=0.0),
    )

    def process(self, frame):
        """One audio_level_event (JsonData) for this block; the audio is not passed on."""
        pts = self._clock.pts(frame, self.format.sample_rate)
        rms, peak = rms_and_peak(frame.array)
        rms_db, peak_db = to_dbfs(rms), to_dbfs(peak)
        silent = rms_db <= self.silence_threshold_db
        low = not silent and rms_db <= self.low_volume_threshold_db
        return event({"_schema": "audio_level_event", "rms_db": rms_db, "peak_db": peak_db,
                      "is_silence": silent, "is_low_volume": low,
                      "health": _health(rms_db, self.silence_threshold_db,
                                        self.low_volume_threshold_db),
                      **self._common(frame, pts)}, pts)


@register_node
class SilenceDetectorNode(_Analyzer):
    """Sustained silence and intermittent dropouts, judged per block (§2.2, silence_detector.rs).

    A block is silent when its RMS is at or below silence_threshold_db. Consecutive silent
    blocks add up to silence_duration_ms (interleaved samples at the first block's rate, as
    upstream: stereo counts double). Each change into silence is a transition kept for
    dropout_window_ms of media time (pruned when a transition happens); dropout_count counts
    them, and has_intermittent_dropouts = dropout_count >= dropout_count_threshold.
    Emits `{"_schema": "silence_event", "is_silent", "rms_db", "silence_duration_ms",
    "is_sustained_silence", "dropout_count", "has_intermittent_dropouts", "health", ...}`."""

    node_type = "SilenceDetectorNode"
    description = "Upstream: sustained silence and intermittent dropouts per block."
    params = (
        Param("silence_threshold_db", float, -50.0, "block RMS (dBFS) at or below which it is "
              "silent", min=-120.0, max=0.0),
        Param("sustained_silence_ms", float, 500.0, "silence this long is sustained", min=0.0, max=3_600_000.0),
        Param("dropout_count_threshold", int, 3, "this many drops into silence within the "
              "window are intermittent dropouts", min=0),
        Param("dropout_window_ms", float, 5000.0, "window for counting drops into silence", min=0.0, max=3_600_000.0),
    )

    def setup(self):
        """Resets the silence run (samples) and the transition history kept for dropout counting."""
        super().setup()
        self._rate = None
        self._silence_samples = 0
        self._was_silent = False
        self._transitions: list[tuple[int, bool]] = []

    def process(self, frame):
        """One silence_event (JsonData) for this block. Keeps the silent run in interleaved
        samples and the silence transitions of the last dropout_window_ms of media time."""
        pts = self._clock.pts(frame, self.format.sample_rate)
        if self._rate is None:
            self._rate = self._clock.rate
        array = frame.array
        rms, _ = rms_and_peak(array)
        rms_db = to_dbfs(rms)
        silent = rms_db <= self.silence_threshold_db
        self._silence_samples = self._silence_samples + array.size if silent else 0
        duration_ms = self._silence_samples * 1000.0 / self._rate
        sustained = duration_ms >= self.sustained_silence_ms
        now = self._clock.us(pts)
        if silent != self._was_silent:
            self._transitions.append((now, silent))
            window = self.dropout_window_ms * 1000.0
            self._transitions = [t for t in self._transitions if now - t[0] < window]
            self._was_silent = silent
        count = sum(1 for _, s in self._transitions if s)
        if not silent:
            health = 1.0
        elif sustained or self.sustained_silence_ms <= 0:
            health = 0.0
        else:
            health = 1.0 - duration_ms / self.sustained_silence_ms
        return event({"_schema": "silence_event", "is_silent": silent, "rms_db": rms_db,
                      "silence_duration_ms": duration_ms, "is_sustained_silence": sustained,
                      "dropout_count": count,
                      "has_intermittent_dropouts": count >= self.dropout_count_threshold,
                      "health": health, **self._common(frame, pts)}, pts)


@register_node
class ClippingDetectorNode(_Analyzer):
    """Saturated samples and crest factor per block (§2.3, clipping_detector.rs).

    saturation_ratio is a percentage: 100 x samples with |x| >= saturation_threshold / all
    (interleaved) samples. crest_factor_db = 20 log10(peak / rms); 20 for digital silence, 0
    for an empty block. is_clipping = saturation_ratio >= saturation_ratio_threshold or
    crest_factor_db <= crest_factor_threshold_db. Emits `{"_schema": "clipping_event",
    "saturation_ratio", "crest_factor_db", "is_clipping", "health", ...}`."""

    node_type = "ClippingDetectorNode"
    description = "Upstream: saturation ratio (%) and crest factor per block."
    params = (
        Param("saturation_threshold", float, 0.99, "|sample| at or above this (full scale 1.0) "
              "is saturated", min=0.0, max=1.0),
        Param("saturation_ratio_threshold", float, 1.0, "percent of saturated samples that is "
              "clipping", min=0.0, max=100.0),
        Param("crest_factor_threshold_db", float, 3.0, "a crest factor at or below this is "
              "clipping (a squashed waveform)", min=0.0, max=60.0),
    )

    def process(self, frame):
        """One clipping_event (JsonData) for this block: saturation_ratio in percent of
        interleaved samples at or beyond +-saturation_threshold (full scale 1.0) and the crest
        factor 20*log10(peak/rms) in dB (20.0 for a silent block, as upstream). Keeps nothing."""
        pts = self._clock.pts(frame, self.format.sample_rate)
        array = frame.array
        n = array.size
        rms, peak = rms_and_peak(array)
        if n == 0:
            ratio, crest = 0.0, 0.0
        else:
            unit = unit_float(array)
            thr = self.saturation_threshold
            saturated = int(np.count_nonzero(unit >= thr)) + int(np.count_nonzero(unit <= -thr))
            ratio = 100.0 * saturated / n
            crest = 20.0 if rms <= 0.0 else 20.0 * math.log10(peak / rms)
        limit = self.saturation_ratio_threshold
        clipping = ratio >= limit or crest <= self.crest_factor_threshold_db
        health = max(0.0, 1.0 - min(1.0, ratio / limit)) if limit > 0 else (
            0.0 if ratio > 0 else 1.0)
        return event({"_schema": "clipping_event", "saturation_ratio": ratio,
                      "crest_factor_db": crest, "is_clipping": clipping, "health": health,
                      **self._common(frame, pts)}, pts)


@register_node
class ChannelBalanceNode(_Analyzer):
    """Left/right balance and dead channels of stereo blocks (§2.4, channel_balance.rs).

    Anything but two channels gives the fixed all-well event. For stereo: imbalance_db =
    left_rms_db - right_rms_db; a channel at or below dead_channel_threshold_db is dead;
    has_dead_channel when exactly one is; is_imbalanced = dead channel or |imbalance_db| >=
    imbalance_threshold_db. balance_ratio (left/right RMS) is null where it would be infinite."""

    node_type = "ChannelBalanceNode"
    description = "Upstream: stereo balance and dead channel per block."
    params = (
        Param("imbalance_threshold_db", float, 10.0, "|left - right| (dB) that is imbalanced", min=0.0, max=120.0),
        Param("dead_channel_threshold_db", float, -60.0, "channel RMS (dBFS) at or below which "
              "it is dead", min=-120.0, max=0.0),
    )

    def process(self, frame):
        """One channel_balance_event (JsonData) for this block. Only (samples, 2) blocks are
        measured (RMS per side in dBFS, imbalance in dB); any other shape gets the upstream's
        neutral event (balanced, health 1.0). Keeps nothing."""
        pts = self._clock.pts(frame, self.format.sample_rate)
        array = frame.array
        common = self._common(frame, pts)
        if array.ndim != 2 or array.shape[1] != 2:
            return event({"_schema": "channel_balance_event", "left_rms_db": 0.0,
                          "right_rms_db": 0.0, "balance_ratio": 1.0, "imbalance_db": 0.0,
                          "is_imbalanced": False, "has_dead_channel": False,
                          "dead_channel": "none", "health": 1.0, **common}, pts)
        left, _ = rms_and_peak(array[:, 0])
        right, _ = rms_and_peak(array[:, 1])
        left_db, right_db = to_dbfs(left), to_dbfs(right)
        if right > 0:
            ratio = left / right
        else:
            ratio = math.inf if left > 0 else 1.0
        imbalance = left_db - right_db
        dead_thr = self.dead_channel_threshold_db
        left_dead, right_dead = left_db <= dead_thr, right_db <= dead_thr
        dead = left_dead != right_dead
        which = "left" if dead and left_dead else "right" if dead else "none"
        imbalanced = dead or abs(imbalance) >= self.imbalance_threshold_db
        thr = self.imbalance_threshold_db
        health = 0.0 if dead else (max(0.0, 1.0 - min(1.0, abs(imbalance) / thr)) if thr > 0
                                   else (1.0 if imbalance == 0 else 0.0))
        return event({"_schema": "channel_balance_event", "left_rms_db": left_db,
                      "right_rms_db": right_db, "balance_ratio": ratio,
                      "imbalance_db": imbalance, "is_imbalanced": imbalanced,
                      "has_dead_channel": dead, "dead_channel": which, "health": health,
                      **common}, pts)


# -- speech and session ------------------------------------------------------------------------------

@register_node
class SpeechPresenceNode(_Analyzer):
    """Speaking / silent / dead air per block, per side for stereo (§2.5, speech_presence.rs).

    A block (or side) is active when its RMS in dBFS is above silence_threshold_db. Emits
    `{"event_type": "speech.presence", "_schema": "speech_presence_v1", "state",
    "duration_ms", ...}` (stereo: `speakers` and `overlap_duration_ms` instead of
    duration_ms) when the state changes, or every emit_interval_ms of media time when set;
    otherwise nothing (the upstream emits null). States: speaking, silent, dead_air (silence
    of at least dead_air_threshold_ms); stereo: speaking_left, speaking_right, speaking_both,
    overlap (both for at least overlap_threshold_ms), silent, dead_air."""

    node_type = "SpeechPresenceNode"
    description = "Upstream: speech presence, dead air and overlap per block."
    params = (
        Param("dead_air_threshold_ms", int, 2000, "silence this long is dead air", min=0),
        Param("overlap_threshold_ms", int, 500, "both sides active this long is overlap",
              min=0),
        Param("silence_threshold_db", float, -50.0, "RMS (dBFS) above which a side speaks", min=-120.0, max=0.0),
        Param("emit_interval_ms", int, None, "also emit every N ms of media time (default: on "
              "change only)", min=1),
    )

    def setup(self):
        """Resets the per-side activity runs (samples), the overlap run and the last state."""
        super().setup()
        self._sides = [[False, 0], [False, 0]]   # per side (mono uses the first): active, samples
        self._overlap = 0
        self._last_state = None
        self._last_emit_us = 0

    def _track(self, side: int, active: bool, n: int) -> None:
        s = self._sides[side]
        if active != s[0]:
            s[0], s[1] = active, n
        else:
            s[1] += n

    def _ms(self, samples: int) -> int:
        return samples * 1000 // self._clock.rate

    def process(self, frame):
        """A speech.presence event (JsonData) when the state changes or emit_interval_ms of
        media time has passed, else None. (samples, 2) blocks are judged per side; any other
        shape pooled as one side."""
        pts = self._clock.pts(frame, self.format.sample_rate)
        array = frame.array
        thr = self.silence_threshold_db
        value = {"event_type": "speech.presence", "_schema": "speech_presence_v1",
                 **self._common(frame, pts)}
        if array.ndim == 2 and array.shape[1] == 2:
            n = array.shape[0]
            left = to_dbfs(rms_and_peak(array[:, 0])[0]) > thr
            right = to_dbfs(rms_and_peak(array[:, 1])[0]) > thr
            self._track(0, left, n)
            self._track(1, right, n)
            self._overlap = self._overlap + n if left and right else 0
            l_ms, r_ms = self._ms(self._sides[0][1]), self._ms(self._sides[1][1])
            overlap_ms = self._ms(self._overlap)
            silence_ms = min(l_ms, r_ms) if not (left or right) else 0
            if left and right:
                state = "overlap" if overlap_ms >= self.overlap_threshold_ms else "speaking_both"
            elif left:
                state = "speaking_left"
            elif right:
                state = "speaking_right"
            else:
                state = "dead_air" if silence_ms >= self.dead_air_threshold_ms else "silent"
            value.update(state=state, overlap_duration_ms=overlap_ms, speakers={
                "left": {"active": left, "duration_ms": l_ms},
                "right": {"active": right, "duration_ms": r_ms}})
        else:
            active = to_dbfs(rms_and_peak(array)[0]) > thr
            self._track(0, active, array.size)
            duration = self._ms(self._sides[0][1])
            state = "speaking" if active else (
                "dead_air" if duration >= self.dead_air_threshold_ms else "silent")
            value.update(state=state, duration_ms=duration)
        now = self._clock.us(pts)
        due = (self.emit_interval_ms is not None
               and (now - self._last_emit_us) / 1000 >= self.emit_interval_ms)
        if state == self._last_state and not due:
            return None
        self._last_state = state
        self._last_emit_us = now
        return event(value, pts)


class _EventClock:
    """'Now' for nodes that mostly see events: the latest media time seen, from an event's
    timestamp_us or an audio block's pts; never the wall clock."""

    def __init__(self):
        self.media = MediaClock()
        self.now_us = 0
        self.pts: int | None = None

    def see(self, data, default_rate) -> int:
        if data.kind == "numpy":
            pts = self.media.pts(data, default_rate)
            self.now_us = max(self.now_us, self.media.us(pts))
            self.pts = pts
        elif data.kind == "json" and isinstance(data.value, dict):
            ts = event_time_us(data.value)
            if ts is not None and ts > self.now_us:
                self.now_us = ts
                pts = data.value.get("pts", data.pts)
                self.pts = pts if isinstance(pts, int) else self.pts
        return self.now_us


def _kind(value: dict) -> str | None:
    kind = value.get("event_type")
    if not isinstance(kind, str):
        kind = value.get("type")
    return kind if isinstance(kind, str) else None


_PRESENCE_STATES = ("speaking_left", "speaking_right", "speaking_both", "overlap", "speaking",
                    "silent", "dead_air")
_STEREO_STATES = frozenset(_PRESENCE_STATES[:4])


@register_node
class ConversationFlowNode(UpstreamNode):
    """Talk/silence (stereo: left/right/overlap) percentages over a window, from
    `speech.presence` events (§2.6, conversation_flow.rs). Each state lasts from its event to
    the next; segments older than window_ms (media time) are dropped. Emits
    `{"event_type": "conversation.flow", "_schema": "conversation_flow_v1", "talk_pct",
    "silence_pct", "window_ms", "timestamp_us"}` (stereo: left_talk_pct, right_talk_pct,
    overlap_pct, silence_pct) every emit_interval_ms once a segment exists. Audio blocks only
    advance its clock."""

    node_type = "ConversationFlowNode"
    description = "Upstream: talk/silence percentages from speech.presence events."
    accepts = frozenset({"numpy", "json"})
    params = (
        Param("window_ms", int, 30000, "window the percentages cover (media time)", min=1),
        Param("emit_interval_ms", int, 5000, "at most one event per this much media time",
              min=0),
    )

    def output_format(self, fmt):
        """Events only: the audio stops here (carries_audio=False)."""
        return fmt.replace(carries_audio=False)

    def setup(self):
        """Resets the speech.presence segments of the window and the emit timer."""
        self._clock = _EventClock()
        self._segments: list[tuple[int, int, str]] = []
        self._prev: tuple[str, int] | None = None
        self._stereo = False
        self._last_emit: int | None = None

    def process(self, data):
        """Records each speech.presence state change as a segment (start, duration in us,
        state) kept for window_ms; emits the flow report (JsonData) at most every
        emit_interval_ms of media time, None otherwise."""
        now = self._clock.see(data, self.format.sample_rate)
        value = data.value if data.kind == "json" else None
        if (isinstance(value, dict) and value.get("event_type") == "speech.presence"
                and value.get("state") in _PRESENCE_STATES):
            state = value["state"]
            self._stereo = self._stereo or state in _STEREO_STATES
            ts = event_time_us(value)
            ts = now if ts is None else ts
            if self._prev is not None and self._prev[0] != state:
                start = self._prev[1]
                self._segments.append((start, max(0, ts - start), self._prev[0]))
            if self._prev is None or self._prev[0] != state:
                self._prev = (state, ts)
            cutoff = now - self.window_ms * 1000
            self._segments = [s for s in self._segments if s[0] >= cutoff]
        if not self._segments:
            return None
        if self._last_emit is not None and (now - self._last_emit) / 1000 < self.emit_interval_ms:
            return None
        self._last_emit = now
        return event(self._report(now), self._clock.pts)

    def _report(self, now: int) -> dict:
        total = sum(d for _, d, _ in self._segments)

        def pct(states) -> float:
            part = sum(d for _, d, s in self._segments if s in states)
            return _round_half_away(100.0 * part / total, 1)

        out = {"event_type": "conversation.flow", "_schema": "conversation_flow_v1",
               "window_ms": self.window_ms, "timestamp_us": now}
        if self._stereo:
            if total == 0:
                out.update(left_talk_pct=0.0, right_talk_pct=0.0, overlap_pct=0.0,
                           silence_pct=100.0)
            else:
                out.update(left_talk_pct=pct({"speaking_left", "speaking_both", "overlap"}),
                           right_talk_pct=pct({"speaking_right", "speaking_both", "overlap"}),
                           overlap_pct=pct({"overlap"}), silence_pct=pct({"silent", "dead_air"}))
        elif total == 0:
            out.update(talk_pct=0.0, silence_pct=100.0)
        else:
            out.update(talk_pct=pct({"speaking"}), silence_pct=pct({"silent", "dead_air"}))
        return out


def _round_half_away(x: float, digits: int) -> float:
    """Rust's f64::round semantics (half away from zero) at `digits` decimals."""
    scale = 10 ** digits
    return math.copysign(math.floor(abs(x) * scale + 0.5), x) / scale


_SEVERE = {"clipping": 0.25, "freeze": 0.25, "dead_channel": 0.25}
_MODERATE = {"dead_air": 0.15, "drift": 0.15, "imbalance": 0.15}
_MINOR = {"silence": 0.05, "low_volume": 0.05, "cadence_unstable": 0.05}
_PENALTY = {**_SEVERE, **_MODERATE, **_MINOR}


@register_node
class SessionHealthNode(UpstreamNode):
    """One session state (ok / degraded / unhealthy) from the other nodes' events
    (§2.7, session_health.rs). Issues (clipping, freeze, dead_channel: severe; dead_air, drift,
    imbalance: moderate; silence, low_volume, cadence_unstable: minor) are refreshed by the
    events that show them and forgotten after issue_retention_ms of media time. score = base
    (a HealthEmitter `health` score, else 1) minus each issue's penalty x min(2, 1 + age_s/10).
    Emits `{"event_type": "session.health", "_schema": "session_health_v1", "state", "score",
    "contributors", "active_issues", "timestamp_us"}` on its first input and then every
    emit_interval_ms of media time. Audio blocks only advance its clock."""

    node_type = "SessionHealthNode"
    description = "Upstream: session state and score from the analyzers' events."
    accepts = frozenset({"numpy", "json"})
    params = (
        Param("emit_interval_ms", int, 1000, "one event per this much media time", min=0),
        Param("degraded_threshold", float, 0.8, "a score below this is degraded", min=0.0, max=1.0),
        Param("unhealthy_threshold", float, 0.5, "a score below this is unhealthy", min=0.0, max=1.0),
        Param("dead_air_issue_ms", int, 3000, "dead air this long is an issue", min=0),
        Param("issue_retention_ms", int, 5000, "an issue not seen for this long is dropped",
              min=0),
    )

    def output_format(self, fmt):
        """Events only: the audio stops here (carries_audio=False)."""
        return fmt.replace(carries_audio=False)

    def setup(self):
        """Resets the active issues (first and last seen, us), the base score and the emit timer."""
        self._clock = _EventClock()
        self._issues: dict[str, list[int]] = {}     # name -> [first_seen, last_seen] (us)
        self._base: float | None = None
        self._last_emit: int | None = None

    def _add(self, name: str, now: int) -> None:
        seen = self._issues.get(name)
        if seen is None:
            self._issues[name] = [now, now]
        else:
            seen[1] = now

    def _observe(self, v: dict, now: int) -> None:
        kind, schema = _kind(v), v.get("_schema")
        if schema == "silence_event" or kind == "silence":
            if v.get("is_sustained_silence") is True or v.get("has_intermittent_dropouts") is True:
                self._add("silence", now)
        elif schema == "clipping_event" or kind == "clipping":
            if v.get("is_clipping") is True:
                self._add("clipping", now)
        elif schema == "audio_level_event" or kind == "audio_level":
            if v.get("is_silence") is True:
                self._add("silence", now)
            if v.get("is_low_volume") is True:
                self._add("low_volume", now)
        elif schema == "channel_balance_event" or kind == "channel_balance":
            if v.get("has_dead_channel") is True:
                self._add("dead_channel", now)
            elif v.get("is_imbalanced") is True:
                self._add("imbalance", now)
        elif kind == "speech.presence":
            duration = v.get("duration_ms")
            if (v.get("state") == "dead_air" and isinstance(duration, (int, float))
                    and duration >= self.dead_air_issue_ms):
                self._add("dead_air", now)
        elif kind == "health":
            score = v.get("score")
            if isinstance(score, (int, float)) and not isinstance(score, bool):
                self._base = float(score)
            for alert in v.get("alerts") or ():
                name = {"DRIFT_SLOPE": "drift", "LEAD_JUMP": "drift", "FREEZE": "freeze",
                        "CADENCE_UNSTABLE": "cadence_unstable"}.get(alert)
                if name:
                    self._add(name, now)
        elif kind in ("drift", "freeze", "cadence"):
            self._add("cadence_unstable" if kind == "cadence" else kind, now)

    def process(self, data):
        """Folds each incoming health event into the active issues (kept issue_retention_ms);
        at most every emit_interval_ms of media time emits a session.health event (JsonData)
        with state ok/degraded/unhealthy and a score in 0..1, None otherwise."""
        now = self._clock.see(data, self.format.sample_rate)
        if data.kind == "json" and isinstance(data.value, dict):
            self._observe(data.value, now)
        keep = self.issue_retention_ms * 1000
        self._issues = {k: s for k, s in self._issues.items() if now - s[1] < keep}
        if self._last_emit is not None and (now - self._last_emit) / 1000 < self.emit_interval_ms:
            return None
        self._last_emit = now
        score = self._base if self._base is not None else 1.0
        for name, (first, _) in self._issues.items():
            score -= _PENALTY[name] * min(2.0, 1.0 + (now - first) / 1e6 / 10.0)
        score = max(0.0, score)
        if any(n in _SEVERE for n in self._issues) or score < self.unhealthy_threshold:
            state = "unhealthy"
        elif score < self.degraded_threshold or self._issues:
            state = "degraded"
        else:
            state = "ok"
        return event({"event_type": "session.health", "_schema": "session_health_v1",
                      "state": state, "score": _round_half_away(score, 2),
                      "contributors": list(self._issues), "active_issues": len(self._issues),
                      "timestamp_us": now}, self._clock.pts)


# -- timing ------------------------------------------------------------------------------------------

def _ts(media_us: int) -> str:
    """The upstream's `ts`: decimal seconds followed by six zeros (us truncated to the second),
    here of media time."""
    return f"{media_us // 1_000_000}000000"


@register_node
class TimingDriftNode(UpstreamNode):
    """Clock drift, lead jumps and arrival jitter of a live source (§2.9, timing_drift.rs).

    Compares each block's media time (pts) with its arrival on the run's clock
    (`metadata["arrival_us"]`, stamped by the runner; a block without one arrived on time), so a
    file read faster than real time raises nothing. DriftMetrics with slope threshold
    drift_threshold_ms_per_s, lead jump lead_threshold_ms, raise after 3, clear after 5, warm-up
    50 blocks. When an alert flips: `timing.clock_drift` (slope newly over), `timing.lead_jump`,
    and `timing.jitter_spike` if the spread of inter-arrival times over the last 5 s exceeds
    jitter_threshold_ms. Every emit_interval_ms of media time a `timing.report` with lead_ms,
    slope_ms_per_s, jitter_ms and cadence_cv. Other data flows past."""

    node_type = "TimingDriftNode"
    description = "Upstream: clock drift, lead jumps and jitter (media vs arrival time)."
    uses_arrival_time = True
    params = (
        Param("jitter_threshold_ms", int, 50, "inter-arrival spread (ms) that is a spike",
              min=0),
        Param("drift_threshold_ms_per_s", float, 5.0, "lead slope (ms/s) that is drift", min=0.0, max=1000.0),
        Param("emit_interval_ms", int, 1000, "one timing.report per this much media time",
              min=0),
        Param("lead_threshold_ms", int, 100, "a lead change this big between blocks is a jump",
              min=0),
    )

    def output_format(self, fmt):
        """Events only: the audio stops here (carries_audio=False)."""
        return fmt.replace(carries_audio=False)

    def setup(self):
        """Fresh DriftMetrics, jitter history (last 5 s) and alert state; also run on reset."""
        self._clock = MediaClock()
        self._metrics = DriftMetrics(slope_threshold=self.drift_threshold_ms_per_s,
                                     lead_jump_us=self.lead_threshold_ms * 1000,
                                     raise_after=3, clear_after=5)
        self._jitter: deque = deque()               # (arrival, inter-arrival) us, last 5 s
        self._last_arrival: int | None = None
        self._last_emit: int | None = None
        self._prev_alerts: set[str] = set()

    def jitter_ms(self) -> float:
        """Population standard deviation of inter-arrival times over the last 5 s, in ms."""
        return pop_std([d for _, d in self._jitter]) / 1000.0

    def process(self, frame):
        """The timing alerts that flipped on with this block and, every emit_interval_ms of
        media time, a timing.report (a list of JsonData, or None). Reads the block's pts and its
        `arrival_us` metadata."""
        pts = self._clock.pts(frame, self.format.sample_rate)
        media = self._clock.us(pts)
        arrival = arrival_us(frame, media)
        if self._last_arrival is not None:
            jitter = self._jitter
            jitter.append((arrival, arrival - self._last_arrival))
            while jitter[0][0] < arrival - 5_000_000:
                jitter.popleft()
        self._last_arrival = arrival
        m = self._metrics
        events = []
        if m.record_sample(media, arrival):
            current = m.active()
            new = current - self._prev_alerts
            jitter = self.jitter_ms()
            if jitter > self.jitter_threshold_ms:
                events.append({"event_type": "timing.jitter_spike",
                               "_schema": "timing_alert_v1", "jitter_ms": round(jitter, 2),
                               "threshold_ms": self.jitter_threshold_ms})
            if "DRIFT_SLOPE" in new:
                events.append({"event_type": "timing.clock_drift", "_schema": "timing_alert_v1",
                               "slope_ms_per_s": round(m.slope, 2),
                               "threshold_ms_per_s": self.drift_threshold_ms_per_s})
            if "LEAD_JUMP" in new:
                events.append({"event_type": "timing.lead_jump", "_schema": "timing_alert_v1",
                               "lead_ms": round(m.lead_us / 1000, 2),
                               "threshold_ms": self.lead_threshold_ms})
            self._prev_alerts = current
        if self._last_emit is None or (media - self._last_emit) / 1000 >= self.emit_interval_ms:
            events.append({"event_type": "timing.report", "_schema": "timing_report_v1",
                           "lead_ms": m.lead_us / 1000, "slope_ms_per_s": round(m.slope, 2),
                           "jitter_ms": round(self.jitter_ms(), 2),
                           "cadence_cv": round(m.cv(), 3)})
            self._last_emit = media
        if not events:
            return None
        sid = stream_id(frame)
        return [event({**e, "timestamp_us": media, "pts": pts, "stream_id": sid}, pts)
                for e in events]

    def on_control(self, event_):
        """reset and discontinuity start the measurement over (setup()); emits nothing."""
        if event_.event in ("reset", "discontinuity"):
            self.setup()
        return None


_ISSUE_FLAGS = {
    "audio_level_event": (("is_silence", "SILENCE"), ("is_low_volume", "LOW_VOLUME")),
    "silence_event": (("is_sustained_silence", "SUSTAINED_SILENCE"),
                      ("has_intermittent_dropouts", "INTERMITTENT_DROPOUTS")),
    "clipping_event": (("is_clipping", "CLIPPING"),),
    "channel_balance_event": (("is_imbalanced", "CHANNEL_IMBALANCE"),
                              ("has_dead_channel", "DEAD_CHANNEL")),
}


@register_node
class HealthEmitterNode(UpstreamNode):
    """Health events from timing and from the analyzers (§2.8, health_emitter.rs).

    Audio blocks feed DriftMetrics with media time against arrival time (as TimingDriftNode;
    slope threshold fixed at 5 ms/s, lead jump lead_threshold_ms, raise after 5, clear after
    10): a newly raised DRIFT_SLOPE or LEAD_JUMP gives `{"type": "drift", "ts", "lead_ms",
    "threshold_ms"}`, CADENCE_UNSTABLE `{"type": "cadence", "ts", "cv", "threshold"}`, then a
    `{"type": "health", "ts", "score", "alerts"}` when the alerts, the issues or the score
    (by score_change_threshold) changed, or on the first block. Analyzer events set issue
    flags (SILENCE, LOW_VOLUME, SUSTAINED_SILENCE, INTERMITTENT_DROPOUTS, CLIPPING,
    CHANNEL_IMBALANCE, DEAD_CHANNEL, SESSION_DEGRADED, SESSION_UNHEALTHY) and their `health`
    values; score = the lowest of them. FREEZE and AV_SKEW are never raised on audio (as
    upstream). `ts` is media time in the upstream's format."""

    node_type = "HealthEmitterNode"
    description = "Upstream: drift/cadence/health events from timing and analyzer events."
    accepts = frozenset({"numpy", "json"})
    uses_arrival_time = True
    params = (
        Param("lead_threshold_ms", int, 50, "a lead change this big between blocks is a jump",
              min=0),
        Param("freeze_threshold_ms", int, 500, "freeze threshold (video only)", min=0),
        Param("av_skew_threshold_ms", int, 80, "audio/video skew threshold (video only)",
              min=0),
        Param("cadence_cv_threshold", float, 0.3, "spread of media steps that is unstable", min=0.0, max=10.0),
        Param("health_threshold", float, 0.7, "a drift health score below this is HEALTH_LOW", min=0.0, max=1.0),
        Param("score_change_threshold", float, 0.05, "emit health when the score moves this "
              "much", min=0.0, max=1.0),
    )

    def output_format(self, fmt):
        """Events only: the audio stops here (carries_audio=False)."""
        return fmt.replace(carries_audio=False)

    def setup(self):
        """Fresh DriftMetrics (raise after 5, clear after 10) and empty issue and score state."""
        self._clock = _EventClock()
        self._metrics = DriftMetrics(slope_threshold=5.0,
                                     lead_jump_us=self.lead_threshold_ms * 1000,
                                     av_skew_us=self.av_skew_threshold_ms * 1000,
                                     freeze_us=self.freeze_threshold_ms * 1000,
                                     cadence_cv=self.cadence_cv_threshold,
                                     health_threshold=self.health_threshold,
                                     raise_after=5, clear_after=10)
        self._prev_raised: set[str] = set()
        self._last_score: float | None = None
        self._last_alerts: set[str] | None = None
        self._issues: set[str] = set()
        self._last_issues: set[str] = set()
        self._upstream_health: dict[str, float] = {}

    def _alerts(self) -> list[str]:
        return sorted(self._metrics.active() | self._issues)

    def _health(self, score: float, now: int, sid) -> dict:
        self._last_score = score
        self._last_alerts = self._metrics.active() - {"HEALTH_LOW"}
        self._last_issues = set(self._issues)
        return {"type": "health", "ts": _ts(now), "score": score, "alerts": self._alerts()}

    def process(self, data):
        """Audio feeds the drift metrics; health events from upstream nodes set issues and
        the score (the minimum of their `health`, 0..1). Emits a health event (JsonData) when
        the score moves by score_change_threshold or the issues or alerts change, None otherwise."""
        now = self._clock.see(data, self.format.sample_rate)
        pts = self._clock.pts
        if data.kind == "json":
            value = data.value
            if not isinstance(value, dict):
                return None
            schema = value.get("_schema")
            h = value.get("health")
            if isinstance(schema, str) and schema and isinstance(h, (int, float)) \
                    and not isinstance(h, bool) and math.isfinite(h):
                self._upstream_health[schema] = float(h)
            flags = _ISSUE_FLAGS.get(schema)
            if flags is not None:
                for key, issue in flags:
                    if value.get(key) is True:
                        self._issues.add(issue)
                    else:
                        self._issues.discard(issue)
            elif value.get("event_type") == "session.health":
                state = value.get("state")
                self._issues.discard("SESSION_UNHEALTHY")
                self._issues.discard("SESSION_DEGRADED")
                if state == "unhealthy":
                    self._issues.add("SESSION_UNHEALTHY")
                elif state == "degraded":
                    self._issues.add("SESSION_DEGRADED")
            score = min([1.0, *self._upstream_health.values()])
            if (self._last_score is None or self._issues != self._last_issues
                    or abs(score - self._last_score) >= self.score_change_threshold):
                return event({**self._health(score, now, None), "timestamp_us": now,
                              "pts": pts}, pts)
            return None
        # audio
        sid = stream_id(data)
        m = self._metrics
        events = []
        if m.record_sample(now, arrival_us(data, now)):
            current = m.active()
            new = current - self._prev_raised
            self._prev_raised = current
            extra = {"stream_id": sid} if sid is not None else {}
            if new & {"DRIFT_SLOPE", "LEAD_JUMP"}:
                events.append({"type": "drift", "ts": _ts(now), "lead_ms": int(m.lead_us / 1000),
                               "threshold_ms": self.lead_threshold_ms, **extra})
            if "FREEZE" in new:
                events.append({"type": "freeze", "ts": _ts(now),
                               "duration_ms": self.freeze_threshold_ms, **extra})
            if "AV_SKEW" in new:
                events.append({"type": "av_skew", "ts": _ts(now), "skew_ms": int(m.skew_us / 1000),
                               "threshold_ms": self.av_skew_threshold_ms})
            if "CADENCE_UNSTABLE" in new:
                events.append({"type": "cadence", "ts": _ts(now), "cv": m.cv(),
                               "threshold": self.cadence_cv_threshold})
        score = m.health_score()
        if (self._last_score is None or self._last_alerts != m.active() - {"HEALTH_LOW"}
                or self._issues != self._last_issues
                or abs(score - self._last_score) >= self.score_change_threshold):
            events.append(self._health(score, now, sid))
        if not events:
            return None
        return [event({**e, "timestamp_us": now, "pts": pts}, pts) for e in events]


# -- incidents and evidence --------------------------------------------------------------------------

_TIMING_ALERTS = frozenset({"timing.jitter_spike", "timing.clock_drift", "timing.lead_jump",
                            "drift", "freeze", "cadence", "av_skew"})
_SEVERITY = ("low", "medium", "high", "critical")


def _is_alert(v: dict) -> bool:
    return (_kind(v) in _TIMING_ALERTS
            or any(v.get(k) is True for k in ("is_clipping", "is_sustained_silence",
                                               "is_imbalanced", "has_dead_channel"))
            or v.get("state") in ("dead_air", "unhealthy"))


def _severity(v: dict) -> str:
    kind = _kind(v)
    if kind == "freeze":
        return "critical"
    if kind in ("timing.clock_drift", "timing.lead_jump"):
        return "high"
    if kind in ("timing.jitter_spike", "drift", "cadence", "av_skew"):
        return "medium"
    if v.get("is_clipping") is True or v.get("has_dead_channel") is True:
        return "high"
    if v.get("is_sustained_silence") is True:
        return "medium"
    state = v.get("state")
    return "high" if state == "unhealthy" else "medium" if state == "degraded" else "low"


def _pattern(events: list[dict]) -> str:
    types = [(_kind(v) or v.get("_schema") or "unknown") for v in events]
    if ((any("silence" in t for t in types) or any(v.get("is_sustained_silence") is True
                                                   for v in events))
            and any(t.startswith("timing.") for t in types)):
        return "silence_then_reconnect"
    if any(v.get("is_clipping") is True for v in events) and any(
            v.get("is_imbalanced") is True or v.get("has_dead_channel") is True
            for v in events):
        return "clipping_with_imbalance"
    if "freeze" in types and any("drift" in t for t in types):
        return "freeze_with_drift"
    if sum(1 for v in events if any(v.get(k) is True for k in (
            "is_clipping", "is_low_volume", "is_imbalanced"))) >= 2:
        return "audio_quality_degradation"
    return "unknown"


@register_node
class EventCorrelatorNode(UpstreamNode):
    """Groups alert events that come close together into incidents (§2.10,
    event_correlator.rs). An alert (timing alerts, drift/freeze/cadence/av_skew, is_clipping,
    is_sustained_silence, is_imbalanced, has_dead_channel, state dead_air/unhealthy) joins the
    first open incident whose last event is less than correlation_window_ms before it, else
    opens one; with emit_raw_events it is passed on as it came. An incident closes once
    correlation_window_ms of media time passes without a new alert (or at end of stream) and is
    emitted when it holds at least min_events_for_incident events:
    `{"event_type": "incident", "_schema": "incident_v1", "incident_id", "severity", "events",
    "event_count", "pattern", "duration_ms", "timestamp_us"}`. Incident ids count up
    (`inc_00000001`, ...) so runs are reproducible. Audio flows past untouched (as upstream)."""

    node_type = "EventCorrelatorNode"
    description = "Upstream: groups nearby alert events into incidents."
    accepts = frozenset({"json"})
    params = (
        Param("correlation_window_ms", int, 5000, "alerts closer than this share an incident",
              min=0),
        Param("min_events_for_incident", int, 2, "an incident needs this many alerts", min=0),
        Param("emit_raw_events", bool, True, "pass each alert on as it came"),
    )

    def setup(self):
        """Resets the open incidents, the media clock (us) and the incident id counter."""
        self._now = 0
        self._open: list[dict] = []
        self._ids = 0

    def process(self, data):
        """Adds each alert event to the open incident it falls within correlation_window_ms
        of, or opens one; passes the raw event on when emit_raw_events. Returns the incidents
        that closed (a list of JsonData) or None."""
        value = data.value
        out = []
        if isinstance(value, dict):
            ts = event_time_us(value)
            if ts is not None and ts > self._now:
                self._now = ts
            if _is_alert(value):
                ts = self._now if ts is None else ts
                kind = _kind(value) or value.get("_schema") or "unknown"
                window = self.correlation_window_ms * 1000
                for inc in self._open:
                    if max(0, ts - inc["last_us"]) < window:
                        break
                else:
                    self._ids += 1
                    inc = {"id": f"inc_{self._ids:08x}", "start_us": ts, "last_us": ts,
                           "events": []}
                    self._open.append(inc)
                inc["events"].append((kind, ts, value))
                inc["last_us"] = max(inc["last_us"], ts)
                if self.emit_raw_events:
                    out.append(data)
        out.extend(self._close(lambda inc: self._now - inc["last_us"]
                               >= self.correlation_window_ms * 1000))
        return out or None

    def _close(self, due) -> list:
        closed = [inc for inc in self._open if due(inc)]
        self._open = [inc for inc in self._open if not due(inc)]
        out = []
        for inc in closed:
            if len(inc["events"]) < self.min_events_for_incident:
                continue
            values = [v for _, _, v in inc["events"]]
            severity = max((_severity(v) for v in values), key=_SEVERITY.index)
            out.append(event({
                "event_type": "incident", "_schema": "incident_v1", "incident_id": inc["id"],
                "severity": severity,
                "events": [{"type": k, "timestamp_us": t} for k, t, _ in inc["events"]],
                "event_count": len(inc["events"]), "pattern": _pattern(values),
                "duration_ms": (inc["last_us"] - inc["start_us"]) // 1000,
                "timestamp_us": self._now}, None))
        return out

    def on_control(self, event_):
        """flush and end_of_stream close every open incident and emit it; reset starts over."""
        if event_.event in ("flush", "end_of_stream"):
            return self._close(lambda inc: True) or None
        if event_.event == "reset":
            self.setup()
        return None


_EVIDENCE_TYPES = frozenset({"timing.jitter_spike", "timing.clock_drift", "freeze", "drift",
                             "incident"})


@register_node
class AudioEvidenceNode(UpstreamNode):
    """Keeps the last buffer_duration_s of audio and cuts a clip around each alert
    (§2.11, audio_evidence.rs): pre_alert_s before it and post_alert_s after, emitted as
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

    def output_format(self, fmt):
        """Events only: the audio stops here (carries_audio=False)."""
        return fmt.replace(carries_audio=False)

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
            from ..engine.serialization import record_encode
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


# -- the upstream stream-health tools' HealthEvent lines (§5) ---------------------------------------

def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def health_events(value) -> list[dict]:
    """The canonical HealthEvents (without `ts`) that one node output stands for, as the
    upstream's `convert_json_to_health_events` makes them: `[]` when it says nothing wrong.

    Each is a dict with "type" first, then the variant's fields in the upstream's declaration
    order, then "stream_id" when the event carries a string one. Arrays convert element-wise."""
    if isinstance(value, list):
        return [e for v in value for e in health_events(v)]
    if not isinstance(value, dict):
        return []
    sid = value.get("stream_id")
    tail = {"stream_id": sid} if isinstance(sid, str) else {}
    schema = value.get("_schema")
    v = value
    if isinstance(schema, str):
        if schema == "audio_level_event":
            if not (isinstance(v.get("is_silence"), bool) and isinstance(v.get("is_low_volume"),
                    bool) and _num(v.get("rms_db")) and _num(v.get("peak_db"))):
                return []
            if v["is_silence"]:
                return [{"type": "silence", "duration_ms": 0.0, "rms_db": v["rms_db"], **tail}]
            if v["is_low_volume"]:
                return [{"type": "low_volume", "rms_db": v["rms_db"], "peak_db": v["peak_db"],
                         **tail}]
            return []
        if schema == "silence_event":
            if not (isinstance(v.get("is_sustained_silence"), bool)
                    and isinstance(v.get("has_intermittent_dropouts"), bool)
                    and _num(v.get("silence_duration_ms")) and _num(v.get("rms_db"))
                    and _int(v.get("dropout_count"))):
                return []
            if v["has_intermittent_dropouts"]:
                return [{"type": "dropouts", "dropout_count": v["dropout_count"], **tail}]
            if v["is_sustained_silence"]:
                return [{"type": "silence", "duration_ms": v["silence_duration_ms"],
                         "rms_db": v["rms_db"], **tail}]
            return []
        if schema == "clipping_event":
            if v.get("is_clipping") is True and _num(v.get("saturation_ratio")) \
                    and _num(v.get("crest_factor_db")):
                return [{"type": "clipping", "saturation_ratio": v["saturation_ratio"],
                         "crest_factor_db": v["crest_factor_db"], **tail}]
            return []
        if schema == "channel_balance_event":
            if v.get("is_imbalanced") is True and _num(v.get("imbalance_db")) \
                    and isinstance(v.get("dead_channel"), str):
                return [{"type": "channel_imbalance", "imbalance_db": v["imbalance_db"],
                         "dead_channel": v["dead_channel"], **tail}]
            return []
        return []
    kind = v.get("type")
    fields = {
        "drift": (("lead_ms", _int), ("threshold_ms", _int)),
        "freeze": (("duration_ms", _int),),
        "cadence": (("cv", _num), ("threshold", _num)),
        "av_skew": (("skew_ms", _int), ("threshold_ms", _int)),
        "silence": (("duration_ms", _num), ("rms_db", _num)),
        "low_volume": (("rms_db", _num), ("peak_db", _num)),
        "clipping": (("saturation_ratio", _num), ("crest_factor_db", _num)),
        "channel_imbalance": (("imbalance_db", _num), ("dead_channel", lambda x:
                                                       isinstance(x, str))),
        "dropouts": (("dropout_count", _int),),
    }
    if kind == "health":
        if not _num(v.get("score")):
            return []
        alerts = [a for a in (v.get("alerts") or []) if isinstance(a, str)] \
            if isinstance(v.get("alerts"), list) else []
        return [{"type": "health", "score": v["score"], "alerts": alerts}]
    if kind in fields:
        out = {"type": kind}
        for name, ok in fields[kind]:
            if not ok(v.get(name)):
                return []
            out[name] = v[name]
        if kind in ("cadence", "av_skew"):
            return [out]
        return [{**out, **tail}]
    return []


def rfc3339(epoch_s: float) -> str:
    """UTC time as RFC 3339 with microseconds and a Z."""
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def health_event_lines(value, *, start_epoch_s: float, media_us: int | None) -> list[dict]:
    """health_events() with `ts` second, as the upstream's EventEmitter writes them: the
    run's start (wall clock, read once by the caller) plus the event's media time."""
    ts = rfc3339(start_epoch_s + (media_us or 0) / 1e6)
    out = []
    for e in health_events(value):
        kind = e.pop("type")
        out.append({"type": kind, "ts": ts, **e})
    return out


__all__ = ["AudioLevelNode", "SilenceDetectorNode", "ClippingDetectorNode",
           "ChannelBalanceNode", "SpeechPresenceNode", "ConversationFlowNode",
           "SessionHealthNode", "TimingDriftNode", "HealthEmitterNode", "EventCorrelatorNode",
           "AudioEvidenceNode", "health_events", "health_event_lines"]
