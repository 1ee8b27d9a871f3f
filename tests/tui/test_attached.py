"""The TUI attached to a stream running in another process (`tui --attach`), driven by the
pilot; and the event log pane of the in-process TUI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Input

from remotemedia.monitor.client import MonitorClient
from remotemedia.runner import RUNNING, STOPPED
from remotemedia.tui.attached import AttachedApp
from remotemedia.tui.eventlog import EventLog

from tests.conftest import DATA

from .conftest import MANIFESTS, make_app, wait_for

SIZE = (120, 36)
EVENTS_MANIFEST = (DATA / "monitored.yaml").read_text()


@pytest.fixture
def running_stream(tmp_path):
    manifest = tmp_path / "monitored.yaml"
    manifest.write_text(EVENTS_MANIFEST)
    sock = tmp_path / "run.sock"
    proc = subprocess.Popen([sys.executable, "-m", "remotemedia", "stream", "-m", str(manifest),
                             "-i", "sine", "-o", "null", "--realtime", "--duration", "60",
                             "--json", "--events", str(tmp_path / "events.jsonl"),
                             "--monitor", str(sock)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while b"monitor: " not in proc.stderr.readline():
        assert proc.poll() is None, proc.stderr.read()
    yield proc, sock
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def test_attached_tui_watches_steers_and_detaches(running_stream, tmp_path):
    proc, sock = running_stream
    client = MonitorClient.attach(str(sock))
    app = AttachedApp(client, stats_dir=tmp_path / "stats")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.state == RUNNING
                       and app.snapshot.stats["frames_in"] > 20, "the run's frames")
        assert "attached to PID" in str(app.query_one("#title").render())
        log = app.query_one(EventLog)
        await wait_for(pilot, lambda: len(log.entries) >= 2, "events in the log")
        assert not log.has_class("-empty")
        assert log.entries[-1]["node"] == "meter" and log.entries[-1]["event"] == "level"
        # the filter: nothing matches a node that is not there, everything matches "level"
        app.simulate_key("slash")
        await wait_for(pilot, lambda: isinstance(app.focused, Input), "the filter focused")
        app.query_one("#event-filter", Input).value = "no-such-node"
        await pilot.pause(0.1)
        assert log.matching() == []
        app.query_one("#event-filter", Input).value = "level"
        await pilot.pause(0.1)
        assert len(log.matching()) == len(log.entries)
        app.set_focus(None)
        # bypass goes to the run and comes back in its snapshots
        app.simulate_key("b")
        await wait_for(pilot, lambda: app.bypass is True, "bypass on in the run")
        # saving writes what the run reported, with the events
        app.simulate_key("s")
        await wait_for(pilot, lambda: app.last_saved is not None, "the stats saved")
        saved = json.loads(app.last_saved.read_text())
        assert saved["attached_to_pid"] == proc.pid and saved["events"]
        app.simulate_key("q")
        await pilot.pause(0.2)
    # detached: the run goes on in its own process
    assert proc.poll() is None
    with MonitorClient.attach(str(sock)) as again:
        snap = again.read(5)
        while snap.get("type") != "snapshot":
            snap = again.read(5)
        assert snap["state"] == "running" and snap["bypass"] is True
    # and stop it from a new attached TUI with space
    client = MonitorClient.attach(str(sock))
    app = AttachedApp(client, stats_dir=tmp_path / "stats")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot.state == RUNNING, "running")
        app.simulate_key("space")
        await wait_for(pilot, lambda: app.snapshot.state == STOPPED and app.ended, "stopped")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["stop_reason"] == "stopped" and report["monitor"]["clients_total"] >= 3



async def test_in_process_event_log(tmp_path):
    manifest = tmp_path / "monitored.yaml"
    manifest.write_text(EVENTS_MANIFEST)
    app = make_app(tmp_path, manifest=manifest)
    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(EventLog)
        assert log.has_class("-empty")            # hidden until the first event
        await wait_for(pilot, lambda: len(log.entries) >= 3, "level events in the log")
        assert not log.has_class("-empty")
        assert {e["event"] for e in log.entries} == {"level"}
        assert app.event_feed.dropped == 0 and app.event_feed.posted >= 3
        app.simulate_key("s")
        await wait_for(pilot, lambda: app.last_saved is not None, "the stats saved")
        saved = json.loads(app.last_saved.read_text())
        assert saved["events"] and saved["events"][0]["record"]["type"] == "level"
        await app.action_quit()


def test_event_feed_drops_when_full_and_counts():
    from remotemedia.engine.data import JsonData
    from remotemedia.tui.eventlog import EventFeed
    feed = EventFeed(capacity=3)
    for i in range(5):
        feed.post(JsonData({"type": "level", "node": "m", "i": i}))
    assert feed.posted == 3 and feed.dropped == 2
    entries = feed.drain()
    assert [e["record"]["i"] for e in entries] == [0, 1, 2]
    assert feed.drain() == []
