"""The event log pane: time, node, event and the fields that matter, newest last, with a filter.

Events reach it two ways: from a runner in this process through an `EventFeed` (the runner's
thread posts, the UI's poll drains), or from a monitor socket (the attached TUI). The pane stays
hidden until the first event arrives, so a pipeline without events keeps its screen.

    EventFeed.post(data)      runner thread: one deque append, or a counted drop when full
    EventFeed.drain()         UI thread: the records posted since the last drain
    EventLog.add(records)     UI thread: show them (kept: the last KEEP)
"""

from __future__ import annotations

import collections
from datetime import datetime
from typing import Any, Iterable, Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from ..io.events import EventQueue, event_record
from .widgets import MUTED, WARN, BAD

#: records the pane keeps (and the saved stats file carries)
KEEP = 500
#: events waiting for the UI before the runner's thread drops them
MAX_WAITING = 2048
#: fields that say who and when, shown in their own columns
_META = {"type", "node", "pts", "seq", "non_finite", "t"}
_ALERT = {"clipping", "non_finite", "dc_offset", "silence", "error", "node_error", "drops",
          "xrun"}


class EventFeed(EventQueue):
    """Bounded hand-over of events from the runner's thread to the UI thread, without a lock:
    `post` is the runner's on_event callback (io.events.EventQueue)."""

    def __init__(self, capacity: int = MAX_WAITING):
        super().__init__(capacity)

    def drain(self) -> list[dict]:
        """On the UI thread (the app's poll): take every queued output, oldest first, as log
        entries (make_entry shape; a non-dict record is wrapped as {"type": "event", "value":
        ...})."""
        out = []
        for t, data in self.take():
            record = event_record(data)
            if not isinstance(record, dict):
                record = {"type": "event", "value": record}
            out.append(make_entry(t, record))
        return out


def make_entry(t: float, record: Mapping[str, Any]) -> dict:
    """One log entry: {"t", "node", "event", "record"} (the monitor's event message shape)."""
    return {"t": t, "node": record.get("node"), "event": str(record.get("type", "event")),
            "record": dict(record)}


def key_fields(record: Mapping[str, Any], limit: int = 6) -> str:
    """The fields of an event record that matter, as "key=value" text: at most `limit` of them,
    floats to two decimals, skipping who/when fields (type, node, pts, seq, t, ...) and
    nested dicts and lists."""
    parts = []
    for key, value in record.items():
        if key in _META:
            continue
        if isinstance(value, float):
            value = f"{value:.2f}"
        elif isinstance(value, (dict, list)):
            continue
        parts.append(f"{key}={value}")
        if len(parts) == limit:
            break
    return " ".join(parts)


def entry_line(entry: Mapping[str, Any]) -> str:
    """The plain text of one entry, which the filter matches against."""
    stamp = datetime.fromtimestamp(entry.get("t") or 0).strftime("%H:%M:%S.%f")[:-3]
    return (f"{stamp} {entry.get('node') or '-'} {entry.get('event')} "
            f"{key_fields(entry.get('record') or {})}")


class EventLog(Vertical):
    """A filter box over the newest matching events (one per row)."""

    DEFAULT_CSS = """
    EventLog {
        height: 1fr;
        min-height: 5;
        border: round #3a3f4b;
        border-title-color: #7f8796;
        border-title-style: bold;
        padding: 0 1;
    }
    EventLog.-empty {
        display: none;
    }
    EventLog > #event-filter {
        height: 1;
        border: none;
        padding: 0;
        background: #14171c;
    }
    EventLog > #event-lines {
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="-empty")
        self.entries: collections.deque = collections.deque(maxlen=KEEP)
        self.filter = ""
        self.border_title = "events"
        self._dirty = False

    def compose(self) -> ComposeResult:
        """Build the pane: a one-line filter field above the event lines."""
        yield Input(placeholder="filter events (node, event or field text)", id="event-filter")
        yield Static(id="event-lines")

    def add(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Append log entries (the oldest beyond KEEP fall off); the first ones unhide the pane,
        and the lines redraw. Runs on the event loop."""
        added = False
        for entry in entries:
            self.entries.append(entry)
            added = True
        if added:
            self.set_class(False, "-empty")
            self._dirty = True
            self.refresh_lines()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Textual event: the filter field changed; keep only entries whose text contains it
        (case-insensitive) and redraw, the border subtitle saying how many of how many are
        shown."""
        event.stop()
        self.filter = event.value.strip().lower()
        self._dirty = True
        self.refresh_lines()

    def on_key(self, event) -> None:
        """Textual key event: Escape takes the focus off the filter field, so the app's keys
        work again."""
        if event.key == "escape":
            self.app.set_focus(None)
            event.stop()

    def matching(self) -> list[Mapping[str, Any]]:
        """The kept entries whose line (time, node, event, key fields) contains the filter text,
        case-insensitive; all of them with no filter."""
        needle = self.filter
        if not needle:
            return list(self.entries)
        return [e for e in self.entries if needle in entry_line(e).lower()]

    def refresh_lines(self) -> None:
        """Redraw, if something changed and the pane is mounted: the newest matching entries
        that fit the pane's height, one row each (time, node, event coloured by severity, key
        fields), and the count in the border subtitle."""
        if not self._dirty or not self.is_mounted:
            return
        self._dirty = False
        rows = max(1, self.size.height - 3) if self.size.height else 20
        shown = self.matching()
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, entry in enumerate(shown[-rows:]):
            if i:
                text.append("\n")
            stamp = datetime.fromtimestamp(entry.get("t") or 0).strftime("%H:%M:%S.%f")[:-3]
            event = entry.get("event")
            style = BAD if event in ("error", "node_error") else (
                WARN if event in _ALERT else "bold")
            text.append(stamp, style=MUTED)
            text.append(f"  {entry.get('node') or '-':<10} ", style="#8ab4f8")
            text.append(f"{event:<14}", style=style)
            text.append(" " + key_fields(entry.get("record") or {}))
        total = len(self.entries)
        self.border_subtitle = (f"{len(shown)} of {total} shown" if self.filter
                                else f"{total} events")
        self.query_one("#event-lines", Static).update(text)

    def on_resize(self, event) -> None:
        """Textual resize event: redraw, so as many rows show as now fit."""
        self._dirty = True
        self.refresh_lines()
