"""What the upstream's node family shares: lenient params, media time, events, drift metrics.

The nodes in `health`, `speech` and `misc` (this package) exist under the names of
matbeedotcom/remotemedia-sdk (commit e9c6309; each node cites the upstream source file it
follows) with the same parameter names, event shapes and firing conditions. Where we differ on
purpose (each difference a defect upstream):

- Time is media time: `timestamp_us = pts * 1e6 / sample_rate` of the block that produced an
  event, and every event also carries `pts`. Arrival time is the run's clock, read from the
  frame's `metadata["arrival_us"]` (set by the runner, see `remotemedia.runner`); no node reads
  the wall clock, so runs in simulated time are deterministic and a file read faster than real
  time raises no drift.
- A parameter a node does not know is a warning naming it (`normalize_params`), never a silent
  fall-back of the whole config to defaults; a known parameter with a bad value is an error.
- No `null` outputs: a node with nothing to say emits nothing.
- End of stream flushes what a node buffers (chunker remainders, pending clips, incidents).

Sample counts follow the upstream: where it counts interleaved samples (frames x channels),
so do these nodes, and the node's docstring says so.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, ClassVar

import numpy as np

from ...engine.data import JsonData
from ...engine.node import Node, Param, _did_you_mean
from ..health import _as_unit_float

#: the metadata key the runner sets on every block when a node asks for it
#: (`uses_arrival_time = True`): microseconds on the run's clock since the run started
ARRIVAL_KEY = "arrival_us"


class UpstreamNode(Node):
    """Base of the upstream-named nodes: camelCase aliases, unknown params as warnings.

    `param_aliases` maps an alias the upstream accepts (`chunkSize`) to the param's name here.
    `alias_of` names the remotemedia node this one stands for, if any (`canonical()` then gives
    the native node type and params for `remotemedia convert-manifest`)."""

    upstream: ClassVar[bool] = True
    param_aliases: ClassVar[dict[str, str]] = {}
    alias_of: ClassVar[str | None] = None
    #: the runner stamps `metadata["arrival_us"]` on each block when some node sets this
    uses_arrival_time: ClassVar[bool] = False

    @classmethod
    def normalize_params(cls, params: dict) -> tuple[dict, list[str]]:
        """Params under their names here, and one warning line per param this node does not
        know (dropped). ValueError when a param is given under two names."""
        known = {p.name for p in cls.params}
        out: dict[str, Any] = {}
        notes: list[str] = []
        for key, value in params.items():
            name = cls.param_aliases.get(key, key)
            if name not in known:
                hint = _did_you_mean(key, sorted(known | set(cls.param_aliases)))
                notes.append(f"unknown param '{key}' for {cls.node_type} ignored{hint} "
                             f"(known: {', '.join(sorted(known)) or 'none'})")
                continue
            if name in out:
                raise ValueError(f"param '{name}' is given twice (as '{key}' too); give one")
            out[name] = value
        return out, notes

    @classmethod
    def check_params(cls, params: dict) -> dict:
        """Params after normalize_params (aliases renamed, unknown ones dropped), then checked as
        Node does; ValueError names the first bad one."""
        params, _ = cls.normalize_params(params)
        return super().check_params(params)

    @classmethod
    def describe(cls) -> dict:
        """Node.describe() plus upstream: True, the camelCase param_aliases and alias_of where
        set."""
        out = super().describe()
        out["upstream"] = True
        if cls.param_aliases:
            out["param_aliases"] = dict(cls.param_aliases)
        if cls.alias_of:
            out["alias_of"] = cls.alias_of
        return out


class UpstreamPassThrough(UpstreamNode):
    """An upstream node that only passes its input on here (the same object, untouched):
    `remotemedia convert-manifest` writes it as PassThrough. Subclasses name it, list its
    params (accepted, no effect) and, for more than audio, widen `accepts`."""

    @classmethod
    def canonical(cls, params):
        """("PassThrough", {}): the node only passes data on here."""
        return "PassThrough", {}

    def process(self, data):
        """`data` itself."""
        return data


def device_params(sample_rate: int, end: str) -> tuple[Param, ...]:
    """sample_rate, channels, device and host: the params of upstream's audio device nodes, for
    a node that stands for the run's `end` ("input" or "output"). Accepted and checked, they
    change nothing: the --input/--output SPEC picks the device, the manifest's audio block the
    rate."""
    return (
        Param("sample_rate", int, sample_rate, f"no effect (the {end} runs at the graph's rate)",
              min=1),
        Param("channels", int, 1, f"no effect (the {end}'s channels)", min=1),
        Param("device", str, None, f"no effect (give --{end} device:NAME)"),
        Param("host", str, None, "no effect"),
    )


class UpstreamEventNode(UpstreamNode):
    """An upstream node whose outputs are events only: the audio stops here."""

    def output_format(self, fmt):
        """Events only: the audio stops here (carries_audio=False)."""
        return fmt.replace(carries_audio=False)


class MediaClock:
    """Media time of the blocks a node sees: pts from the frame, or counted on from the last
    block when a frame carries none (a Python caller pushing bare arrays)."""

    __slots__ = ("rate", "next_pts")

    def __init__(self):
        self.rate: int | None = None
        self.next_pts = 0

    def pts(self, frame, default_rate: int | None) -> int:
        """The frame's pts in samples (counted on from the last block when it carries none) and
        remembers the rate (Hz): the frame's, else the one seen, else `default_rate`. ValueError if
        no rate is known."""
        rate = frame.sample_rate or self.rate or default_rate
        if rate is None:
            raise ValueError("the sample rate is unknown: frames carry none and the manifest "
                             "gives none")
        self.rate = rate
        pts = frame.pts if frame.pts is not None else self.next_pts
        self.next_pts = pts + frame.samples
        return pts

    def us(self, pts: int) -> int:
        """`pts` (samples) as integer microseconds of media time at the remembered rate."""
        return pts * 1_000_000 // self.rate


def stream_id(frame) -> str | None:
    """The frame's metadata stream_id if it is a str, else None (as the upstream's events carry
    it)."""
    value = frame.metadata.get("stream_id")
    return value if isinstance(value, str) else None


def arrival_us(frame, media_us: int) -> int:
    """The block's arrival on the run's clock; its media time when nobody stamped one."""
    value = frame.metadata.get(ARRIVAL_KEY)
    return int(value) if value is not None else media_us


def event(value: dict, pts: int | None) -> JsonData:
    """An event as upstream prints it (keys sorted: serde_json without preserve_order) and
    finite (a non-finite float becomes null, as serde_json writes it)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in sorted(value.items())}
    return JsonData(clean, pts=pts)


