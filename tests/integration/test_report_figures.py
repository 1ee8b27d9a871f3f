"""`remotemedia report` on real recordings made by `remotemedia stream ... --record DIR` in a
subprocess: every event is drawn at its own media time (a VAD's speech_start at the time it
names, not at the block that sent it), events sent at end of stream are drawn, every label
fits in its figure and none overlaps another, a recording started mid-run (the monitor's
`record` command, as the TUI's R) has input, output and events on one time base with its own
stop reason and counts, and the HTML escapes what the run named. `replay --compare` prints
aligned tables.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is not installed")
pytest.importorskip("jinja2", reason="the report extra (jinja2) is not installed")

from remotemedia.media_time import TimeBase  # noqa: E402
from remotemedia.recording import Recording  # noqa: E402
from remotemedia.report_figures import build_recording_figures, build_stats_figures  # noqa: E402
from tests.conftest import DATA, MANIFESTS  # noqa: E402

RM = [sys.executable, "-m", "remotemedia"]
FOX = DATA / "speech_fox_16k.wav"
VAD = textwrap.dedent("""
    version: v1
    metadata: {name: vad16}
    audio: {sample_rate: 16000, block_size: 320, channels: 1}
    nodes:
      - {id: vad, node_type: VAD, params: {pad_ms: %d}}
    connections:
      - {from: input, to: vad}
      - {from: vad, to: output}
""")
#: a meter every 4 blocks, with ids a browser would run if the page did not escape them
SCRIPTED = textwrap.dedent("""
    version: v1
    metadata: {name: "<script>alert('name')</script>"}
    audio: {sample_rate: 48000, block_size: 960, channels: 1}
    nodes:
      - {id: "g<script>alert(1)</script>", node_type: Gain, params: {db: -6.0}}
      - {id: "<img src=x onerror=alert(2)>", node_type: LevelMeter, params: {every: 4}}
    connections:
      - {from: input, to: "g<script>alert(1)</script>"}
      - {from: "g<script>alert(1)</script>", to: "<img src=x onerror=alert(2)>"}
      - {from: "<img src=x onerror=alert(2)>", to: output}
""")


def stream(*args, timeout=120) -> subprocess.CompletedProcess:
    out = subprocess.run([*RM, "stream", *map(str, args)], capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out


def markers(fig) -> dict[str, np.ndarray]:
    """The event markers the events figure draws: {kind: x positions (s)}."""
    ax = fig.axes[0]
    return {line.get_gid()[len("events:"):]: np.asarray(line.get_xdata(), dtype=float)
            for line in ax.lines if (line.get_gid() or "").startswith("events:")}


def drawn_texts(fig) -> list:
    """Every piece of text the figure draws: titles, axis labels, the tick labels inside the
    view, legend entries, bar labels."""
    from matplotlib.text import Text
    fig.canvas.draw()
    texts = [t for t in (fig._suptitle, *fig.texts) if t is not None]
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        texts += [t for t in ax.texts]
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = min(lo, hi), max(lo, hi)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:
                    texts.append(tick.label1)
        if ax.get_legend() is not None:
            texts += list(ax.get_legend().get_texts())
    for legend in fig.legends:
        texts += list(legend.get_texts())
    unique = {id(t): t for t in texts}.values()   # the suptitle is one of fig.texts
    return [t for t in unique if isinstance(t, Text) and t.get_visible() and t.get_text().strip()]


def assert_labels_fit(fig, name: str) -> None:
    """No text is cut by the figure's edge and no two texts overlap."""
    renderer = fig.canvas.get_renderer()
    frame = fig.bbox
    boxes = []
    for t in drawn_texts(fig):
        b = t.get_window_extent(renderer)
        assert b.x0 >= frame.x0 - 1 and b.x1 <= frame.x1 + 1 and \
            b.y0 >= frame.y0 - 1 and b.y1 <= frame.y1 + 1, \
            f"{name}: {t.get_text()!r} is cut by the figure's edge ({b} vs {frame})"
        boxes.append((t.get_text(), b))
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        overlap = min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1
        assert not overlap, f"{name}: {ta!r} overlaps {tb!r}"


