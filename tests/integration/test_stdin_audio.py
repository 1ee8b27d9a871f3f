"""`stream -i -` reads an audio file on stdin as sox users pipe one in, and a WAV that a
streaming writer put on a pipe (sox writes 0x7ffff000 as its RIFF and data sizes, ffmpeg
0xffffffff: neither can seek back to fill them in) declares no length: every sample is read
and nothing is said missing. Before: `-i -` was an unknown SPEC, and `-i /dev/stdin` said
that 22,369 s of a 0.3 s pipe were missing. A truncated copy of a finished WAV still says so."""

from __future__ import annotations

import io
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]


def streamed_wav(x: np.ndarray, subtype: str, marker: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, 48000, format="WAV", subtype=subtype)
    data = bytearray(buf.getvalue())
    data[4:8] = struct.pack("<I", min(marker + 36, 0xFFFFFFFF))
    at = data.index(b"data")
    data[at + 4:at + 8] = struct.pack("<I", marker)
    return bytes(data)


def run(data: bytes, out, *extra):
    return subprocess.run([sys.executable, "-m", "remotemedia", "stream", "-m",
                           str(ROOT / "manifests/passthrough.yaml"), "-i", "-", "-o", str(out),
                           *extra], input=data, capture_output=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("subtype", SUBTYPES)
@pytest.mark.parametrize("channels", [1, 2])
def test_a_wav_streamed_to_a_pipe_is_read_whole_and_nothing_is_said_missing(
        tmp_path, subtype, channels):
    n = 14400 + 8 * channels      # even: a streamed 8-bit WAV has no pad byte to tell
    t = np.arange(n) / 48000.0
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    x = np.stack([x, -x], axis=1) if channels == 2 else x
    marker = 0x7FFFF000 if subtype in ("PCM_16", "FLOAT", "PCM_U8") else 0xFFFFFFFF
    out = tmp_path / "out.wav"
    proc = run(streamed_wav(x, subtype, marker), out,
               *(["--exact-format"] if channels == 1 else []))
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"missing" not in proc.stderr, proc.stderr.decode()
    got = sf.read(out, always_2d=True)[0]
    assert got.shape[0] == n


def test_a_truncated_finished_wav_on_stdin_still_says_what_is_missing(tmp_path):
    buf = io.BytesIO()
    sf.write(buf, np.zeros(14400, np.float32), 48000, format="WAV", subtype="PCM_16")
    data = buf.getvalue()[:44 + 2 * 9000]
    proc = run(data, tmp_path / "out.wav")
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"the input ended after 9000 of the 14400 samples" in proc.stderr, proc.stderr
