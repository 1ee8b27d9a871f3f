"""When an output frame played, on the input's pts axis: the PlayClock (engine/playclock.py) of
a duplex device stream, from the tables its callback keeps (io/device_stream.py): the DAC time
each output frame started playing at (play_dac, by seq) and the ADC time of each block read
(seq_adc)."""

from __future__ import annotations

from .device_stream import _SEQ_MASK, DeviceStream


def played_at(stream: DeviceStream, seq: int, lead: float) -> float | None:
    """The input pts (samples, float) at which output frame `seq` began playing: its DAC time
    mapped onto the captured blocks' pts axis (block j spans pts j*block_size on, from its ADC
    time) through the newest block read, so a skipped block or a new stream after a reconnect
    re-anchors it; less `lead` (samples: lead_samples(stream)). None while the frame has not
    started playing, or before any block was read. Engine thread; allocates nothing."""
    j = stream.last_read
    k = seq & _SEQ_MASK
    # the callback writes a frame's tag after its DAC time: a tag seen means a time written
    if j < 0 or seq < 0 or stream.play_tag[k] != seq:
        return None
    i = j & _SEQ_MASK
    return j * stream.block_size + (float(stream.play_dac[k]) - float(stream.seq_adc[i])) \
        * stream.rate - lead


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


__all__ = ["lead_samples", "played_at"]
