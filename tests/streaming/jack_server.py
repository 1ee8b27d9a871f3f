"""A JACK dummy server of a test's own, to kill and start again without disturbing the suite's.

    with JackServer("loss-1") as server:          # jackd -n <name> -d dummy -r 48000 -p 960
        env = server.env()                         # JACK_DEFAULT_SERVER=<name> for clients
        ... run remotemedia with env ...
        server.kill()                              # SIGKILL by default, as a crash would
        server.start()                             # the same server comes back

Names are stable per checkout (a hash of the repository path and the caller's label), not per
process: jackd keeps a machine-wide registry of at most 8 servers (/dev/shm/jack-shm-registry),
a killed server's entry stays behind, and only a server of the same name reclaims it. So every
exit path leaves the registry as it found it: a server that was killed is started once more and
stopped with SIGTERM, which unregisters it, and a rerun after an interrupted session reclaims the
name it left.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.streaming.device_support import IN_CI, JACK_PERIOD, JACK_RATE

ROOT = Path(__file__).resolve().parents[2]


def require_jackd() -> None:
    """Skip (fail under CI) where jackd or PortAudio is not installed."""
    import ctypes.util
    reason = None
    if shutil.which("jackd") is None or shutil.which("jack_wait") is None:
        reason = "jackd is not installed (Debian: jackd2); ./run_test.sh installs it as root"
    elif ctypes.util.find_library("portaudio") is None:
        reason = "PortAudio is not installed (Debian: libportaudio2)"
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but device-loss tests cannot run: {reason}")
        pytest.skip(reason)


class JackServer:
    def __init__(self, label: str):
        digest = hashlib.sha1(str(ROOT).encode()).hexdigest()[:6]
        self.name = f"rmtest-{digest}-{label}"
        self.proc: subprocess.Popen | None = None
        self.killed = False
        self.frozen = False

    def env(self, base: dict | None = None) -> dict:
        """The environment a client of this server runs with."""
        return {**(base if base is not None else os.environ), "JACK_DEFAULT_SERVER": self.name,
                "JACK_NO_AUDIO_RESERVATION": "1", "REMOTEMEDIA_DEFAULT_DEVICE": ""}

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it takes clients. jackd 1.9.21 now and then refuses
        the first client of a server just started again under the name of one killed a moment
        before ("NotifyAddClient ... fails"): that start is tried once more."""
        try:
            self._start(timeout)
        except AssertionError:
            self._start(timeout)

    def _start(self, timeout: float) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen(
            ["jackd", "-n", self.name, "--no-realtime", "-d", "dummy", "-r", str(JACK_RATE),
             "-p", str(JACK_PERIOD)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=self.env(), start_new_session=True)
        done = subprocess.run(["jack_wait", "-w", "-t", str(int(timeout))], env=self.env(),
                              capture_output=True, text=True, timeout=timeout + 5)
        if done.returncode != 0 or self.proc.poll() is not None:
            err = self._stop(signal.SIGTERM)
            raise AssertionError(f"jackd -n {self.name} did not start: {err}")
        self.killed = False

    def kill(self, sig: int = signal.SIGKILL) -> float:
        """Stop the server with `sig`; returns time.monotonic() when the signal was sent."""
        t = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)
        self.killed = sig == signal.SIGKILL
        return t

    def freeze(self) -> float:
        """SIGSTOP: a server that hangs without dying (its clients get no callback and no
        shutdown notice); returns time.monotonic() when the signal was sent."""
        t = time.monotonic()
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True
        return t

    def _stop(self, sig: int) -> str:
        proc, self.proc = self.proc, None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        return (err or b"").decode(errors="replace").strip()[-300:]

    def close(self) -> None:
        if self.frozen and self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGKILL)   # a stopped jackd may not finish a SIGTERM
            self.frozen = False
        if self.proc is not None and self.proc.poll() is None:
            self._stop(signal.SIGTERM)
        elif self.killed:
            # Its registry entry is still there: reclaim it, then unregister cleanly.
            self.start()
            self._stop(signal.SIGTERM)
        self.proc = None
        # A client that died with its server leaves its semaphore behind.
        for path in Path("/dev/shm").glob(f"jack_sem.*_{self.name}_*"):
            path.unlink(missing_ok=True)

    def __enter__(self) -> "JackServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
