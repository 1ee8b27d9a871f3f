"""When an output frame played, on the input's pts axis: the PlayClock (engine/playclock.py) of
a duplex device stream, from the tables its callback keeps (io/device_stream.py): the callback
(tick) and offset each output frame started playing in (play_tick, play_offset), its DAC time
(play_dac), and the callback and ADC time of each block read (seq_capture_tick, seq_adc).

Two clocks say where a played sample comes back. The callbacks' count is exact (each callback
is one block of samples in and out) but knows nothing of the round trip outside the stream;
PortAudio's timestamps know the round trip but jitter (JACK's dummy driver dates each callback
by the system clock: a few samples from callback to callback, 23 at a stream's start, measured).
A reference placed by a fresh timestamp reading after each pause moves by that jitter from one
reply to the next, and a 48 kHz linear echo canceller loses its filter to a shift of a few
samples (issue 25: 0-9 dB ERLE where 12-15 held). So the count places, and the timestamps give
the round trip: their difference is held (SteadyPlayClock) and taken anew only when a reading
moves more than JITTER_S from it, a real change of the round trip (a device that lost a block,
a delay that jumped)."""

from __future__ import annotations

from .device_stream import _SEQ_MASK, DeviceStream

#: how far the timestamps may wander from the held round trip before it is taken anew (s):
#: above the jitter measured on JACK's dummy driver (samples; its worst callback 4 ms), far
#: below a real jump of the round trip (a lost block: 20 ms; the issue's test: 40 ms)
JITTER_S = 0.005


class SteadyPlayClock:
    """Where an output frame played, without the timestamps' jitter (module docstring): the
    frame's distance from the newest block read counted in callbacks and samples, plus the
    round trip the timestamps give, held while they stay within JITTER_S of it. One per
    stream (`reset()` for a new one). `played_at(stream, seq, lead)`: the input pts (samples,
    float) at which output frame `seq` began playing (its start mapped onto the captured
    blocks' pts axis, block j spanning pts j*block_size on, through the newest block read, so
    a skipped block or a new stream re-anchors it), less `lead` (samples: lead_samples());
    None while the frame has not started playing or before any block was read. `retaken`:
    times the held round trip was taken anew after the first reading (the timestamps moved
    beyond JITTER_S: a device whose delay changed, or a clock whose time base moved; they
    cannot tell which). Engine thread; allocates no arrays."""

    __slots__ = ("offset", "retaken")

    def __init__(self):
        self.offset: float | None = None     # timestamps - count (samples), held
        self.retaken = 0

    def reset(self) -> None:
        """A new stream: its callbacks count from 0, its round trip is measured anew."""
        self.offset = None

    def played_at(self, stream: DeviceStream, seq: int, lead: float) -> float | None:
        """The input pts at which output frame `seq` began playing (class docstring)."""
        j = stream.last_read
        k = seq & _SEQ_MASK
        if j < 0 or seq < 0 or stream.play_tag[k] != seq:
            return None
        i = j & _SEQ_MASK
        counted = (int(stream.play_tick[k]) - int(stream.seq_capture_tick[i])) \
            * stream.block_size + int(stream.play_offset[k])
        stamped = (float(stream.play_dac[k]) - float(stream.seq_adc[i])) * stream.rate
        off, held = stamped - counted, self.offset
        if held is None or abs(off - held) > JITTER_S * stream.rate:
            if held is not None:
                self.retaken += 1
            self.offset = held = off
        return j * stream.block_size + counted + held - lead


def lead_samples(stream: DeviceStream) -> float:
    """How much earlier than its DAC time a played sample may come back at the input, in
    samples. PortAudio dates a stream's round trip twice, and the two can disagree: the
    callback timestamps (DAC - ADC of one callback) and the stream's reported input + output
    latency. An echo cannot come back sooner than the shorter, so the difference (when the
    timestamps say more) is taken off. On JACK the timestamps count the system ports'
    latencies (capture 1 period, playback 3), which a port-to-port loop skips: two periods
    (tests/streaming/test_devices_loopback.py pins it). 0 elsewhere, and while no callback has
    dated a block."""
    ts = stream.timestamp_latency_s
    if ts is None:
        return 0.0
    lat_in, lat_out = stream.latency
    return max(0.0, ts - (lat_in + lat_out)) * stream.rate


__all__ = ["JITTER_S", "SteadyPlayClock", "lead_samples"]