def check_figures(figures) -> int:
    """Every figure's labels fit (asserted per figure); the number of figures checked."""
    for name, (fig, _) in figures.items():
        assert_labels_fit(fig, name)
    return len(figures)


@pytest.fixture(scope="module")
def vad_recordings(tmp_path_factory):
    """The fox sentence through Silero's VAD at 16 kHz, whole (speech ends before the end:
    pad_ms 30) and cut at 1.5 s mid-word (speech_end is sent at end of stream)."""
    pytest.importorskip("onnxruntime", reason="the voice extra is not installed")
    tmp = tmp_path_factory.mktemp("vad")
    x, rate = sf.read(FOX, dtype="float32")
    sf.write(tmp / "cut.wav", x[:int(1.5 * rate)], rate, subtype="FLOAT")
    made = {}
    for name, wav in (("whole", FOX), ("cut", tmp / "cut.wav")):
        manifest = tmp / f"{name}.yaml"
        manifest.write_text(VAD % 30)
        stream("-m", manifest, "-i", wav, "-o", "null", "--record", tmp / name)
        made[name] = Recording(tmp / name)
    return made


def test_vad_events_are_drawn_at_the_media_time_they_name(vad_recordings):
    rec = vad_recordings["whole"]
    events = {r["event"]["type"]: r for r in rec.events}
    start, end = events["speech_start"], events["speech_end"]
    # the events name their own time, and were sent blocks later (min_speech_ms, min_silence_ms)
    assert start["seq"] * 320 / 16000 > start["event"]["time_s"] + 0.1
    figures = build_recording_figures(rec)
    drawn = markers(figures["events.png"][0])
    assert drawn["speech_start"].tolist() == [start["event"]["pts"] / 16000]
    assert drawn["speech_end"].tolist() == [end["event"]["pts"] / 16000]
    assert check_figures(figures) > 0


def test_an_event_sent_at_end_of_stream_is_drawn_inside_the_axis(vad_recordings):
    rec = vad_recordings["cut"]
    last = rec.events[-1]
    assert last["seq"] is None and last["event"]["type"] == "speech_end"   # the final push
    figures = build_recording_figures(rec)
    fig = figures["events.png"][0]
    drawn = markers(fig)
    assert drawn["speech_end"].tolist() == [last["event"]["time_s"]] == [1.5]
    lo, hi = fig.axes[0].get_xlim()
    for xs in drawn.values():
        assert ((xs > lo) & (xs < hi)).all()
    assert TimeBase.of(rec).end_s == 1.5
    assert check_figures(figures) > 0


