"""`remotemedia replay DIR` of a stream recording as a verification: exit 0 when the replay is
identical to the recording, 1 when it differs (one line on stderr saying how), as cmp and
diff; 130/143 when a signal stops it, the --output it wrote kept whole."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import soundfile as sf

from tests.conftest import MANIFESTS
from tests.signal_support import CliRun, each_signal, handler_installed

RM = [sys.executable, "-m", "remotemedia"]


def _recording(folder, seconds: float):
    """A `stream --record` run of gain-and-meter over noise (events every 5 blocks)."""
    rec = folder / "rec"
    r = subprocess.run([*RM, "stream", "-m", str(MANIFESTS / "meter.yaml"), "-i", "noise",
                        "-o", "null", "-d", str(seconds), "--fast", "--record", str(rec), "-q",
                        "--events", "/dev/null"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return rec


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return _recording(tmp_path_factory.mktemp("rec"), 2.0)


def replay(rec, *args):
    return subprocess.run([*RM, "replay", str(rec), "--json", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def one_error_line(r) -> str:
    lines = [x for x in r.stderr.splitlines() if x.startswith("remotemedia: error:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_an_identical_replay_exits_0(recorded):
    r = replay(recorded)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.splitlines()[-1])
    assert result["identical"] is True and "error" not in r.stderr


@pytest.mark.parametrize("sample", [0, 50_000], ids=["first", "middle"])
def test_one_byte_changed_in_input_wav_exits_1_with_one_line(recorded, tmp_path, sample):
    bad = shutil.copytree(recorded, tmp_path / "tampered")
    data = bytearray((bad / "input.wav").read_bytes())
    at = data.find(b"data") + 8 + 4 * sample + 2      # a mantissa byte of that sample
    data[at] ^= 0x01
    (bad / "input.wav").write_bytes(bytes(data))
    r = replay(bad)
    assert r.returncode == 1, r.stderr
    result = json.loads(r.stdout.splitlines()[-1])
    assert result["identical"] is False
    assert result["vs_recording"]["output"]["first_difference"] == sample
    line = one_error_line(r)
    assert line == (f"remotemedia: error: replay {bad}: differs from the recording: the "
                    f"output differs from frame {sample} (96000 recorded, 96000 replayed)"
                    + ("; 1 event(s) differ" if result["vs_recording"]["events"]["count"]
                       else "")), line


def test_a_node_param_changed_in_the_recorded_manifest_exits_1_with_one_line(recorded,
                                                                            tmp_path):
    bad = shutil.copytree(recorded, tmp_path / "tampered")
    doc = json.loads((bad / "manifest.json").read_text())
    next(n for n in doc["nodes"] if n["id"] == "gain")["params"]["db"] = -5.0
    (bad / "manifest.json").write_text(json.dumps(doc))
    r = replay(bad)
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["identical"] is False
    line = one_error_line(r)
    assert "differs from the recording: the output differs from frame 0" in line, line
    assert "20 event(s) differ" in line, line       # every level reading, 1 dB up


@each_signal
def test_a_signal_stops_a_replay_keeping_its_output(tmp_path, sig, code, reason):
    rec = _recording(tmp_path, 60.0)
    out = tmp_path / "again.wav"
    # --realtime waits for each recorded arrival: a minute, so the signal lands mid-replay
    with CliRun(["replay", rec, "--realtime", "--output", f"file:{out}", "--json"]) as run:
        run.wait_ready(lambda: handler_installed(run.proc.pid) and out.exists()
                       and out.stat().st_size > 48000 * 4, "a second of audio replayed")
        done = run.stop(sig)
    done.assert_clean_stop(sig)
    result = done.report()
    assert result["stop_reason"] == reason and "identical" not in result
    replayed = result["blocks_replayed"]
    assert 50 <= replayed < result["blocks"] == 3000
    assert f"stopped ({reason}) after {replayed} of 3000 blocks" in done.stderr
    # the WAV is whole: every block replayed, each of them once
    assert sf.info(out).frames == result["replay"]["frames_out"] * 960
    assert result["replay"]["frames_in"] == replayed
