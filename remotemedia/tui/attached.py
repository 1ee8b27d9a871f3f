"""`remotemedia tui --attach [PATH|PID]`: the TUI over a stream running in another process.

The run belongs to its own process (`remotemedia stream --monitor`); this app reads its monitor
socket on a thread of its own (MonitorClient.start_reader) and draws, at the app's poll rate,
the newest snapshot that arrived. Rendering never holds the audio process's GIL: the only work
it causes there is the monitor thread's snapshot (see remotemedia/monitor/server.py).

Keys: space stops the run, r resets its counters, b toggles its bypass, s saves the stats it
last reported (with the event log), / filters the event log, q detaches and leaves it running.
"""

from __future__ import annotations

import collections
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Input, Static

from ..runner import IDLE, RUNNING, Levels
from .eventlog import EventLog
from .keys import key_bindings
from .snapshot import Snapshot
from .widgets import MUTED, PipelineView
from .app import RemoteMediaApp


class AttachedApp(RemoteMediaApp, inherit_bindings=False):
    """The live screen of a run in another process, steered through its monitor socket."""

    # Only the keys that work on a run in another process (inherit_bindings=False), worded for
    # it: its manifest and devices are fixed, so m and d are not bound here at all.
    BINDINGS = key_bindings(attached=True)

    def __init__(self, client, *, owns_run: bool = False, **kwargs) -> None:
        hello = client.hello
        #: `tui --spawn`: this app started the run, and q stops it before detaching
        kwargs.setdefault("autostart", False)
        super().__init__(None, hello.get("input") or "?", hello.get("output") or "?", **kwargs)
        self.owns_run = owns_run
        self.client = client
        self.hello = hello
        self.mode = f"attached to PID {hello.get('pid')}"
        self.latest: dict | None = None        # the newest snapshot message
        self.ended: dict | None = None         # the `end` message, when the run is over
        self.detached = False
        self.gone = False                      # the connection closed
        self.replies: collections.deque = collections.deque(maxlen=64)
        self._incoming: collections.deque = collections.deque(maxlen=4096)
        self._ended_announced = False
        self.recording_asked = False           # R asked the run to record

    # -- messages from the reader thread -------------------------------------------------------
    def _received(self, msg: dict | None) -> None:
        """On the reader thread: store, never draw (poll() draws)."""
        if msg is None:
            self.gone = True
            return
        kind = msg.get("type")
        if kind == "snapshot":
            self.latest = msg
        elif kind == "event":
            self._incoming.append(msg)
        elif kind == "end":
            self.ended = msg
        elif kind in ("reply", "error"):
            self.replies.append(msg)

    # -- layout and polling ----------------------------------------------------------------------
    def on_mount(self, event) -> None:
        """Textual mount event (replaces the base app's, which would load a manifest): fit the
        layout, fill the pipeline table from the run's hello message, start the client's
        reader thread and poll POLL_HZ times a second."""
        event.prevent_default()   # not the base app's on_mount: there is no manifest to load
        self._fit(self.size.width, self.size.height)
        self.query_one(PipelineView).set_pipeline(
            [tuple(n) for n in self.hello.get("nodes", [])],
            [tuple(e) for e in self.hello.get("edges", [])])
        self._show_title()
        self.client.start_reader(self._received)
        self._poll_timer = self.set_interval(1.0 / self.poll_hz, self.poll)
        self.poll()

    def take_snapshot(self) -> Snapshot:
        """A Snapshot built from the newest snapshot message the reader thread stored (the `end`
        message's stats and state once the run is over); IDLE with "waiting for the run's
        first snapshot" before one arrives. Never waits for the socket."""
        msg = self.latest
        if msg is None:
            return Snapshot(state=IDLE, reason="waiting for the run's first snapshot")
        stats = msg.get("stats")
        if self.ended is not None and self.ended.get("stats"):
            stats = self.ended["stats"]
        levels = Levels(**{k: v for k, v in (msg.get("levels") or {}).items()
                           if k in Levels.__dataclass_fields__ and v is not None})
        state = self.ended.get("state") if self.ended is not None else msg.get("state", IDLE)
        reason = msg.get("reason")
        if self.gone and self.ended is None:
            reason = "the monitor connection closed"
        return Snapshot(state=state or IDLE, reason=reason, stats=stats, levels=levels,
                        engine_us=tuple(msg.get("engine_us") or ()),
                        end_to_end_us=(tuple(msg["end_to_end_us"])
                                       if msg.get("end_to_end_us") else None),
                        t=self._now())

    @staticmethod
    def _now() -> float:
        import time
        return time.monotonic()

    def poll(self) -> None:
        """Timer tick on the event loop: take the run's bypass flag from its snapshot, redraw
        every widget, move received events into the event log, show the run's error replies
        as notifications, and notify once when the run ends or the connection closes. Does
        nothing after detaching."""
        if self.detached:
            return
        latest = self.latest
        if latest is not None and bool(latest.get("bypass")) != self.bypass:
            self.set_reactive(RemoteMediaApp.bypass, bool(latest.get("bypass")))
        snap = self.take_snapshot()
        self.snapshot = snap
        self.show(snap)
        entries = []
        while self._incoming:
            msg = self._incoming.popleft()
            entries.append({"t": msg.get("t"), "node": msg.get("node"),
                            "event": msg.get("event"), "record": msg.get("record") or {}})
        self.show_events(entries)
        while self.replies:
            reply = self.replies.popleft()
            if reply.get("type") == "error":
                if reply.get("cmd") == "record":
                    self.recording_asked = False     # nothing is recording after all
                self.notify(reply.get("error", "error"), title=f"run: {reply.get('cmd')}",
                            severity="error", markup=False)
            elif reply.get("cmd") == "record":
                where = reply.get("recording") or reply.get("recorded")
                self.notify(f"{'recording to' if 'recording' in reply else 'recorded'} "
                            f"{where}", title="recording", markup=False)
        if (self.ended is not None or self.gone) and not self._ended_announced:
            self._ended_announced = True
            why = (self.ended or {}).get("reason") or "connection closed"
            self.notify(f"the run ended: {why}", title="pipeline", markup=False)

    def _period_s(self) -> float | None:
        audio = self.hello.get("audio") or {}
        if not audio.get("sample_rate") or not audio.get("block_size"):
            return None
        return audio["block_size"] / audio["sample_rate"]

    def _show_title(self) -> None:
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append("remotemedia", style="bold #8ab4f8")
        title.append("  │  ", style="#3a3f4b")
        title.append(str(self.hello.get("manifest")), style="bold")
        title.append(f"  attached to PID {self.hello.get('pid')}", style="bold #3ddc84")
        title.append("  │  ", style="#3a3f4b")
        title.append(str(self.hello.get("path", "")), style=MUTED)
        self.query_one("#title", Static).update(title)

    @property
    def active(self) -> bool:
        """The run is starting or running, by its last snapshot, and the connection is open."""
        return self.snapshot.state in (IDLE, RUNNING) and not self.gone

    # -- steering the run ----------------------------------------------------------------------
    def _send(self, cmd: str, **fields) -> bool:
        if self.gone or self.ended is not None:
            self.notify("the run has ended", severity="warning")
            return False
        try:
            self.client.send(cmd, **fields)
        except Exception as exc:
            self.notify(f"cannot reach the run: {exc}", severity="error", markup=False)
            return False
        return True

    def action_toggle_run(self) -> None:
        """Space: send `stop` to the run (it stops after its current block and writes its
        report); a notification confirms the request. The run cannot be started again from
        here."""
        if self._send("stop"):
            self.notify("asked the run to stop", timeout=3)

    def action_reset(self) -> None:
        """`r`: send `reset` to the run (its counters and latency windows) and reset the meters'
        peak holds and clip lights here."""
        if self._send("reset"):
            from .meters import LevelMeters
            self.query_one(LevelMeters).reset()
            self.notify("counters, latency, peak holds and clip lights reset", timeout=3)

    def action_toggle_bypass(self) -> None:
        """`b`: ask the run to toggle its bypass; the state line shows BYPASS once the run's
        next snapshot says so."""
        self._send("bypass", on=not self.bypass)

    def watch_bypass(self, bypass: bool) -> None:
        """Does nothing: `bypass` only mirrors the run's own flag as its snapshots report it."""
        pass                      # the run's own bypass is what the snapshots say

    def action_toggle_record(self) -> None:
        """`R`: ask the run to start a recording (the monitor's `record` command, into its
        default folder), or to stop the one this screen started; the run's reply comes back
        as a notification."""
        self.recording_asked = not self.recording_asked
        if self._send("record", action="start" if self.recording_asked else "stop"):
            self.notify("asked the run to " + ("start" if self.recording_asked else "stop")
                        + " recording", timeout=3)

    def current_report(self) -> dict[str, Any] | None:
        """The run's last reported stats with its state, manifest path, input, output, bypass,
        PID, the event log's entries and the save time (for `s`); None before the first stats
        arrive."""
        snap = self.snapshot
        if snap.stats is None:
            return None
        report = dict(snap.stats)
        report["state"] = snap.state
        report["manifest"] = self.hello.get("path")
        report["input"] = self.input_spec
        report["output"] = self.output_spec
        report["bypass"] = self.bypass
        report["attached_to_pid"] = self.hello.get("pid")
        report["events"] = list(self.query_one(EventLog).entries)
        report["saved_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
        return report

    def shutdown(self) -> bool:
        """Detach: the run goes on in its own process."""
        self.detached = True
        timer = getattr(self, "_poll_timer", None)
        if timer is not None:
            timer.stop()          # no poll may draw once the screen is going away
        self.client.close()
        return True

    async def action_quit(self) -> None:
        """`q` or Ctrl-C: under `tui --spawn` (owns_run) send `stop` to the run first; then
        detach (close the socket) and leave the app with exit code 0. An attached run goes on
        in its own process."""
        if self.owns_run and not self.gone and self.ended is None:
            try:
                self.client.send("stop")
            except Exception:
                pass               # the caller waits for the child either way
        self.shutdown()
        self.exit(return_code=0)


class SpawnedApp(AttachedApp):
    """`tui --spawn`: the attached TUI over the run it started; q stops that run."""

    BINDINGS = [
        Binding("q", "quit", "Quit (stops the run)"),
        Binding("ctrl+c", "quit", "Quit", show=False),
    ]


def run_attached(client, owns_run: bool = False, on_app=None) -> int:
    """Run the attached TUI in this terminal; return the exit code (0 on detach). `on_app(app)`
    is called with the app before it runs (to quit it from a signal handler)."""
    app = (SpawnedApp if owns_run else AttachedApp)(client, owns_run=owns_run, freeze_gc=False)
    if on_app is not None:
        on_app(app)
    try:
        app.run()
    finally:
        client.close()
    return app.return_code or 0
