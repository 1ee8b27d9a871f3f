"""Sources and sinks: where frames come from and go to. sounddevice is imported lazily, only
when a device is used, so `import remotemedia` works without PortAudio."""

from .base import Sink, Source
from .clock import Clock, RealtimeClock, SimulatedClock

__all__ = ["Clock", "RealtimeClock", "SimulatedClock", "Sink", "Source"]
