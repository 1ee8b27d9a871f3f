"""Every key a TUI answers is in its footer or its help, and only keys that work there: the
in-process TUI and the attached one, from their own bindings; `/` filters the event log in
both, so typing a word there presses no key."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from remotemedia.app import RemoteMediaApp
from remotemedia.tui.attached import AttachedApp, SpawnedApp
from remotemedia.tui.eventlog import EventLog
from remotemedia.tui.screens import HelpScreen

from .conftest import make_app, wait_for

SIZE = (120, 36)


def bound_keys(app_class) -> set[str]:
    """Every key the class's app answers, as Textual resolves its bindings."""
    return set(app_class._merge_bindings().key_to_bindings)


@pytest.mark.parametrize("app_class", [RemoteMediaApp, AttachedApp, SpawnedApp])
def test_every_key_is_in_the_help_and_the_help_names_no_other(app_class):
    shown = {key for key, _ in app_class.key_help()}
    display = {"slash": "/", "question_mark": "?"}
    assert {display.get(k, k) for k in bound_keys(app_class)} == shown
    assert all(text for _, text in app_class.key_help())
    assert "R" in shown                              # record: bound, and now said so


@pytest.mark.parametrize("app_class", [AttachedApp, SpawnedApp])
def test_the_attached_tui_binds_only_keys_that_work_on_another_process(app_class):
    bindings = app_class._merge_bindings().key_to_bindings
    assert "m" not in bindings and "d" not in bindings   # the run's manifest, devices: fixed
    for key, (*_, binding) in bindings.items():
        assert hasattr(app_class, f"action_{binding.action}"), binding


async def test_the_help_screen_lists_the_apps_own_keys(tmp_path):
    app = make_app(tmp_path, autostart=False)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.query("#frames-in"), "the main screen")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        assert app.screen.keys == tuple(app.key_help())


async def test_slash_then_a_word_filters_the_log_and_presses_no_key(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.focused, Input), "the filter focused")
        await pilot.press(*"speech")
        field = app.query_one(EventLog).query_one("#event-filter", Input)
        assert field.value == "speech"
        assert app.last_saved is None                 # `s` saved nothing
        assert not any(app.stats_dir.glob("*.json"))
        assert app.recorder is None                   # nor did anything start recording
