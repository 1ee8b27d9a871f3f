"""Measure a device's round trip instead of quoting the driver: `remotemedia latency`.

One duplex PortAudio stream plays a click train with random spacing (single-sample impulses of
random sign, 0.15-0.35 s apart, as JUCE's latency tester and jack_iodelay play a known signal)
and captures the input in the same callback. The capture is cross-correlated with the train to
find the round trip roughly, then every click is looked for on its own near there:

- round trip per click: capture index of the click minus the stream index it was played at, in
  samples (the same definition as measuring by hand with a duplex callback stream: a sample
  written to outdata at stream position p comes back in indata at position p + round trip);
- mean, jitter (standard deviation), min and max over the clicks found;
- samples dropped and added on the return path: the round trip of one click against the one
  before (shorter: samples were dropped; longer: added), as PortAudio's paqa analyser counts them;
- clicks missing (no peak above half the click's amplitude where it should be), spurious peaks
  (pops: a peak above that anywhere else), and repeated blocks (a spurious peak exactly a whole
  number of blocks after a click, with the click's value);
- beside it, what the device reports: PortAudio's input + output latency of the stream and
  the median of outputBufferDacTime - inputBufferAdcTime over the callbacks.

Under JACK, `jack_loopback=True` connects the stream's own output port to its own input port
(and cuts both off the system ports) with jack_connect before the clicks start.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
import time

import numpy as np

from .engine.errors import DeviceError, DeviceNotFound, UsageError
from .engine.node import DEFAULT_BLOCK_SIZE, DEFAULT_SAMPLE_RATE

CLICK = 0.5
GAP_S = (0.15, 0.35)
SEARCH_S = 0.05      # a click is looked for this far either side of the rough round trip
RING = 32            # samples either side of a found click that belong to it (not pops)
TAIL_S = 1.0         # silence after the train, so the last click comes back
MAX_ARM_S = 5.0      # longest wait for the loopback before the train starts
MAX_DURATION_S = 600.0   # the longest click train (its capture is held in memory)


def click_train(duration_s: float, sample_rate: int, seed: int = 1):
    """(signal float32 (n,), click positions int64, click values float32): impulses of
    +-CLICK at random gaps in GAP_S, starting GAP_S[0] in, then TAIL_S of silence."""
    rng = np.random.default_rng(seed)
    n = int((duration_s + TAIL_S) * sample_rate)
    positions = []
    p = int(GAP_S[0] * sample_rate)
    while p < duration_s * sample_rate:
        positions.append(p)
        p += int(rng.uniform(*GAP_S) * sample_rate)
    positions = np.array(positions, dtype=np.int64)
    values = (rng.choice([-1.0, 1.0], size=positions.size) * CLICK).astype(np.float32)
    signal = np.zeros(n, dtype=np.float32)
    signal[positions] = values
    return signal, positions, values


def analyse(capture: np.ndarray, played_at: np.ndarray, values: np.ndarray, sample_rate: int,
            block_size: int) -> dict:
    """Find the clicks played at stream positions `played_at` (values `values`) in `capture`
    (float32 (n,), stream positions from 0). See the module doc for what is counted."""
    threshold = CLICK / 2
    result = {"clicks": int(played_at.size), "clicks_found": 0, "clicks_missing": 0,
              "round_trip_samples": None, "round_trip_ms": None, "dropped_samples": 0,
              "added_samples": 0, "spurious_peaks": 0, "repeated_blocks": 0, "found": False}
    if played_at.size == 0 or capture.size == 0:
        return result
    # rough lag: cross-correlation of the capture with the train (FFT)
    train = np.zeros(capture.size, dtype=np.float64)
    inside = played_at < capture.size
    train[played_at[inside]] = values[inside]
    size = 1 << int(math.ceil(math.log2(2 * capture.size)))
    corr = np.fft.irfft(np.fft.rfft(capture.astype(np.float64), size)
                        * np.conj(np.fft.rfft(train, size)), size)[:capture.size]
    lag0 = int(np.argmax(np.abs(corr)))
    w = int(SEARCH_S * sample_rate)
    found_at, trips = [], []
    claimed = np.zeros(capture.size, dtype=bool)
    for p, v in zip(played_at, values):
        lo, hi = max(0, p + lag0 - w), min(capture.size, p + lag0 + w + 1)
        if lo >= hi:
            result["clicks_missing"] += 1
            continue
        seg = capture[lo:hi]
        k = int(np.argmax(np.abs(seg)))
        if abs(seg[k]) < threshold or np.sign(seg[k]) != np.sign(v):
            result["clicks_missing"] += 1
            continue
        # the click and its ring (a real converter smears an impulse a little) are its own
        claimed[max(0, lo + k - RING):lo + k + RING + 1] = True
        found_at.append(lo + k)
        trips.append(lo + k - int(p))
    # peaks where no click should be: after the first click could return
    start = int(played_at[0]) + lag0 - w
    loud = np.flatnonzero((np.abs(capture) >= threshold) & ~claimed)
    loud = loud[loud >= max(start, 0)]
    result["spurious_peaks"] = int(loud.size)
    found = np.array(found_at, dtype=np.int64)
    repeated = 0
    for s in loud:
        back = s - found
        hit = (back > 0) & (back % block_size == 0)
        if hit.any() and np.any(capture[found[hit]] == capture[s]):
            repeated += 1
    result["repeated_blocks"] = repeated
    if trips:
        t = np.array(trips, dtype=np.float64)
        steps = np.diff(t)
        result["dropped_samples"] = int(-steps[steps < 0].sum())
        result["added_samples"] = int(steps[steps > 0].sum())
        stats = {"mean": float(t.mean()), "jitter": float(t.std()), "min": int(t.min()),
                 "max": int(t.max())}
        result["round_trip_samples"] = stats
        result["round_trip_ms"] = {k: round(v * 1e3 / sample_rate, 4) for k, v in stats.items()}
        result["clicks_found"] = len(trips)
        result["found"] = True
    return result


class _Duplex:
    """What the callback touches, preallocated: the train, the capture, a few counters."""

    def __init__(self, signal: np.ndarray, capacity: int):
        self.signal = signal
        self.capture = np.zeros(capacity, dtype=np.float32)
        self.pos = 0              # stream frames so far
        self.armed = False        # set by the engine side once the loopback is in place
        self.start = -1           # stream position the train started at
        self.flags = 0            # callbacks with an xrun flag
        self.ts_latency = np.zeros(512, dtype=np.float64)
        self.ticks = 0
        self.done = threading.Event()

    def callback(self, indata, outdata, frames, t, status):
        pos = self.pos
        if status:
            self.flags += 1
        self.ts_latency[self.ticks & 511] = t.outputBufferDacTime - t.inputBufferAdcTime
        self.ticks += 1
        cap = self.capture
        if pos + frames <= cap.size:
            cap[pos:pos + frames] = indata[:, 0]
        if self.armed and self.start < 0:
            self.start = pos
        outdata.fill(0)
        if self.start >= 0:
            off = pos - self.start
            sig = self.signal
            if off < sig.size:
                n = min(frames, sig.size - off)
                outdata[:n, 0] = sig[off:off + n]
            elif off >= sig.size:
                self.done.set()
        if pos + frames > cap.size:
            self.done.set()
        self.pos = pos + frames


def measure_latency(input_device="default", output_device="default", *,
                    duration: float = 4.0, sample_rate: int = DEFAULT_SAMPLE_RATE,
                    block_size: int = DEFAULT_BLOCK_SIZE,
                    jack_loopback: bool = False, seed: int = 1, on_started=None,
                    stop: threading.Event | None = None) -> dict:
    """Play a click train on `output_device`, capture `input_device` in the same duplex stream,
    and measure (module doc). `on_started()` runs once the stream runs, before the train (to
    connect a loopback yourself). `stop`, once set (a signal handler may), ends the train
    within 50 ms: the clicks played at least TAIL_S before are measured, `clicks` counts only
    them and `stopped_after_s` says when. Returns a dict ready for JSON. DeviceError for a device that
    cannot open (exit code 2 for a name that matches none); UsageError for bad numbers."""
    from .io import devices, portaudio
    if duration <= 0 or sample_rate <= 0 or block_size <= 0:
        raise UsageError("latency: duration, rate and block size must be positive")
    if duration > MAX_DURATION_S:
        raise UsageError(f"latency: --duration {duration:g} s is longer than a click train "
                         f"may be ({MAX_DURATION_S:.0f} s)")
    sd = portaudio._sounddevice()
    din = _device(devices, input_device, "input")
    dout = _device(devices, output_device, "output")
    if din.host_api != dout.host_api:
        raise DeviceNotFound(f"latency: {din.label()} and {dout.label()} are on different host "
                             f"APIs; one duplex stream needs both on one")
    signal, positions, values = click_train(duration, sample_rate, seed)
    capacity = signal.size + int((MAX_ARM_S + 1.0) * sample_rate)
    state = _Duplex(signal, capacity)
    before = _jack_ports() if jack_loopback else set()
    try:
        stream = sd.Stream(samplerate=sample_rate, blocksize=block_size, dtype="float32",
                           device=(din.index, dout.index), channels=(1, 1), latency="low",
                           callback=state.callback)
    except (sd.PortAudioError, ValueError) as exc:
        raise DeviceError(f"latency: cannot open {din.label()} -> {dout.label()} at "
                          f"{sample_rate} Hz in {block_size}-frame blocks: {exc}") from exc
    reported = None
    with stream:
        if jack_loopback:
            _jack_loop_back(before)
        if on_started is not None:
            on_started()
        state.armed = True
        lat = stream.latency
        reported = (float(lat[0]), float(lat[1]))
        limit = time.monotonic() + (signal.size / sample_rate) + MAX_ARM_S + 2.0
        while not state.done.wait(0.05):
            if stop is not None and stop.is_set():
                break
            if time.monotonic() > limit:
                raise DeviceError(f"latency: the stream stopped delivering callbacks "
                                  f"({state.ticks} so far)")
    start = state.start
    stopped = stop is not None and stop.is_set() and not state.done.is_set()
    played, end = positions + max(start, 0), state.pos
    if stopped:
        played, values, end = _before_stop(state.capture, played, values, end, sample_rate,
                                           block_size)
    result = analyse(state.capture[:end], played, values, sample_rate, block_size)
    n = min(state.ticks, 512)
    ts = float(np.median(state.ts_latency[:n])) if n else None
    result.update({
        "input": din.label(), "output": dout.label(), "sample_rate": sample_rate,
        "block_size": block_size, "callbacks_flagged": state.flags,
        "reported": {
            "portaudio_latency_s": {"input": reported[0], "output": reported[1]},
            "portaudio_latency_samples": round((reported[0] + reported[1]) * sample_rate, 3),
            "timestamps_samples": None if ts is None else round(ts * sample_rate, 3),
        },
    })
    if stopped:
        result["stopped_after_s"] = round(max(state.pos - max(start, 0), 0) / sample_rate, 3)
    return result


def _before_stop(capture, played, values, end: int, sample_rate: int, block_size: int):
    """A train stopped at stream position `end`: (played, values, end) of the clicks played at
    least TAIL_S before it (the others may not have come back), and the capture cut before
    the first later click could return (its return would count as a pop)."""
    keep = played + int(TAIL_S * sample_rate) <= end
    if keep.all():
        return played, values, end
    cut = int(played[~keep][0])           # nothing returns before it was played
    rough = analyse(capture[:end], played[keep], values[keep], sample_rate, block_size)
    if rough["found"]:                    # nor sooner than the shortest round trip
        cut += max(rough["round_trip_samples"]["min"] - RING, 0)
    return played[keep], values[keep], min(cut, end)


def _device(devices, spec, kind):
    # the device syntax of every command: default, device:NAME_OR_INDEX, or the bare name
    spec = str(spec).strip()
    if spec.startswith("device:"):
        spec = spec[len("device:"):]
    if spec == "default":
        index, why = devices.default_device(kind)
        if index is None:
            raise DeviceNotFound(f"latency: no default {kind} device ({why}); give --{kind}")
        spec = index
    return devices.resolve_device(spec, kind)


def _jack_ports() -> set[str]:
    if shutil.which("jack_lsp") is None:
        raise UsageError("--jack-loopback needs jack_lsp and jack_connect (Debian: jackd2)")
    out = subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=10)
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def _jack_loop_back(before: set[str], timeout: float = 5.0) -> None:
    """Connect the ports our stream registered (found as the new ones) out -> in, and cut
    them off anything else."""
    deadline = time.monotonic() + timeout
    while True:
        added = _jack_ports() - before
        ins = sorted(p for p in added if p.rsplit(":", 1)[-1].startswith("in_"))
        outs = sorted(p for p in added if p.rsplit(":", 1)[-1].startswith("out_"))
        if ins and outs:
            break
        if time.monotonic() > deadline:
            raise DeviceError("--jack-loopback: the stream's JACK ports did not appear")
        time.sleep(0.05)
    in_port, out_port = ins[0], outs[0]
    out = subprocess.run(["jack_lsp", "-c", in_port, out_port], capture_output=True, text=True,
                         timeout=10)
    port = None
    for line in out.stdout.splitlines():
        if not line.strip():
            continue
        if line.startswith((" ", "\t")):
            other = line.strip()
            pair = (other, in_port) if port == in_port else (out_port, other)
            subprocess.run(["jack_disconnect", *pair], capture_output=True, timeout=10)
        else:
            port = line.strip()
    done = subprocess.run(["jack_connect", out_port, in_port], capture_output=True, text=True,
                          timeout=10)
    if done.returncode != 0:
        raise DeviceError(f"--jack-loopback: jack_connect {out_port} {in_port} failed: "
                          f"{done.stderr.strip()}")


def format_latency(r: dict) -> str:
    """The measurement for people."""
    lines = [f"round trip {r['output']} -> {r['input']}, {r['sample_rate']} Hz, "
             f"{r['block_size']}-frame blocks"]
    if r["found"]:
        s, ms = r["round_trip_samples"], r["round_trip_ms"]
        lines.append(f"  measured: mean {s['mean']:.1f} samples ({ms['mean']:.3f} ms), jitter "
                     f"{s['jitter']:.2f} samples, min {s['min']}, max {s['max']} "
                     f"({r['clicks_found']} of {r['clicks']} clicks found)")
    else:
        lines.append(f"  measured: no click came back ({r['clicks']} played): is the output "
                     f"connected to the input?")
    rep = r["reported"]
    ts = rep["timestamps_samples"]
    lines.append(f"  reported: PortAudio input + output latency "
                 f"{rep['portaudio_latency_samples']:.0f} samples; callback timestamps "
                 f"(DAC - ADC) {'-' if ts is None else f'{ts:.0f}'} samples")
    lines.append(f"  return path: {r['clicks_missing']} clicks missing, {r['dropped_samples']} "
                 f"samples dropped, {r['added_samples']} added, {r['repeated_blocks']} repeated "
                 f"blocks, {r['spurious_peaks']} pops; {r['callbacks_flagged']} callbacks "
                 f"flagged")
    return "\n".join(lines)
