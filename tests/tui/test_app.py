"""Pilot tests of `remotemedia tui`: a real pipeline, real io SPECs, a clock ten times faster
than real time (see conftest), and the app driven by key presses."""

from __future__ import annotations

import gc
import io
import json
import re
import threading
import time

import pytest
from rich.console import Console
from textual.widgets import DataTable, Digits, Input, OptionList, Static

import remotemedia
from remotemedia.app import RemoteMediaApp, run_app
from remotemedia.engine.errors import ManifestError, UsageError
from remotemedia.runner import FAILED, RUNNING, STOPPED
from remotemedia.tui.meters import LevelMeters
from remotemedia.tui.screens import HelpScreen, IoPicker, ManifestPicker

from .conftest import MANIFESTS, make_app, runner_threads, wait_for

SIZE = (120, 36)

# A node that fails on demand, to see a node error reach the screen.
EXPLODE = {"on": True, "at_seq": 20}


@remotemedia.node_function("TuiTestExplodes")
def tui_test_explodes(frame):
    """Pass frames through; raise from frame EXPLODE['at_seq'] on while EXPLODE['on']."""
    if EXPLODE["on"] and frame.seq >= EXPLODE["at_seq"]:
        raise RuntimeError(f"exploded at frame {frame.seq}")
    return frame


EXPLODING_MANIFEST = """\
version: v1
metadata: {name: explodes, description: fails on purpose}
nodes:
  - {id: boom, node_type: TuiTestExplodes}
connections:
  - {from: input, to: boom}
  - {from: boom, to: output}
"""


async def press(pilot, *keys: str) -> None:
    """Press keys one by one and let the app handle each.

    `pilot.press` waits for the process to go idle after every key, which never happens while
    a stream runs (it gives up after a second per key), so the tests post the same key events
    and wait for the screen to process them instead."""
    for key in keys:
        pilot.app.simulate_key(key)
        await pilot.pause(0.1)


async def open_screen(pilot, key: str | None, screen_type: type, focus: str):
    """Press `key` (None: it opens by itself) and wait until a `screen_type` is up with its
    widgets mounted (`focus` is one of them)."""
    if key is not None:
        await press(pilot, key)
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, screen_type)
                   and bool(app.screen.query(focus)), f"the {screen_type.__name__}")
    return app.screen


async def notified(pilot, text: str) -> None:
    """Wait for a notification containing `text` (notify() posts a message first)."""
    await wait_for(pilot, lambda: any(text in n for n in notices(pilot.app)),
                   f"a notification with {text!r}")


def digits(app: RemoteMediaApp, widget_id: str) -> int:
    return int(app.query_one(f"#{widget_id}", Digits).value)


