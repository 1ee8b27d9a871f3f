"""The logic around a lost device, without a server: the probe that tells a dead JACK server from
a running one (against real Unix sockets), and a close that never returns (a fake stream beside
the real thing in test_device_loss.py)."""

from __future__ import annotations

import atexit
import socket
import threading
import time
import types

import pytest

from remotemedia.engine.node import AudioFormat
from remotemedia.io import portaudio
from remotemedia.io.device_stream import CLOSE_TIMEOUT_S
from remotemedia.io.devices import DeviceInfo, DeviceLost, DeviceStream, jack_server_running


@pytest.fixture
def jack_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("JACK_TMPDIR", str(tmp_path))
    return tmp_path


def server_socket(folder, name: str) -> str:
    import os
    return str(folder / f"jack_{name}_{os.getuid()}_0")


def test_a_listening_server_socket_is_a_running_server(jack_dir):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(server_socket(jack_dir, "alive"))
        sock.listen(1)
        assert jack_server_running("alive") is True


def test_a_socket_left_by_a_killed_server_and_no_socket_are_no_server(jack_dir):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(server_socket(jack_dir, "killed"))   # the file stays, nobody listens
    assert jack_server_running("killed") is False
    assert jack_server_running("never-started") is False


def test_the_server_name_comes_from_jack_default_server(jack_dir, monkeypatch):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(server_socket(jack_dir, "named"))
        sock.listen(1)
        monkeypatch.setenv("JACK_DEFAULT_SERVER", "named")
        assert jack_server_running() is True
        monkeypatch.setenv("JACK_DEFAULT_SERVER", "other")
        assert jack_server_running() is False


def test_no_socket_folder_means_unknown(monkeypatch, tmp_path):
    monkeypatch.setenv("JACK_TMPDIR", str(tmp_path / "missing"))
    assert jack_server_running("x") is None


class HangingStream:
    """A PortAudio stream whose close waits forever, as Pa_CloseStream does on a dead JACK
    server."""

    def __init__(self):
        self.release = threading.Event()
        self.closing = threading.Event()
        self.active = False

    def close(self):
        self.closing.set()
        self.release.wait()


def make_stream(host_api: str = "JACK Audio Connection Kit") -> DeviceStream:
    dev = DeviceInfo(0, "system", host_api, 2, 2, 48000.0, True, True)
    return DeviceStream(AudioFormat(48000, 1, 960), input_device=dev, input_channels=1)


def test_closing_a_lost_stream_returns_within_a_block_period_and_abandons_portaudio(monkeypatch):
    exit_handler = lambda: None  # noqa: E731
    fake_sd = types.SimpleNamespace(_exit_handler=exit_handler)
    atexit.register(exit_handler)
    unregistered = []
    monkeypatch.setattr(portaudio.atexit, "unregister", lambda f: unregistered.append(f))
    stream = make_stream()
    hanging = HangingStream()
    stream._stream, stream._sd = hanging, fake_sd
    stream.lost_why = "the audio server went away"
    try:
        started = time.monotonic()
        stream.close()
        took = time.monotonic() - started
        assert hanging.closing.is_set()               # the close was tried, on another thread
        # and not waited for as a healthy stream's close is (CLOSE_TIMEOUT_S, 2 s): a lost
        # one gets a block period, and a loaded machine some slack beyond it
        assert took < CLOSE_TIMEOUT_S / 2
        assert stream.abandoned and stream.closed
        assert unregistered == [exit_handler]         # no Pa_Terminate for it at exit
        assert not stream.wakeup.closed               # a stuck stream may still ring it
        stream.close()                                # safe twice
    finally:
        hanging.release.set()
        atexit.unregister(exit_handler)


def test_the_lost_error_names_device_host_api_and_cause():
    stream = make_stream()
    stream.lost_why = "the audio server went away"
    err = stream.lost_error()
    assert isinstance(err, DeviceLost) and err.exit_code == 1
    assert err.stop_reason == "device_lost"
    assert str(err) == ("device 'system' (JACK Audio Connection Kit) stopped delivering audio: "
                        "the audio server went away")
    stream.wakeup.close()
