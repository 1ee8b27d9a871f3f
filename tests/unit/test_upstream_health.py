"""The upstream's stream-health nodes: each fires on audio made to trigger it, and nothing else
does; timing nodes judge media time against the run's arrival clock, in simulated time."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import remotemedia as rm
from remotemedia.engine.data import JsonData, NumpyData
from remotemedia.nodes.upstream import health as uh
from remotemedia.nodes.upstream.common import ARRIVAL_KEY, DriftMetrics
from remotemedia.runner import ARRIVAL_KEY as RUNNER_ARRIVAL_KEY

from .upstream_signals import (BLOCK, DATA, FULL, RATE, alerts, clean, combination, dropouts,
                               one_channel_muted, overdriven, quiet, run_file_like,
                               silence_gap, stereo, tone)

SCENARIOS = {
    "clean": (clean, set(), set()),
    "silence_2s": (silence_gap, {"silence"}, {"SILENCE", "SUSTAINED_SILENCE"}),
    "tone_-20dB": (quiet, {"low_volume"}, {"LOW_VOLUME"}),
    "overdriven_3x": (overdriven, {"clipping"}, {"CLIPPING"}),
    "stereo_one_muted": (one_channel_muted, {"channel_imbalance"},
                         {"CHANNEL_IMBALANCE", "DEAD_CHANNEL"}),
    "five_300ms_dropouts": (dropouts, {"dropouts", "silence"},
                            {"INTERMITTENT_DROPOUTS", "SILENCE"}),
    "combination": (combination, {"clipping", "channel_imbalance", "silence"},
                    {"CLIPPING", "CHANNEL_IMBALANCE", "DEAD_CHANNEL", "SILENCE",
                     "SUSTAINED_SILENCE"}),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_analyzers_fire_what_the_audio_holds_and_nothing_else(name):
    # stream_health.yaml: `connections: []`, so every analyzer's events reach the output.
    make, expected, _ = SCENARIOS[name]
    assert alerts(run_file_like(make(), DATA / "stream_health.yaml")) == expected


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_full_chain_health_alerts_match_and_no_timing_alarm_from_a_fast_file(name):
    make, _, expected = SCENARIOS[name]
    events = run_file_like(make(), FULL)
    raised = set()
    for v in events:
        if v.get("type") == "health":
            raised |= set(v["alerts"])
    session = {v["state"] for v in events if v.get("event_type") == "session.health"}
    assert raised - {"SESSION_DEGRADED", "SESSION_UNHEALTHY"} == expected
    # Read far faster than real time, yet no drift: arrival is the run's (simulated) clock.
    assert not any(str(v.get("event_type", "")).startswith("timing.")
                   and v["event_type"] != "timing.report" for v in events)
    assert not any(v.get("type") in ("drift", "cadence") for v in events)
    reports = [v for v in events if v.get("event_type") == "timing.report"]
    assert reports and all(r["lead_ms"] == 0 and r["jitter_ms"] == 0 for r in reports)
    if expected:
        assert session & {"degraded", "unhealthy"}
    else:
        assert session == {"ok"}


def test_events_have_the_upstream_shape_and_media_time():
    (level, silence, clip, balance, health) = run_first_block(tone(0.25))
    assert list(level) == sorted(level)          # serde_json prints keys sorted
    assert level["_schema"] == "audio_level_event"
    assert set(level) == {"_schema", "rms_db", "peak_db", "is_silence", "is_low_volume",
                          "health", "stream_id", "timestamp_us", "pts"}
    assert level["peak_db"] == pytest.approx(-6.02, abs=0.01)
    assert level["rms_db"] == pytest.approx(-9.03, abs=0.01)
    assert set(silence) >= {"is_silent", "silence_duration_ms", "is_sustained_silence",
                            "dropout_count", "has_intermittent_dropouts", "health"}
    assert clip["crest_factor_db"] == pytest.approx(20 * math.log10(math.sqrt(2)), abs=1e-6)
    assert balance["dead_channel"] == "none" and balance["balance_ratio"] == 1.0
    assert health["type"] == "health" and health["ts"] == "0000000"


def run_first_block(x, pts=0, metadata=None):
    p = rm.Pipeline.from_manifest(DATA / "stream_health.yaml",
                                  audio={"channels": x.shape[1] if x.ndim == 2 else 1})
    with p.session() as s:
        return [o.value for o in s.push(NumpyData(x, sample_rate=RATE, pts=pts,
                                                  metadata=metadata))]


def test_timestamp_and_stream_id_come_from_the_block():
    level = run_first_block(tone(0.25), pts=3 * RATE, metadata={"stream_id": "cam1"})[0]
    assert level["timestamp_us"] == 3_000_000 and level["pts"] == 3 * RATE
    assert level["stream_id"] == "cam1"


def test_dead_left_channel_and_infinite_balance_ratio_is_null():
    x = tone(0.25)
    balance = run_first_block(stereo(x, np.zeros_like(x)))[3]
    assert balance["dead_channel"] == "right" and balance["is_imbalanced"]
    assert balance["balance_ratio"] is None       # +inf, written as JSON null
    json.dumps(balance, allow_nan=False)           # strict RFC 8259
    balance = run_first_block(stereo(np.zeros_like(x), x))[3]
    assert balance["dead_channel"] == "left" and balance["balance_ratio"] == 0.0


def test_clipping_health_and_crest_rules():
    clipped = run_first_block(np.clip(3 * tone(0.25), -1, 1))[2]
    assert clipped["is_clipping"] and clipped["saturation_ratio"] > 50 and clipped["health"] == 0
    silent = run_first_block(np.zeros(BLOCK, np.float32))[2]
    assert silent["crest_factor_db"] == 20.0 and not silent["is_clipping"]


def test_silence_counts_a_sustained_run_and_health_ramps():
    p = rm.Pipeline.from_manifest(DATA / "stream_health.yaml")
    z = np.zeros(BLOCK, np.float32)
    with p.session() as s:
        events = [next(o.value for o in s.push(NumpyData(z, sample_rate=RATE, pts=i * BLOCK))
                       if o.value.get("_schema") == "silence_event") for i in range(3)]
    assert [e["silence_duration_ms"] for e in events] == [250.0, 500.0, 750.0]
    assert [e["is_sustained_silence"] for e in events] == [False, True, True]
    assert events[0]["health"] == 0.5 and events[1]["health"] == 0.0


def test_dropout_window_is_media_time():
    # Drops three seconds apart fall out of a 5 s window: never three at once.
    x = tone(12.0)
    for k in (1, 4, 7, 10):
        x[k * RATE:k * RATE + BLOCK] = 0.0
    events = run_file_like(x, DATA / "stream_health.yaml")
    counts = [v["dropout_count"] for v in events if v.get("_schema") == "silence_event"]
    assert max(counts) == 2 and "dropouts" not in alerts(events)


# -- timing: simulated arrival clocks ----------------------------------------------------------------

TIMING = {"version": "v1", "metadata": {"cli_defaults": {"sample_rate": RATE}},
          "nodes": [{"id": "td", "node_type": "TimingDriftNode"},
                    {"id": "he", "node_type": "HealthEmitterNode"}],
          "connections": []}


def run_timing(arrival, blocks=240):
    """Blocks of 250 ms whose arrival on the run's clock is arrival(n, media_us)."""
    out = []
    z = np.zeros(BLOCK, np.float32)
    with rm.Pipeline.from_manifest(TIMING).session() as s:
        for n in range(blocks):
            pts = n * BLOCK
            media = pts * 1_000_000 // RATE
            frame = NumpyData(z, sample_rate=RATE, pts=pts,
                              metadata={ARRIVAL_KEY: arrival(n, media)})
            out += [o.value for o in s.push(frame)]
    return out


