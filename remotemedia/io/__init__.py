"""Sources and sinks: where frames come from and go to. sounddevice is imported lazily, only
when a device is used, so `import remotemedia` works without PortAudio.

`sources` and `sinks` are the kind registries a SPEC is looked up in (registry.py): a package
adds a scheme or a file extension there, through the entry point groups `remotemedia.sources`
and `remotemedia.sinks`."""

from .base import Sink, Source
from .clock import Clock, RealtimeClock, SimulatedClock
from .registry import EndRegistry, EndRequest, sinks, sources

__all__ = ["Clock", "EndRegistry", "RealtimeClock", "EndRequest", "SimulatedClock", "Sink",
           "Source", "sinks", "sources"]
