"""Every bad input, run as a user runs it: exit 2, one line on stderr, no traceback."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

BAD_MANIFESTS = {
    "unknown_type.yaml": "version: v1\nnodes:\n  - {id: g, node_type: Gian}\nconnections:\n"
                         "  - {from: input, to: g}\n  - {from: g, to: output}\n",
    "syntax.yaml": "version: v1\nnodes: [\n",
    "cycle.yaml": "version: v1\nnodes:\n  - {id: a, node_type: PassThrough}\n"
                  "  - {id: b, node_type: PassThrough}\nconnections:\n"
                  "  - {from: input, to: a}\n  - {from: a, to: b}\n  - {from: b, to: a}\n"
                  "  - {from: b, to: output}\n",
    "import.yaml": "version: v1\nnodes:\n  - {id: j, node_type: 'json:JSONDecoder'}\n"
                   "connections:\n  - {from: input, to: j}\n  - {from: j, to: output}\n",
    "bad_param.yaml": "version: v1\nnodes:\n  - {id: g, node_type: Gain, params: {db: loud}}\n"
                      "connections:\n  - {from: input, to: g}\n  - {from: g, to: output}\n",
}


@pytest.fixture
def files(tmp_path):
    t = np.arange(4800) / 48000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(tmp_path / "cd.wav", x, 44100)
    sf.write(tmp_path / "stereo.wav", np.stack([x, x], axis=1), 48000)
    sf.write(tmp_path / "ok.wav", x, 48000)
    sf.write(tmp_path / "three.wav", np.stack([x, x, x], axis=1), 48000)
    (tmp_path / "junk.wav").write_text("this is not audio")
    for name, text in BAD_MANIFESTS.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def run(cmd, cwd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=cwd)


CASES = [
    # (id, argv after "remotemedia", words expected in the message)
    ("bad input spec", ["stream", "-m", "{m}/passthrough.yaml", "--input", "bogus"],
     ["unknown input SPEC 'bogus'"]),
    ("bad sine", ["stream", "-m", "{m}/passthrough.yaml", "--input", "sine:loud"],
     ["frequency must be a number"]),
    ("bad output spec", ["stream", "-m", "{m}/passthrough.yaml", "--output", "speakers"],
     ["unknown output SPEC 'speakers'"]),
    ("bad subtype", ["stream", "-m", "{m}/passthrough.yaml", "--output", "file:o.wav:PCM_9"],
     ["cannot hold subtype 'PCM_9'"]),
    ("device", ["stream", "-m", "{m}/passthrough.yaml", "--input", "device:"],
     ["device: needs a name or an index"]),
    ("missing input file", ["stream", "-m", "{m}/passthrough.yaml", "--input",
                            "file:missing.wav"], ["input file not found: missing.wav"]),
    ("unreadable input", ["stream", "-m", "{m}/passthrough.yaml", "--input", "file:junk.wav"],
     ["cannot read junk.wav as audio"]),
    ("same file in and out", ["stream", "-m", "{m}/passthrough.yaml", "--input", "file:ok.wav",
                              "--output", "file:./ok.wav"], ["same file"]),
    ("missing output dir", ["stream", "-m", "{m}/passthrough.yaml", "--input", "file:ok.wav",
                            "--output", "file:nodir/out.wav"], ["directory does not exist"]),
    ("wav rate mismatch", ["stream", "-m", "{m}/passthrough.yaml", "--input", "file:cd.wav",
                           "--exact-format"], ["44100 Hz", "48000 Hz"]),
    ("wav channel mismatch", ["stream", "-m", "{m}/passthrough.yaml", "--input",
                              "file:stereo.wav", "--exact-format"], ["2 channel", "expects 1"]),
    ("no channel mix", ["stream", "-m", "{m}/passthrough.yaml", "--input", "file:three.wav"],
     ["three.wav", "3 channels", "expects 1", "no channel mix from 3 to 1"]),
    ("duration word", ["stream", "-m", "{m}/passthrough.yaml", "--duration", "forever"],
     ["--duration", "positive duration"]),
    ("duration negative", ["stream", "-m", "{m}/passthrough.yaml", "--duration=-3"],
     ["positive duration"]),
    ("duration zero", ["stream", "-m", "{m}/passthrough.yaml", "--duration", "0"],
     ["positive duration"]),
    ("duration inf", ["stream", "-m", "{m}/passthrough.yaml", "--duration", "inf"],
     ["positive duration"]),
    ("missing manifest", ["stream", "-m", "nowhere.yaml"], ["nowhere.yaml", "not found"]),
    ("no manifest flag", ["stream"], ["--manifest"]),
    ("unknown node type", ["stream", "-m", "unknown_type.yaml"],
     ["node 'g'", "unknown node type 'Gian'", "did you mean 'Gain'"]),
    ("yaml syntax", ["stream", "-m", "syntax.yaml"], ["syntax.yaml", "invalid YAML"]),
    ("cycle", ["stream", "-m", "cycle.yaml"], ["cycle"]),
    ("bad param", ["stream", "-m", "bad_param.yaml"], ["node 'g'", "param 'db'"]),
    ("import not allowed", ["stream", "-m", "import.yaml"],
     ["json:JSONDecoder", "allow it with --allow-import json"]),
    ("import not a node", ["stream", "-m", "import.yaml", "--allow-import", "json"],
     ["not a Node subclass"]),
    ("realtime and fast", ["stream", "-m", "{m}/passthrough.yaml", "--realtime", "--fast"],
     ["not allowed with"]),
    ("json on raw stdout", ["stream", "-m", "{m}/passthrough.yaml", "--output", "raw:-",
                            "--json"], ["--json", "raw:-"]),
    ("events file", ["stream", "-m", "{m}/passthrough.yaml", "--events", "nodir/e.jsonl",
                     "--input", "file:ok.wav"], ["--events", "nodir/e.jsonl"]),
    # refused only when the run opens them (root may write in /proc by its mode): the error
    # line alone, no start line or summary of a run that never stood, nothing left behind
    ("output not makeable", ["stream", "-m", "{m}/passthrough.yaml", "--input", "file:ok.wav",
                             "--output", "file:/proc/rm-x.wav"], ["--output", "/proc/rm-x.wav"]),
    ("trace not makeable", ["stream", "-m", "{m}/passthrough.yaml", "--input", "file:ok.wav",
                            "--output", "null", "--trace", "/proc/rm-t.json"],
     ["--trace", "/proc/rm-t.json"]),
    ("record not makeable", ["stream", "-m", "{m}/passthrough.yaml", "--input", "file:ok.wav",
                             "--output", "null", "--record", "/proc/rm-r"],
     ["--record", "/proc/rm-r"]),
    ("events not makeable", ["stream", "-m", "{m}/passthrough.yaml", "--input", "file:ok.wav",
                             "--output", "null", "--events", "/proc/rm-e.jsonl"],
     ["--events", "/proc/rm-e.jsonl"]),
    ("validate unknown type", ["validate", "unknown_type.yaml"], ["unknown node type 'Gian'"]),
    ("validate missing", ["validate", "nowhere.yaml"], ["not found"]),
    ("unknown command", ["frobnicate"], ["invalid choice"]),
]


@pytest.mark.parametrize("argv,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line(remotemedia_cmd, manifests_dir, files, argv, words):
    argv = [a.replace("{m}", str(manifests_dir)) for a in argv]
    proc = run(remotemedia_cmd + argv, cwd=files)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("remotemedia: error: ")
    for word in words:
        assert word in errors[0], errors[0]
    # Nothing else but the one-time note that `default` is the virtual device.
    others = [line for line in proc.stderr.splitlines()
              if line not in errors and "virtual device" not in line]
    assert others == [], proc.stderr
    assert proc.stdout == ""
