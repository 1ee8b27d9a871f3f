"""The upstream's stream-health node family, under its names.

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
array) are listed in common.py. The family is split by
job: analyzers.py (the block analyzers and speech presence), this module (conversation,
session, timing and incident nodes), evidence.py (evidence clips) and
events.py (`health_events()`: the upstream stream-health tools' canonical
`HealthEvent` lines). The others' names are re-exported here.
"""

from __future__ import annotations

import math
from collections import deque


from ...engine.node import Param, register_node
from .common import (DriftMetrics, MediaClock, UpstreamEventNode, UpstreamNode, arrival_us,
                     event, event_time_us, pop_std, stream_id, _EventClock, _kind)
from .analyzers import (AudioLevelNode, ChannelBalanceNode,  # noqa: F401
                        ClippingDetectorNode, SilenceDetectorNode, SpeechPresenceNode,
                        _health)
from .events import health_event_lines, health_events, rfc3339  # noqa: F401


_PRESENCE_STATES = ("speaking_left", "speaking_right", "speaking_both", "overlap", "speaking",
                    "silent", "dead_air")
_STEREO_STATES = frozenset(_PRESENCE_STATES[:4])


@register_node
class ConversationFlowNode(UpstreamEventNode):
    """Talk/silence (stereo: left/right/overlap) percentages over a window, from
    `speech.presence` events (conversation_flow.rs). Each state lasts from its event to
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
class SessionHealthNode(UpstreamEventNode):
    """One session state (ok / degraded / unhealthy) from the other nodes' events
    (session_health.rs). Issues (clipping, freeze, dead_channel: severe; dead_air, drift,
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
class TimingDriftNode(UpstreamEventNode):
    """Clock drift, lead jumps and arrival jitter of a live source (timing_drift.rs).

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
class HealthEmitterNode(UpstreamEventNode):
    """Health events from timing and from the analyzers (health_emitter.rs).

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
    """Groups alert events that come close together into incidents
    (event_correlator.rs). An alert (timing alerts, drift/freeze/cadence/av_skew, is_clipping,
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


from .evidence import AudioEvidenceNode  # noqa: E402,F401 (registered there)


__all__ = ["AudioLevelNode", "SilenceDetectorNode", "ClippingDetectorNode",
           "ChannelBalanceNode", "SpeechPresenceNode", "ConversationFlowNode",
           "SessionHealthNode", "TimingDriftNode", "HealthEmitterNode", "EventCorrelatorNode",
           "AudioEvidenceNode", "health_events", "health_event_lines"]
