"""Level meters in dBFS: an RMS bar, the instantaneous peak, a held peak and a latched clip light.

Scale and colours follow the usual digital-meter convention: -60..0 dBFS, green below -18 dBFS
(the EBU alignment level), amber from -18 to -6, red above -6. The held peak stays for HOLD_S
seconds and then falls at FALL_DB_PER_S; the clip light latches until reset (key r), so a clip
seen once is never missed by looking away.
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.widget import Widget

from ..engine.levels import SILENCE_DBFS
from ..runner import Levels

FLOOR_DBFS = -60.0
HOLD_S = 1.5
FALL_DB_PER_S = 20.0
GREEN_BELOW = -18.0
RED_ABOVE = -6.0
#: scale labels, most important first: where they would crowd, the later ones give way
SCALE_MARKS = (0, -60, -18, -6, -12, -24, -36, -48, -3)
_PARTIALS = " ▏▎▍▌▋▊▉█"

LABEL_W = 4
READOUT_W = 41  # "  rms -12.0  pk  -6.0  hold  -6.0   CLIP "


class PeakHold:
    """Held peak and latched clip for one meter; time comes from the caller (deterministic)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the held peak (back to silence) and put out the clip light."""
        self.value = SILENCE_DBFS
        self.since: float | None = None
        self.clipped = False

    def level(self, t: float) -> float:
        """The held peak at time t: flat for HOLD_S, then falling."""
        if self.since is None:
            return SILENCE_DBFS
        age = t - self.since
        if age <= HOLD_S:
            return self.value
        return max(SILENCE_DBFS, self.value - (age - HOLD_S) * FALL_DB_PER_S)

    def update(self, peak_dbfs: float, clipped: bool, t: float) -> None:
        """Feed one poll at time `t` (seconds): a peak (dBFS) at or above the current held level
        becomes the new hold and restarts its HOLD_S timer; `clipped` latches the clip light
        until reset()."""
        if self.since is None or peak_dbfs >= self.level(t):
            self.value = peak_dbfs
            self.since = t
        if clipped:
            self.clipped = True


#: the meter's colours by zone (green, amber, red): lit, and dim for the track behind the bar
_LIT = ("#3ddc84", "#f2c94c", "#ff4d4d")
_DIM = ("#1f6b43", "#74622a", "#7a2b2b")


def _zone(dbfs: float) -> int:
    return 2 if dbfs > RED_ABOVE else 1 if dbfs >= GREEN_BELOW else 0


def zone_color(dbfs: float) -> str:
    """The meter colour for a level in dBFS: green below -18, amber from -18 to -6, red above
    -6."""
    return _LIT[_zone(dbfs)]


def _dim_color(dbfs: float) -> str:
    return _DIM[_zone(dbfs)]


def fraction(dbfs: float) -> float:
    """Position of a level on the meter, 0 at the floor and 1 at 0 dBFS."""
    if not math.isfinite(dbfs):
        return 0.0
    return min(1.0, max(0.0, (dbfs - FLOOR_DBFS) / -FLOOR_DBFS))


def fmt_db(dbfs: float) -> str:
    """A level in dBFS as a 6-character readout with one decimal, or "  -inf" at or below
    silence."""
    return "  -inf" if dbfs <= SILENCE_DBFS else f"{dbfs:6.1f}"


def meter_bar(rms_dbfs: float, peak_dbfs: float, hold_dbfs: float, width: int) -> Text:
    """One bar `width` cells wide: solid to the RMS level (with eighth-cell resolution), a dim
    band from there to the peak, a marker at the held peak, and a faint track beyond."""
    bar = Text()
    if width <= 0:
        return bar
    rms_cells = fraction(rms_dbfs) * width
    peak_cell = fraction(peak_dbfs) * width
    hold_cell = int(min(width - 1, fraction(hold_dbfs) * width)) if hold_dbfs > FLOOR_DBFS else -1
    full = int(rms_cells)
    for i in range(width):
        cell_db = FLOOR_DBFS + (i + 0.5) / width * -FLOOR_DBFS
        if i == hold_cell and i >= full:
            bar.append("▌", style=f"bold {zone_color(cell_db)}")
        elif i < full:
            bar.append("█", style=zone_color(cell_db))
        elif i == full and rms_cells - full >= 1 / 8:
            eighth = _PARTIALS[int((rms_cells - full) * 8)]
            bar.append(eighth, style=f"{zone_color(cell_db)} on {_dim_color(cell_db)}"
                       if i < peak_cell else zone_color(cell_db))
        elif i < peak_cell:
            bar.append("█", style=_dim_color(cell_db))
        else:
            bar.append("·", style="#3a3f4b")
    return bar


def scale_line(width: int) -> Text:
    """Tick labels under the bars, placed where they fit."""
    cells = [" "] * width
    for mark in SCALE_MARKS:
        label = str(mark)
        pos = int(round(fraction(mark) * width)) - len(label) // 2   # centred on the level
        pos = max(0, min(width - len(label), pos))
        span = range(max(0, pos - 1), min(width, pos + len(label) + 1))
        if all(cells[i] == " " for i in span):
            cells[pos:pos + len(label)] = label
    return Text("".join(cells), style="#7f8796")


class LevelMeters(Widget):
    """Input and output meters with a shared scale. `show(levels, t)` feeds one poll."""

    DEFAULT_CSS = """
    LevelMeters { height: 3; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.t = 0.0
        self.holds = {"input": PeakHold(), "output": PeakHold()}
        self._clips = {"input": 0, "output": 0}
        self._shown = {"input": (SILENCE_DBFS, SILENCE_DBFS), "output": (SILENCE_DBFS,
                                                                         SILENCE_DBFS)}

    def show(self, levels: Levels, t: float) -> None:
        """One poll: the last block's RMS, the highest peak since the previous poll (so a single
        loud block between two polls still moves the hold) and the clip count."""
        self.t = t
        for end in ("input", "output"):
            rms = getattr(levels, f"{end}_rms_dbfs")
            peak = max(getattr(levels, f"{end}_peak_dbfs"),
                       getattr(levels, f"{end}_peak_max_dbfs"))
            clips = getattr(levels, f"{end}_clips")
            clipped = getattr(levels, f"{end}_clipped") or clips > self._clips[end]
            self._clips[end] = clips
            self._shown[end] = (rms, peak)
            self.holds[end].update(peak, clipped, t)
        self.refresh()

    def reset(self, new_run: bool = False) -> None:
        """Clear holds and clip lights: key r (clips already counted stay counted, so only a
        new one lights the clip again), or a new run (whose clip count starts at 0)."""
        for hold in self.holds.values():
            hold.reset()
        if new_run:
            self._clips = {"input": 0, "output": 0}
        self._shown = {end: (SILENCE_DBFS, SILENCE_DBFS) for end in self._shown}
        self.refresh()

    def clip_lit(self, end: str) -> bool:
        """Whether the clip light of `end` ("input" or "output") is lit: latched since the last
        reset."""
        return self.holds[end].clipped

    def held_dbfs(self, end: str) -> float:
        """The held peak of `end` ("input" or "output") in dBFS at the last poll's time."""
        return self.holds[end].level(self.t)

    def render(self) -> Text:
        """Draw the widget: an IN and an OUT row (label, bar, RMS, peak and held peak readouts
        in dBFS, clip light), then the shared dBFS scale under the bars."""
        width = self.size.width
        bar_w = max(10, width - LABEL_W - READOUT_W)
        out = Text()
        for label, end in (("IN", "input"), ("OUT", "output")):
            rms, peak = self._shown[end]
            hold = self.holds[end]
            held = hold.level(self.t)
            out.append(f"{label:<{LABEL_W - 1}} ", style="bold #c0c6d4")
            out.append_text(meter_bar(rms, peak, held, bar_w))
            out.append("  rms", style="#7f8796")
            out.append(fmt_db(rms), style="bold")
            out.append("  pk", style="#7f8796")
            out.append(fmt_db(peak))
            out.append("  hold", style="#7f8796")
            out.append(fmt_db(held), style=zone_color(held) if held > FLOOR_DBFS else "")
            out.append("  ")
            if hold.clipped:
                out.append(" CLIP ", style="bold #ffffff on #d62d2d")
            else:
                out.append(" clip ", style="#4b5263 on #1c1f26")
            out.append("\n")
        out.append(" " * LABEL_W)
        out.append_text(scale_line(bar_w))
        out.append("  dBFS", style="#7f8796")
        return out