def kinds(events) -> list[str]:
    return [v.get("event_type") or v.get("type") for v in events]


def test_on_time_arrivals_raise_nothing():
    events = run_timing(lambda n, media: media + 40_000)     # a constant latency is not drift
    assert set(kinds(events)) == {"timing.report", "health"}
    assert [v["alerts"] for v in events if v.get("type") == "health"] == [[]]


def test_a_clock_drifting_10ms_per_s_raises_drift_and_only_drift():
    events = run_timing(lambda n, media: media + media // 100)
    k = kinds(events)
    assert k.count("timing.clock_drift") == 1 and k.count("drift") == 1
    assert "timing.jitter_spike" not in k and "timing.lead_jump" not in k
    (drift,) = [v for v in events if v.get("event_type") == "timing.clock_drift"]
    assert drift["slope_ms_per_s"] == pytest.approx(10.0, abs=0.5)
    assert drift["timestamp_us"] > 50 * 250_000                # after the 50-block warm-up
    (he,) = [v for v in events if v.get("type") == "drift"]
    assert he["lead_ms"] > 0 and he["threshold_ms"] == 50
    assert any("DRIFT_SLOPE" in v["alerts"] for v in events if v.get("type") == "health")
    reports = [v for v in events if v.get("event_type") == "timing.report"]
    last = reports[-1]
    assert last["lead_ms"] == pytest.approx(last["timestamp_us"] / 1000 / 100, rel=0.01)
    assert reports[-1]["jitter_ms"] == 0


@pytest.mark.parametrize("seed", range(8))
def test_arrivals_with_50ms_jitter_raise_a_jitter_spike(seed):
    jitter = np.random.default_rng(seed).normal(0.0, 50_000.0, 240)
    events = run_timing(lambda n, media: int(media + jitter[n]))
    spikes = [v for v in events if v.get("event_type") == "timing.jitter_spike"]
    assert spikes and all(v["jitter_ms"] > v["threshold_ms"] == 50 for v in spikes)
    assert "drift" in kinds(events)                         # HealthEmitter: lead jumps > 50 ms


def test_blocks_without_an_arrival_stamp_arrived_on_time():
    z = np.zeros(BLOCK, np.float32)
    with rm.Pipeline.from_manifest(TIMING).session() as s:
        out = [o.value for n in range(120)
               for o in s.push(NumpyData(z, sample_rate=RATE, pts=n * BLOCK))]
    assert set(kinds(out)) == {"timing.report", "health"}


def test_drift_metrics_discontinuity_restarts_the_baseline():
    m = DriftMetrics(raise_after=1, warmup=0)
    m.record_sample(0, 0)
    m.record_sample(250_000, 250_000)
    m.record_sample(10_000_000, 300_000)                    # a jump forward > 2 s
    assert m.discontinuities == 1 and m.lead_us == 0


def test_runner_stamps_media_time_in_simulated_runs_and_the_key_is_shared():
    assert ARRIVAL_KEY == RUNNER_ARRIVAL_KEY == "arrival_us"
    seen = []

    class Spy(uh.UpstreamNode):
        node_type = "ArrivalSpy"
        uses_arrival_time = True

        def process(self, frame):
            seen.append((frame.pts, frame.metadata.get(ARRIVAL_KEY)))
            return frame

    from remotemedia.engine.manifest import load_manifest
    from remotemedia.engine.node import NodeRegistry
    from remotemedia.engine.session import Pipeline
    from remotemedia.io.virtual import NullSink
    from remotemedia.runner import StreamRunner

    from .upstream_signals import ArraySource
    types = NodeRegistry()
    types.register(Spy)
    pipeline = Pipeline(load_manifest({
        "version": "v1", "audio": {"sample_rate": RATE, "block_size": 160},
        "nodes": [{"id": "spy", "node_type": "ArrivalSpy"}],
        "connections": [{"from": "input", "to": "spy"}, {"from": "spy", "to": "output"}]},
        registry=types))
    fmt = pipeline.manifest.audio
    StreamRunner(pipeline, ArraySource(fmt, tone(0.1)), NullSink(fmt), realtime=False).run()
    assert seen == [(pts, pts * 1_000_000 // RATE) for pts in range(0, 1600, 160)]
    # In real time the stamp is the monotonic clock: 10 ms blocks arrive about 10 ms apart.
    seen.clear()
    StreamRunner(pipeline, ArraySource(fmt, tone(0.1)), NullSink(fmt), realtime=True).run()
    arrivals = [a for _, a in seen]
    assert len(arrivals) == 10 and arrivals == sorted(arrivals)
    assert 60_000 <= arrivals[-1] - arrivals[0] <= 5_000_000


# -- speech, session, incidents, evidence --------------------------------------------------------------

def one_node(node_type, params=None, channels=1):
    return rm.Pipeline.from_manifest({
        "version": "v1", "metadata": {"cli_defaults": {"sample_rate": RATE,
                                                       "channels": channels}},
        "nodes": [{"id": "n", "node_type": node_type, "params": params or {}}],
        "connections": []})


def push_all(pipeline, items):
    out = []
    with pipeline.session() as s:
        for item in items:
            out += s.push(item)
        out += [o for o in s.end_of_stream() if o.kind != "control"]
    return out


def blocks(x, start_pts=0):
    return [NumpyData(x[i:i + BLOCK], sample_rate=RATE, pts=start_pts + i)
            for i in range(0, x.shape[0], BLOCK)]


def test_speech_presence_emits_on_change_only_and_finds_dead_air():
    x = np.concatenate([tone(1.0), np.zeros(3 * RATE, np.float32), tone(1.0)])
    out = [o.value for o in push_all(one_node("SpeechPresenceNode"), blocks(x))]
    assert [v["state"] for v in out] == ["speaking", "silent", "dead_air", "speaking"]
    assert out[2]["duration_ms"] == 2000 and out[2]["timestamp_us"] == 2_750_000


def test_speech_presence_stereo_states_and_interval():
    left, right = tone(1.0), np.zeros(RATE, np.float32)
    x = np.concatenate([stereo(left, right), stereo(left, left)])
    out = [o.value for o in push_all(one_node("SpeechPresenceNode", {"emit_interval_ms": 500},
                                              channels=2), blocks(x))]
    states = [v["state"] for v in out]
    assert states[0] == "speaking_left" and "speaking_both" in states and "overlap" in states
    assert out[0]["speakers"]["left"] == {"active": True, "duration_ms": 250}
    assert len(out) >= 4


def presence(state, t_ms, **extra):
    return JsonData({"event_type": "speech.presence", "state": state,
                     "timestamp_us": t_ms * 1000, **extra})


def test_conversation_flow_percentages_over_media_time():
    items = [presence("speaking", 0), presence("silent", 3000), presence("speaking", 4000),
             presence("silent", 10000)]
    out = [o.value for o in push_all(one_node("ConversationFlowNode",
                                              {"emit_interval_ms": 1000}), items)]
    last = out[-1]
    assert last["_schema"] == "conversation_flow_v1"
    assert last["talk_pct"] == 90.0 and last["silence_pct"] == 10.0
    assert last["timestamp_us"] == 10_000_000


def test_session_health_scores_issues_and_forgets_them():
    items = [JsonData({"_schema": "clipping_event", "is_clipping": True, "timestamp_us": 0}),
             JsonData({"_schema": "audio_level_event", "is_low_volume": True,
                       "timestamp_us": 1_000_000}),
             JsonData({"_schema": "audio_level_event", "timestamp_us": 7_000_000})]
    out = [o.value for o in push_all(one_node("SessionHealthNode"), items)]
    assert out[0]["state"] == "unhealthy" and out[0]["contributors"] == ["clipping"]
    assert out[0]["score"] == 0.75
    assert out[1]["contributors"] == ["clipping", "low_volume"]
    assert out[1]["score"] == pytest.approx(1 - 0.25 * 1.1 - 0.05, abs=0.01)
    assert out[2]["state"] == "ok" and out[2]["active_issues"] == 0


def test_event_correlator_builds_incidents_in_media_time_and_flushes_at_end():
    items = [JsonData({"_schema": "clipping_event", "is_clipping": True, "timestamp_us": 0}),
             JsonData({"_schema": "channel_balance_event", "is_imbalanced": True,
                       "has_dead_channel": True, "timestamp_us": 1_000_000}),
             JsonData({"_schema": "audio_level_event", "is_low_volume": True,
                       "timestamp_us": 2_000_000}),            # not an alert
             JsonData({"event_type": "timing.clock_drift", "timestamp_us": 20_000_000})]
    out = [o.value for o in push_all(one_node("EventCorrelatorNode"), items)]
    incidents = [v for v in out if v.get("event_type") == "incident"]
    raw = [v for v in out if v.get("event_type") != "incident"]
    assert len(raw) == 3                                        # the three alerts, as they came
    (first,) = incidents                                        # the lone drift: no incident
    assert first["incident_id"] == "inc_00000001" and first["event_count"] == 2
    assert first["severity"] == "high" and first["pattern"] == "clipping_with_imbalance"
    assert first["duration_ms"] == 1000


def test_audio_evidence_cuts_a_clip_around_an_alert():
    p = one_node("AudioEvidenceNode", {"pre_alert_s": 1, "post_alert_s": 1,
                                       "emit_audio_data": True})
    x = tone(4.0)
    items = blocks(x)[:8] + [JsonData({"_schema": "clipping_event", "is_clipping": True,
                                       "timestamp_us": 2_000_000})] + blocks(x[2 * RATE:],
                                                                             2 * RATE)
    out = [o.value for o in push_all(p, items)]
    (clip,) = out
    assert clip["trigger_event"] == "clipping" and clip["duration_ms"] == 2000
    assert clip["timestamp_us"] == 1_000_000 and clip["start_offset_ms"] == -1000
    import base64
    samples = np.frombuffer(base64.b64decode(clip["audio_base64"]), "<f4")
    np.testing.assert_array_equal(samples, x[RATE:3 * RATE])


def test_audio_evidence_flushes_a_pending_clip_at_end_of_stream():
    items = blocks(tone(1.0)) + [JsonData({"state": "dead_air", "timestamp_us": 1_000_000})]
    (clip,) = [o.value for o in push_all(one_node("AudioEvidenceNode"), items)]
    assert clip["trigger_event"] == "dead_air" and clip["duration_ms"] == 1000


# -- HealthEvent lines (§5) ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    ({"_schema": "audio_level_event", "is_silence": True, "is_low_volume": False,
      "rms_db": -80.0, "peak_db": -70.0, "stream_id": "a"},
     [{"type": "silence", "duration_ms": 0.0, "rms_db": -80.0, "stream_id": "a"}]),
    ({"_schema": "audio_level_event", "is_silence": False, "is_low_volume": True,
      "rms_db": -25.0, "peak_db": -10.0, "stream_id": None},
     [{"type": "low_volume", "rms_db": -25.0, "peak_db": -10.0}]),
    ({"_schema": "silence_event", "is_sustained_silence": True, "has_intermittent_dropouts": True,
      "silence_duration_ms": 900.0, "rms_db": -120.0, "dropout_count": 4},
     [{"type": "dropouts", "dropout_count": 4}]),
    ({"_schema": "silence_event", "is_sustained_silence": True,
      "has_intermittent_dropouts": False, "silence_duration_ms": 900.0, "rms_db": -120.0,
      "dropout_count": 1}, [{"type": "silence", "duration_ms": 900.0, "rms_db": -120.0}]),
    ({"_schema": "clipping_event", "is_clipping": True, "saturation_ratio": 12.0,
      "crest_factor_db": 1.5}, [{"type": "clipping", "saturation_ratio": 12.0,
                                 "crest_factor_db": 1.5}]),
    ({"_schema": "channel_balance_event", "is_imbalanced": True, "imbalance_db": 120.0,
      "dead_channel": "right"}, [{"type": "channel_imbalance", "imbalance_db": 120.0,
                                  "dead_channel": "right"}]),
    ({"_schema": "clipping_event", "is_clipping": False, "saturation_ratio": 0.0,
      "crest_factor_db": 9.0}, []),
    ({"_schema": "session_health_v1", "state": "unhealthy"}, []),
    ({"type": "drift", "lead_ms": 52, "threshold_ms": 50, "stream_id": "audio"},
     [{"type": "drift", "lead_ms": 52, "threshold_ms": 50, "stream_id": "audio"}]),
    ({"type": "health", "score": 0.85, "alerts": ["DRIFT_SLOPE"], "stream_id": "x"},
     [{"type": "health", "score": 0.85, "alerts": ["DRIFT_SLOPE"]}]),
    ({"type": "cadence", "cv": 0.4, "threshold": 0.3}, [{"type": "cadence", "cv": 0.4,
                                                         "threshold": 0.3}]),
    ({"type": "drift", "lead_ms": 1.5, "threshold_ms": 50}, []),      # lead_ms must be an int
    ([{"type": "freeze", "duration_ms": 823}, None, {"type": "av_skew", "skew_ms": 90,
                                                     "threshold_ms": 80}],
     [{"type": "freeze", "duration_ms": 823}, {"type": "av_skew", "skew_ms": 90,
                                               "threshold_ms": 80}]),
    (None, []),
])
def test_health_event_conversion(value, expected):
    assert uh.health_events(value) == expected


def test_health_event_lines_put_type_then_ts():
    (line,) = uh.health_event_lines({"type": "freeze", "duration_ms": 500},
                                    start_epoch_s=0.0, media_us=1_500_000)
    assert list(line) == ["type", "ts", "duration_ms"]
    assert line["ts"] == "1970-01-01T00:00:01.500000Z"
