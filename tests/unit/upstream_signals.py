"""Generated 16 kHz test signals for the upstream's stream-health nodes, and a runner helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from remotemedia.engine.session import Pipeline
from remotemedia.io.base import Source
from remotemedia.io.virtual import NullSink
from remotemedia.nodes.upstream.health import health_events
from remotemedia.runner import StreamRunner

RATE = 16000
BLOCK = 4000
DATA = Path(__file__).resolve().parent.parent / "data" / "upstream"
FULL = DATA / "full_stream_health.yaml"


def tone(seconds: float, amplitude: float = 0.5, freq: float = 1000.0) -> np.ndarray:
    # 1 kHz at 16 kHz: 16 samples a period, so a 4000-sample block holds whole periods and the
    # sampled peak is the true one (crest factor exactly 3.01 dB).
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def stereo(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.stack([left, right], axis=1))


def clean() -> np.ndarray:
    return tone(8.0)


def silence_gap() -> np.ndarray:
    return np.concatenate([tone(2.0), np.zeros(2 * RATE, np.float32), tone(2.0)])


def quiet() -> np.ndarray:
    return tone(6.0, amplitude=0.1)        # peak -20 dBFS, RMS -23 dBFS


def overdriven() -> np.ndarray:
    return np.clip(3.0 * tone(6.0), -1.0, 1.0)


def one_channel_muted() -> np.ndarray:
    x = tone(6.0)
    return stereo(x, np.zeros_like(x))


def dropouts() -> np.ndarray:
    # Five 300 ms drop-outs, one a second, each starting on a 250 ms block boundary so that one
    # whole 4000-sample block is silent (the upstream judges whole chunks).
    x = tone(8.0)
    for k in range(1, 6):
        x[k * RATE:k * RATE + int(0.3 * RATE)] = 0.0
    return x


def combination() -> np.ndarray:
    left = np.concatenate([np.clip(3.0 * tone(2.0), -1, 1), np.zeros(2 * RATE, np.float32),
                           np.clip(3.0 * tone(2.0), -1, 1)])
    return stereo(left, np.zeros_like(left))


class ArraySource(Source):
    """Blocks of an array, with no clock of its own (the runner's simulated clock paces)."""

    def __init__(self, fmt, x: np.ndarray):
        super().__init__(fmt)
        self.x = x
        self.at = 0
        self.description = "array"

    def read(self):
        if self.at >= self.x.shape[0]:
            return None
        block = self.x[self.at:self.at + self.format.block_size].copy()
        self.at += block.shape[0]
        return block


def run_file_like(x: np.ndarray, manifest=FULL) -> list:
    """Run `x` through a manifest as a file would be: simulated time, as fast as possible."""
    channels = x.shape[1] if x.ndim == 2 else 1
    pipeline = Pipeline.from_manifest(manifest, audio={"channels": channels})
    events: list = []
    runner = StreamRunner(pipeline, ArraySource(pipeline.manifest.audio, x),
                          NullSink(pipeline.manifest.output_format), realtime=False,
                          on_event=lambda d: events.append(d.value))
    runner.run()
    return events


def alerts(values) -> set[str]:
    """What went wrong, by name: the HealthEvent types (health itself aside) and the timing
    alerts."""
    found = set()
    for v in values:
        found |= {e["type"] for e in health_events(v)} - {"health"}
        if isinstance(v, dict) and str(v.get("event_type", "")).startswith("timing.") \
                and v["event_type"] != "timing.report":
            found.add(v["event_type"])
    return found
