"""The issue's cases, run as a user runs them: each with the right value, exit code and files."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

import remotemedia as rm
from remotemedia.engine.node import AudioFormat
from remotemedia.io.synth import SineSource
from remotemedia.io.virtual import NullSink
from remotemedia.runner import StreamRunner

from remotemedia.testing import chain, to_yaml

CMD = [sys.executable, "-m", "remotemedia"]


def run(args, cwd, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(CMD + list(args), capture_output=True, cwd=cwd, **kw)


def strict_loads(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-RFC-8259 token {c}"))


def one_line_error(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode(errors="replace").splitlines()
             if ln.startswith("remotemedia: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr.decode(errors="replace")
    return lines[0]


def test_ulaw_at_plus_60_db_is_a_clipped_file_and_exit_0(tmp_path):
    (tmp_path / "g.yaml").write_text(to_yaml(chain(("g", "Gain", {"db": 60}))))
    for subtype in ("ULAW", "ALAW", "PCM_16"):
        done = run(["stream", "-m", "g.yaml", "-i", "sine:440", "-o",
                    f"file:x.wav:{subtype}", "--duration", "1", "--json"], tmp_path)
        assert done.returncode == 0, done.stderr
        report = strict_loads(done.stdout.decode().splitlines()[-1])
        (repairs,) = report["sinks"].values()
        assert repairs["clipped"] > 40000 and repairs["non_finite"] == 0
        data, _ = sf.read(tmp_path / "x.wav")
        assert data.shape == (48000,) and np.abs(data).max() <= 1.0
        # +60 dB of a 0.5 sine is a square wave: positive half-cycles stay positive.
        t = np.arange(48000) / 48000
        want = np.sign(np.sin(2 * np.pi * 440 * t))
        agree = np.mean(np.sign(data)[np.abs(want) > 0] == want[np.abs(want) > 0])
        assert agree > 0.99


def test_nan_in_a_wav_is_counted_and_the_block_measured(tmp_path):
    t = np.arange(48000) / 48000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    x[20000] = np.nan
    sf.write(tmp_path / "nan.wav", x, 48000, subtype="FLOAT")
    (tmp_path / "m.yaml").write_text(to_yaml(chain(("m", "LevelMeter", {"every": 1}))))
    done = run(["stream", "-m", "m.yaml", "-i", "file:nan.wav", "-o", "file:out.wav:PCM_16",
                "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    readings = [strict_loads(line) for line in lines[:-1]]
    report = strict_loads(lines[-1])
    assert len(readings) == 50
    block20 = readings[20]
    assert block20["non_finite"] == 1
    assert block20["peak_dbfs"] == pytest.approx(-6.02, abs=0.02)
    assert block20["rms_dbfs"] == pytest.approx(-9.03, abs=0.05)
    assert all(r["non_finite"] == 0 for i, r in enumerate(readings) if i != 20)
    assert report["sinks"]["file out.wav (PCM_16)"]["non_finite"] == 1
    out, _ = sf.read(tmp_path / "out.wav", dtype="int16")
    assert out[20000] == 0                      # silence, not a -1.0 full-scale click


def test_a_node_emitting_nan_still_writes_strict_json(tmp_path, plugin_env):
    (tmp_path / "nan_node.py").write_text(
        "from remotemedia.engine.data import JsonData\n"
        "from remotemedia.engine.node import Node\n"
        "class Nan(Node):\n"
        "    node_type = 'Nan'\n"
        "    def process(self, frame):\n"
        "        return (frame, JsonData({'type': 'x', 'ratio': float('inf'),\n"
        "                                 'values': [1.0, float('nan')]}))\n")
    (tmp_path / "n.yaml").write_text(to_yaml(chain(("n", "nan_node:Nan"))))
    env = dict(plugin_env, PYTHONPATH=f"{tmp_path}:{plugin_env['PYTHONPATH']}")
    done = run(["stream", "-m", "n.yaml", "-i", "sine", "-o", "null", "--duration", "0.04",
                "--allow-import", "nan_node", "--json", "--events", "ev.jsonl"], tmp_path,
               env=env)
    assert done.returncode == 0, done.stderr
    events = [strict_loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert events[0] == {"type": "x", "ratio": None, "values": [1.0, None],
                         "non_finite": ["ratio", "values[1]"]}
    strict_loads(done.stdout.decode().splitlines()[-1])


def test_a_name_that_is_not_utf8_is_read(tmp_path):
    name = b"caf\xe9.wav"
    sf.write(os.fsencode(tmp_path) + b"/" + name, np.zeros(4800, np.float32), 48000)
    (tmp_path / "p.yaml").write_text(to_yaml(chain(("p", "PassThrough"))))
    done = subprocess.run([os.fsencode(sys.executable), b"-m", b"remotemedia", b"stream",
                           b"-m", b"p.yaml", b"-i", b"file:" + name, b"-o",
                           b"file:out\xff.wav", b"--json"], capture_output=True, cwd=tmp_path,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert strict_loads(done.stdout.decode().splitlines()[-1])["frames_in"] == 5
    assert b"caf\xe9.wav" in done.stderr          # named back as the bytes it was given
    assert sf.info(os.fsencode(tmp_path) + b"/out\xff.wav").frames == 4800


@pytest.mark.parametrize("how", ["events", "output", "symlink", "hardlink", "relative", "raw"])
def test_nothing_the_run_writes_may_overwrite_what_it_reads(tmp_path, how):
    take = tmp_path / "take.wav"
    sf.write(take, np.full(4800, 0.25, np.float32), 48000)
    before = take.read_bytes()
    (tmp_path / "p.yaml").write_text(to_yaml(chain(("p", "PassThrough"))))
    args = ["stream", "-m", "p.yaml", "-i", "file:take.wav"]
    if how == "events":
        args += ["-o", "null", "--events", "take.wav"]
    elif how == "output":
        args += ["-o", "file:take.wav:PCM_16"]
    elif how == "symlink":
        (tmp_path / "link.wav").symlink_to(take)
        args += ["-o", "file:link.wav"]
    elif how == "hardlink":
        os.link(take, tmp_path / "hard.wav")
        args += ["-o", "null", "--events", "hard.wav"]
    elif how == "relative":
        (tmp_path / "sub").mkdir()
        args += ["-o", "file:sub/../take.wav"]
    else:
        args = ["stream", "-m", "p.yaml", "-i", "raw:take.wav", "-o", "raw:./take.wav"]
    done = run(args, tmp_path)
    assert done.returncode == 2
    assert "is the same file as" in one_line_error(done.stderr)
    assert take.read_bytes() == before


@given(st.floats(0.0001, 3.0))
@settings(max_examples=40, deadline=None)
def test_duration_is_exactly_round_s_times_rate(seconds):
    pipeline = rm.Pipeline.from_manifest(chain(("p", "PassThrough")))
    fmt = AudioFormat(48000, 1, 960)
    sink = NullSink(fmt)
    StreamRunner(pipeline, SineSource(fmt, 440.0, 0.5), sink, duration=seconds).run()
    assert sink.samples == max(1, round(seconds * 48000))


def test_duration_1_001_writes_48048_samples(tmp_path):
    (tmp_path / "p.yaml").write_text(to_yaml(chain(("p", "PassThrough"))))
    done = run(["stream", "-m", "p.yaml", "-i", "sine", "-o", "file:d.wav", "--duration",
                "1.001"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert sf.info(tmp_path / "d.wav").frames == 48048


def test_tui_without_a_terminal_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "p.yaml").write_text(to_yaml(chain(("p", "PassThrough"))))
    done = run(["tui", "-m", "p.yaml"], tmp_path, stdin=subprocess.DEVNULL, timeout=30)
    assert done.returncode == 2
    assert "tui needs an interactive terminal" in one_line_error(done.stderr)
    assert b"\x1b" not in done.stdout + done.stderr     # no escape codes in the files


def test_file_size_limit_mid_run_exits_1_and_keeps_a_valid_file(tmp_path):
    (tmp_path / "p.yaml").write_text(to_yaml(chain(("p", "PassThrough"))))

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))

    done = run(["stream", "-m", "p.yaml", "-i", "sine", "-o", "file:big.wav",
                "--duration", "10", "--json"], tmp_path, preexec_fn=limit)
    assert done.returncode == 1
    line = one_line_error(done.stderr)
    assert "File too large (EFBIG)" in line and "as a valid file" in line
    report = strict_loads(done.stdout.decode().splitlines()[-1])
    info = sf.info(tmp_path / "big.wav")
    assert info.frames > 0 and info.frames % 960 == 0
    assert info.frames == report["frames_out"] * 960 - 960   # the failed block is not kept
