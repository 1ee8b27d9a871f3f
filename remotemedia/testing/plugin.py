"""The pytest plugin: registered through the `pytest11` entry point, so installing remotemedia
makes these fixtures available to any test suite.

- `rm_clock`: a MockClock (20 ms period, autojump)
- `rm_registry`: an isolated node registry (built-ins copied in), the harness's default for
  the test, discarded after it
- `rm_run`: `run_blocks` as a fixture, so a test needs no import
- `golden`: a Golden rooted at a `golden/` folder beside the test file; `--update-golden`
  (or REMOTEMEDIA_UPDATE_GOLDEN=1) rewrites the files instead of comparing
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser) -> None:
    """Adds `--update-golden`: golden files are rewritten from the actual results instead of
    compared."""
    group = parser.getgroup("remotemedia")
    group.addoption("--update-golden", action="store_true", default=False,
                    help="rewrite remotemedia golden files instead of comparing with them")


@pytest.fixture
def rm_clock():
    """A MockClock with a 0.02 s (960 samples at 48 kHz) block period, at time 0, simulated (rate
    0, autojump)."""
    from ..engine.node import DEFAULT_BLOCK_SIZE, DEFAULT_SAMPLE_RATE
    from .clock import MockClock
    return MockClock(DEFAULT_BLOCK_SIZE / DEFAULT_SAMPLE_RATE)


@pytest.fixture
def rm_registry():
    """An isolated node registry (testing.registry.isolated_registry): types registered in a test
    stay in it, and for that test it is the registry `run_blocks` (and `rm_run`) use when
    given none, so `rm_registry.register(MyNode)` is all a test needs."""
    from .registry import isolated_registry, use_registry
    with use_registry(isolated_registry()) as reg:
        yield reg


@pytest.fixture
def rm_run():
    """testing.run.run_blocks: push blocks through a manifest and collect the audio and events."""
    from .run import run_blocks
    return run_blocks


@pytest.fixture
def golden(request):
    """A Golden store for this test module: files under `golden/` beside it, rewritten instead of
    compared when pytest runs with --update-golden."""
    from .audio import Golden
    folder = Path(request.node.path).parent / "golden"
    update = request.config.getoption("--update-golden") or None
    return Golden(folder, update=update)
