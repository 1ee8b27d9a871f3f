"""The upstream's voice-assistant pipeline files (va-local, va-hybrid, va-remote) are not
manifests even upstream: every command refuses them in one line saying what to change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "upstream-speech"


@pytest.mark.parametrize("name", ["va-local.yaml", "va-hybrid.yaml", "va-remote.yaml"])
@pytest.mark.parametrize("command", [["validate"], ["convert-manifest"],
                                     ["stream", "-i", "silence", "-o", "null", "-d", "1", "-m"]])
def test_a_pipeline_file_is_refused_saying_what_to_change(name, command, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "remotemedia", *command, str(DATA / name)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    for words in ("not a manifest", "'metadata'", "'config' to 'params'", "AudioInput"):
        assert words in proc.stderr
    assert list(tmp_path.iterdir()) == []
