"""What the monitor sends: the hello, the events drained from the audio thread's queue, and
the snapshots with the stats report (a mixin of monitor.server.Monitor, on its thread)."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from ..engine.levels import SILENCE_DBFS
from ..runner import describe_reason
from . import protocol
from .protocol import encode

#: how many recent engine latencies a snapshot carries (the TUI's sparkline)
SPARK_FRAMES = 150
#: every how many snapshots the latency percentiles are recomputed (the counters: every one);
#: at 20 Hz the percentiles refresh 5 times a second, as often as the eye can follow them
STATS_EVERY = 4


class Snapshots:
    """The monitor's messages about the run, built from the runner and the monitor's state
    (Monitor holds the attributes used here)."""

    def _hello(self) -> dict:
        pipeline = self.runner.pipeline
        audio = pipeline.manifest.audio
        return {"type": "hello", "protocol": protocol.PROTOCOL, "pid": os.getpid(),
                "manifest": pipeline.manifest.name, "hz": self.hz,
                "audio": {"sample_rate": audio.sample_rate, "block_size": audio.block_size,
                          "channels": audio.channels},
                "nodes": [[node_id, pipeline.manifest.node(node_id).node_type]
                          for node_id in pipeline.order],
                "edges": [list(e) for e in pipeline.edges()],
                "commands": list(protocol.COMMANDS),
                **self.info}

    def _drain_events(self) -> list[bytes]:
        from ..io.events import event_record
        out = []
        for t, data in self._events.take():
            try:
                record = event_record(data)
            except Exception:          # an event we cannot describe is still counted
                record = {"type": getattr(data, "kind", "unknown")}
            kind = str(record.get("type", "event")) if isinstance(record, dict) else "event"
            self.events_by_type[kind] += 1
            node = record.get("node") if isinstance(record, dict) else None
            line = encode({"type": "event", "t": t, "node": node, "event": kind,
                           "record": record})
            self.backlog.append(line)
            out.append(line)
        return out

    def _health_events(self, snapshot: dict) -> list[bytes]:
        """Events the graph does not emit but a watcher wants in the log: node errors (a node
        with on_error: skip only counts them), drops and xruns, each when its count grows
        (type `node_error`, `drops`, `xrun`), and the run's failure (type `error`)."""
        stats = snapshot.get("stats")
        if not stats:
            return []
        now = time.time()
        found: list[dict] = []
        seen = self._health_seen
        for node_id, node in (stats.get("nodes") or {}).items():
            errors = node.get("errors", 0)
            if errors > seen.get(("node", node_id), 0):
                found.append({"type": "node_error", "node": node_id, "errors": errors,
                              "new": errors - seen.get(("node", node_id), 0)})
            seen[("node", node_id)] = errors
        for key, kind, value in (("drops", "drops", stats.get("drops", 0)),
                                 *(((f"xrun:{k}", "xrun", v)
                                    for k, v in (stats.get("xruns") or {}).items()))):
            if value > seen.get(key, 0):
                found.append({"type": kind, "node": None, "what": key.split(":")[-1],
                              "count": value, "new": value - seen.get(key, 0)})
            seen[key] = value
        if snapshot.get("state") == "failed" and not seen.get("failed"):
            seen["failed"] = 1
            found.append({"type": "error", "node": getattr(self.runner.error, "node_id", None),
                          "message": snapshot.get("reason")})
        lines = []
        for record in found:      # not in events_by_type: that counts the graph's own events
            line = encode({"type": "event", "t": now, "node": record.get("node"),
                           "event": record["type"], "record": record})
            self.backlog.append(line)
            lines.append(line)
        return lines

    def _snapshot(self) -> dict[str, Any]:
        runner = self.runner
        session = runner.session
        stats = engine_us = e2e_us = None
        if session is not None:
            stats = self._stats(session)
            engine_us = _sparkline(session.engine_latency)
            if stats.get("latency_us", {}).get("end_to_end") is not None:
                e2e_us = _sparkline(session.end_to_end_latency)
        levels = runner.levels
        levels_dict = {name: getattr(levels, name) for name in levels.__dataclass_fields__}
        levels.input_peak_max_dbfs = levels.output_peak_max_dbfs = SILENCE_DBFS
        self._seq += 1
        return {"type": "snapshot", "seq": self._seq, "t": time.time(),
                "state": runner.state, "reason": describe_reason(runner),
                "stats": stats, "levels": levels_dict, "engine_us": engine_us or [],
                "end_to_end_us": e2e_us,
                "bypass": bool(session.bypass) if session is not None else False,
                "monitor": self.counts()}

    def _stats(self, session) -> dict:
        """The stats report: in full (percentiles over every node's ring, about a millisecond
        for voice.yaml) every STATS_EVERY-th snapshot, and in between the last full one with
        its counters brought up to date (a few microseconds)."""
        runner = self.runner
        full = self._full_stats
        if full is None or self._seq % STATS_EVERY == 0 or runner.state != "running" \
                or self._full_session is not session:
            full = self._full_stats = runner.stats()
            self._full_session = session
            return full
        c = session.counters
        stats = dict(full)
        stats.update(frames_in=c.frames_in, frames_out=c.frames_out, events_out=c.events_out,
                     drops=c.drops, errors=c.errors,
                     serialization_events=session.serialization.events,
                     copies={"engine": c.engine_copies, "cow": c.cow, "io": c.io},
                     xruns={"input_overflow": c.input_overflow,
                            "output_underflow": c.output_underflow},
                     stop_reason=runner.stop_reason)
        return stats


def _sparkline(ring) -> list[float]:
    """The last SPARK_FRAMES latencies of a LatencyRing in us, oldest first, to 0.1 us (the
    snapshot is JSON: fewer digits, fewer bytes)."""
    return np.round(ring.last_ns(SPARK_FRAMES) / 1e3, 1).tolist()
