"""Manifests that attack, given to every command that reads one, as a user runs it: one line on
stderr, exit 2, no traceback, in bounded time and memory (each run has an address-space limit
that a normal run fits in with room to spare, and a timeout)."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import MANIFESTS

ADDRESS_SPACE = 2 << 30          # 2 GiB: the unbounded bomb needed 2.7 GB and minutes
TIMEOUT_S = 120                  # generous on a busy 2-core machine; before the fix: minutes


def _limit():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run(args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "remotemedia", *map(str, args)],
                          capture_output=True, text=True, timeout=TIMEOUT_S, cwd=cwd,
                          preexec_fn=_limit, env=env)


def laughs() -> str:
    """The billion laughs: nine levels of nine aliases, 9**9 strings written out."""
    lines = ["version: v1", "metadata:", '  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol",'
                                         '"lol","lol"]']
    for i in range(1, 9):
        lines.append(f"  l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]")
    lines += ["nodes: [{id: g, node_type: Gain, params: {db: -6}}]",
              "connections: [{from: input, to: g}, {from: g, to: output}]"]
    return "\n".join(lines) + "\n"


BOMBS = {
    "laughs.yaml": (laughs(), "expand to more than"),
    "brackets.yaml": ("[" * 100_000 + "]" * 100_000 + "\n", "nested deeper than"),
    "brackets.json": ('{"version": "v1", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}",
                      "nested deeper than"),
    "mappings.yaml": ("".join("  " * i + "k:\n" for i in range(300)), "nested deeper than"),
    "recursive.yaml": ("version: v1\nmetadata: &m {self: *m}\n", "contains it"),
    "huge.yaml": ("version: v1\n#" + "x" * (2 << 20) + "\n", "larger than"),
    "raises.yaml": ("version: v1\nnodes: [{id: x, node_type: 'rm_raises_at_import:Thing'}]\n"
                    "connections: [{from: input, to: x}, {from: x, to: output}]\n",
                    "importing module 'rm_raises_at_import' failed: RuntimeError: boom"),
    "exits.yaml": ("version: v1\nnodes: [{id: x, node_type: 'rm_exits_at_import:Thing'}]\n"
                   "connections: [{from: input, to: x}, {from: x, to: output}]\n",
                   "importing module 'rm_exits_at_import' failed: SystemExit: 3"),
}
IMPORTS = ["--allow-import", "rm_raises_at_import", "--allow-import", "rm_exits_at_import"]


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """Bombs, a short input, modules that fail at import, and a real recording."""
    d = tmp_path_factory.mktemp("attacks")
    for name, (text, _) in BOMBS.items():
        (d / name).write_text(text)
    (d / "rm_raises_at_import.py").write_text("import os\nraise RuntimeError('boom')\n")
    (d / "rm_exits_at_import.py").write_text("import sys\nsys.exit(3)\n")
    sf.write(d / "in.wav", np.zeros(4800, np.float32), 48000, subtype="FLOAT")
    done = run(["stream", "-m", MANIFESTS / "gain.yaml", "-i", f"file:{d / 'in.wav'}",
                "-o", "null", "--record", d / "rec"], d)
    assert done.returncode == 0, done.stderr
    return d


def env_with(place):
    import os
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(place), env.get("PYTHONPATH", "")]))
    return env


COMMANDS = {
    "validate": lambda m, d, o: ["validate", m, *IMPORTS],
    "convert-manifest": lambda m, d, o: ["convert-manifest", m, *IMPORTS],
    "stream": lambda m, d, o: ["stream", "-m", m, "-i", f"file:{d / 'in.wav'}", "-o", "null",
                            *IMPORTS],
    "batch": lambda m, d, o: ["batch", "--manifest", m, d / "in.wav", "--out", o,
                           *IMPORTS],
    "replay --manifest": lambda m, d, o: ["replay", d / "rec", "--manifest", m, *IMPORTS],
    "replay --compare": lambda m, d, o: ["replay", d / "rec", "--compare", m, *IMPORTS],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_normal_manifest_runs_under_the_same_limits(place, command, tmp_path):
    done = run(COMMANDS[command](MANIFESTS / "gain.yaml", place, tmp_path / "out"), place,
               env_with(place))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("bomb", BOMBS)
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_refuses_in_one_line(place, command, bomb, tmp_path):
    done = run(COMMANDS[command](place / bomb, place, tmp_path / "out"), place, env_with(place))
    words = BOMBS[bomb][1]
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and bomb in lines[0], lines[:5]
    assert not (tmp_path / "out").exists()       # refused before anything was written


def test_a_recording_whose_manifest_attacks_is_refused_in_one_line(place, tmp_path):
    rec = tmp_path / "rec"
    shutil.copytree(place / "rec", rec)
    (rec / "manifest.json").write_text(BOMBS["brackets.json"][0])
    done = run(["replay", rec], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "nested deeper than" in lines[0], lines[:5]


@pytest.mark.parametrize("bomb", ["laughs.yaml", "brackets.json", "huge.yaml"])
@pytest.mark.parametrize("command", [["validate", "-"], ["stream", "-m", "-", "-i", "silence",
                                                         "-o", "null", "-d", "0.1"]])
def test_a_manifest_on_stdin_is_bounded_too(place, command, bomb):
    with open(place / bomb, "rb") as stdin:
        done = subprocess.run([sys.executable, "-m", "remotemedia", *command], stdin=stdin,
                              capture_output=True, text=True, timeout=TIMEOUT_S, cwd=place,
                              preexec_fn=_limit)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and BOMBS[bomb][1] in lines[0] and "<stdin>" in lines[0], lines[:5]
