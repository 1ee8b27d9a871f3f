"""Fixtures shared by every test directory."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
#: test inputs: speech, upstream manifests, a gain-and-meter manifest whose meter emits events
DATA = ROOT / "tests" / "data"


@pytest.fixture
def manifests_dir() -> Path:
    return MANIFESTS


@pytest.fixture
def remotemedia_cmd() -> list[str]:
    """The console script as a user runs it, from this interpreter's environment."""
    return [sys.executable, "-m", "remotemedia"]


def sine(freq: float = 440.0, seconds: float = 1.0, rate: int = 48000,
         amplitude: float = 0.5, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return x if channels == 1 else np.repeat(x[:, None], channels, axis=1)