def text_of(app: RemoteMediaApp, selector: str) -> str:
    """The plain text a Static shows, whatever Rich renderable it holds."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(app.query_one(selector, Static).content)
    return console.export_text().rstrip("\n")


def notices(app: RemoteMediaApp) -> list[str]:
    """Every notification the app posted (make_app keeps them), and those it shows now."""
    return list(getattr(app, "posted_notices", [])) + [n.message for n in app._notifications]


def node_rows(app: RemoteMediaApp) -> list[str]:
    table = app.query_one("#nodes", DataTable)
    return [key.value for key in table.rows]


def node_calls(app: RemoteMediaApp, node_id: str) -> int:
    cell = app.query_one("#nodes", DataTable).get_cell(node_id, "calls")
    return int(str(cell).replace(",", ""))


async def test_counters_advance_with_no_serialization(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 40, "frames to flow")
        first = digits(app, "frames-in")
        await wait_for(pilot, lambda: digits(app, "frames-in") >= first + 40, "more frames")
        assert digits(app, "frames-out") > 0
        assert digits(app, "serialization") == 0
        serialization = app.query_one("#serialization", Digits)
        assert serialization.has_class("ok") and not serialization.has_class("alarm")
        assert "RUNNING" in text_of(app, "#state")
        io_line = text_of(app, "#io-line")
        assert "sine:440" in io_line and "48000 Hz" in io_line and "960 smp" in io_line
        # one row per node in topological order, with calls counting up
        assert node_rows(app) == ["gain", "meter"]
        assert node_calls(app, "gain") > 0 and node_calls(app, "meter") > 0
        assert text_of(app, "#edges-text") == "input ─▶ gain ─▶ meter ─▶ output"
        # a 0.5 sine is -9 dBFS RMS at the input and 6 dB lower after the gain
        levels = app.snapshot.levels
        assert levels.input_rms_dbfs == pytest.approx(-9.03, abs=0.1)
        assert levels.output_rms_dbfs == pytest.approx(-15.05, abs=0.1)
        engine = app.snapshot.stats["latency_us"]["engine"]
        assert 0 < engine["p50"] <= engine["p95"] <= engine["p99"] <= engine["max"]
        assert len(app.snapshot.engine_us) > 0
        assert "p50" in text_of(app, "#engine-latency .latency-stats")
        # without a device there is no end-to-end latency, and the panel says why
        assert app.snapshot.stats["latency_us"]["end_to_end"] is None
        assert "live devices" in text_of(app, "#e2e-latency .latency-stats")
        await press(pilot, "q")


async def test_a_stalled_ui_does_not_hold_up_the_audio(tmp_path):
    """The engine never waits for the screen: with the UI thread stuck (a terminal that does
    not take output, say) for half a second, frames keep flowing on time and none is dropped."""
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 20, "frames to flow")
        runner = app.runner
        before = runner.frames_released
        time.sleep(0.5)                      # blocks the event loop: no poll, no render
        during = runner.frames_released - before
        # 0.5 s at ten times real time is 250 frames of 20 ms; a loaded machine may give the
        # runner a fraction of that, an engine that waits for the UI none
        assert during >= 50, f"only {during} frames while the UI was stalled"
        await pilot.pause(0.2)
        assert app.snapshot.stats["drops"] == 0
        assert app.snapshot.stats["xruns"] == {"input_overflow": 0, "output_underflow": 0}
        assert digits(app, "frames-in") >= before + during   # and the screen catches up
        await press(pilot, "q")


async def test_the_ui_does_not_pile_up_objects_for_the_collector(tmp_path):
    """A full garbage collection holds the GIL for as long as it walks live objects, so a UI
    whose working set grows while it polls (DataTable's render caches did: ~5,000 objects a
    second) makes ever longer pauses in the audio thread. The object count must stay flat."""
    app = make_app(tmp_path, manifest=MANIFESTS / "five.yaml")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 50, "frames to flow")
        await pilot.pause(2.0)               # bounded caches fill up in the first seconds
        gc.collect()
        before = len(gc.get_objects())
        frames = digits(app, "frames-in")
        await pilot.pause(2.5)
        assert digits(app, "frames-in") > frames + 500      # it kept running and drawing
        gc.collect()
        grown = len(gc.get_objects()) - before
        # with DataTable's default caches: ~19,000; bounded: a few hundred to ~2,600
        assert grown < 5000, f"{grown} more live objects after 2.5 s of polling"
        await press(pilot, "q")


async def test_space_stops_and_starts_again(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 20, "frames to flow")
        first_runner = app.runner
        await press(pilot, "space")
        await wait_for(pilot, lambda: app.snapshot.state == STOPPED, "the run to stop")
        assert "STOPPED" in text_of(app, "#state") and "stopped by user" in text_of(app, "#state")
        stopped_at = digits(app, "frames-in")
        await pilot.pause(0.3)
        assert digits(app, "frames-in") == stopped_at
        assert runner_threads() == []
        await press(pilot, "space")
        await wait_for(pilot, lambda: app.snapshot.state == RUNNING, "the run to restart")
        assert app.runner is not first_runner
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 20, "frames after restart")
        await press(pilot, "q")


async def test_reset_zeroes_counters_while_running_and_when_stopped(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 150, "150 frames")
        runner = app.runner
        released_before = runner.frames_released
        await press(pilot, "r")
        # counting restarts from zero: what is shown is what came after the reset (the runner's
        # own frame count is not reset), and it keeps moving
        since_reset = runner.frames_released - released_before
        assert 0 <= digits(app, "frames-in") <= since_reset + 1
        assert node_calls(app, "gain") <= since_reset + 1
        shown = digits(app, "frames-in")
        await wait_for(pilot, lambda: digits(app, "frames-in") >= shown + 20,
                       "counting after reset")
        await press(pilot, "space")
        await wait_for(pilot, lambda: app.snapshot.state == STOPPED, "the run to stop")
        assert digits(app, "frames-in") > 0
        await press(pilot, "r")
        assert digits(app, "frames-in") == 0 and digits(app, "frames-out") == 0
        assert node_calls(app, "gain") == 0
        await pilot.pause(0.2)
        assert digits(app, "frames-in") == 0
        await press(pilot, "q")


async def test_bypass_passes_input_straight_to_output(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: node_calls(app, "gain") >= 20, "the gain to run")
        await press(pilot, "b")
        await wait_for(pilot, lambda: app.bypass and app.runner.session.bypass, "bypass on")
        assert "BYPASS" in text_of(app, "#state")
        await pilot.pause(0.2)
        calls = node_calls(app, "gain")
        frames = digits(app, "frames-out")
        await wait_for(pilot, lambda: digits(app, "frames-out") >= frames + 30,
                       "frames to keep flowing in bypass")
        assert node_calls(app, "gain") <= calls + 1      # the graph is skipped
        # the output is the input, level for level (no -6 dB gain; a poll may read the two
        # ends a block apart, and 440 Hz is not a whole number of cycles per block)
        levels = app.snapshot.levels
        assert levels.output_rms_dbfs == pytest.approx(levels.input_rms_dbfs, abs=0.2)
        await press(pilot, "b")
        await wait_for(pilot, lambda: not app.bypass and not app.runner.session.bypass,
                       "bypass off")
        assert "BYPASS" not in text_of(app, "#state")
        await wait_for(pilot, lambda: node_calls(app, "gain") >= calls + 30,
                       "the gain to run again")
        await press(pilot, "q")


async def test_bypass_set_while_stopped_applies_to_the_next_run(tmp_path):
    app = make_app(tmp_path, autostart=False)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "b")
        await press(pilot, "space")
        await wait_for(pilot, lambda: digits(app, "frames-out") >= 20, "frames to flow")
        assert app.runner.session.bypass
        await press(pilot, "q")


async def test_a_failing_node_shows_its_error_and_the_app_can_restart(tmp_path):
    manifest = tmp_path / "explodes.yaml"
    manifest.write_text(EXPLODING_MANIFEST)
    EXPLODE["on"] = True
    app = make_app(tmp_path, manifest=manifest)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot.state == FAILED, "the node to fail")
            state = text_of(app, "#state")
            assert "FAILED" in state
            assert "node 'boom' failed: RuntimeError: exploded at frame 20" in state
            await notified(pilot, "node 'boom' failed")
            assert digits(app, "frames-in") == 21
            assert node_calls(app, "boom") == 21
            errors = app.query_one("#nodes", DataTable).get_cell("boom", "errors")
            assert str(errors) == "1"
            assert re.search(r"errors +1", text_of(app, "#counters"))
            assert "errors 1" in text_of(app, "#counters-line")
            # the app stays up; fix the cause and restart from the same screen
            EXPLODE["on"] = False
            await press(pilot, "space")
            await wait_for(pilot, lambda: digits(app, "frames-in") >= 60, "a healthy run")
            assert app.snapshot.state == RUNNING
            assert "FAILED" not in text_of(app, "#state")
            await press(pilot, "q")
    finally:
        EXPLODE["on"] = True


async def test_a_device_failure_shows_and_another_input_can_be_picked(tmp_path):
    app = make_app(tmp_path, input_spec="test:broken")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.state == FAILED, "the device to fail")
        assert "test device vanished" in text_of(app, "#state")
        await notified(pilot, "test device vanished")
        assert runner_threads() == []
        picker = await open_screen(pilot, "d", IoPicker, "#input-list")
        picker.query_one("#input-list", OptionList).highlighted = \
            [c.spec for c in picker.inputs].index("sine:1000")
        await press(pilot, "enter")       # input picked, focus moves to the outputs
        await press(pilot, "enter")       # output (null, as before) picked: applies
        await wait_for(pilot, lambda: app.snapshot.state == RUNNING, "the new input to run")
        assert app.mode == "queued"
        assert app.input_spec == "sine:1000" and app.output_spec == "null"
        assert "sine 1000 Hz" in text_of(app, "#io-line")
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 30, "frames from the sine")
        await press(pilot, "q")


async def test_a_bad_spec_is_shown_without_starting_a_thread(tmp_path):
    app = make_app(tmp_path, input_spec="sine:abc")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.state == FAILED, "the start to fail")
        assert app.runner is None and runner_threads() == []
        assert "bad input SPEC 'sine:abc'" in text_of(app, "#state")
        await notified(pilot, "sine:abc")
        await press(pilot, "q")


async def test_device_picker_takes_a_typed_spec_and_switches_the_output(tmp_path):
    out = tmp_path / "out.wav"
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 10, "frames to flow")
        first_runner = app.runner
        picker = await open_screen(pilot, "d", IoPicker, "#input-list")
        typed = picker.query_one("#input-spec", Input)
        typed.focus()
        typed.value = "silence"
        await pilot.pause(0.05)
        await press(pilot, "enter")
        # A loaded machine may take longer than press()'s pause to handle the submission.
        await wait_for(pilot, lambda: picker.chosen_input == "silence", "the typed input")
        await wait_for(pilot, lambda: app.focused is picker.query_one("#output-list"),
                       "focus to move to the output list")
        typed = picker.query_one("#output-spec", Input)
        typed.focus()
        typed.value = f"file:{out}"
        await pilot.pause(0.05)
        await press(pilot, "enter")
        await wait_for(pilot, lambda: app.snapshot.state == RUNNING and app.runner is not
                       first_runner, "the new ends to run")
        assert (app.input_spec, app.output_spec) == ("silence", f"file:{out}")
        assert first_runner.join(0)                  # the old thread has ended
        await wait_for(pilot, lambda: digits(app, "frames-out") >= 25, "frames into the file")
        assert app.snapshot.levels.input_peak_dbfs == -120.0     # silence
        await press(pilot, "q")
    assert out.stat().st_size > 44 + 25 * 960 * 4                 # the WAV was finalized


async def test_device_picker_escape_changes_nothing(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 10, "frames to flow")
        runner = app.runner
        await open_screen(pilot, "d", IoPicker, "#input-list")
        await press(pilot, "down", "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, IoPicker), "the picker to close")
        assert app.runner is runner and app.input_spec == "sine:440"
        await press(pilot, "q")


async def test_device_picker_cursor_moves_pick_nothing_until_enter(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 10, "frames to flow")
        picker = await open_screen(pilot, "d", IoPicker, "#input-list")
        await press(pilot, "down", "down", "tab", "tab")    # cursor moved, nothing picked
        assert picker.chosen_input == "sine:440"
        outputs = picker.query_one("#output-list", OptionList)
        assert app.focused is outputs
        outputs.highlighted = [c.spec for c in picker.outputs].index("null")
        await press(pilot, "enter")
        await wait_for(pilot, lambda: app.snapshot.state == RUNNING, "the run to restart")
        assert (app.input_spec, app.output_spec) == ("sine:440", "null")
        await press(pilot, "q")


async def test_without_a_manifest_the_picker_opens_and_switches_what_runs(tmp_path):
    app = make_app(tmp_path, manifest=None)
    async with app.run_test(size=SIZE) as pilot:
        picker = await open_screen(pilot, None, ManifestPicker, "#manifest-list")
        names = [entry.path.name for entry in picker.entries]
        assert {"gain.yaml", "meter.yaml", "passthrough.yaml"} <= set(names)
        assert app.runner is None and "no manifest" in text_of(app, "#state")
        picker.query_one(OptionList).highlighted = names.index("gain.yaml")
        await press(pilot, "enter")
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 20, "gain.yaml to run")
        assert node_rows(app) == ["gain"]
        assert "gain.yaml" in text_of(app, "#title")
        gain_runner = app.runner
        picker = await open_screen(pilot, "m", ManifestPicker, "#manifest-list")
        picker.query_one(OptionList).highlighted = names.index("passthrough.yaml")
        await press(pilot, "enter")
        await wait_for(pilot, lambda: node_rows(app) == ["pass"] and digits(app, "frames-in")
                       >= 20, "passthrough.yaml to run")
        assert app.runner is not gain_runner and gain_runner.state == STOPPED
        assert len(runner_threads()) == 1
        assert text_of(app, "#edges-text") == "input ─▶ pass ─▶ output"
        await press(pilot, "q")


async def test_manifest_picker_lists_a_broken_manifest_but_cannot_pick_it(tmp_path):
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "a_broken.yaml").write_text("version: v1\nnodes: [\n")
    (folder / "gain.yaml").write_text((MANIFESTS / "gain.yaml").read_text())
    app = make_app(tmp_path, manifest=None, manifests_dir=folder)
    async with app.run_test(size=SIZE) as pilot:
        picker = await open_screen(pilot, None, ManifestPicker, "#manifest-list")
        assert [e.path.name for e in picker.entries] == ["a_broken.yaml", "gain.yaml"]
        assert picker.entries[0].problem is not None
        options = picker.query_one(OptionList)
        assert options.get_option_at_index(0).disabled
        await press(pilot, "home", "enter")                 # lands on the first enabled one
        await wait_for(pilot, lambda: node_rows(app) == ["gain"], "gain.yaml to load")
        await press(pilot, "q")


async def test_a_manifest_that_does_not_load_is_reported_and_the_picker_opens(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: v1\nnodes:\n  - {id: x, node_type: NoSuchNode}\n"
                   "connections: [{from: input, to: x}, {from: x, to: output}]\n")
    app = make_app(tmp_path, manifest=bad)
    async with app.run_test(size=SIZE) as pilot:
        await notified(pilot, "unknown node type 'NoSuchNode'")
        await open_screen(pilot, None, ManifestPicker, "#manifest-list")
        assert app.pipeline is None and app.runner is None and runner_threads() == []
        await press(pilot, "escape")
        await wait_for(pilot, lambda: "no manifest" in text_of(app, "#state"), "the state line")
        await press(pilot, "q")


async def test_save_writes_the_stats_report_and_says_where(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 30, "frames to flow")
        await press(pilot, "s")
        path = app.last_saved
        assert path is not None and path.parent == (tmp_path / "stats").resolve()
        await notified(pilot, str(path))
        report = json.loads(path.read_text())
        assert report["frames_in"] >= 30 and report["serialization_events"] == 0
        assert set(report["copies"]) == {"engine", "cow", "io"}
        assert set(report["nodes"]) == {"gain", "meter"}
        assert report["manifest"].endswith("meter.yaml")
        assert (report["input"], report["output"], report["state"]) == ("sine:440", "null",
                                                                        RUNNING)
        await press(pilot, "s")
        await wait_for(pilot, lambda: app.last_saved not in (None, path) and
                       app.last_saved.exists(), "a second report")
        await press(pilot, "q")


async def test_save_before_any_run_says_there_is_nothing(tmp_path):
    app = make_app(tmp_path, autostart=False)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "s")
        assert app.last_saved is None
        await notified(pilot, "nothing to save")
        await press(pilot, "q")


async def test_clip_light_latches_until_reset(tmp_path):
    app = make_app(tmp_path, input_spec="sine:1000:1.0")
    async with app.run_test(size=SIZE) as pilot:
        meters = app.query_one(LevelMeters)
        await wait_for(pilot, lambda: meters.clip_lit("input"), "the input clip light")
        assert not meters.clip_lit("output")           # 6 dB down after the gain
        assert meters.held_dbfs("input") == pytest.approx(0.0, abs=0.01)
        await press(pilot, "b")                          # bypass: the full-scale sine reaches out
        await wait_for(pilot, lambda: meters.clip_lit("output"), "the output clip light")
        await press(pilot, "space")
        await wait_for(pilot, lambda: app.snapshot.state == STOPPED, "the run to stop")
        await pilot.pause(0.2)
        assert meters.clip_lit("input")                 # latched after the signal stopped
        await press(pilot, "r")
        await wait_for(pilot, lambda: not meters.clip_lit("input") and
                       not meters.clip_lit("output"), "the clip lights to clear")
        await press(pilot, "q")


async def test_help_opens_and_closes(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 10, "frames to flow")
        await open_screen(pilot, "question_mark", HelpScreen, "#help-keys")
        console = Console(width=110, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#help-keys", Static).content)
        help_text = console.export_text()
        assert "space" in help_text
        for key in ("space", "bypass", "save the stats"):
            assert key in help_text
        # keys that change what runs wait while help is open
        runner = app.runner
        await press(pilot, "space", "m")
        assert app.runner is runner and runner.state == RUNNING
        await press(pilot, "escape")
        assert not isinstance(app.screen, HelpScreen)
        await press(pilot, "q")


async def test_quit_stops_the_stream_and_leaves_no_thread(tmp_path):
    before = set(threading.enumerate())
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 10, "frames to flow")
        assert len(runner_threads()) == 1
        runner = app.runner
        await press(pilot, "q")
        assert runner.state == STOPPED
    assert app.return_code == 0
    assert runner_threads() == []
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == [], f"threads left running: {left}"


async def test_ctrl_c_quits_as_cleanly_as_q(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 10, "frames to flow")
        runner = app.runner
        await press(pilot, "ctrl+c")
        assert runner.state == STOPPED
    assert app.return_code == 0 and runner_threads() == []


async def test_leaving_the_app_any_other_way_also_stops_the_runner(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: digits(app, "frames-in") >= 10, "frames to flow")
        runner = app.runner
        app.exit()
        await pilot.pause()
    assert runner.state == STOPPED
    assert runner_threads() == []


def test_run_app_rejects_a_bad_manifest_before_the_screen_changes(tmp_path):
    with pytest.raises(ManifestError) as info:
        run_app(manifest=tmp_path / "missing.yaml")
    assert info.value.exit_code == 2


def test_run_app_rejects_a_bad_spec_before_the_screen_changes():
    with pytest.raises(UsageError) as info:
        run_app(manifest=MANIFESTS / "meter.yaml", input_spec="sine:abc")
    assert info.value.exit_code == 2
    assert runner_threads() == []


FUSED_MANIFEST = """\
version: v1
metadata: {name: fused gains, description: two adjacent gains the engine fuses}
audio: {sample_rate: 48000, block_size: 960, channels: 1}
nodes:
  - {id: a, node_type: Gain, params: {db: -3}}
  - {id: b, node_type: Gain, params: {db: -3}}
  - {id: meter, node_type: LevelMeter, params: {every: 5}}
connections:
  - {from: input, to: a}
  - {from: a, to: b}
  - {from: b, to: meter}
  - {from: meter, to: output}
"""


async def test_fused_nodes_show_their_share_of_the_group_time_marked(tmp_path):
    path = tmp_path / "fused.yaml"
    path.write_text(FUSED_MANIFEST)
    app = make_app(tmp_path, path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: node_calls(app, "b") >= 20, "the fused gains to run")
        table = app.query_one("#nodes", DataTable)
        await wait_for(pilot, lambda: str(table.get_cell("a", "p50")).startswith("~"),
                       "the fused mark")
        assert str(table.get_cell("b", "p50")).startswith("~")
        assert not str(table.get_cell("meter", "p50")).startswith("~")
        assert "fused" in str(table.border_subtitle)
        assert app.snapshot.stats["nodes"]["a"]["fused"]["group"] == ["a", "b"]
        await press(pilot, "q")
