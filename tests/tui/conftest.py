"""Helpers for the TUI tests: an accelerated real-time clock, a device that fails, and a check
that no runner thread outlives a test."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from remotemedia.app import RemoteMediaApp
from remotemedia.engine.errors import DeviceError
from remotemedia.io import spec as io_spec
from remotemedia.io.base import Source
from remotemedia.io.clock import RealtimeClock

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
RUNNER_THREAD = "remotemedia-runner"

#: the tests run the real-time loop ten times faster: 500 frames/s of 20 ms blocks, paced by
#: sleeping, so the UI thread stays responsive on two cores and no test waits long
SPEEDUP = 10.0


def fast_clock(period_s: float) -> RealtimeClock:
    return RealtimeClock(period_s / SPEEDUP)


class BrokenDevice(Source):
    """Behaves like an interface that is unplugged after `after` blocks."""

    realtime = True
    description = "test device that fails"

    def __init__(self, fmt, after: int = 10):
        super().__init__(fmt)
        self.after = after
        self.blocks_read = 0   # not `reads`: that is Source.reads(), the path check's

    def read(self):
        self.blocks_read += 1
        if self.blocks_read > self.after:
            raise DeviceError("test device vanished (unplugged)")
        return np.zeros(self.format.block_size, np.float32)


def make_source(spec: str, fmt, mode: str | None = None):
    if spec == "test:broken":
        return BrokenDevice(fmt)
    return io_spec.make_source(spec, fmt, mode=mode)


def make_app(tmp_path: Path, manifest: str | Path | None = MANIFESTS / "meter.yaml",
             input_spec: str = "sine:440", output_spec: str = "null", **kwargs) -> RemoteMediaApp:
    kwargs.setdefault("manifests_dir", MANIFESTS)
    app = RemoteMediaApp(manifest, input_spec, output_spec, stats_dir=tmp_path / "stats",
                         make_source=make_source, make_sink=io_spec.make_sink,
                         clock_factory=fast_clock, **kwargs)
    # Every message the app posts, kept: a toast expires after its timeout (10 s at most), and
    # a loaded CI machine can starve the test's wait that long (CI: the device-lost toast had
    # gone before the test looked).
    app.posted_notices = []
    post = app.notify

    def notify(message, *args, **kw):
        app.posted_notices.append(str(message))
        return post(message, *args, **kw)

    app.notify = notify
    return app


def runner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == RUNNER_THREAD and t.is_alive()]


async def wait_for(pilot, predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.05)


@pytest.fixture(autouse=True)
def no_runner_thread_left():
    before = set(runner_threads())
    yield
    leftover = [t for t in runner_threads() if t not in before]
    for t in leftover:
        t.join(10.0)
    assert not [t for t in leftover if t.is_alive()], "a runner thread outlived its test"
