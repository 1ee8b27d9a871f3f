"""The TUI's turns pane: a run with a VAD shows one row per turn (heard, reply, voice-to-voice
in ms) as the turns happen; a run without one shows no pane. A real run: a WAV of noise
bursts through EnergyVAD and the block-exact stand-in speech nodes, driven by Textual's pilot."""

from __future__ import annotations

import yaml

from remotemedia.engine.node import registry
from remotemedia.tui.turns import TurnsPane

from ..unit.turn_nodes import Heard, Reply, Synth, manifest, speech_wav
from .conftest import make_app, wait_for

SIZE = (120, 40)

for cls in (Heard, Reply, Synth):
    if cls.node_type not in registry.names():
        registry.register(cls)


def cell_text(table, row: int, key: str) -> str:
    value = table.get_cell(str(row), key)
    return getattr(value, "plain", value)


async def test_turns_pane_lists_each_turn_as_it_happens(tmp_path):
    path = tmp_path / "voice.yaml"
    path.write_text(yaml.safe_dump(manifest(heard_delay=2, reply_blocks=20)))
    wav = speech_wav(tmp_path / "in.wav", [(0.3, 0.9), (2.0, 2.6)], 4.0)
    app = make_app(tmp_path, path, input_spec=f"file:{wav}")
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(TurnsPane)
        await wait_for(pilot, lambda: pane.row_count == 2 and app.runner.state != "running",
                       "two turns in the pane")
        await pilot.pause(0.2)
        assert pane.display and pane.border_title == "turns"
        rows = app.runner.stats()["turns"]["turns"]
        for n, row in enumerate(rows, 1):
            assert cell_text(pane, n, "heard") == f"words {n}"
            assert cell_text(pane, n, "reply") == f"reply to words {n}"
            assert cell_text(pane, n, "v2v") == f"{row['voice_to_voice_ms']:.0f}"
        assert pane.border_subtitle.startswith("2 turns, 2 replied, p50 ")


async def test_no_vad_no_turns_pane(tmp_path):
    app = make_app(tmp_path)          # meter.yaml: no VAD
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.runner is not None
                       and (app.runner.stats() if app.runner.session else {}).get(
                           "frames_in", 0) > 20, "the run to go")
        pane = app.query_one(TurnsPane)
        assert not pane.display and pane.row_count == 0
        assert app.runner.taps == {}


def test_the_bang_marks_the_turn_whose_reply_was_cut():
    from remotemedia.tui.turns import row_cells
    cut = row_cells(1, {"voice_to_voice_ms": 400.0, "interrupted": True,
                        "barge_in_stop_ms": None})
    barging = row_cells(2, {"voice_to_voice_ms": 500.0, "interrupted": False,
                            "barge_in_stop_ms": 120.0, "barge_in_s": 3.0})
    assert str(cut[3]).endswith("!") and not str(barging[3]).endswith("!")
