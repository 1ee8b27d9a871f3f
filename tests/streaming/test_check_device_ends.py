"""The sound device's source and sink keep the rules check_source and check_sink check, on the
JACK server's device (a real PortAudio stream, paced by the server's clock)."""

from __future__ import annotations

import pytest

from remotemedia.engine.node import AudioFormat
from remotemedia.testing import check_sink, check_source
from remotemedia.testing.check_ends import SINK_RULES, SOURCE_RULES
from tests.streaming.device_support import JACK_PERIOD, jack_device  # noqa: F401

pytestmark = pytest.mark.device
FMT = AudioFormat(48000, 1, JACK_PERIOD)


def test_the_device_source_passes(jack_device):
    # queued mode: the runner reads it (in callback mode the device pushes blocks itself)
    from remotemedia.io.devices import DeviceSource
    report = check_source(lambda: DeviceSource(FMT, str(jack_device.index), mode="queued"),
                          blocks=10)
    assert report.passed == list(SOURCE_RULES)


def test_the_device_sink_passes(jack_device):
    report = check_sink(f"device:{jack_device.index}", fmt=FMT, blocks=10)
    assert report.passed == list(SINK_RULES)
