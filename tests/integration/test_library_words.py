"""What the libraries under the file ends say reaches users in our words: paths as typed (never
soundfile's b'/path' repr), mpg123's notes as one line (never its own lines on stderr), and a
recording's timeline numbers rounded to what they mean."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st

from remotemedia.record import _PLACES, _cell
from remotemedia.recording import TIMELINE_COLUMNS

CMD = [sys.executable, "-m", "remotemedia"]


def stream(cwd, *args):
    return subprocess.run(CMD + ["stream", *args], capture_output=True, timeout=120, cwd=cwd)


def tone_mp3(path, seconds=3.0):
    t = np.arange(int(48000 * seconds)) / 48000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48000)


@pytest.mark.parametrize("name", ["take.mp3", "take.flac", "take.wav", "caf\xe9.mp3",
                                  "sub dir/take.ogg"])
def test_unreadable_inputs_are_named_as_typed(tmp_path, manifests_dir, name):
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"\x00" * 64 + b"this is not audio" * 10)
    proc = stream(tmp_path, "-m", str(manifests_dir / "passthrough.yaml"), "-i",
                  os.fsencode(name), "-o", "null")
    err = proc.stderr.decode("utf-8", "surrogateescape")
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("remotemedia: error: cannot read "), err
    assert name in lines[0]                     # the path as the user typed it
    assert "b'" not in err and "b\"" not in err  # never soundfile's bytes repr
    assert "Note:" not in err and "resync" not in err   # mpg123's probing stays quiet


def test_mpg123_notes_are_one_line_of_ours(tmp_path, manifests_dir):
    # an MP3 cut short: its Xing frame declares more than the file holds, and mpg123 prints
    # "Warning: Xing stream size off by more than 1%" on fd 2 each time the header is read
    tone_mp3(tmp_path / "full.mp3")
    data = (tmp_path / "full.mp3").read_bytes()
    (tmp_path / "cut.mp3").write_bytes(data[:len(data) * 8 // 10])
    proc = stream(tmp_path, "-m", str(manifests_dir / "passthrough.yaml"), "-i", "cut.mp3",
                  "-o", "null")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    xing = [line for line in err.splitlines() if "Xing" in line]
    assert len(xing) == 1, err
    assert xing[0].startswith("remotemedia: cut.mp3: the decoder says: Xing stream size off")
    assert not any(line.startswith(("Warning:", "Note:")) for line in err.splitlines())
    # and the shortfall is still said, in its own line
    assert "samples its header declares" in err


def test_other_writes_to_fd2_during_a_header_read_pass_through(capfd, tmp_path):
    from remotemedia.io.decoder_noise import decoder_notes
    notes: list[str] = []
    with decoder_notes(notes):
        os.write(2, b"Warning: something from a decoder!\nsomeone else's line\n")
    assert notes == ["something from a decoder"]
    assert capfd.readouterr().err == "someone else's line\n"


@given(st.floats(min_value=-1e9, max_value=1e9) | st.just(math.nan), st.sampled_from([1, 7]))
def test_timeline_cells_are_rounded_to_what_they_mean(value, places):
    text = _cell(value, places)
    if math.isnan(value):
        assert text == ""
        return
    assert "e" not in text and text not in ("-0", "")
    decimals = text.partition(".")[2]
    assert len(decimals) <= places
    assert math.isclose(float(text), value, rel_tol=1e-12, abs_tol=0.51 * 10 ** -places)


def test_a_recording_timeline_has_no_float_noise(tmp_path, manifests_dir):
    proc = stream(tmp_path, "-m", str(manifests_dir / "meter.yaml"), "-i", "sine:440",
                  "-d", "0.5", "-o", "null", "--record", "rec")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "rec" / "timeline.csv", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert len(body) == 25 and tuple(header[:len(TIMELINE_COLUMNS)]) == TIMELINE_COLUMNS
    places = dict(zip(TIMELINE_COLUMNS, _PLACES))
    for row in body:
        for name, cell in zip(header, row):
            assert len(cell.partition(".")[2]) <= places.get(name, 1), (name, cell)
    # what replay and report read back is unchanged in meaning
    from remotemedia.recording import Recording
    rec = Recording(tmp_path / "rec")
    assert np.array_equal(rec.timeline["arrival_us"], np.arange(25) * 20000.0)
