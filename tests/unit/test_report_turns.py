"""`remotemedia report` draws a run's turns: one stacked bar per turn whose segments are the
breakdown stages and sum to voice-to-voice (read back from the figure's artists), from a saved
JSON report and from a recording; the page lists the turns, escaped."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is not installed")

from remotemedia.record import Recorder  # noqa: E402
from remotemedia.recording import Recording  # noqa: E402
from remotemedia.report_figures import (build_recording_figures, build_stats_figures,  # noqa: E402
                                        write_report)

from .turn_nodes import manifest, run, speech_wav  # noqa: E402


def bars(fig) -> dict[str, list[tuple[float, float, float]]]:
    """{stage: [(x, bottom, height) per turn]} from the patches with gid turns:<stage>."""
    out: dict = {}
    for patch in fig.axes[0].patches:
        gid = patch.get_gid() or ""
        if gid.startswith("turns:"):
            x = patch.get_x() + patch.get_width() / 2
            out.setdefault(gid[len("turns:"):], []).append((x, patch.get_y(),
                                                            patch.get_height()))
    return out


def check_turn_bars(fig, rows) -> None:
    drawn = bars(fig)
    assert list(drawn) == ["endpoint", "stt", "llm", "tts", "output"]
    for k, row in enumerate(rows):
        top = 0.0
        for stage, per_turn in drawn.items():
            x, bottom, height = per_turn[k]
            assert x == pytest.approx(k + 1)
            assert bottom == pytest.approx(top)                 # stacked, in order
            assert height == pytest.approx(row["breakdown_ms"][stage])
            top = bottom + height
        assert top == pytest.approx(row["voice_to_voice_ms"])   # the bar is voice-to-voice


def test_turns_figure_from_a_saved_report(tmp_path):
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.0), (1.6, 2.0)], 7.0)
    stats, _, _ = run(manifest(heard_delay=3, reply_blocks=150), wav)
    rows = stats["turns"]["turns"]
    assert len(rows) == 2 and rows[1]["breakdown_ms"]["output"] > 0
    figures = build_stats_figures(stats)
    fig, description = figures["turns.png"]
    check_turn_bars(fig, rows)
    assert description.startswith("turns: 2, replied 2, interrupted 1, voice to voice p50")
    # a report without turns has no turns figure
    assert "turns.png" not in build_stats_figures({k: v for k, v in stats.items()
                                                   if k != "turns"})
    saved = tmp_path / "run.json"
    stats["turns"]["turns"][0]["heard"] = "<b>bold</b>"
    saved.write_text(json.dumps(stats))
    page = write_report(saved).read_text()
    assert (tmp_path / "run-report" / "turns.png").stat().st_size > 1000
    assert 'id="turns"' in page and "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page


def test_turns_figure_from_a_recording(tmp_path):
    wav = speech_wav(tmp_path / "in.wav", [(0.5, 1.2)], 4.0)
    made = {}

    def record(runner):
        recorder = Recorder(tmp_path / "rec", manifest_document=manifest()).bind(runner)
        runner.observers.join(recorder)
        runner.on_open = recorder.open
        made["recorder"] = recorder

    stats, _, _ = run(manifest(heard_delay=2), wav, before_run=record)
    made["recorder"].close(stats)
    rec = Recording(tmp_path / "rec")
    assert rec.report["turns"]["count"] == 1
    fig, _ = build_recording_figures(rec)["turns.png"]
    check_turn_bars(fig, stats["turns"]["turns"])


def test_turns_without_a_reply_and_interrupted_turns_are_marked():
    def row(v2v, interrupted=False):
        parts = None if v2v is None else {"endpoint": 300.0, "stt": v2v - 300.0}
        return {"end_s": 1.0, "endpoint_s": 1.3, "voice_to_voice_ms": v2v,
                "breakdown_ms": parts, "barge_in_stop_ms": None, "barge_in_s": None,
                "heard": "x", "reply": None, "interrupted": interrupted}
    rows = [row(358.0, interrupted=True), row(None), row(406.0)]
    fig, description = build_stats_figures({"turns": {"turns": rows}})["turns.png"]
    ax = fig.axes[0]
    no_reply = [t for t in ax.texts if t.get_gid() == "turn-mark:no-reply"]
    assert [t.get_position()[0] for t in no_reply] == [2]
    cut = [p for p in ax.patches if p.get_gid() == "turn-mark:interrupted"]
    assert len(cut) == 1 and cut[0].get_x() + cut[0].get_width() / 2 == pytest.approx(1)
    assert cut[0].get_height() == pytest.approx(358.0) and cut[0].get_hatch()
    # the median of two is their mean, not the larger
    assert description == ("turns: 3, replied 2, interrupted 1, voice to voice p50 382 ms, "
                           "max 406 ms")
