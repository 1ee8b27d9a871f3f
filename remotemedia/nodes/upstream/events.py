"""The upstream stream-health tools' canonical HealthEvent lines: what
the health nodes emit, converted (`health_events`, `health_event_lines`) so their consumers work.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ...engine.numbers import as_float




def _num(v) -> bool:
    return as_float(v) is not None


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


__all__ = ["health_event_lines", "health_events", "rfc3339"]
