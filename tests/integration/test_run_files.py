"""What every command does with the files it creates, on the real filesystem and processes:

- a link planted by another uid (setpriv) where a command creates a file or a folder is never
  followed, whichever command and whichever file of a recording;
- a run refused at start (a metrics port or monitor socket taken, a bad manifest, input,
  device, arrivals file, --compare manifest, --out folder) leaves every output it was given
  byte-identical and makes no folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from remotemedia.record import FILES
from tests.unit import test_safefile as _safefile_tests
from tests.unit.test_safefile import as_nobody, fingerprint, needs_root

world = _safefile_tests.world   # the fixture: a /tmp-like folder another uid can reach

ROOT = Path(__file__).resolve().parents[2]
PASS = ROOT / "manifests" / "passthrough.yaml"
RM = [sys.executable, "-m", "remotemedia"]


def run(*args, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*RM, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def refused(out: subprocess.CompletedProcess) -> None:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    rec = tmp_path_factory.mktemp("made") / "rec"
    out = run("stream", "-m", PASS, "-i", "sine", "-o", "null", "-d", "0.2", "--record", rec)
    assert out.returncode == 0, out.stderr
    return rec


def _stream(*extra):
    return ("stream", "-m", PASS, "-i", "sine", "-o", "null", "-d", "0.1", *extra)


# command -> (argv with {T} for the file or {D} for the folder it creates, what is planted)
COMMANDS = {
    "stream --events": (_stream("--events", "{T}"), "file"),
    "stream --trace": (_stream("--trace", "{T}"), "file"),
    "stream -o file:": (("stream", "-m", PASS, "-i", "sine", "-o", "file:{T}.wav", "-d", "0.1"),
                        "wav"),
    "stream -o raw:": (("stream", "-m", PASS, "-i", "sine", "-o", "raw:{T}", "-d", "0.1"),
                       "file"),
    "stream --record": (_stream("--record", "{D}"), "folder"),
    "replay --trace": (("replay", "{REC}", "--trace", "{T}"), "file"),
    "replay --output file:": (("replay", "{REC}", "--output", "file:{T}.wav"), "wav"),
    "batch --out": (("batch", "-m", PASS, "{REC}/input.wav", "--out", "{D}"), "folder"),
    "report --out": (("report", "{REC}", "--out", "{D}"), "folder"),
    "convert-manifest --output": (("convert-manifest", PASS, "--output", "{T}"), "file"),
}


@needs_root
@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("how", ["link in /tmp-like folder", "their own folder"])
def test_no_command_follows_a_link_another_user_planted(world, recording, command, how):
    """Another uid plants a link to a file of ours where the command creates its file (in a
    sticky world-writable folder, or a folder of theirs), or makes the folder the command would
    create and plants a link in it: every command refuses with one line, exit 2, and the file
    the link points at is untouched."""
    argv, kind = COMMANDS[command]
    victim = world / "victim"
    before = fingerprint(victim)
    pub = world / "pub"
    base = pub
    if how == "their own folder":
        base = pub / "theirs"
        as_nobody(f"mkdir {base} && chmod 755 {base}")
    target = base / "out"
    if kind == "folder":   # links to names root would create: what it writes lands there
        links = " && ".join(f"ln -s {victim}.new {target}/{n}" for n in
                            (*FILES, "report.html", "levels.png", "summary.json"))
        as_nobody(f"mkdir {target} && {links} && mkdir {target}/reports {target}/events")
    else:
        as_nobody(f"ln -s {victim} {target}" + (f" && ln -s {victim} {target}.wav"
                                                  if kind == "wav" else ""))
    args = [a.replace("{T}", str(target)).replace("{D}", str(target))
            .replace("{REC}", str(recording)) for a in map(str, argv)]
    refused(run(*args))
    assert fingerprint(victim) == before
    assert not Path(f"{victim}.new").exists()


@needs_root
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(FILES), made_by=st.sampled_from(["them", "the link itself"]),
       mode=st.sampled_from(["file", "realtime"]), points=st.sampled_from(["file", "nothing"]))
def test_a_recording_never_writes_through_a_planted_link(world, name, made_by, mode, points):
    """stream --record pub/rec as root, where another uid made pub/rec and planted NAME ->
    a file of root's (or planted pub/rec itself as a link to a folder of root's): refused, one
    line, exit 2; the file and the folder are untouched."""
    victim = world / "victim"
    mine = world / "mine"
    mine.mkdir(exist_ok=True)
    before = fingerprint(victim)
    rec = world / "pub" / f"rec-{os.urandom(4).hex()}"
    if made_by == "them":   # to a file of root's, or to a name root would create
        to = victim if points == "file" else f"{victim}.new"
        as_nobody(f"mkdir {rec} && ln -s {to} {rec}/{name}")
    else:
        as_nobody(f"ln -s {mine} {rec}")
    extra = ["--realtime"] if mode == "realtime" else []
    refused(run("stream", "-m", PASS, "-i", "sine", "-o", "null", "-d", "0.1", *extra,
                "--record", rec))
    assert fingerprint(victim) == before
    assert not Path(f"{victim}.new").exists()
    assert list(mine.iterdir()) == []


def test_a_recording_folder_others_can_write_is_refused(tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    os.chmod(rec, 0o775)
    out = run(*_stream("--record", rec))
    refused(out)
    assert "can be written by group or others" in out.stderr
    assert list(rec.iterdir()) == []


# -- refused runs destroy nothing ----------------------------------------------------------------

@pytest.fixture
def outputs(tmp_path):
    """Outputs that already exist (an events file, a trace, a WAV) and a recording folder that
    does not: what a refused run must leave as it was."""
    import numpy as np
    import soundfile as sf
    events, trace, wav = tmp_path / "events.jsonl", tmp_path / "trace.json", tmp_path / "o.wav"
    events.write_text('{"kept": true}\n')
    trace.write_text('{"traceEvents": []}')
    sf.write(wav, np.zeros(480, dtype=np.float32), 48000, subtype="FLOAT")
    files = {p: p.read_bytes() for p in (events, trace, wav)}
    return tmp_path, files


def _taken_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, str(s.getsockname()[1])


def _taken_socket(tmp_path):
    path = tmp_path / "live.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.listen(1)
    return s, str(path)


REFUSALS = ["metrics port taken", "monitor socket taken", "bad manifest", "missing input",
            "no such device", "bad arrivals", "bad block size"]


@pytest.mark.parametrize("reason", REFUSALS)
def test_a_refused_stream_leaves_its_outputs_as_they_were(outputs, reason):
    tmp_path, files = outputs
    manifest, source, extra, held = str(PASS), "sine", [], None
    if reason == "metrics port taken":
        held, port = _taken_port()
        extra = ["--metrics-port", port]
    elif reason == "monitor socket taken":
        held, path = _taken_socket(tmp_path)
        extra = ["--monitor", path]
    elif reason == "bad manifest":
        (tmp_path / "bad.yaml").write_text("nodes: [{id: a, node_type: NoSuchNode}]\n")
        manifest = str(tmp_path / "bad.yaml")
    elif reason == "missing input":
        source = f"file:{tmp_path / 'absent.wav'}"
    elif reason == "no such device":
        source = "device:no-such-device-anywhere"
    elif reason == "bad arrivals":
        (tmp_path / "arrivals.txt").write_text("not an arrival\n")
        extra = ["--arrivals", str(tmp_path / "arrivals.txt")]
    elif reason == "bad block size":
        extra = ["--block-size", "0"]
    try:
        out = run("stream", "-m", manifest, "-i", source, "-o", f"file:{tmp_path / 'o.wav'}",
                  "-d", "0.1", "--events", tmp_path / "events.jsonl", "--trace",
                  tmp_path / "trace.json", "--record", tmp_path / "rec", *extra,
                  env={**os.environ, "REMOTEMEDIA_AUDIO_SERVER": "jack"})
    finally:
        if held is not None:
            held.close()
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    for path, data in files.items():
        assert path.read_bytes() == data, f"{path.name} changed by a run refused for {reason}"
    assert not (tmp_path / "rec").exists()


@pytest.mark.parametrize("reason", ["bad --compare manifest", "not a recording"])
def test_a_refused_replay_leaves_its_outputs_as_they_were(outputs, recording, reason):
    tmp_path, files = outputs
    source, extra = recording, []
    if reason == "bad --compare manifest":
        (tmp_path / "bad.yaml").write_text("nodes: [{id: a, node_type: NoSuchNode}]\n")
        extra = ["--compare", tmp_path / "bad.yaml"]
    else:
        source = tmp_path / "no-recording"
    out = run("replay", source, "--output", f"file:{tmp_path / 'o.wav'}", "--trace",
              tmp_path / "trace.json", *extra)
    assert out.returncode == 2, out.stderr
    for path, data in files.items():
        assert path.read_bytes() == data, f"{path.name} changed by a replay refused: {reason}"


def test_a_refused_batch_or_report_makes_no_folder(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [{id: a, node_type: NoSuchNode}]\n")
    refused(run("batch", "-m", bad, str(tmp_path / "x.wav"), "--out", tmp_path / "out"))
    refused(run("batch", "-m", PASS, str(tmp_path / "nothing*.wav"), "--out", tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    refused(run("report", tmp_path / "absent", "--out", tmp_path / "rep"))
    assert not (tmp_path / "rep").exists()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    (shared / "summary.json").write_text("{}")
    refused(run("batch", "-m", PASS, ROOT / "tests" / "data" / "speech_fox_16k.wav", "--out",
                shared))
    assert sorted(p.name for p in shared.iterdir()) == ["summary.json"]
    assert (shared / "summary.json").read_text() == "{}"
    shutil.rmtree(shared)


@needs_root
@pytest.mark.parametrize("planted", ["their folder with a link in it", "a link as the folder"])
def test_the_monitors_record_command_never_writes_through_a_planted_link(world, tmp_path,
                                                                        planted):
    """The monitor's `record` command (a client starting a recording of a running stream)
    into pub/rec that another uid planted: an error reply naming why; nothing written there."""
    import json
    from tests.monitor import test_monitor_stream as monitor_tests
    victim = world / "victim"
    mine = world / "mine"
    mine.mkdir()
    before = fingerprint(victim)
    rec = world / "pub" / "rec"
    if planted == "a link as the folder":
        as_nobody(f"ln -s {mine} {rec}")
    else:
        as_nobody(f"mkdir {rec} && ln -s {victim}.new {rec}/input.wav")
    s = monitor_tests.Stream(tmp_path)
    try:
        s.wait_for_line(r"monitor: ")
        raw, reader = monitor_tests.raw_client(s)
        raw.sendall(json.dumps({"cmd": "record", "action": "start",
                                "path": str(rec)}).encode() + b"\n")
        while True:
            msg = json.loads(reader.readline())
            if msg["type"] in ("error", "reply"):
                break
        raw.close()
    finally:
        s.kill()
    assert msg["type"] == "error" and str(rec) in msg["error"], msg
    assert fingerprint(victim) == before
    assert not Path(f"{victim}.new").exists() and list(mine.iterdir()) == []