def test_the_page_escapes_what_the_run_named(tmp_path):
    manifest = tmp_path / "scripted.yaml"
    manifest.write_text(SCRIPTED)
    stream("-m", manifest, "-i", "noise", "-o", "null", "-d", "0.4", "--record", tmp_path / "r")
    cli = subprocess.run([*RM, "report", str(tmp_path / "r")], capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 0, cli.stderr
    page = (tmp_path / "r" / "report" / "report.html").read_text()
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page          # the meter's id, as text
    assert 'id="rec-nodes">g&lt;script&gt;alert(1)&lt;/script&gt;, &lt;img' in page
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt;" in page   # the manifest's name
    assert page.count("<img ") == 4                               # the four figures only
    # every reading is listed at its block's media time, by the node that sent it
    rows = re.findall(r'<tr><td class="n">([0-9.]+)</td><td>seq</td><td class="n">(\d+)</td>'
                      r'<td>&lt;img src=x onerror=alert\(2\)&gt;</td><td>level</td>', page)
    assert len(rows) == 5 and all(float(t) == pytest.approx(int(s) * 0.02) for t, s in rows)
    # the figures carry the ids too: cut to fit, never over the edge
    assert check_figures(build_recording_figures(Recording(tmp_path / "r"))) > 0


def test_a_saved_report_with_many_long_node_ids_fits(tmp_path):
    nodes = [{"id": f"stage_{i:02d}_with_a_rather_long_descriptive_identifier", "node_type": "Gain",
              "params": {"db": 0.0}} for i in range(12)]
    ids = ["input"] + [n["id"] for n in nodes] + ["output"]
    manifest = tmp_path / "long.json"
    manifest.write_text(json.dumps({"version": "v1", "nodes": nodes, "connections": [
        {"from": a, "to": b} for a, b in zip(ids, ids[1:])]}))
    out = stream("-m", manifest, "-i", "noise", "-o", "null", "-d", "0.2", "--json",
                 "--no-fuse", "--record", tmp_path / "r")
    assert check_figures(build_stats_figures(json.loads(out.stdout.strip().splitlines()[-1]))) > 0
    assert check_figures(build_recording_figures(Recording(tmp_path / "r"))) > 0


def test_a_recording_started_mid_run_has_one_time_base_and_its_own_counts(tmp_path):
    """The monitor's `record` command starts a Recorder on a running stream, as the TUI's R
    does: its x axis starts where it joined, the output on the input's time base, the meter's
    readings at their blocks; its stop reason and counts are its own, not the run's."""
    from remotemedia.testing import wait_until
    from tests.monitor.test_monitor_stream import Stream, raw_client
    s = Stream(tmp_path)
    try:
        s.wait_for_line(r"monitor: ")
        raw, reader = raw_client(s)

        def command(obj):
            raw.sendall(json.dumps(obj).encode() + b"\n")
            while True:
                msg = json.loads(reader.readline())
                if msg["type"] in ("error", "reply"):
                    return msg

        def frames_in_at_least(n):
            def seen():
                msg = json.loads(reader.readline())
                return msg["type"] == "snapshot" and \
                    (msg.get("stats") or {}).get("frames_in", 0) >= n
            wait_until(seen, timeout=30, what=f"{n} blocks into the run")

        frames_in_at_least(30)
        assert command({"cmd": "record", "action": "start",
                        "path": str(tmp_path / "rec")})["type"] == "reply"
        frames_in_at_least(90)
        assert command({"cmd": "record", "action": "stop"})["type"] == "reply"
        raw.sendall(b'{"cmd": "stop"}\n')
        raw.close()
        rc, run, err = s.finish()
        assert rc == 0, err
    finally:
        s.kill()
    rec = Recording(tmp_path / "rec")
    first = int(rec.timeline["seq"][0])
    assert first >= 30 and rec.blocks >= 40
    section = rec.report["recording"]
    assert section["first_seq"] == first and section["first_pts"] == first * 960
    assert section["output_start_pts"] == first * 960     # gain and meter keep pts
    assert section["stop_reason"] == "recording_stopped"
    counts = section["counts"]
    # the recording's blocks (the monitor's stop may let a block in after it left), not the run's
    assert rec.blocks <= counts["frames_in"] <= rec.blocks + 3
    assert counts["frames_in"] < rec.report["frames_in"] < run["frames_in"]
    assert counts["events_out"] == len(rec.events)

    figures = build_recording_figures(rec)
    start = first * 960 / 48000
    levels = figures["levels.png"][0].axes[0]
    lines = {line.get_gid(): line for line in levels.lines}
    assert lines["levels:input"].get_xdata()[0] == start
    assert lines["levels:output"].get_xdata()[0] == start
    assert levels.get_xlim()[0] < start < levels.get_xlim()[1]
    drawn = markers(figures["events.png"][0])
    assert drawn["level"].tolist() == [r["event"]["pts"] / 48000 for r in rec.events]
    assert (drawn["level"] >= start).all()
    assert check_figures(figures) > 0

    cli = subprocess.run([*RM, "report", str(tmp_path / "rec")], capture_output=True,
                         text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    page = (tmp_path / "rec" / "report" / "report.html").read_text()
    assert f'id="rec-started">mid-run, at block {first}<' in page
    assert 'id="rec-stop_reason">recording_stopped<' in page
    assert f'id="rec-frames_in">{counts["frames_in"]}<' in page


def test_compare_prints_aligned_tables_not_reprs(vad_recordings, tmp_path):
    # no pad, and the audio 6 dB down after the VAD: the same events 30 ms later, the output
    # a known fraction of the recorded one
    other = tmp_path / "pad0.yaml"
    other.write_text(textwrap.dedent("""
        version: v1
        metadata: {name: vad16-pad0}
        audio: {sample_rate: 16000, block_size: 320, channels: 1}
        nodes:
          - {id: vad, node_type: VAD, params: {pad_ms: 0}}
          - {id: gain, node_type: Gain, params: {db: -6.0}}
        connections:
          - {from: input, to: vad}
          - {from: vad, to: gain}
          - {from: gain, to: output}
    """))
    rec = vad_recordings["whole"]
    cli = subprocess.run([*RM, "replay", str(rec.path), "--compare", str(other)],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    text = cli.stdout
    assert "{'" not in text and "{\"" not in text      # no dict reprs
    lines = text.splitlines()

    def table(first_header: str) -> list[str]:
        i = next(n for n, line in enumerate(lines) if line.startswith(first_header))
        assert set(lines[i + 1]) <= {"-", " "} and "-" in lines[i + 1]
        end = next((n for n in range(i + 2, len(lines)) if not lines[n].strip()), len(lines))
        return lines[i:end]

    def right_aligned(rows: list[str], column: str) -> None:
        """Every value of `column` ends where its header ends."""
        edge = rows[0].index(column) + len(column)
        for row in rows[2:]:
            cell = row[:edge].rsplit(" ", 1)[-1]
            assert row[:edge].endswith(cell) and (len(row) == edge or row[edge] == " "), row

    counters = table("counter")
    assert counters[0].split() == ["counter", "vad16", "vad16-pad0"]
    assert [r.split()[0] for r in counters[2:]][:3] == ["frames_in", "frames_out", "events_out"]
    right_aligned(counters, "vad16-pad0")
    latency = table("latency (us)")
    assert [r.split()[0] for r in latency[2:]] == ["engine", "vad", "gain"]
    right_aligned(latency, "vad16-pad0 p99")
    events = table("type")
    assert events[0].split() == ["type", "field", "#", "block", "time", "(s)", "vad16",
                                 "vad16-pad0"]
    start = next(r for r in events if r.startswith("speech_start"))
    kinds = {r.split()[0] for r in events[2:] if not r.startswith(" ")}
    assert kinds == {"speech_start", "speech_end"}
    # pad_ms 30 moves the start back by 30 ms: 480 samples
    _, field, _, _, when, a, b = start.split()
    assert field == "pts" and int(b) - int(a) == 480
    assert float(when) == pytest.approx(rec.events[0]["event"]["time_s"], abs=5e-4)
    right_aligned(events, "vad16-pad0")
    output = table("output")
    rows = {r[:r.index("  ")]: r.split()[-1] for r in output[2:]}
    x, _ = sf.read(FOX, dtype="float32")
    g = 10 ** (-6 / 20)
    assert int(rows["first differing sample"]) == int(np.flatnonzero(x)[0])
    assert float(rows["peak difference (full scale 1.0)"]) == pytest.approx(
        np.abs(x).max() * (1 - g), rel=1e-2)
    assert float(rows["SNR, A vs A - B (dB)"]) == pytest.approx(-20 * np.log10(1 - g), abs=0.01)
    right_aligned(output, "vad16")
    assert "events: 2 vs 2, 2 differ" in text
    cli = subprocess.run([*RM, "replay", str(rec.path), "--compare", str(other), "--json"],
                         capture_output=True, text=True, timeout=120)
    doc = json.loads(cli.stdout.strip().splitlines()[-1])
    assert doc["compare"]["events"]["count"] == 2 and doc["compare"]["manifests"] == \
        ["vad16", "vad16-pad0"]


def test_a_saved_report_of_five_nodes_fits(tmp_path):
    out = stream("-m", MANIFESTS / "five.yaml", "-i", "noise", "-o", "null", "-d", "0.3",
                 "--json")
    assert check_figures(build_stats_figures(json.loads(out.stdout.strip().splitlines()[-1]))) > 0
