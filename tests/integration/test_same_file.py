"""No command writes over a file it reads, whichever command and whichever pair of roles: the
manifest, an `--allow-import` module, a list file, an input, against every file the command
writes (`--events`, `--trace`, `-o`, batch's summary, `convert-manifest -o`, the TUI's output).
Each case must exit 2 with one line naming both uses and leave the file byte for byte as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from remotemedia.testing import chain, to_yaml

CMD = [sys.executable, "-m", "remotemedia"]
MODULE = "X = 1  # a user's node module: a run must never truncate it\n"


def _setup(tmp_path):
    (tmp_path / "p.yaml").write_text(to_yaml(chain(("p", "PassThrough"))))
    (tmp_path / "mynodes.py").write_text(MODULE)
    sf.write(tmp_path / "take.wav", np.full(4800, 0.25, np.float32), 48000)
    (tmp_path / "out").mkdir()
    # a JSON manifest inside batch's --out, where batch writes summary.json
    (tmp_path / "out" / "summary.json").write_text(
        '{"version": "v1", "nodes": [{"id": "p", "node_type": "PassThrough"}], '
        '"connections": [{"from": "input", "to": "p"}, {"from": "p", "to": "output"}]}')


# (the file that must survive, the command)
CASES = {
    "stream --events over the manifest":
        ("p.yaml", ["stream", "-m", "p.yaml", "-i", "take.wav", "-o", "null",
                    "--events", "p.yaml"]),
    "stream --trace over the manifest":
        ("p.yaml", ["stream", "-m", "p.yaml", "-i", "take.wav", "-o", "null",
                    "--trace", "./p.yaml"]),
    "stream -o raw: over the manifest":
        ("p.yaml", ["stream", "-m", "p.yaml", "-i", "take.wav", "-o", "raw:p.yaml"]),
    "stream --events over an --allow-import module":
        ("mynodes.py", ["stream", "-m", "p.yaml", "-i", "take.wav", "-o", "null",
                        "--allow-import", "mynodes", "--events", "mynodes.py"]),
    "convert-manifest -o over an --allow-import module":
        ("mynodes.py", ["convert-manifest", "p.yaml", "--allow-import", "mynodes",
                        "-o", "mynodes.py"]),
    "batch whose manifest is OUT/summary.json":
        ("out/summary.json", ["batch", "-m", "out/summary.json", "take.wav", "--out", "out",
                              "-w", "1"]),
    "batch whose list file is OUT/summary.json":
        ("out/summary.json", ["batch", "-m", "p.yaml", "@out/summary.json", "--out", "out",
                              "-w", "1"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_command_writes_over_what_it_reads(tmp_path, case):
    _setup(tmp_path)
    kept, args = CASES[case]
    if "@out/summary.json" in args:
        (tmp_path / "out" / "summary.json").write_text("take.wav\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    done = subprocess.run(CMD + args, capture_output=True, cwd=tmp_path, timeout=120)
    err = done.stderr.decode(errors="replace")
    assert done.returncode == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("remotemedia: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "is the same file as" in lines[0]
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before, f"{kept} changed"
    assert not (tmp_path / "out" / "reports").exists()   # nothing was made either


def test_tui_refuses_an_output_that_is_its_input(tmp_path):
    """The in-process TUI checked nothing: `tui -i take.wav -o take.wav` replaced the input with
    the run's output. It is refused before the screen changes, as stream refuses it."""
    _setup(tmp_path)
    before = (tmp_path / "take.wav").read_bytes()
    primary, secondary = os.openpty()    # a terminal, so the TUI would start
    try:
        done = subprocess.run(CMD + ["tui", "-m", "p.yaml", "-i", "take.wav", "-o",
                                     "./take.wav"],
                              stdin=secondary, stdout=secondary, stderr=subprocess.PIPE,
                              cwd=tmp_path, timeout=60, env={**os.environ, "TERM": "xterm"})
    finally:
        os.close(secondary)
        os.close(primary)
    err = done.stderr.decode(errors="replace")
    assert done.returncode == 2, err
    assert "take.wav is the same file as --input take.wav" in err
    assert "Traceback" not in err
    assert (tmp_path / "take.wav").read_bytes() == before
