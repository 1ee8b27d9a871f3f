"""The upstream's block analyzers, under its names:
AudioLevelNode, SilenceDetectorNode, ClippingDetectorNode, ChannelBalanceNode and
SpeechPresenceNode. One event per audio block, judged whole (the upstream's chunks are 4000
samples); levels through the shared measuring code of nodes/analysis.py, the same as LevelMeter,
ClippingDetector and SilenceDetector use.
"""

from __future__ import annotations

import math

import numpy as np

from ...engine.node import Param, register_node
from ..analysis import rms_and_peak, to_dbfs
from .common import (MediaClock, UpstreamEventNode, event,
                     stream_id, unit_float)


class _Analyzer(UpstreamEventNode):
    """An analyzer: audio in, one event out per block; other data flows past untouched (the
    upstream returns it unchanged). The audio itself is not passed on."""

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
    """RMS and peak of each block, all channels pooled (audio_level.rs).

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
    """Sustained silence and intermittent dropouts, judged per block (silence_detector.rs).

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
    """Saturated samples and crest factor per block (clipping_detector.rs).

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
    """Left/right balance and dead channels of stereo blocks (channel_balance.rs).

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
    """Speaking / silent / dead air per block, per side for stereo (speech_presence.rs).

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
