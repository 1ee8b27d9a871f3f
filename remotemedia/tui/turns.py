"""The TUI's turns pane: one row per user turn of a voice run (the stats report's `turns`
section, turn_observer.py), newest last: what the bot heard, what it replied, and
voice-to-voice in ms (a "!" after it when the user spoke over the reply). Hidden for a run
without turns (no VAD in the manifest), so other runs look as they did."""

from __future__ import annotations

from typing import Any, Mapping

from rich.text import Text
from textual.widgets import DataTable

#: (header, key) of the pane's columns
TURN_COLUMNS = (("#", "n"), ("heard", "heard"), ("reply", "reply"), ("v2v ms", "v2v"))
MUTED = "#7f8796"


class TurnsPane(DataTable):
    """The turns pane (module docstring). `show(section)` with the report's `turns` section,
    or None (hides the pane)."""

    DEFAULT_CSS = """
    TurnsPane {
        height: auto;
        max-height: 8;
        border: round #3a3f4b;
        border-title-color: #7f8796;
        border-title-style: bold;
        background: #0f1115;
        display: none;
    }
    TurnsPane.-shown {
        display: block;
    }
    """

    def on_mount(self) -> None:
        """Columns once; rows come with show()."""
        self.border_title = "turns"
        self.cursor_type = "none"
        for label, key in TURN_COLUMNS:
            self.add_column(Text(label, justify="right" if key in ("n", "v2v") else "left"),
                            key=key, width={"n": 3, "v2v": 8}.get(key))
        self._shown: list[tuple] = []

    def show(self, section: Mapping[str, Any] | None) -> None:
        """Rows for the section's turns (added or changed only); the subtitle says the count,
        replies and the p50; None or no turns section hides the pane."""
        shown = isinstance(section, Mapping)
        self.set_class(shown, "-shown")
        if not shown:
            return
        rows = [row_cells(k, r) for k, r in enumerate(section.get("turns") or (), 1)]
        for k, cells in enumerate(rows):
            if k < len(self._shown):
                if self._shown[k] != cells:
                    for (_, key), value in zip(TURN_COLUMNS[1:], cells[1:]):
                        self.update_cell(str(k + 1), key, value)
            else:
                self.add_row(*cells, key=str(k + 1))
        if len(rows) > len(self._shown):
            self.move_cursor(row=len(rows) - 1)    # the newest turn in view
        self._shown = rows
        p50 = (section.get("voice_to_voice_ms") or {}).get("p50")
        subtitle = f"{section.get('count', 0)} turns, {section.get('replied', 0)} replied" + (
            f", p50 {p50:.0f} ms" if p50 is not None else "")
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle


def row_cells(n: int, row: Mapping[str, Any]) -> tuple:
    """The cells of turn `n`: number, heard, reply, voice-to-voice (ms, "—" while there is
    none; "!" when the user spoke over this turn's reply: its `interrupted`)."""
    v2v = row.get("voice_to_voice_ms")
    barged = bool(row.get("interrupted"))
    cell = Text("—" if v2v is None else f"{v2v:.0f}", justify="right",
                style=MUTED if v2v is None else "")
    if barged:
        cell.append("!", style="bold #f2c94c")
    return (Text(str(n), style=MUTED, justify="right"), row.get("heard") or "",
            row.get("reply") or "", cell)


__all__ = ["TurnsPane", "row_cells"]
