"""A third party adds a source scheme, a sink file extension and an observer kind with nothing
but an installed distribution's entry points, and a user runs them from the command line.

The distribution is a throwaway: a directory holding `rm_ramp_plugin-0.1.dist-info/` (METADATA,
entry_points.txt) and the module, put on the PYTHONPATH of the `remotemedia` subprocess, which
is all `importlib.metadata` needs to find it (no pip)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifests" / "passthrough.yaml"

MODULE = textwrap.dedent('''
    """rm_ramp_plugin: `ramp:BLOCKS` (blocks whose samples all equal the block's number),
    `file:PATH.levels` (one line per block: pts and the block's mean) and the observer
    `count:PATH`."""
    import json

    import numpy as np

    from remotemedia.engine.errors import RemoteMediaError
    from remotemedia.io.base import Sink, Source
    from remotemedia.observers import Observer


    class RampSource(Source):
        description = "ramp"

        def __init__(self, fmt, blocks):
            super().__init__(fmt)
            self.blocks, self.n = blocks, 0

        def read(self):
            if self.n >= self.blocks:
                return None
            self.n += 1
            return np.full(self.format.block_size, self.n, np.float32)


    class LevelsSink(Sink):
        def __init__(self, fmt, path):
            super().__init__(fmt)
            self.path, self.file = path, None
            self.description = f"levels {path}"

        def writes(self):
            return [("output", self.path)]

        def open(self):
            self.file = open(self.path, "x", encoding="utf-8")

        def write(self, frame):
            self.file.write(f"{frame.pts} {float(np.mean(frame.array)):g}\\n")

        def close(self):
            if self.file is not None:
                self.file.close()
                self.file = None


    def make_ramp(request):
        (blocks,) = request.numbers(("blocks",), (3.0,))
        if blocks != int(blocks) or blocks < 1:
            raise request.bad(f"blocks must be a whole number above 0, got {blocks:g}")
        return RampSource(request.fmt, int(blocks))


    def make_levels(request):
        return LevelsSink(request.fmt, request.path)


    def register_sources(registry):
        registry.add_scheme("ramp", make_ramp, usage="ramp:BLOCKS", generator=True)


    def register_sinks(registry):
        registry.add_extension(".levels", make_levels)


    class Count(Observer):
        """`count:PATH`: at the end, how many blocks went in and out, and the report's count."""

        def __init__(self, path):
            self.path, self.seen = path, {"in": 0, "out": 0, "final": 0, "started": 0}

        def run_started(self, event):
            self.seen["started"] += 1

        def block_in(self, event):
            self.seen["in"] += 1

        def block_out(self, event):
            self.seen["final" if event.final else "out"] += 1

        def run_ended(self, event):
            with open(self.path, "w", encoding="utf-8") as f:
                json.dump({**self.seen, "frames_in": event.stats["frames_in"],
                           "error": event.error is not None}, f)


    def make_count(runner, arg):
        if not arg:
            raise ValueError("count needs a path, as in count:blocks.json")
        return Count(arg)


    def register_observers(registry):
        registry.register("count", make_count)
''')

ENTRY_POINTS = textwrap.dedent('''
    [remotemedia.sources]
    ramp = rm_ramp_plugin:register_sources

    [remotemedia.sinks]
    levels = rm_ramp_plugin:register_sinks

    [remotemedia.observers]
    count = rm_ramp_plugin:register_observers
''')


def install(site: Path) -> None:
    """The throwaway distribution `rm-ramp-plugin` 0.1, installed into `site`."""
    dist = site / "rm_ramp_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rm-ramp-plugin\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "rm_ramp_plugin.py").write_text(MODULE)


def stream(site: Path | None, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site) if site else "",
                                                      env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "remotemedia", "stream", "-m", str(MANIFEST),
                           *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    install(site)
    return site


def test_a_plugin_source_scheme_and_sink_extension_run_from_the_cli(site, tmp_path):
    out = tmp_path / "x.levels"
    done = stream(site, "-i", "ramp:4", "-o", f"file:{out}", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.read_text().splitlines() == ["0 1", "960 2", "1920 3", "2880 4"]
    stats = json.loads(done.stdout.splitlines()[-1])
    assert stats["frames_in"] == stats["frames_out"] == 4
    assert stats["stop_reason"] == "end_of_input"


def test_a_plugin_generator_plays_on_the_virtual_device(site, tmp_path):
    out = tmp_path / "v.wav"
    done = stream(site, "-i", "virtual:ramp:2", "-o", f"file:{out}", "--fast", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    import soundfile as sf
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 48000 and np.array_equal(np.unique(audio), [1.0, 2.0])


def test_a_plugin_kind_refuses_bad_arguments_and_is_suggested(site, tmp_path):
    bad = stream(site, "-i", "ramp:0", "-o", "null", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].endswith(
        "bad input SPEC 'ramp:0': blocks must be a whole number above 0, got 0")
    near = stream(site, "-i", "rmap:2", "-o", "null", cwd=tmp_path)
    assert near.returncode == 2
    assert "did you mean 'ramp'" in near.stderr and "ramp:BLOCKS" in near.stderr
    assert "Traceback" not in bad.stderr + near.stderr


def test_without_the_distribution_neither_kind_exists(tmp_path):
    out = tmp_path / "x.levels"
    scheme = stream(None, "-i", "ramp:4", "-o", "null", cwd=tmp_path)
    assert scheme.returncode == 2 and "unknown input SPEC 'ramp:4'" in scheme.stderr
    ext = stream(None, "-i", "silence", "-o", f"file:{out}", "-d", "0.1", cwd=tmp_path)
    assert ext.returncode == 2 and "must be named *.wav" in ext.stderr
    assert not out.exists()


def test_a_plugin_that_fails_to_load_is_named_on_one_line(tmp_path):
    site = tmp_path / "site"
    install(site)
    (site / "rm_ramp_plugin.py").write_text("raise ImportError('no ramp today')\n")
    done = stream(site, "-i", "silence", "-o", "null", "-d", "0.1", cwd=tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "remotemedia.sources entry point 'ramp'" in last and "no ramp today" in last
    assert "Traceback" not in done.stderr


def test_a_plugin_observer_watches_the_run_beside_the_trace(site, tmp_path):
    counted, trace = tmp_path / "count.json", tmp_path / "trace.json"
    done = stream(site, "-i", "ramp:5", "-o", "null", "--observe", f"count:{counted}",
                  "--trace", str(trace), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(counted.read_text()) == {"in": 5, "out": 5, "final": 1, "started": 1,
                                               "frames_in": 5, "error": False}
    spans = [e for e in json.loads(trace.read_text())["traceEvents"]
             if e.get("name", "").startswith("block ")]
    assert len(spans) == 5                       # the tracer saw the same run


def test_an_unknown_or_refusing_observer_is_bad_input(site, tmp_path):
    events = tmp_path / "events.jsonl"
    near = stream(site, "-i", "ramp:2", "-o", "null", "--observe", "cuont:x",
                  "--events", str(events), cwd=tmp_path)
    assert near.returncode == 2 and "unknown observer 'cuont:x' (did you mean 'count'?)" \
        in near.stderr
    assert not events.exists()                   # refused before anything was opened
    bare = stream(site, "-i", "ramp:2", "-o", "null", "--observe", "count", cwd=tmp_path)
    assert bare.returncode == 2
    assert "bad observer 'count': count needs a path" in bare.stderr
    assert "Traceback" not in near.stderr + bare.stderr
