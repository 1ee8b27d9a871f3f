"""Helpers for tests against a real (virtual) audio server: JACK's dummy driver.

./run_test.sh starts `jackd --no-realtime -d dummy -r 48000 -p 960` before pytest and stops it
after pytest exits (a process that imported sounddevice aborts at exit if JACK dies under it, so
tests never start or stop the server themselves). Device tests skip, with the reason, only when
no server can be had; under CI (CI=true) they fail instead, so a broken CI setup cannot pass by
skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

JACK_RATE = 48000
JACK_PERIOD = 960
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true but device tests cannot run: {reason}")
    pytest.skip(reason)


def jack_running() -> bool:
    if shutil.which("jack_wait") is None:
        return False
    out = subprocess.run(["jack_wait", "-c"], capture_output=True, text=True, timeout=10)
    return out.stdout.strip() == "running"


_checked: list = []


def require_jack() -> None:
    """Skip (or fail under CI) unless a JACK server runs and PortAudio sees its device."""
    if _checked:
        if _checked[0] is not None:
            _unavailable(_checked[0])
        return
    reason = None
    if shutil.which("jackd") is None:
        reason = "jackd is not installed (Debian: jackd2); ./run_test.sh installs it as root"
    elif not jack_running():
        reason = ("no JACK server is running; ./run_test.sh starts one, or run "
                  "`jackd --no-realtime -d dummy -r 48000 -p 960 &` before pytest")
    else:
        from remotemedia.io import devices
        if not devices.portaudio_available():
            reason = "PortAudio is not installed (Debian: libportaudio2)"
        elif not any(d.host_api.startswith("JACK") for d in devices.list_devices()):
            reason = ("PortAudio shows no JACK device: the server was started after "
                      "sounddevice was imported in this process")
    _checked.append(reason)
    if reason is not None:
        _unavailable(reason)


def load_allowance(frames: int) -> int:
    """Blocks a busy 2-core machine may cost a real-time device run of `frames` blocks: a late
    block skipped to catch up or refused by a full ring (counted drops), an xrun. A quarter, at
    least three: beside two CPU hogs on a 2-core machine other test runs also loaded (load
    12), queued runs skipped up to 16% of their blocks; what these tests guard is that every
    block is accounted for and the run goes on. How clean a run is on a quiet machine is for
    benchmarks/bench_devices.py to say."""
    return max(3, frames // 4)


def assert_clean_under_load(stats: dict, frames: int) -> None:
    """The run captured `frames` blocks, accounted for every one (frames_in == frames_out +
    drops + in_flight), and lost at most load_allowance(frames) of them to drops and xruns."""
    assert stats["frames_in"] == frames, stats
    assert stats["frames_in"] == stats["frames_out"] + stats["drops"] + stats["in_flight"], \
        stats
    allowance = load_allowance(frames)
    assert stats["drops"] <= allowance, (stats["drops"], stats.get("device"))
    assert sum(stats["xruns"].values()) <= allowance, (stats["xruns"], stats.get("device"))


@pytest.fixture
def jack_device():
    """The JACK server's device as PortAudio lists it (skips without a server)."""
    require_jack()
    from remotemedia.io import devices
    return next(d for d in devices.list_devices() if d.host_api.startswith("JACK"))


# -- JACK ports ----------------------------------------------------------------------------------------

def jack_ports() -> set[str]:
    out = subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=10, check=True)
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def jack_connections() -> dict[str, set[str]]:
    """Each JACK port and the ports connected to it (the package's own reading of jack_lsp)."""
    from remotemedia.converse_live import jack_connections as read
    return read()


def jack_connections_polled() -> dict[str, set[str]]:
    """jack_connections() for a wait's predicate: {} ("not yet") when the JACK tool failed or
    timed out. The dummy server on a loaded machine stalled a `jack_lsp -c` past 10 s while a
    converse process registered its clients (a CI run); the wait's own deadline judges."""
    from remotemedia.engine.errors import DeviceError
    try:
        return jack_connections()
    except DeviceError:
        return {}


def jack_cmd(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, timeout=10)


def new_ports(before: set[str], timeout: float = 5.0) -> tuple[str, str]:
    """The (input, output) ports a stream opened after `before` was taken registered."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            added = jack_ports() - before
        except subprocess.SubprocessError:     # stalled: "not yet" (jack_connections_polled)
            added = set()
        ins = sorted(p for p in added if p.split(":")[-1].startswith("in_"))
        outs = sorted(p for p in added if p.split(":")[-1].startswith("out_"))
        if ins and outs:
            return ins[0], outs[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no new PortAudio ports appeared (new: {sorted(added)})")
        time.sleep(0.05)


def loop_back(in_port: str, out_port: str) -> None:
    """Cut the ports off the system ports and connect the output straight to the input."""
    conns = jack_connections()
    for other in conns.get(in_port, set()):
        jack_cmd("jack_disconnect", other, in_port)
    for other in conns.get(out_port, set()):
        jack_cmd("jack_disconnect", out_port, other)
    jack_cmd("jack_connect", out_port, in_port)
    assert jack_connections()[in_port] == {out_port}
