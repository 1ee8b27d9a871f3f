"""The TUI with sound devices: the picker lists what PortAudio sees, the device mode reaches the
source, and with a device at both ends the end-to-end latency is shown.

The picker tests use a fake device list; the live test runs against JACK's dummy driver (the
virtual audio server run_test.sh starts) and skips without it (fails under CI)."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList, RadioSet, Sparkline

from remotemedia.io import devices
from remotemedia.runner import FAILED, RUNNING
from remotemedia.tui.choices import device_choices
from remotemedia.tui.screens import IoPicker

from .conftest import make_app, runner_threads, wait_for
from .test_app import SIZE, digits, open_screen, press, text_of

FAKE_DEVICES = [
    devices.DeviceInfo(0, "Built-in Mic", "ALSA", 2, 0, 48000.0, True, False),
    devices.DeviceInfo(1, "Speakers", "ALSA", 0, 2, 48000.0, False, True),
    devices.DeviceInfo(2, "Interface 8x8", "JACK Audio Connection Kit", 8, 8, 48000.0, False,
                       False),
]


@pytest.fixture
def fake_devices(monkeypatch):
    monkeypatch.setattr(devices, "portaudio_available", lambda: True)
    monkeypatch.setattr(devices, "list_devices", lambda: list(FAKE_DEVICES))


def test_device_choices_list_inputs_and_outputs_with_defaults_marked(fake_devices):
    inputs, outputs, problem = device_choices()
    assert problem is None
    assert [c.spec for c in inputs] == ["device:0", "device:2"]
    assert [c.spec for c in outputs] == ["device:1", "device:2"]
    assert inputs[0].description == "★ Built-in Mic (ALSA, 2 ch)"
    assert inputs[1].description == "Interface 8x8 (JACK, 8 ch)"
    assert outputs[0].description.startswith("★ Speakers")
    assert not inputs[1].description.startswith("★")


def test_device_choices_say_why_there_are_none(monkeypatch):
    monkeypatch.setattr(devices, "portaudio_available", lambda: False)
    inputs, outputs, problem = device_choices()
    assert (inputs, outputs) == ([], [])
    assert "PortAudio" in problem


async def test_picker_offers_devices_first_and_passes_the_mode(tmp_path, fake_devices):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 10, "frames to flow")
        picker = await open_screen(pilot, "d", IoPicker, "#mode-set")
        specs = [c.spec for c in picker.inputs]
        assert specs[:2] == ["device:0", "device:2"] and "sine:440" in specs
        assert [c.spec for c in picker.outputs][:2] == ["device:1", "device:2"]
        # choose callback mode, keep the (generator) input: that cannot run in callback mode
        mode_set = picker.query_one("#mode-set", RadioSet)
        # focus() before the picker is laid out does nothing: wait for its region first
        await wait_for(pilot, lambda: mode_set.region.area > 0, "the picker laid out")
        mode_set.focus()
        await wait_for(pilot, lambda: mode_set.has_focus, "the mode buttons focused")
        await press(pilot, "right", "enter")
        await wait_for(pilot, lambda: picker.chosen_mode == "callback", "callback chosen")
        picker.query_one("#output-list", OptionList).focus()
        await pilot.pause(0.05)
        picker.query_one("#output-list", OptionList).highlighted = \
            [c.spec for c in picker.outputs].index("null")
        await press(pilot, "enter")
        await wait_for(pilot, lambda: app.snapshot.state == FAILED, "the start to be refused")
        assert app.mode == "callback"
        assert "callback mode runs the graph in the input device's audio callback" \
            in text_of(app, "#state")
        assert app.runner is None or app.runner.state != RUNNING
        assert runner_threads() == []
        await press(pilot, "q")


# -- against the virtual audio server --------------------------------------------------------------

@pytest.mark.device
@pytest.mark.parametrize("mode", ["queued", "callback"])
async def test_a_device_at_both_ends_shows_end_to_end_latency(tmp_path, mode):
    from tests.streaming.device_support import require_jack
    require_jack()
    jack = next(d for d in devices.list_devices() if d.host_api.startswith("JACK"))
    spec = f"device:{jack.index}"
    app = make_app(tmp_path, input_spec=spec, output_spec=spec, mode=mode)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: (app.snapshot.stats or {}).get("latency_us", {})
                       .get("end_to_end") is not None, "end-to-end latency", timeout=15)
        await wait_for(pilot, lambda: len(app.snapshot.end_to_end_us or ()) >= 5,
                       "end-to-end samples")
        e2e = text_of(app, "#e2e-latency .latency-stats")
        assert "p50" in e2e and "p99" in e2e and "live devices" not in e2e
        assert app.query_one("#e2e-latency Sparkline", Sparkline).display
        assert f"{mode} · JACK" in text_of(app, "#io-line")
        assert digits(app, "serialization") == 0
        await press(pilot, "q")
    assert runner_threads() == []
