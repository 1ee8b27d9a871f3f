"""PlayClock: when an output frame was played, on the input's media time.

A node that cancels its own output's echo (EchoCancel) must know where in the captured stream
each block it sent out came back. An output device knows the DAC time each output frame
started playing at and the ADC time each input block was captured at; a PlayClock hands the
two together to such a node, as one number per played frame: the input pts (samples, on the
near end's own pts axis) at which the frame's first sample sounded. The device layer provides
it (io/devices.py DeviceSink.play_clock); the runner gives it to every node that declares
`uses_play_clock = True`, before the first block. The engine itself imports no I/O: this is
the whole interface.
"""

from __future__ import annotations

from typing import Protocol


class PlayClock(Protocol):
    """What a device run knows about when its output played.

    `played_at(seq)`: the input pts (float, samples at the stream's rate, on the pts axis of
    the captured blocks) at which the output frame with this `seq` began playing (its DAC
    time, mapped through the ADC times of the captured blocks), or None while it has not
    started playing (still queued, dropped, or the seq is unknown). Called on the thread that
    pushes blocks; it allocates nothing and never blocks."""

    def played_at(self, seq: int) -> float | None:
        """The input pts (samples) at which output frame `seq` began playing, or None."""
        ...


__all__ = ["PlayClock"]