def unit_float(array: np.ndarray) -> np.ndarray:
    """Samples in units of full scale (the shared definition in nodes/health.py)."""
    return _as_unit_float(array)


def interleaved(array: np.ndarray) -> np.ndarray:
    """The samples as the upstream's flat interleaved vector (a view where the layout allows)."""
    return array.reshape(-1)


def event_time_us(value: dict) -> int | None:
    """An event's timestamp_us as int microseconds, or None when missing, negative or not a
    number."""
    ts = value.get("timestamp_us")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or ts < 0:
        return None
    return int(ts)


# -- drift metrics (the upstream's crates/core/src/executor/drift_metrics.rs) -------------------

ALERTS = ("DRIFT_SLOPE", "LEAD_JUMP", "AV_SKEW", "FREEZE", "CADENCE_UNSTABLE", "HEALTH_LOW")


class DriftMetrics:
    """Lead of arrival time over media time, its slope, and cadence, with hysteresis alerts.

    `record_sample(media_us, arrival_us)` per media block; returns True when an alert was raised
    or cleared. lead = (arrival - arrival at baseline) - (media - media at baseline), in us;
    slope = EMA (alpha 0.1) of d(lead)/d(elapsed arrival) in ms/s; cadence = the spread (cv) of
    media-time steps. Nothing is judged in the first `warmup` samples. A media step back, or
    forward by more than 2 s, is a discontinuity: the baseline and all alerts restart.
    FREEZE and AV_SKEW need content hashes and video, which no audio path gives: they stay
    down, as upstream."""

    def __init__(self, *, slope_threshold: float = 5.0, lead_jump_us: int = 100_000,
                 av_skew_us: int = 80_000, freeze_us: int = 500_000, cadence_cv: float = 0.3,
                 health_threshold: float = 0.7, raise_after: int = 5, clear_after: int = 10,
                 alpha: float = 0.1, warmup: int = 50):
        self.slope_threshold = slope_threshold
        self.lead_jump_us = lead_jump_us
        self.av_skew_us = av_skew_us
        self.freeze_us = freeze_us
        self.cadence_cv = cadence_cv
        self.health_threshold = health_threshold
        self.raise_after = raise_after
        self.clear_after = clear_after
        self.alpha = alpha
        self.warmup = warmup
        self.total = 0
        self.discontinuities = 0
        self.session_start: int | None = None
        self.baseline: tuple[int, int] | None = None
        self.last_media: int | None = None
        self.prev: tuple[float, float] | None = None      # (lead_us, elapsed_us)
        self.lead_us = 0.0
        self.slope = 0.0
        self.skew_us = 0.0
        # Media-time steps (us, integers: the running sums are exact), the last 1000.
        self.cadence: deque[int] = deque()
        self._cad_sum = 0
        self._cad_sq = 0
        self.raised = {a: False for a in ALERTS}
        self._count = {a: 0 for a in ALERTS}

    def _reset_alerts(self) -> None:
        for a in ALERTS:
            self.raised[a] = False
            self._count[a] = 0

    def cv(self) -> float:
        """Population standard deviation over mean of the media steps (0 below 2 steps or a
        mean under 1 us)."""
        n = len(self.cadence)
        if n < 2:
            return 0.0
        mean = self._cad_sum / n
        if mean < 1:
            return 0.0
        var = max(0.0, (self._cad_sq - self._cad_sum * self._cad_sum / n) / n)
        return math.sqrt(var) / mean

    def health_score(self) -> float:
        """1.0 less penalties: 0.3 x |slope|/slope_threshold, 0.2 x |AV skew|/threshold,
        0.2 x cadence cv/threshold (each capped at 1) and 0.3 while FREEZE is up; floored at 0.
        The upstream's formula (drift_metrics.rs)."""
        score = (1.0 - 0.3 * min(1.0, abs(self.slope) / self.slope_threshold)
                 - 0.2 * min(1.0, abs(self.skew_us) / self.av_skew_us)
                 - 0.2 * min(1.0, self.cv() / self.cadence_cv)
                 - (0.3 if self.raised["FREEZE"] else 0.0))
        return max(0.0, score)

    def record_sample(self, media_us: int, arrival_us: int) -> bool:
        """Adds one block's media time and arrival time, both in us; returns True when an alert
        was raised or cleared. A step back or a jump of more than 2 s restarts the baseline."""
        self.total += 1
        if self.session_start is None:
            self.session_start = arrival_us
        last = self.last_media
        if last is not None and (media_us < last or media_us - last > 2_000_000):
            self.discontinuities += 1
            self.baseline = None
            self.last_media = None
            self.prev = None
            self._reset_alerts()
            last = None
        if self.baseline is None:
            self.baseline = (arrival_us, media_us)
        base_arrival, base_media = self.baseline
        lead = max(0, arrival_us - base_arrival) - max(0, media_us - base_media)
        elapsed = max(0, arrival_us - self.session_start)
        prev = self.prev
        if prev is not None and elapsed - prev[1] > 0:
            inst = (lead - prev[0]) / (elapsed - prev[1]) * 1000.0
            self.slope = self.alpha * inst + (1 - self.alpha) * self.slope
        if last is not None:
            step = max(0, media_us - last)
            self.cadence.append(step)
            self._cad_sum += step
            self._cad_sq += step * step
            if len(self.cadence) > 1000:
                old = self.cadence.popleft()
                self._cad_sum -= old
                self._cad_sq -= old * old
        prev_lead = prev[0] if prev is not None else None
        self.prev = (lead, elapsed)
        self.lead_us = lead
        self.last_media = media_us
        if self.total <= self.warmup:
            return False
        health = self.health_score()
        cv = self.cv()
        conditions = {
            "DRIFT_SLOPE": abs(self.slope) > self.slope_threshold,
            "LEAD_JUMP": prev_lead is not None and abs(lead - prev_lead) > self.lead_jump_us,
            "AV_SKEW": abs(self.skew_us) > self.av_skew_us,
            "FREEZE": False,
            "CADENCE_UNSTABLE": cv > self.cadence_cv,
            "HEALTH_LOW": health < self.health_threshold,
        }
        changed = False
        for name, now in conditions.items():
            up = self.raised[name]
            if bool(now) == up:
                self._count[name] = 0     # the condition agrees with the alert: no flip pending
                continue
            # it disagrees: the alert flips after raise_after (up) or clear_after (down) blocks
            # in a row
            self._count[name] += 1
            if self._count[name] >= (self.clear_after if up else self.raise_after):
                self.raised[name] = not up
                self._count[name] = 0
                changed = True
        return changed

    def active(self) -> set[str]:
        """The names of the alerts that are up (DRIFT_SLOPE, LEAD_JUMP, ...)."""
        return {a for a, up in self.raised.items() if up}


def pop_std(values) -> float:
    """Population standard deviation of `values` (divides by n); 0.0 for fewer than two."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / n)


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
