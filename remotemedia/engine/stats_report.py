"""The stats report: what a session counted and
measured, as one dict ready for JSON. The runner and the device ends add their sections
(`stop_reason`, `in_flight`, `device`, `sinks`) to it.
"""

from __future__ import annotations

import time


def build_report(session) -> dict:
    """The report of a Session: frames, events, duration and real-time factor, serialization
    events, copies by kind, drops, errors, xruns, engine and end-to-end latency (us, p50 to
    max; end_to_end None without a device) and per-node statistics, in topological order."""
    c = session.counters
    duration = max((time.perf_counter_ns() - session.started_ns) / 1e9, 1e-9)
    # Audio time pushed, counted in blocks of the manifest's size (a short last block of a
    # file counts as a whole one): realtime_factor = audio seconds per wall-clock second.
    audio = session.manifest.audio
    audio_seconds = c.frames_in * audio.block_size / audio.sample_rate
    engine = session.engine_latency.summary_us()
    e2e = session.end_to_end_latency.summary_us()
    zero = {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    report = {
        "frames_in": c.frames_in,
        "frames_out": c.frames_out,
        "events_out": c.events_out,
        "duration_s": round(duration, 6),
        "realtime_factor": round(audio_seconds / duration, 3),
        "serialization_events": session.serialization.events,
        "copies": {"engine": c.engine_copies, "cow": c.cow, "io": c.io},
        "drops": c.drops,
        "errors": c.errors,
        "xruns": {"input_overflow": c.input_overflow,
                  "output_underflow": c.output_underflow},
        "latency_us": {
            "engine": engine.as_dict() if engine else zero,
            "end_to_end": e2e.as_dict() if e2e else None,
        },
        "nodes": {s.node_id: s.as_dict() for s in session.node_statistics()},
    }
    schedule = session.schedule
    barge_in = schedule.barge_in if schedule is not None else None
    if barge_in is not None:
        # a voice loop (engine/bargein.py): interrupts, and the reply audio they dropped
        report["barge_in"] = barge_in.report()
    return report
