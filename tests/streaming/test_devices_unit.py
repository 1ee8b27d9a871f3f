"""Device plumbing that needs no audio server: the ring, the output queue, the doorbell, device
lookup by index and name, and the errors a user sees."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from remotemedia.engine.data import NumpyData
from remotemedia.engine.errors import DeviceError, DeviceNotFound, UsageError
from remotemedia.engine.node import AudioFormat
from remotemedia.io import device_stream, devices, portaudio
from remotemedia.io.devices import DeviceInfo, resolve_device
from remotemedia.io.ring import InputRing, OutputQueue, Wakeup


# -- InputRing ------------------------------------------------------------------------------------------

def block(value: float, frames: int = 8, channels: int = 1) -> np.ndarray:
    return np.full((frames, channels), value, dtype=np.float32)


def test_ring_hands_out_the_slot_it_copied_into_once():
    ring = InputRing(4, 8, 1)
    indata = block(0.25)
    assert ring.put(indata, adc_time=1.5, tick=7)
    got, slot = ring.get()
    assert got is ring.slots[slot] and got.shape == (8,)
    assert not np.shares_memory(got, indata)  # the one copy at the boundary
    assert np.all(got == 0.25)
    assert ring.adc_time[slot] == 1.5 and ring.tick[slot] == 7
    assert ring.get() is None


def test_ring_multichannel_slots_are_frames_by_channels():
    ring = InputRing(2, 8, 2)
    data = np.arange(16, dtype=np.float32).reshape(8, 2)
    assert ring.put(data, 0.0, 0)
    got, _ = ring.get()
    assert got.shape == (8, 2) and np.array_equal(got, data)


def test_ring_refuses_when_every_slot_is_queued():
    ring = InputRing(3, 8, 1)
    assert all(ring.put(block(i), 0.0, i) for i in range(3))
    assert not ring.put(block(9), 0.0, 3)
    assert ring.refused_full == 1 and ring.refused == 1 and ring.queued == 3
    got, _ = ring.get()
    assert np.all(got == 0)  # oldest first: the refused block was the newest
    del got


def test_ring_never_overwrites_a_slot_the_engine_still_holds():
    ring = InputRing(2, 8, 1)
    assert ring.put(block(1), 0.0, 0)
    kept, _ = ring.get()              # a node retains this frame
    frame = NumpyData(kept, sample_rate=48000)  # and views of it
    del kept
    assert ring.put(block(2), 0.0, 1)
    ring.get()  # handed out and dropped at once
    # slot 0 is next: still referenced through the frame's view, so the block is refused
    assert not ring.put(block(3), 0.0, 2)
    assert ring.refused_held == 1
    assert np.all(frame.array == 1)   # the retained frame was not overwritten
    del frame
    assert ring.put(block(4), 0.0, 3)  # released: the slot is reused, no allocation
    got, slot = ring.get()
    assert slot == 0 and np.all(got == 4)


# -- OutputQueue ----------------------------------------------------------------------------------------

def test_output_queue_holds_references_and_releases_them_on_the_producer_side():
    q = OutputQueue(2)
    a, b = block(1), block(2)
    assert q.put(a, 0) and q.put(b, 1)
    assert q.items[0] is a  # a reference, not a copy
    assert not q.put(block(3), 2)  # full
    q.consumed = 1  # the callback finished with `a`
    assert q.items[0] is a  # never released on the audio thread
    assert q.put(block(3), 2)
    assert all(item is not a for item in q.items)
    assert q.pending == 2


# -- Wakeup -----------------------------------------------------------------------------------------------

def test_wakeup_rings_across_threads_and_times_out_quietly():
    bell = Wakeup()
    try:
        assert not bell.wait(0.01)
        threading.Timer(0.02, bell.ring).start()
        assert bell.wait(60.0)    # True: rung, not timed out (however late the timer runs)
        bell.ring()
        bell.ring()
        assert bell.wait(0.0)     # two rings, one wake-up, cleared
        assert not bell.wait(0.0)
    finally:
        bell.close()
    bell.close()  # safe twice
    bell.ring()   # and ringing a closed bell does nothing


# -- device lookup ------------------------------------------------------------------------------------------

FAKE = [
    DeviceInfo(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)", "ALSA", 2, 2, 44100.0, False, False),
    DeviceInfo(1, "HDA Intel PCH: HDMI 0 (hw:0,3)", "ALSA", 0, 8, 44100.0, False, False),
    DeviceInfo(2, "pulse", "ALSA", 32, 32, 44100.0, False, False),
    DeviceInfo(3, "default", "ALSA", 32, 32, 44100.0, True, True),
    DeviceInfo(4, "system", "JACK Audio Connection Kit", 2, 2, 48000.0, False, False),
]


@pytest.fixture
def fake_devices(monkeypatch):
    monkeypatch.setattr(portaudio, "list_devices", lambda: list(FAKE))


def test_select_by_index_and_by_name_substring(fake_devices):
    assert resolve_device(4, "input").name == "system"
    assert resolve_device("4", "output").name == "system"
    assert resolve_device("SYSTEM", "input").index == 4
    assert resolve_device("ALC3246", "output").index == 0
    assert resolve_device("hdmi", "output").index == 1
    assert resolve_device("default", "input").index == 3  # exact name beats substrings


def test_a_device_without_channels_of_that_kind_is_not_selected(fake_devices):
    with pytest.raises(DeviceNotFound) as err:
        resolve_device("hdmi", "input")
    assert err.value.exit_code == 2
    with pytest.raises(DeviceNotFound) as err:
        resolve_device(1, "input")
    assert "has no input channels" in str(err.value) and err.value.exit_code == 2


def test_unknown_device_exits_2_and_lists_the_devices_there_are(fake_devices):
    with pytest.raises(DeviceNotFound) as err:
        resolve_device("scarlett", "input")
    msg = str(err.value)
    assert err.value.exit_code == 2
    assert "no input device matches 'scarlett'" in msg
    assert "4 'system' (JACK Audio Connection Kit)" in msg and "2 'pulse' (ALSA)" in msg
    assert "HDMI" not in msg  # not an input device
    assert "\n" not in msg
    with pytest.raises(DeviceNotFound) as err:
        resolve_device(17, "output")
    assert err.value.exit_code == 2 and "no output device with index 17" in str(err.value)


def test_an_ambiguous_name_names_the_candidates(fake_devices):
    with pytest.raises(DeviceNotFound) as err:
        resolve_device("hda intel", "output")
    assert err.value.exit_code == 2
    assert "matches 2 devices" in str(err.value) and "give an index" in str(err.value)


def test_a_bad_mode_is_a_usage_error(fake_devices):
    with pytest.raises(UsageError):
        devices.DeviceSource(AudioFormat(48000, 1, 960), "system", mode="threaded")


def test_too_many_channels_for_the_device(fake_devices):
    with pytest.raises(DeviceNotFound) as err:
        devices.DeviceSource(AudioFormat(48000, 4, 960), "system")
    assert err.value.exit_code == 2 and "has 2 input channel(s)" in str(err.value)


def test_missing_portaudio_is_one_clear_device_error(monkeypatch):
    class NoPortAudio:
        def find_spec(self, name, path=None, target=None):
            if name == "sounddevice":
                raise OSError("PortAudio library not found")
            return None

    monkeypatch.setattr(portaudio, "_sd", None)
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])
    with pytest.raises(DeviceError) as err:
        devices.list_devices()
    msg = str(err.value)
    assert "PortAudio library not found" in msg and "libportaudio2" in msg
    assert isinstance(err.value.__cause__, OSError)
    assert devices.default_device("input") == (None, msg)
    assert devices.portaudio_available() is False


def test_importing_remotemedia_does_not_import_sounddevice():
    import subprocess
    code = ("import sys, remotemedia, remotemedia.io.devices, remotemedia.runner; "
            "print('sounddevice' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_gc_is_frozen_while_streams_run_and_an_applications_own_freeze_is_kept():
    import gc
    gc.unfreeze()  # whatever an earlier test froze: start from a collector with nothing frozen
    device_stream._freeze_gc()
    device_stream._freeze_gc()                       # a second stream
    assert gc.get_freeze_count() > 0
    device_stream._unfreeze_gc()
    assert gc.get_freeze_count() > 0           # one stream still runs
    device_stream._unfreeze_gc()
    assert gc.get_freeze_count() == 0
    gc.freeze()                                # an application froze its heap itself
    try:
        device_stream._freeze_gc()
        device_stream._unfreeze_gc()
        assert gc.get_freeze_count() > 0       # and keeps it frozen
    finally:
        gc.unfreeze()
