"""Shell habits, from the command line as users type them: `-` for stdin/stdout, a closed pipe,
a bare path as a file, --version/-q/-v, durations, list files with a BOM, completion, a
pipeline on one line, a TUI on a terminal that cannot draw."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings, strategies as st

from remotemedia.cli import parse_duration
from remotemedia.engine.errors import ManifestError
from remotemedia.engine.graphline import parse_graph, snake_case
from remotemedia.engine.manifest import load_manifest

RM = [sys.executable, "-m", "remotemedia"]


def run(args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(RM + args, **kw)


def run_into_closed_pipe(args, cwd=None, stdin=None):
    """Run with stdout a pipe whose reader has already gone (as `| head` after its line):
    every write gets EPIPE. Returns (exit code, stderr)."""
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run(RM + args, stdout=w, stderr=subprocess.PIPE, text=True,
                              timeout=120, cwd=cwd, input=stdin)
    finally:
        os.close(w)
    return proc.returncode, proc.stderr


# -- a closed pipe --------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["nodes"], ["nodes", "--json"], ["devices"], ["ps"], ["ps", "--json"],
    ["validate", "manifests/gain.yaml"], ["convert-manifest", "manifests/gain.yaml"],
    ["completion", "bash"],
    ["stream", "-m", "manifests/meter.yaml", "-i", "sine", "-o", "null", "-d", "2"],
    ["stream", "-m", "manifests/gain.yaml", "-i", "sine", "-o", "null", "-d", "1", "--json"],
    ["stream", "-m", "manifests/gain.yaml", "-i", "sine", "-o", "raw:-", "-d", "1"],
], ids=lambda a: " ".join(a[:2]))
def test_a_reader_that_went_away_ends_the_command_quietly(args, manifests_dir):
    code, err = run_into_closed_pipe(args, cwd=manifests_dir.parent)
    assert code == 141, err          # 128 + SIGPIPE, what a shell shows for any Unix tool
    assert "Traceback" not in err and "error:" not in err, err


# -- `-` is stdin or stdout -----------------------------------------------------------------

def test_dash_is_stdout_for_events_trace_and_convert(tmp_path, manifests_dir):
    proc = run(["stream", "-m", str(manifests_dir / "meter.yaml"), "-i", "sine", "-o", "null",
                "-d", "0.5", "--events", "-"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    readings = [json.loads(line) for line in proc.stdout.splitlines()]
    assert readings and all(r["type"] == "level" for r in readings)
    proc = run(["stream", "-m", str(manifests_dir / "meter.yaml"), "-i", "sine", "-o", "null",
                "-d", "0.5", "--events", str(tmp_path / "ev.jsonl"), "--trace", "-"],
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["traceEvents"]
    proc = run(["convert-manifest", str(manifests_dir / "gain.yaml"), "-o", "-"], cwd=tmp_path)
    assert proc.returncode == 0 and "node_type: Gain" in proc.stdout
    assert not (tmp_path / "-").exists()          # no file named '-' from any of them


def test_dash_reads_a_manifest_from_stdin(manifests_dir, tmp_path):
    text = (manifests_dir / "gain.yaml").read_text()
    proc = run(["validate", "-"], input=text)
    assert proc.returncode == 0 and proc.stdout.startswith("<stdin>: ok"), proc.stderr
    out = tmp_path / "out.wav"
    proc = run(["stream", "-m", "-", "-i", "sine", "-o", str(out), "-d", "0.5"], input=text)
    assert proc.returncode == 0, proc.stderr
    assert sf.info(str(out)).frames == 24000
    proc = run(["validate", "-"], input="version: v1\nnodes: [\n")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "<stdin>" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, clash", [
    (["--trace", "-"], "events"),
    (["--trace", "-", "--events", "EV", "--json"], "--json"),
    (["--events", "-", "-o", "raw:-"], "raw:-"),
])
def test_two_users_of_stdout_are_refused_before_anything_runs(args, clash, tmp_path,
                                                              manifests_dir):
    args = [a.replace("EV", str(tmp_path / "ev.jsonl")) for a in args]
    proc = run(["stream", "-m", str(manifests_dir / "meter.yaml"), "-i", "sine", "-d", "0.2",
                *(["-o", "null"] if "-o" not in args else []), *args], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert clash in proc.stderr and "stdout" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# -- a bare path is a file; one device syntax -------------------------------------------------

def test_a_bare_path_is_a_file_at_both_ends(tmp_path, manifests_dir):
    take = tmp_path / "take.wav"
    sf.write(str(take), (0.25 * np.sin(np.arange(48000) / 10)).astype(np.float32), 48000,
             subtype="FLOAT")
    proc = run(["stream", "-i", "take.wav", "-o", "out.wav", "-m",
                str(manifests_dir / "passthrough.yaml")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(sf.read(str(tmp_path / "out.wav"), dtype="float32")[0],
                          sf.read(str(take), dtype="float32")[0])
    # a subtype after a bare path, as after file:
    proc = run(["stream", "-i", "./take.wav", "-o", "out16.wav:PCM_16", "-m",
                str(manifests_dir / "passthrough.yaml")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sf.info(str(tmp_path / "out16.wav")).subtype == "PCM_16"
    # a mistyped SPEC name is still a SPEC error with a suggestion, not "file not found"
    proc = run(["stream", "-i", "sin", "-o", "null", "-m",
                str(manifests_dir / "passthrough.yaml")], cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean 'sine'" in proc.stderr


def test_latency_takes_the_device_syntax_of_stream():
    from remotemedia import latency

    seen = []

    class Devices:
        @staticmethod
        def default_device(kind):
            return 7, "the system's"

        @staticmethod
        def resolve_device(spec, kind):
            seen.append(spec)
            return spec

    for spec in ("device:system", "system", " device:3 ", "default", "device:default"):
        latency._device(Devices, spec, "input")
    assert seen == ["system", "system", "3", 7, 7]


# -- --version, -q, -v ----------------------------------------------------------------------

def test_version_quiet_and_verbose(manifests_dir):
    from remotemedia import __version__
    for flag in ("--version", "-V"):
        proc = run([flag])
        assert proc.returncode == 0 and proc.stdout.strip() == f"remotemedia {__version__}"
    loud = run(["stream", "-m", str(manifests_dir / "gain.yaml"), "-i", "sine", "-o", "null",
                "-d", "0.2"])
    assert loud.returncode == 0 and "frames in" in loud.stderr
    for args in (["-q", "stream"], ["stream", "-q"]):
        proc = run([*args, "-m", str(manifests_dir / "gain.yaml"), "-i", "sine", "-o", "null",
                    "-d", "0.2"])
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    # -q keeps errors
    proc = run(["-q", "stream", "-m", "nothere.yaml", "-i", "sine", "-o", "null"])
    assert proc.returncode == 2 and "nothere.yaml" in proc.stderr


# -- durations -------------------------------------------------------------------------------

@given(h=st.integers(0, 3), m=st.integers(0, 59), s=st.integers(0, 59),
       ms=st.integers(0, 999))
@settings(max_examples=200, deadline=None)
def test_every_duration_spelling_means_the_same_seconds(h, m, s, ms):
    seconds = h * 3600 + m * 60 + s + ms / 1000
    if seconds == 0:
        return
    units = "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s"), (ms, "ms")) if v)
    assert parse_duration(units) == pytest.approx(seconds)
    assert parse_duration(f"{seconds!r}") == pytest.approx(seconds)
    assert parse_duration(f"{seconds!r}s") == pytest.approx(seconds)
    frac = f"{s + ms / 1000:06.3f}"
    assert parse_duration(f"{h * 60 + m}:{frac}") == pytest.approx(seconds)
    assert parse_duration(f"{h}:{m:02d}:{frac}") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0", "-1", "inf", "nan", "1:60", "1:75:00", "30s1m",
                                  "1m1m", "abc", "1::2", "s", "", "1:-2", "0s", "0:00"])
def test_a_duration_that_means_nothing_is_refused(text):
    import argparse
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_duration_flags_take_the_spellings_from_the_command_line(manifests_dir, tmp_path):
    out = tmp_path / "o.wav"
    proc = run(["stream", "-m", str(manifests_dir / "gain.yaml"), "-i", "sine", "-o",
                str(out), "-d", "0:01.5"])
    assert proc.returncode == 0, proc.stderr
    assert sf.info(str(out)).frames == 72000


# -- text files a user writes may start with a BOM -------------------------------------------

@pytest.mark.parametrize("kind", ["manifest-yaml", "manifest-json", "list", "arrivals"])
def test_a_byte_order_mark_changes_nothing(kind, tmp_path, manifests_dir):
    bom = "\ufeff"
    if kind.startswith("manifest"):
        doc = {"version": "v1", "nodes": [{"id": "g", "node_type": "Gain",
                                           "params": {"db": -3}}],
               "connections": [{"from": "input", "to": "g"}, {"from": "g", "to": "output"}]}
        suffix = ".json" if kind.endswith("json") else ".yaml"
        text = json.dumps(doc)
        plain, marked = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
        plain.write_text(text, encoding="utf-8")
        marked.write_text(bom + text, encoding="utf-8")
        assert load_manifest(str(marked)).order == load_manifest(str(plain)).order == ("g",)
    elif kind == "list":
        from remotemedia.batch import expand_inputs
        (tmp_path / "a.wav").write_bytes(b"")
        (tmp_path / "b.wav").write_bytes(b"")
        (tmp_path / "calls.txt").write_text(bom + "a.wav\nb.wav\n", encoding="utf-8")
        found = expand_inputs([f"@{tmp_path / 'calls.txt'}"])
        assert [p.name for p in found] == ["a.wav", "b.wav"]
    else:
        from remotemedia.replay import parse_arrivals
        (tmp_path / "t.txt").write_text("b0: 0\nb1: 20000\n", encoding="utf-8")
        (tmp_path / "u.txt").write_text(bom + "b0: 0\nb1: 20000\n", encoding="utf-8")
        assert np.array_equal(parse_arrivals(tmp_path / "u.txt", 960, 48000),
                              parse_arrivals(tmp_path / "t.txt", 960, 48000))


# -- completion ------------------------------------------------------------------------------

@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_code_for_each_shell(shell):
    proc = run(["completion", shell])
    assert proc.returncode == 0 and "remotemedia" in proc.stdout and "_ARGCOMPLETE" in proc.stdout


def test_completion_answers_commands_and_options(tmp_path):
    out = tmp_path / "answers"

    def complete(line):
        env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line,
               "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
               "_ARGCOMPLETE_IFS": "\n"}
        subprocess.run(RM, env=env, capture_output=True, timeout=60)
        return [word.strip() for word in out.read_text().split("\n")]

    assert "stream" in complete("remotemedia str")
    assert "--manifest" in complete("remotemedia stream --man")


# -- a pipeline on one line ----------------------------------------------------------------

ELEMENTS = {"Gain": st.builds(lambda db: f"db={db}", st.integers(-20, 6)),
            "PassThrough": st.just(""),
            "LevelMeter": st.builds(lambda n: f"every={n}", st.integers(1, 50))}


@given(st.lists(st.sampled_from(sorted(ELEMENTS)), min_size=1, max_size=8), st.data())
@settings(max_examples=60, deadline=None)
def test_a_graph_line_is_the_manifest_of_its_chain(types, data):
    parts = [f"{t} {data.draw(ELEMENTS[t])}".strip() for t in types]
    m = load_manifest(parse_graph(" ! ".join(parts)))
    assert [m.node(i).node_type for i in m.order] == types
    chain = ["input", *m.order, "output"]
    assert [(c.source, c.target) for c in m.connections] == list(zip(chain, chain[1:]))
    assert len(set(m.order)) == len(types)
    assert all(i.startswith(snake_case(t)) for i, t in zip(m.order, types))


@pytest.mark.parametrize("line, problem", [
    ("", "empty"), ("Gain db=-3 !", "element 2 is empty"), ("! Gain", "element 1 is empty"),
    ("Gain db", "expected KEY=VALUE, got 'db'"), ("db=3 ! Gain", "not a node type"),
    ("Gain db=1 db=2", "'db' is given twice"), ("Gain id=a ! Gain id=a", "'a' is used twice"),
    ("Gain id=output", "not a node id"), ("Gain db='-3", "cannot split"),
])
def test_a_graph_line_that_is_wrong_says_where(line, problem):
    with pytest.raises(ManifestError) as err:
        load_manifest(parse_graph(line))
    assert problem in str(err.value) and "\n" not in str(err.value)


def test_a_graph_line_runs_as_its_converted_manifest_does(tmp_path):
    line = "Gain db=-3 ! LevelMeter every=5 ! Gain db=1.5"
    proc = run(["convert-manifest", "--graph", line, "-o", str(tmp_path / "m.yaml")])
    assert proc.returncode == 0, proc.stderr
    a = run(["stream", "-i", "chirp", "-o", str(tmp_path / "a.wav"), "-d", "1", line])
    b = run(["stream", "-i", "chirp", "-o", str(tmp_path / "b.wav"), "-d", "1", "-m",
             str(tmp_path / "m.yaml")])
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout and len(a.stdout.splitlines()) == 10       # level readings
    assert np.array_equal(sf.read(str(tmp_path / "a.wav"))[0], sf.read(str(tmp_path / "b.wav"))[0])
    bad = run(["stream", "-i", "sine", "-o", "null", "Gain db=loud"])
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "graph 'Gain db=loud': node 'gain': param 'db'" in bad.stderr


# -- what the shipped manifests show ----------------------------------------------------------

def test_validate_warns_about_a_branch_whose_outputs_lead_nowhere(tmp_path, manifests_dir):
    dead = tmp_path / "dead.yaml"
    dead.write_text("version: v1\nnodes:\n  - {id: g, node_type: Gain, params: {db: -6}}\n"
                    "  - {id: meter, node_type: LevelMeter}\nconnections:\n"
                    "  - {from: input, to: g}\n  - {from: g, to: meter}\n"
                    "  - {from: g, to: output}\n")
    proc = run(["validate", str(dead)])
    assert proc.returncode == 0
    assert "warning: node 'meter' (LevelMeter): its outputs lead nowhere" in proc.stdout
    for path in sorted(manifests_dir.glob("*.yaml")):
        assert "lead nowhere" not in run(["validate", str(path)]).stdout, path


def test_meter_yaml_prints_its_readings(manifests_dir):
    proc = run(["stream", "-m", str(manifests_dir / "meter.yaml"), "-i", "sine", "-o", "null",
                "-d", "1"])
    assert proc.returncode == 0, proc.stderr
    readings = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(readings) == 10 and {r["type"] for r in readings} == {"level"}


# -- a terminal that cannot draw --------------------------------------------------------------

@pytest.mark.parametrize("term", ["dumb", ""])
def test_the_tui_refuses_a_terminal_that_cannot_draw_in_one_line(term, manifests_dir):
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": term}
    try:
        proc = subprocess.run(RM + ["tui", "-m", str(manifests_dir / "gain.yaml")],
                              stdin=slave, stdout=slave, stderr=subprocess.PIPE, text=True,
                              env=env, timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "TERM" in proc.stderr, proc.stderr
